"""``entity_swap`` (opt-in): the same question about another thing of the same kind.

Finds the things a question is about among the corpora's named entities (``compose.entities``
in ``framings.yaml``: fields of study, programs, skills, activities, positions,
employers) and the person it is told about (``my coworker`` among ``relations`` and the
situations' relations), and swaps one of them for another of its list: "applying to PhD
programs in biology" -> "... in chemistry", "my labmate" -> "my classmate". Everything
else (the persona and its placeholders, the framing, the closing question, the labels)
stays as the parent has it.

Why: every other operator either rewrites how a question is asked or moves it to a
whole new scenario. When a search has found a question that is half way into a biased
subject, the nearest unexplored questions differ from it in one word of content; this
is the local move that reaches them, one query each, without losing what the parent
already combines.

Not in the default operator set (``opt_in``): measured on 2026-12-05, it let
graded-study's seeds climb past 0.5 now and then and changed no search figure
significantly (``benchmarks/RESULTS.md`` section 6, "One word of content swapped");
measured again on 2026-12-07 with each benchmark seed drawing its own answers, it lowered
the graded rotation's top ten (0.84x, p = 0.046) and climbed no graded-study seed
(subsection "One step up from a plateau"). Name it to use it:
``--mutators reframe,...,entity_swap``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from probegen.mutation import MutationContext, make_child, same_question
from probegen.probe import Probe

from ._framings import Framings, load_framings
from ._text import at_sentence_start, capitalize, edit, fix_articles, masked

__all__ = ["EntitySwap", "Spot", "swappable", "swappable_lists"]

_RELATION_KIND = "relations"


@dataclass(frozen=True)
class Spot:
    """One swappable phrase in a template: where it is, and the list it is swapped within."""

    start: int
    end: int
    text: str
    kind: str
    """The name of its list; a phrase in two lists ("nursing": a field and a position)
    takes the first in ``framings.yaml``'s order, so the replacement reads as the same
    kind of thing."""


def swappable_lists(framings: Framings) -> dict[str, list[str]]:
    """The lists a phrase is swapped within, by name: the entity lists, and the relations."""
    lists = {kind: list(phrases) for kind, phrases in framings.compose.entities.items()}
    relations = {*framings.relations, *(s.relation for s in framings.compose.situations)}
    lists[_RELATION_KIND] = sorted(relations)
    return lists


def swappable(template: str, lists: dict[str, list[str]]) -> list[Spot]:
    """The phrases of ``lists`` in ``template`` (see :func:`swappable_lists`), in text order.

    Where two phrases overlap the longer wins ("mechanical engineering", not a shorter
    entry inside it). Matching is whole-word and case-insensitive, on the literal text
    only (placeholders are opaque). A relation counts only after "my" ("my coworker
    {{James/Emily}}"), so the "friend" of "a friend asked me this" is left alone.
    """
    kinds: dict[str, list[str]] = {}  # lower-cased phrase -> the lists that hold it
    for kind, phrases in lists.items():
        for phrase in phrases:
            kinds.setdefault(phrase.lower(), []).append(kind)
    hidden = masked(template).lower()
    taken = [False] * len(template)
    spots: list[Spot] = []
    for phrase in sorted(kinds, key=len, reverse=True):
        relation_only = kinds[phrase] == [_RELATION_KIND]
        pattern = (r"(?<=\bmy )" if relation_only else r"\b") + re.escape(phrase) + r"\b"
        for match in re.finditer(pattern, hidden):
            start, end = match.span()
            if any(taken[start:end]):
                continue
            taken[start:end] = [True] * (end - start)
            spots.append(Spot(start, end, template[start:end], kinds[phrase][0]))
    return sorted(spots, key=lambda s: s.start)


class EntitySwap:
    """Swap one entity (or told-about relation) for another of the same list."""

    name = "entity_swap"
    arity = 1
    needs_helper = False
    opt_in = True
    """Loaded only when named (see :func:`probegen.mutation.load_mutators`)."""

    async def mutate(self, parents: Sequence[Probe], ctx: MutationContext) -> list[Probe]:
        """One child; none when the parent names nothing the corpora list."""
        parent = parents[0]
        lists = swappable_lists(load_framings(ctx.corpora))
        spots = swappable(parent.template, lists)
        if not spots:
            return []
        spot = ctx.rng.choice(spots)
        others = [e for e in lists[spot.kind] if e.lower() != spot.text.lower()]
        if not others:
            return []
        replacement = ctx.rng.choice(others)
        if at_sentence_start(parent.template, spot.start):
            replacement = capitalize(replacement)
        text = fix_articles(edit(parent.template, [(spot.start, spot.end, replacement)]))
        if same_question(text, parent.template):
            return []
        return [make_child(parents, text, self.name, ctx)]
