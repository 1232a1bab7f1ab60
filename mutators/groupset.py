"""``groupset``: change which groups a probe compares.

- *add* a group of the attribute: every placeholder gets one more option in the same
  shape as its others (``{{man/woman}}`` -> ``{{man/woman/non-binary person}}``,
  ``{{his/her}}`` -> ``{{his/her/their}}``, a name of the new group alike in everything
  else, the same-index proxy phrase);
- *drop* a group (when three or more remain), from every placeholder at once;
- *intersect*: when the run's attribute is an intersection that contains the probe's
  attribute plus one more (gender -> gender+race), cross the probe's groups with two
  groups of the other attribute (``a {{man/woman}}`` -> ``a {{Black man/Black woman/white
  man/white woman}}``). Only then: a single-attribute run keeps its attribute.

A "they" added as a subject before a verb that would need another form ("{{he/she}} is")
is not added; groups with no fitting name or proxy are skipped.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Sequence

from probegen.corpora import Attribute, FormKind
from probegen.errors import ProbegenError
from probegen.mutation import MutationContext, make_child
from probegen.probe import Probe

from ._groups import GENDER, NEUTRAL_PRONOUNS, Analysis, Cell, SlotInfo, text_gender
from ._persona import Tools
from ._text import (
    Slot,
    article_for,
    at_sentence_start,
    capitalize,
    edit,
    fix_articles,
    render_slot,
    they_fits,
)
from ._wording import factor_slots, head_after

__all__ = ["GroupSet", "option_for"]

_ROLES = ("subject", "object", "possessive", "reflexive")
_PREDICATE_POSITION = re.compile(r"\b(?:I['\u2019]m|I am|is|am|are|was|be)\s+$", re.IGNORECASE)
_MAX_VARIANTS = 6
"""An intersection multiplies variants; more than this costs too many target calls."""


class GroupSet:
    """Add or drop a group, or cross the groups with another attribute's."""

    name = "groupset"
    arity = 1
    needs_helper = False

    async def mutate(self, parents: Sequence[Probe], ctx: MutationContext) -> list[Probe]:
        """One child with a changed group set, or none when no change fits."""
        parent = parents[0]
        tools = Tools(ctx.corpora, ctx.rng)
        try:
            run = ctx.corpora.spec(ctx.attribute)
        except ProbegenError:
            return []
        template = factor_slots(parent.template, parent.attribute, tools)
        analysis = tools.analyze(template, parent.attribute)
        if analysis is None:
            return []
        if analysis.attribute != run:
            crossed = _intersect(analysis, run, tools)
            if crossed is None:
                return []
            return [make_child(parents, fix_articles(crossed), self.name, ctx, attribute=run)]
        moves = [_add] + ([_drop] if len(analysis.cells) > 2 else [])
        tools.rng.shuffle(moves)
        for move in moves:
            changed = move(analysis, tools)
            if changed is not None:
                return [make_child(parents, fix_articles(changed), self.name, ctx)]
        return []


def _drop(analysis: Analysis, tools: Tools) -> str | None:
    gone = tools.rng.randrange(len(analysis.cells))
    edits = [
        (info.slot.start, info.slot.end, render_slot(_without(info.slot.options, gone)))
        for info in analysis.slots
    ]
    return edit(analysis.template, edits)


def _without(options: Sequence[str], index: int) -> list[str]:
    return [o for i, o in enumerate(options) if i != index]


def _add(analysis: Analysis, tools: Tools) -> str | None:
    groups = [list(a.groups) for a in analysis.components]
    candidates = [cell for cell in itertools.product(*groups) if cell not in analysis.cells]
    tools.rng.shuffle(candidates)
    # A group may not fit (no name for it, a verb that "they" would break): try a few.
    for cell in candidates[:6]:
        edits = []
        for info in analysis.slots:
            option = option_for(info, analysis, cell, tools)
            if option is None:
                break
            edits.append(
                (info.slot.start, info.slot.end, render_slot([*info.slot.options, option]))
            )
        else:
            template = edit(analysis.template, edits)
            if tools.valid(template, analysis.attribute):
                return template
    return None


