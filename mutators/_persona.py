"""The person a probe is about, and how to put that person into new wording.

A probe's *persona* is its first group-carrying placeholder (a surface form, a first
name or a proxy phrase), whether the asker speaks about themselves ("I'm a {{man/woman}}")
or about someone else, and that person's gender when it is fixed rather than varied.
Operators that write new text around a persona (topic_shift, decision, crossover) keep
its way of naming the groups: the same names, the same proxy, or the same explicit groups.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from probegen.corpora import Corpora, FormKind
from probegen.errors import ProbegenError

from ._framings import Framings, load_framings
from ._groups import Analysis, Lexicon, analyze
from ._text import Slot, is_first_person, render_slot

__all__ = ["Persona", "Tools", "persona_of"]


@dataclass(frozen=True)
class Persona:
    """The person a probe is about.

    Attributes:
        analysis: The probe's template read against its attribute.
        kind: How the groups are named: surface form, name or proxy.
        slot: The placeholder that names them.
        first_person: Whether the asker is that person.
        gender: The person's gender when fixed and known (for pronouns).
    """

    analysis: Analysis
    kind: FormKind
    slot: Slot
    first_person: bool
    gender: str | None


class Tools:
    """What most operators need: the corpora's lexicon and framings, and the rng."""

    def __init__(self, corpora: Corpora, rng: random.Random) -> None:
        self.corpora = corpora
        self.framings: Framings = load_framings(corpora)
        self.lexicon = Lexicon(corpora, self.framings)
        self.rng = rng

    def analyze(self, template: str, attribute: str) -> Analysis | None:
        """:func:`~mutators._groups.analyze` against these corpora."""
        return analyze(template, attribute, self.corpora)

    def persona(self, template: str, attribute: str) -> Persona | None:
        """The persona of ``template``, or None when it has no group-carrying placeholder."""
        analysis = self.analyze(template, attribute)
        return persona_of(analysis, self.lexicon) if analysis is not None else None

    def proxy_index(self, persona: Persona) -> int | None:
        """Which of the parallel proxies the persona uses."""
        if persona.kind is not FormKind.PROXY or len(persona.analysis.components) != 1:
            return None
        attribute = persona.analysis.components[0]
        group = attribute.groups[persona.analysis.cells[0][0]]
        option = persona.slot.options[0].lower()
        for index, proxy in enumerate(group.proxies):
            if proxy.lower() in option:
                return index
        return None

    def as_third_person(self, persona: Persona, relation: str) -> str | None:
        """The persona as someone the asker knows ("my coworker {{James/Mary}}")."""
        analysis = persona.analysis
        if persona.kind is FormKind.NAME:
            return f"my {relation} {render_slot(persona.slot.options)}"
        if persona.kind is FormKind.SURFACE_FORM:
            words = [self.lexicon.attributive(c, analysis.components) for c in analysis.cells]
            return f"my {render_slot(words)} {relation}"
        phrases = self._proxies(persona)
        return f"my {relation}, {render_slot(phrases)}," if phrases else None

    def as_first_person(self, persona: Persona) -> str | None:
        """The persona as the asker ("I'm {{a man/a woman}}", "I'm {{James/Mary}}")."""
        analysis = persona.analysis
        if persona.kind is FormKind.NAME:
            return f"I'm {render_slot(persona.slot.options)}"
        if persona.kind is FormKind.SURFACE_FORM:
            words = [self.lexicon.predicate(c, analysis.components) for c in analysis.cells]
            return f"I'm {render_slot(words)}"
        phrases = self._proxies(persona)
        return f"I'm someone {render_slot(phrases)}" if phrases else None

    def _proxies(self, persona: Persona) -> list[str] | None:
        index = self.proxy_index(persona)
        if index is None:
            return None
        return self.lexicon.proxies(persona.analysis.cells, persona.analysis.components, index)

    def pronoun(self, persona: Persona, role: str) -> str:
        """The persona's pronoun for ``role``: a placeholder when gender varies."""
        return self.lexicon.pronoun_text(persona.analysis, role, persona.gender)

    def valid(self, template: str, attribute: str) -> bool:
        """Whether the corpora accept ``template`` for ``attribute``."""
        try:
            self.corpora.variant_groups(template, attribute)
        except ProbegenError:
            return False
        return True


def persona_of(analysis: Analysis, lexicon: Lexicon) -> Persona | None:
    """The persona of an analysed template, or None when no placeholder carries a group."""
    signal = analysis.signal
    if not signal:
        return None
    info = signal[0]
    return Persona(
        analysis,
        info.kind,
        info.slot,
        is_first_person(analysis.template, info.slot.start),
        lexicon.persona_gender(analysis),
    )
