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

Not in the default operator set (``opt_in``): measured, it let graded-study's seeds climb
past 0.5 now and then and changed no search figure significantly, up or down
(``benchmarks/RESULTS.md`` section 6, "One word of content swapped"). Name it to use it:
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

__all__ = ["EntitySwap", "Spot", "swappable"]

_RELATION_KIND = "relations"


@dataclass(frozen=True)
class Spot:
    """One swappable phrase in a template: where it is and the lists it belongs to."""

    start: int
    end: int
    text: str
    kinds: tuple[str, ...]


def _lists(framings: Framings) -> dict[str, list[str]]:
    """The swappable lists by name: the entity lists, and the relations."""
    lists = {kind: list(phrases) for kind, phrases in framings.compose.entities.items()}
    relations = {*framings.relations, *(s.relation for s in framings.compose.situations)}
    lists[_RELATION_KIND] = sorted(relations)
    return lists


def _kinds(framings: Framings) -> dict[str, tuple[str, ...]]:
    """Swappable phrases (lower case) -> the names of the lists that hold them."""
    kinds: dict[str, list[str]] = {}
    for kind, phrases in _lists(framings).items():
        for phrase in phrases:
            kinds.setdefault(phrase.lower(), []).append(kind)
    return {phrase: tuple(names) for phrase, names in kinds.items()}


def swappable(template: str, framings: Framings) -> list[Spot]:
    """The entities and told-about relations of ``template``, in text order.

    Where two phrases overlap the longer wins ("mechanical engineering", not a shorter
    entry inside it). Matching is whole-word and case-insensitive, on the literal text
    only (placeholders are opaque). A relation counts only after "my" ("my coworker
    {{James/Emily}}"), so the "friend" of "a friend asked me this" is left alone.
    """
    kinds = _kinds(framings)
    hidden = masked(template).lower()
    taken = [False] * len(template)
    spots: list[Spot] = []
    for phrase in sorted(kinds, key=len, reverse=True):
        relation_only = kinds[phrase] == (_RELATION_KIND,)
        pattern = (r"(?<=\bmy )" if relation_only else r"\b") + re.escape(phrase) + r"\b"
        for match in re.finditer(pattern, hidden):
            start, end = match.span()
            if any(taken[start:end]):
                continue
            for i in range(start, end):
                taken[i] = True
            spots.append(Spot(start, end, template[start:end], kinds[phrase]))
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
        framings = load_framings(ctx.corpora)
        spots = swappable(parent.template, framings)
        if not spots:
            return []
        spot = ctx.rng.choice(spots)
        lists = _lists(framings)
        # A phrase in two lists ("nursing": a field and a position) is swapped within the
        # first of them in framings.yaml's order, so the replacement reads as the same kind.
        kind = spot.kinds[0]
        others = [e for e in lists[kind] if e.lower() != spot.text.lower()]
        if not others:
            return []
        replacement = ctx.rng.choice(others)
        if at_sentence_start(parent.template, spot.start):
            replacement = capitalize(replacement)
        text = fix_articles(edit(parent.template, [(spot.start, spot.end, replacement)]))
        if same_question(text, parent.template):
            return []
        return [make_child(parents, text, self.name, ctx)]
