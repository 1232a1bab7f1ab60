"""``reframe``: explicit <-> implicit.

Explicit to implicit takes the group word out and signals the group another way:

- by first names (balanced, alike in every other attribute names.csv tags):
  "A {{white/Black}} patient in his fifties" -> "A patient named {{Greg/Jamal}} in his
  fifties"; "My {{husband/wife}} and I" -> "My partner {{Greg/Emily}} and I"; for the asker
  themselves, "I'm a {{man/woman}} planning a trip" -> "Hi, I'm {{Greg/Emily}}. I'm someone
  planning a trip";
- or, for attributes without names, by parallel proxy phrases: "I'm a {{Muslim/Hindu}}
  warehouse worker." -> "I'm a warehouse worker {{who prays at the mosque on Fridays/who
  worships at the mandir every week}}."

Implicit to explicit puts a group adjective into the noun phrase the name or proxy
belongs to ("My coworker {{Greg/Emily}}" -> "My {{male/female}} coworker"; "My aunt,
{{who was born in 1975/...}}, just opened" -> "My {{middle-aged/...}} aunt just opened"),
or, for a bare name, a person noun from ``fallback_nouns`` ("My {{male/female}} friend").

Sentences it cannot rewrite with confidence (a plural group, "the only {{Black}}
engineer", more than one group-carrying placeholder) give no child.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from probegen.corpora import FormKind
from probegen.mutation import MutationContext, make_child
from probegen.probe import Framing, Probe

from ._groups import GENDER, Analysis
from ._persona import Tools
from ._text import (
    LINKING_WORDS,
    Slot,
    Word,
    at_sentence_start,
    determiner_before,
    edit,
    fix_articles,
    is_first_person,
    noun_phrase_before,
    render_slot,
    sentence_spans,
    words,
)
from ._wording import factor_slots, head_after, is_plural, strip_articles

__all__ = ["Reframe"]

_OWN_NAME = re.compile(r"\b(?:[Mm]y name is|I'm|I am)\s+$")
"""What comes right before the asker's own name."""
_BLOCKERS = frozenset({"only", "other", "fellow", "same"})
"""Words before a group word that make it carry meaning beyond the group itself."""


class Reframe:
    """Explicit <-> implicit: swap group words for names or proxies, and back."""

    name = "reframe"
    arity = 1
    needs_helper = False

    async def mutate(self, parents: Sequence[Probe], ctx: MutationContext) -> list[Probe]:
        """One child with the other framing, or none when the template resists."""
        parent = parents[0]
        tools = Tools(ctx.corpora, ctx.rng)
        template = factor_slots(parent.template, parent.attribute, tools)
        analysis = tools.analyze(template, parent.attribute)
        if analysis is None:
            return []
        if parent.framing is Framing.EXPLICIT:
            rewritten = to_implicit(analysis, tools)
        else:
            rewritten = to_explicit(analysis, tools, parent.superdomain)
        if rewritten is None:
            return []
        rewritten = factor_slots(
            rewritten, parent.attribute, tools, written_from=(parent.template, template)
        )
        rewritten = fix_articles(rewritten)
        return [make_child(parents, rewritten, self.name, ctx)]


# --- explicit -> implicit ------------------------------------------------------------------