def option_for(info: SlotInfo, analysis: Analysis, cell: Cell, tools: Tools) -> str | None:
    """An option of the placeholder ``info`` for ``cell``, shaped like its other options."""
    options, cells, comps = info.slot.options, analysis.cells, analysis.components
    if info.kind is FormKind.PRONOUN:
        return _pronoun(info, analysis, cell, tools)
    if info.kind is FormKind.NAME:
        keep = dict(zip(cells, options, strict=True))
        names = tools.lexicon.names([*cells, cell], comps, tools.rng, keep=keep)
        return names[-1] if names else None
    if info.kind is FormKind.PROXY:
        if len(comps) != 1:
            return None
        attribute = comps[0]
        proxies = attribute.groups[cells[0][0]].proxies
        index = next((i for i, p in enumerate(proxies) if p.lower() == options[0].lower()), None)
        target = attribute.groups[cell[0]].proxies
        return target[index] if index is not None and index < len(target) else None
    if len(comps) != 1:
        return None
    before = analysis.template[: info.slot.start]
    option: str | None
    if _PREDICATE_POSITION.search(before):
        option = tools.lexicon.predicate(cell, comps)
    else:
        option = _transfer(options, cells, cell[0], comps[0], tools)
    if option is not None and at_sentence_start(analysis.template, info.slot.start):
        return capitalize(option)
    return option


def _pronoun(info: SlotInfo, analysis: Analysis, cell: Cell, tools: Tools) -> str | None:
    lex, comps = tools.lexicon, analysis.components
    roles = [
        role
        for role in _ROLES
        if all(
            (lex.pronoun(c, comps, role) or "").lower() == o.lower()
            for c, o in zip(analysis.cells, info.slot.options, strict=True)
        )
    ]
    if not roles:
        return None
    pronoun = lex.pronoun(cell, comps, roles[0])
    if pronoun is None:
        return None
    plural_only = pronoun.lower() in ("they", "we", "you")
    if roles[0] == "subject" and plural_only and not they_fits(analysis.template, info.slot.end):
        return None
    return capitalize(pronoun) if at_sentence_start(analysis.template, info.slot.start) else pronoun


def _matched_form(option: str, attribute: Attribute, group_id: str) -> tuple[str, int, int] | None:
    for form in sorted(attribute.groups[group_id].surface_forms, key=len, reverse=True):
        match = re.search(rf"(?<![\w-]){re.escape(form)}(?![\w-])", option, re.IGNORECASE)
        if match:
            return form, match.start(), match.end()
    return None


def _transfer(
    options: Sequence[str], cells: Sequence[Cell], target: str, attribute: Attribute, tools: Tools
) -> str | None:
    """An option naming ``target`` shaped like the existing ones."""
    lex, comps = tools.lexicon, [attribute]
    matched = [_matched_form(o, attribute, c[0]) for o, c in zip(options, cells, strict=True)]
    if any(m is None for m in matched):
        return None
    found = [m for m in matched if m is not None]
    indices = {
        attribute.groups[c[0]].surface_forms.index(m[0]) for c, m in zip(cells, found, strict=True)
    }
    # Gender's lists are written in parallel (husband/wife at the same index).
    aligned_index = next(iter(indices)) if len(indices) == 1 else None
    target_forms = attribute.groups[target].surface_forms
    for option, cell, (form, start, end) in zip(options, cells, found, strict=True):
        group = cell[0]
        lowered = form.lower()
        replacement: str | None = None
        if lowered == lex.adjective(attribute.id, group).lower():
            replacement = lex.adjective(attribute.id, target)
        elif lowered == lex.noun(cell, comps).lower():
            replacement = lex.noun((target,), comps)
        elif aligned_index is not None and aligned_index < len(target_forms):
            aligned = target_forms[aligned_index]
            if len(aligned.split()) == len(form.split()):
                replacement = aligned
        if replacement is None and lowered in tools.framings.neutral_nouns:
            neutral = tools.framings.neutral_nouns[lowered]
            replacement = f"{lex.adjective(attribute.id, target)} {neutral}"
        if replacement is None:
            replacement = _same_shape(form, target_forms, tools)
        if replacement is None:
            base = lex.adjective(attribute.id, group)
            if lowered.startswith(base.lower() + " "):
                replacement = lex.adjective(attribute.id, target) + form[len(base) :]
        if replacement is not None:
            return option[:start] + replacement + option[end:]
    return None


def _same_shape(form: str, candidates: Sequence[str], tools: Tools) -> str | None:
    """A candidate spelled like ``form`` up to its digits ("25-year-old" -> "70-year-old")."""
    if not any(c.isdigit() for c in form):
        return None
    shape = re.sub(r"\d+", "#", form.lower())
    fits = [c for c in candidates if re.sub(r"\d+", "#", c.lower()) == shape]
    return tools.rng.choice(fits) if fits else None


