"""What a template's placeholders say about each variant, and how to say it another way.

:func:`analyze` reads a template against an attribute: the group *cell* of each variant
(one group id per component attribute, so ``("woman", "black")`` for gender+race) and
how each placeholder names it (surface form, pronoun, first name or proxy phrase).

:class:`Lexicon` renders cells as words, from the corpora and ``framings.yaml``:
adjectives ("female"), predicates ("a woman"), person nouns, pronouns, balanced first
names and parallel proxy phrases. Every renderer returns None rather than guess when a
group cannot be said that way (no first name is an honest proxy for "non-binary").
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

from probegen.corpora import Attribute, Corpora, FormKind
from probegen.errors import ProbegenError

from ._framings import Framings
from ._text import Slot, article_for, masked, render_slot, slots, words

__all__ = [
    "GENDER",
    "NEUTRAL_PRONOUNS",
    "Analysis",
    "Cell",
    "Lexicon",
    "SlotInfo",
    "analyze",
    "text_gender",
]

GENDER = "gender"
Cell = tuple[str, ...]
"""A variant's groups, one per component attribute, in the order of the attribute spec."""

_KIND_ORDER = (FormKind.SURFACE_FORM, FormKind.NAME, FormKind.PROXY, FormKind.PRONOUN)
_GENDER_WORDS = {
    "he": "man", "him": "man", "his": "man", "himself": "man",
    "she": "woman", "her": "woman", "hers": "woman", "herself": "woman",
}  # fmt: skip


@dataclass(frozen=True)
class SlotInfo:
    """A placeholder and how its options name their groups.

    Attributes:
        slot: The placeholder.
        kind: The strongest kind among its options (surface form > name > proxy > pronoun).
    """

    slot: Slot
    kind: FormKind


@dataclass(frozen=True)
class Analysis:
    """A template read against an attribute.

    Attributes:
        template: The template.
        attribute: The canonical attribute spec.
        components: The component attributes, in spec order.
        cells: The group cell of each variant, in option order.
        slots: Every placeholder with its kind.
    """

    template: str
    attribute: str
    components: tuple[Attribute, ...]
    cells: tuple[Cell, ...]
    slots: tuple[SlotInfo, ...]

    def of_kind(self, *kinds: FormKind) -> list[SlotInfo]:
        """The placeholders of the given kinds, in template order."""
        return [info for info in self.slots if info.kind in kinds]

    @property
    def signal(self) -> list[SlotInfo]:
        """The placeholders that carry the group themselves (everything but pronouns)."""
        return self.of_kind(FormKind.SURFACE_FORM, FormKind.NAME, FormKind.PROXY)

    def component_index(self, attr_id: str) -> int | None:
        """Where ``attr_id`` sits in the cells, or None when it is not a component."""
        ids = [a.id for a in self.components]
        return ids.index(attr_id) if attr_id in ids else None


def analyze(template: str, attribute: str, corpora: Corpora) -> Analysis | None:
    """Read ``template`` against ``attribute``; None when the corpora reject it."""
    try:
        spec = corpora.spec(attribute)
        grouped = corpora.variant_groups(template, spec)
        components = tuple(corpora.components(spec))
        found = slots(template)
    except ProbegenError:
        return None
    infos = []
    for slot in found:
        kinds: set[FormKind] = set()
        for option in slot.options:
            for component in components:
                for matched in component.match_kinds(option).values():
                    kinds |= matched
        kind = next((k for k in _KIND_ORDER if k in kinds), FormKind.SURFACE_FORM)
        infos.append(SlotInfo(slot, kind))
    cells = tuple(tuple(v.group.split("+")) for v in grouped)
    return Analysis(template, spec, components, cells, tuple(infos))


def text_gender(template: str, after: int = 0) -> str | None:
    """The gender of the first gendered pronoun in the literal text after ``after``."""
    for match in re.finditer(r"[A-Za-z]+", masked(template)[after:]):
        gender = _GENDER_WORDS.get(match.group(0).lower())
        if gender is not None:
            return gender
    return None


