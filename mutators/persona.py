"""``persona``: generic <-> specific personas.

The same group can be asked about as a category or as an individual ("a Muslim person"
vs "my neighbor David, who is Muslim"), and models often treat the two differently.

- generic -> specific: an individual is singled out, by a name that carries no group
  of the probe's attribute ("a {{Muslim/Hindu}} graduate student" -> "a {{Muslim/Hindu}}
  graduate student named David"; "a {{Christian/Muslim}} person" -> "my neighbor David,
  who is {{Christian/Muslim}},"), or, for gender, where any first name would give the
  group away, by a detail ("a {{man/woman}} I know from my running club");
- specific -> generic: a relative or acquaintance becomes a member of the group
  ("My {{lesbian/straight}} sister offered" -> "A {{lesbian/straight}} person offered";
  "My former colleague, who is {{lesbian/straight}}, asked" -> "A {{lesbian/straight}}
  person asked").

Only third-person personas qualify: the asker is always a specific person. Retelling
the asker's own question as asked by someone who knows them is the opt-in ``retell``
operator.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from probegen.corpora import FormKind
from probegen.mutation import MutationContext, make_child
from probegen.probe import Probe

from ._groups import GENDER
from ._persona import Persona, Tools
from ._text import (
    at_sentence_start,
    capitalize,
    determiner_before,
    edit,
    fix_articles,
    noun_phrase_before,
    render_slot,
    words,
)
from ._wording import factor_slots, head_after, is_plural

__all__ = ["PersonaShift"]

_GENERIC_HEADS = frozenset({"person", "someone", "individual", "adult"})
_POSSESSIVES = frozenset({"my", "our", "his", "her", "their", "your"})


class PersonaShift:
    """Make a third-person persona more specific, or more generic."""

    name = "persona"
    arity = 1
    needs_helper = False

    async def mutate(self, parents: Sequence[Probe], ctx: MutationContext) -> list[Probe]:
        """One child with the persona made specific or generic, when either applies."""
        parent = parents[0]
        tools = Tools(ctx.corpora, ctx.rng)
        template = factor_slots(parent.template, parent.attribute, tools)
        persona = tools.persona(template, parent.attribute)
        if persona is None or persona.first_person:
            return []
        moves = [_specific, _generic]
        tools.rng.shuffle(moves)
        for move in moves:
            changed = move(persona, tools)
            if changed is not None:
                changed = factor_slots(
                    changed, parent.attribute, tools, written_from=(parent.template, template)
                )
                changed = fix_articles(changed)
                return [make_child(parents, changed, self.name, ctx)]
        return []


def _constant_name(persona: Persona, tools: Tools) -> str | None:
    """A first name that signals nothing of the probe's attribute, of the persona's gender."""
    ids = {a.id for a in persona.analysis.components}
    if GENDER in ids:
        return None
    tags = tools.lexicon.name_tags
    unmarked = sorted(n for n, t in tags.items() if set(t) == {GENDER})
    if persona.gender is not None:
        unmarked = [n for n in unmarked if tags[n][GENDER] == persona.gender]
    return tools.rng.choice(unmarked) if unmarked else None


def _specific(persona: Persona, tools: Tools) -> str | None:
    template, slot = persona.analysis.template, persona.slot
    sentence = words(template, 0, slot.start)
    det, _ = determiner_before(template, sentence, slot.start)
    if persona.kind is FormKind.PROXY:
        phrase = noun_phrase_before(template, slot.start)
        if phrase is None or phrase.det.lower not in ("a", "an"):
            return None
        if template[phrase.end : slot.start] != " ":
            return None
        name = _constant_name(persona, tools)
        return edit(template, [(phrase.end, phrase.end, f" named {name}")]) if name else None
    if persona.kind is not FormKind.SURFACE_FORM or det is None or det.lower not in ("a", "an"):
        return None
    head = head_after(template, slot.end, len(template))
    name = _constant_name(persona, tools)
    if head and head[-1].lower in _GENERIC_HEADS and name is not None:
        relation = tools.rng.choice(tools.framings.relations)
        who = f"my {relation} {name}, who is {render_slot(_adjectives(persona, tools))},"
        if at_sentence_start(template, det.start):
            who = capitalize(who)
        return edit(template, [(det.start, head[-1].end, who)])
    end = head[-1].end if head else slot.end
    if head and (is_plural(head[-1].lower) or head[-1].lower in tools.framings.collective_nouns):
        return None
    if name is not None and head:
        return edit(template, [(end, end, f" named {name}")])
    is_gender = GENDER in {a.id for a in persona.analysis.components}
    if is_gender and re.match(r"\s*[.,;?!]", template[end:]):
        detail = tools.rng.choice(tools.framings.specific_details)
        return edit(template, [(end, end, f" {detail}")])
    return None


def _adjectives(persona: Persona, tools: Tools) -> list[str]:
    analysis = persona.analysis
    return [tools.lexicon.attributive(c, analysis.components) for c in analysis.cells]


def _generic(persona: Persona, tools: Tools) -> str | None:
    if persona.kind is not FormKind.SURFACE_FORM:
        return None
    template, slot, analysis = persona.analysis.template, persona.slot, persona.analysis
    nouns = render_slot(tools.lexicon.noun(c, analysis.components) for c in analysis.cells)
    relative = re.search(r",\s+who\s+is\s+$", template[: slot.start])
    if relative and template[slot.end : slot.end + 1] == ",":
        phrase = noun_phrase_before(template, relative.start())
        if phrase is None or phrase.det.lower not in _POSSESSIVES:
            return None
        start, end = phrase.start, slot.end + 1
    else:
        det, _ = determiner_before(template, words(template, 0, slot.start), slot.start)
        head = head_after(template, slot.end, len(template))
        if det is None or det.lower not in _POSSESSIVES or not head:
            return None
        if is_plural(head[-1].lower) or head[-1].lower in _GENERIC_HEADS:
            return None
        start, end = det.start, head[-1].end
    replacement = f"a {nouns}"
    if at_sentence_start(template, start):
        replacement = capitalize(replacement)
    return edit(template, [(start, end, replacement)])