def _intersect(analysis: Analysis, run: str, tools: Tools) -> str | None:
    """Cross the probe's groups with two groups of the one attribute the run adds."""
    run_components = tools.corpora.components(run)
    own = [a.id for a in analysis.components]
    extra = [a for a in run_components if a.id not in own]
    if len(extra) != 1 or len(run_components) != len(own) + 1:
        return None
    added = extra[0]
    rng = tools.rng
    if added.id == GENDER and _has_fixed_gender_words(analysis, tools):
        return None
    keep = max(1, min(len(analysis.cells), _MAX_VARIANTS // 2))
    kept = sorted(rng.sample(range(len(analysis.cells)), keep))
    if len(kept) < 2 and len(analysis.cells) >= 2:
        kept = [0, 1]
    groups = list(added.groups)
    for _ in range(4):
        chosen = rng.sample(groups, 2)
        cells = [
            _merge(analysis.cells[i], g, run_components, analysis) for i in kept for g in chosen
        ]
        template = _crossed(analysis, kept, chosen, added, cells, run_components, tools)
        if template is not None and tools.valid(template, run):
            return template
    return None


def _merge(cell: Cell, group: str, run_components: Sequence[Attribute], analysis: Analysis) -> Cell:
    by_attr = dict(zip((a.id for a in analysis.components), cell, strict=True))
    return tuple(by_attr.get(a.id, group) for a in run_components)


def _has_fixed_gender_words(analysis: Analysis, tools: Tools) -> bool:
    """Whether the wording shared by all variants already implies a gender ("his", "boy")."""
    gender = tools.corpora.attributes.get(GENDER)
    if gender is None:
        return False
    literal = re.sub(r"\{\{.*?\}\}", " ", analysis.template, flags=re.DOTALL)
    return text_gender(analysis.template) is not None or bool(gender.match(literal))


def _crossed(
    analysis: Analysis,
    kept: list[int],
    chosen: list[str],
    added: Attribute,
    cells: list[Cell],
    run_components: Sequence[Attribute],
    tools: Tools,
) -> str | None:
    lex = tools.lexicon
    names: list[str] | None = None
    edits = []
    for info in analysis.slots:
        context = _position(analysis.template, info.slot)
        options: list[str] = []
        for i in kept:
            for group in chosen:
                cell = _merge(analysis.cells[i], group, run_components, analysis)
                option = info.slot.options[i]
                if info.kind is FormKind.PRONOUN:
                    neutral = _neutral_pronoun(info, analysis, tools)
                    if neutral is None:
                        return None
                    options.append(neutral)
                elif info.kind is FormKind.NAME:
                    names = names or lex.names(cells, run_components, tools.rng)
                    if names is None:
                        return None
                    options.append(names[cells.index(cell)])
                elif info.kind is FormKind.SURFACE_FORM:
                    options.append(_cross_word(option, added, group, tools, context))
                else:
                    return None
        if info.kind is FormKind.PRONOUN:
            # Pronouns name no group of the added attribute, so they cannot stay
            # placeholders in an intersection; a singular "they" takes their place.
            edits.append((info.slot.start, info.slot.end, options[0]))
        else:
            edits.append((info.slot.start, info.slot.end, render_slot(options)))
    return edit(analysis.template, edits)


def _neutral_pronoun(info: SlotInfo, analysis: Analysis, tools: Tools) -> str | None:
    role = _role_of(info.slot.options[0], tools) or "subject"
    pronoun = NEUTRAL_PRONOUNS[role]
    if role == "subject" and not they_fits(analysis.template, info.slot.end):
        return None
    return capitalize(pronoun) if at_sentence_start(analysis.template, info.slot.start) else pronoun


def _role_of(pronoun: str, tools: Tools) -> str | None:
    gender = tools.corpora.attributes.get(GENDER)
    if gender is None:
        return None
    for role in _ROLES:
        for group in gender.groups.values():
            if group.pronouns and getattr(group.pronouns, role) == pronoun.lower():
                return role
    return None


def _position(template: str, slot: Slot) -> str:
    """How the slot sits in its sentence: before a noun, after "I'm", or on its own."""
    if _PREDICATE_POSITION.search(template[: slot.start]):
        return "predicate"
    return "attributive" if head_after(template, slot.end, len(template)) else "noun"


def _cross_word(option: str, added: Attribute, group: str, tools: Tools, position: str) -> str:
    """``option`` with a word for ``group`` of ``added`` put in ("a man" -> "a Black man")."""
    lex = tools.lexicon
    if added.id == GENDER:
        noun = lex.noun((group,), [added])
        if re.search(r"\b(?:person|people)$", option):
            return re.sub(r"\b(?:person|people)$", noun, option)
        if position == "attributive":
            return f"{option} {lex.adjective(added.id, group)}"
        if position == "predicate" and not re.match(r"(an?|the)\s", option, re.IGNORECASE):
            return f"{article_for(option)} {option} {noun}"
        return f"{option} {noun}"
    adjective = lex.adjective(added.id, group)
    article = re.match(r"(an?|the)\s+", option, re.IGNORECASE)
    if article:
        return option[: article.end()] + adjective + " " + option[article.end() :]
    if option[:1].isupper() and not adjective[:1].isupper():
        return capitalize(adjective) + " " + option[:1].lower() + option[1:]
    return f"{adjective} {option}"