class Lexicon:
    """Renders group cells as words, from the corpora and ``framings.yaml``."""

    def __init__(self, corpora: Corpora, framings: Framings) -> None:
        self.corpora = corpora
        self.framings = framings

    def adjective(self, attr_id: str, group_id: str) -> str:
        """A word for the group before a noun ("female", "Muslim")."""
        override = self.framings.adjectives.get(attr_id, {}).get(group_id)
        if override:
            return override
        return self.corpora.attributes[attr_id].groups[group_id].surface_forms[0]

    def attributive(self, cell: Cell, components: Sequence[Attribute]) -> str:
        """Adjectives for every component, gender last ("Black female")."""
        ordered = sorted(zip(components, cell, strict=True), key=lambda p: p[0].id == GENDER)
        return " ".join(self.adjective(a.id, g) for a, g in ordered)

    def noun(self, cell: Cell, components: Sequence[Attribute]) -> str:
        """One person of the cell, without an article ("woman", "Black woman")."""
        pairs = list(zip(components, cell, strict=True))
        gender = next((g for a, g in pairs if a.id == GENDER), None)
        others = [(a, g) for a, g in pairs if a.id != GENDER]
        if len(pairs) == 1:
            attr, group = pairs[0]
            own = self.framings.nouns.get(attr.id, {}).get(group)
            return own or f"{self.adjective(attr.id, group)} person"
        head = (
            self.framings.nouns.get(GENDER, {}).get(gender, "person")
            if gender is not None
            else "person"
        )
        return " ".join([*(self.adjective(a.id, g) for a, g in others), head])

    def predicate(self, cell: Cell, components: Sequence[Attribute]) -> str:
        """What follows "I'm" ("a woman", "Muslim", "in my twenties", "a Black woman")."""
        if len(components) == 1:
            attr, group = components[0], cell[0]
            own = self.framings.predicates.get(attr.id, {}).get(group)
            return own or self.adjective(attr.id, group)
        noun = self.noun(cell, components)
        return f"{article_for(noun)} {noun}"

    def pronoun(self, cell: Cell, components: Sequence[Attribute], role: str) -> str | None:
        """The cell's pronoun for ``role`` (subject, object, possessive, reflexive)."""
        for attr, group_id in zip(components, cell, strict=True):
            pronouns = attr.groups[group_id].pronouns
            if pronouns is not None:
                return str(getattr(pronouns, role))
        return None

    @cached_property
    def name_tags(self) -> dict[str, dict[str, str]]:
        """Every first name with the group it signals in each attribute."""
        tags: dict[str, dict[str, str]] = {}
        for attr in self.corpora.attributes.values():
            for group in attr.groups.values():
                for name in group.names:
                    tags.setdefault(name, {})[attr.id] = group.id
        return tags

    def names(
        self,
        cells: Sequence[Cell],
        components: Sequence[Attribute],
        rng: random.Random,
        *,
        gender: str | None = None,
        keep: dict[Cell, str] | None = None,
    ) -> list[str] | None:
        """One first name per cell, alike in everything but the cell's groups.

        Names of the other attributes names.csv tags (race for a gender probe, gender
        for a race probe) are held equal across the cells, so only the probe's
        attribute varies.

        Args:
            cells: The cells to name.
            components: The probe's component attributes.
            rng: Source of randomness.
            gender: For a probe without a gender component, the gender every name must
                have (e.g. to agree with a "his" in the text).
            keep: Names to reuse for some cells; the others are matched to them.

        Returns:
            The names, or None when some cell has no name that fits.
        """
        ids = [a.id for a in components]
        keep = keep or {}
        fixed: dict[str, str | None] = {}
        if gender is not None and GENDER not in ids:
            fixed[GENDER] = gender
        others = sorted({a for tags in self.name_tags.values() for a in tags} - set(ids))
        kept = [self.name_tags.get(name, {}) for name in keep.values()]
        for attr in others:
            values = {tags.get(attr) for tags in kept}
            if len(values) == 1:
                fixed.setdefault(attr, values.pop())
        by_cell: list[list[str]] = []
        for cell in cells:
            if cell in keep:
                by_cell.append([keep[cell]])
                continue
            fits = [
                name
                for name, tags in self.name_tags.items()
                if all(tags.get(a) == g for a, g in zip(ids, cell, strict=True))
            ]
            by_cell.append(fits)
        signatures = [
            sig
            for sig in dict.fromkeys(self._signature(n, others) for n in by_cell[0])
            if all(any(self._signature(n, others) == sig for n in fits) for fits in by_cell[1:])
            and all(dict(sig).get(a) == v for a, v in fixed.items())
        ]
        if not signatures:
            return None
        chosen = rng.choice(signatures)
        picked = []
        for cell, fits in zip(cells, by_cell, strict=True):
            matching = [n for n in fits if self._signature(n, others) == chosen]
            picked.append(matching[0] if cell in keep else rng.choice(matching))
        return picked

    def _signature(self, name: str, others: Sequence[str]) -> tuple[tuple[str, str | None], ...]:
        tags = self.name_tags.get(name, {})
        return tuple((attr, tags.get(attr)) for attr in others)

    def proxies(
        self, cells: Sequence[Cell], components: Sequence[Attribute], index: int
    ) -> list[str] | None:
        """The ``index``-th proxy phrase of each cell (proxies are parallel by index)."""
        if len(components) != 1:
            return None
        attr = components[0]
        phrases = []
        for cell in cells:
            proxies = attr.groups[cell[0]].proxies
            if index >= len(proxies):
                return None
            phrases.append(proxies[index])
        return phrases

    def proxy_count(self, components: Sequence[Attribute]) -> int:
        """How many parallel proxies every group of a single attribute has."""
        if len(components) != 1:
            return 0
        return min(len(g.proxies) for g in components[0].groups.values())

    def pronoun_text(self, analysis: Analysis, role: str, gender: str | None) -> str:
        """A pronoun for the probe's persona: a placeholder when gender varies.

        Args:
            analysis: The probe.
            role: subject, object, possessive or reflexive.
            gender: The persona's fixed gender when gender does not vary, if known.
        """
        if analysis.component_index(GENDER) is not None:
            if len(analysis.components) > 1:
                # A placeholder option must name a group of every component, and a
                # pronoun names no race: intersections fall back to singular "they".
                return NEUTRAL_PRONOUNS[role]
            return render_slot(
                self.pronoun(c, analysis.components, role) or NEUTRAL_PRONOUNS[role]
                for c in analysis.cells
            )
        if gender is not None:
            pronouns = self.corpora.attributes[GENDER].groups[gender].pronouns
            if pronouns is not None:
                return str(getattr(pronouns, role))
        return NEUTRAL_PRONOUNS[role]

    def persona_gender(self, analysis: Analysis) -> str | None:
        """The persona's gender when it is fixed (not varied) and can be told, else None.

        Told by the names (a race probe's names share one gender) or by the first
        gendered pronoun after the persona is introduced.
        """
        if analysis.component_index(GENDER) is not None:
            return None
        for info in analysis.of_kind(FormKind.NAME):
            genders = {self.name_tags.get(o, {}).get(GENDER) for o in info.slot.options}
            if len(genders) == 1:
                return genders.pop()
        signal = analysis.signal
        if not signal:
            return text_gender(analysis.template)
        near = self._nearby_gender(analysis.template, signal[0].slot)
        return near or text_gender(analysis.template, signal[0].slot.end)

    def _nearby_gender(self, template: str, slot: Slot) -> str | None:
        """A gendered noun right around the slot ("my {{deaf}} daughter", "a boy {{who}}")."""
        gender = self.corpora.attributes.get(GENDER)
        if gender is None:
            return None
        before = words(template, max(0, slot.start - 40), slot.start)[-3:]
        after = words(template, slot.end, slot.end + 25)[:2]
        nearest = [*after[:1], *reversed(before), *after[1:]]
        for word in nearest:
            kinds = gender.match_kinds(word.text)
            found = [g for g, k in kinds.items() if FormKind.SURFACE_FORM in k]
            if len(found) == 1:
                return found[0]
        return None


NEUTRAL_PRONOUNS = {"subject": "they", "object": "them", "possessive": "their",
                    "reflexive": "themselves"}  # fmt: skip
"""English's gender-neutral pronouns, for a persona whose gender is unknown."""
