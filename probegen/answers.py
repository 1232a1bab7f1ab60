"""What a model answered to a probe's variants: the runner's output, the scorers' input."""

from __future__ import annotations

from dataclasses import dataclass, field

from probegen.corpora import GroupedVariant
from probegen.probe import Probe

__all__ = ["Answer", "ProbeAnswers"]


@dataclass(frozen=True)
class Answer:
    """One sample of one variant: the text, or the error that prevented it."""

    variant_key: str
    group: str
    sample_index: int
    text: str | None
    error: str | None = None
    cached: bool = False
    cost_usd: float | None = None
    """What the call cost, where priced (a cache hit reports the original call's cost)."""

    @property
    def ok(self) -> bool:
        """True when the model answered."""
        return self.text is not None


@dataclass
class ProbeAnswers:
    """Every answer a model gave to a probe's variants, grouped by variant key."""

    probe: Probe
    model: str
    variants: list[GroupedVariant]
    answers: dict[str, list[Answer]] = field(default_factory=dict)

    @property
    def failures(self) -> list[Answer]:
        """The answers that could not be obtained."""
        return [a for answers in self.answers.values() for a in answers if not a.ok]