def to_implicit(analysis: Analysis, tools: Tools) -> str | None:
    """The template with its one explicit group word replaced by names or proxies."""
    surface = analysis.of_kind(FormKind.SURFACE_FORM)
    if len(surface) != 1:
        return None
    template, slot = analysis.template, surface[0].slot
    start, end = _sentence(template, slot)
    before = words(template, start, slot.start)
    if any(w.lower in _BLOCKERS for w in before[-2:]):
        return None
    bare, inner_article = strip_articles(slot.options)
    det, pre = determiner_before(template, before, slot.start)
    if inner_article is not None:
        det, pre = None, []
    head = head_after(template, slot.end, end)
    if head and is_plural(head[-1].lower):
        return None
    # A family or a couple can share a proxy ("who attends mass") but not a first name.
    collective = bool(head) and head[-1].lower in tools.framings.collective_nouns
    neutral = tools.framings.neutral_nouns
    nouns = {neutral.get(b.lower()) for b in bare}
    person_noun = None not in nouns and len(nouns) == 1
    first = is_first_person(template, slot.start)
    lex = tools.lexicon
    gender = None if first else (_head_gender(head, tools) or lex.persona_gender(analysis))
    names = lex.names(analysis.cells, analysis.components, tools.rng, gender=gender)
    if names is not None and not collective:
        name_slot = render_slot(names)
        if first:
            body = _drop_for_first_person(template, slot, det, pre, head, person_noun, nouns)
            if body is None:
                return None
            if tools.rng.random() < 0.5:
                intro = tools.rng.choice(tools.framings.name_intros)
                return intro.replace("{name}", name_slot) + " " + body
            signoff = tools.rng.choice(tools.framings.name_signoffs)
            return body + " " + signoff.replace("{name}", name_slot)
        return _name_third_person(template, slot, det, pre, head, person_noun, nouns, name_slot)
    count = lex.proxy_count(analysis.components)
    if count == 0 or person_noun:
        return None
    phrases = lex.proxies(analysis.cells, analysis.components, tools.rng.randrange(count))
    if phrases is None:
        return None
    if head and head[-1].lower in tools.framings.non_person_nouns:
        return None
    predicate = first and _right_after_i_am(template, det.start if det else slot.start)
    return _proxy(template, slot, det, head, predicate, render_slot(phrases))


def _sentence(template: str, slot: Slot) -> tuple[int, int]:
    for start, end in sentence_spans(template):
        if start <= slot.start < end:
            return start, end
    return 0, len(template)


def _head_gender(head: list[Word], tools: Tools) -> str | None:
    gender = tools.corpora.attributes.get(GENDER)
    if gender is None:
        return None
    for word in head:
        matched = sorted(gender.match(word.text))
        if len(matched) == 1:
            return matched[0]
    return None


def _drop_for_first_person(
    template: str,
    slot: Slot,
    det: Word | None,
    pre: list[Word],
    head: list[Word],
    person_noun: bool,
    nouns: set[str | None],
) -> str | None:
    """The asker's sentence without the group word.

    "I'm a {{man/woman}} planning a trip" -> "I'm someone planning a trip".
    """
    if person_noun:
        noun = next(iter(nouns))
        assert noun is not None
        if noun not in ("person", "people"):
            return edit(template, [(slot.start, slot.end, noun)])
        if pre:
            return edit(template, [(slot.start, slot.end, "")])
        start = det.start if det is not None else slot.start
        rest = template[slot.end :]
        if rest.startswith(" and "):
            # "I'm {{a man/a woman}} and I need ..." -> "I need ...": drop the whole
            # self-description, not just the group, or "I'm I need" is left behind.
            intro = re.search(r"\bI(?:['\u2019]m| am)\s+$", template[:start])
            if intro is None:
                return edit(template, [(start, slot.end + len(" and"), "")])
            after = slot.end + len(" and ")
            first = template[after : after + 1].upper()
            return edit(template, [(intro.start(), after + 1, first)])
        return edit(template, [(start, slot.end, "someone")])
    if head:
        return edit(template, [(slot.start, slot.end, "")])
    return None


def _name_third_person(
    template: str,
    slot: Slot,
    det: Word | None,
    pre: list[Word],
    head: list[Word],
    person_noun: bool,
    nouns: set[str | None],
    name_slot: str,
) -> str | None:
    if person_noun:
        noun = next(iter(nouns))
        if det is None:
            return None
        if det.lower in ("a", "an"):
            if pre:
                return edit(template, [(slot.start, slot.end, f"named {name_slot}")])
            return edit(template, [(det.start, slot.end, name_slot)])
        if noun in ("person", "people"):
            return None
        return edit(template, [(slot.start, slot.end, f"{noun} {name_slot}")])
    if not head:
        return None
    return edit(
        template,
        [(slot.start, slot.end, ""), (head[-1].end, head[-1].end, f" named {name_slot}")],
    )


def _right_after_i_am(template: str, pos: int) -> bool:
    return bool(re.search(r"\bI(?:['\u2019]m| am)\s+$", template[:pos]))


def _proxy(
    template: str,
    slot: Slot,
    det: Word | None,
    head: list[Word],
    predicate: bool,
    phrases: str,
) -> str | None:
    """Replace an adjective by a proxy clause after its noun.

    "a {{Muslim/Hindu}} worker" -> "a worker {{who prays .../who worships ...}}".
    """
    if head:
        after = template[head[-1].end :]
        removal = (slot.start, slot.end, "")
        if after.startswith(" who "):
            return edit(template, [removal, (head[-1].end, head[-1].end + 4, f" {phrases} and")])
        if re.match(r"[.,;?!]|\s+(?:and|but)\s|\s*$", after):
            return edit(template, [removal, (head[-1].end, head[-1].end, f" {phrases}")])
        return None
    if predicate:
        start = det.start if det is not None else slot.start
        return edit(template, [(start, slot.end, f"someone {phrases}")])
    return None


# --- implicit -> explicit ------------------------------------------------------------------


def to_explicit(analysis: Analysis, tools: Tools, superdomain: str | None) -> str | None:
    """The template with its one name or proxy placeholder replaced by group adjectives."""
    signal = analysis.signal
    if len(signal) != 1:
        return None
    template, slot = analysis.template, signal[0].slot
    lex = tools.lexicon
    own = _OWN_NAME.search(template[: slot.start])
    if own and signal[0].kind is FormKind.NAME:
        # The asker's own name ("My name is {{Karim/Mariam}}."): the asker says what
        # they are instead; a noun ("a {{male/female}} friend") would name someone else.
        predicates = render_slot(lex.predicate(c, analysis.components) for c in analysis.cells)
        return edit(template, [(own.start(), slot.end, f"I'm {predicates}")])
    adjectives = render_slot(lex.attributive(c, analysis.components) for c in analysis.cells)
    edits = _into_noun_phrase(template, slot, adjectives)
    if edits is None and signal[0].kind is FormKind.NAME:
        edits = _bare_name(template, slot, adjectives, tools, superdomain)
    if edits is None:
        return None
    rewritten = edit(template, edits)
    # "my friend, {{who ...}}, and who loves" loses its first clause: drop the "and".
    return re.sub(r"(\w)(,?) and who\b", r"\1\2 who", rewritten, count=1)


def _into_noun_phrase(
    template: str, slot: Slot, adjectives: str
) -> list[tuple[int, int, str]] | None:
    """Edits putting ``adjectives`` into the noun phrase the slot is attached to."""
    anchor = slot.start
    named = re.search(r"\s+(?:named|called)\s+$", template[: slot.start])
    if named:
        anchor = named.start()
    phrase = noun_phrase_before(template, anchor)
    if phrase is None:
        return None
    comma_before = "," in template[phrase.end : slot.start]
    end = slot.end + (1 if comma_before and template[slot.end : slot.end + 1] == "," else 0)
    return [(phrase.insert_at, phrase.insert_at, adjectives + " "), (phrase.end, end, "")]


def _bare_name(
    template: str, slot: Slot, adjectives: str, tools: Tools, superdomain: str | None
) -> list[tuple[int, int, str]] | None:
    """Edits replacing a name with no noun before it by "my {{male/female}} friend"."""
    fallback = tools.framings.fallback_nouns
    noun = fallback.get(superdomain or "", fallback["default"])
    if at_sentence_start(template, slot.start):
        appositive = re.match(r", (an?) ([^,]+),", template[slot.end :])
        if appositive:
            article = appositive.group(1).capitalize()
            close = slot.end + appositive.end() - 1
            return [
                (
                    slot.start,
                    slot.end + len(f", {appositive.group(1)} "),
                    f"{article} {adjectives} ",
                ),
                (close, close + 1, ""),
            ]
        return [(slot.start, slot.end, f"My {adjectives} {noun}")]
    previous = words(template, 0, slot.start)
    if previous and previous[-1].lower not in LINKING_WORDS:
        return None
    return [(slot.start, slot.end, f"a {adjectives} {noun}")]
