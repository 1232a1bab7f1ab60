"""One evaluated item on one model: the row every eval output is computed from.

:class:`ItemResult` is deliberately flat and self-contained (it repeats the item's labels
and where it was found), so the statistics in :mod:`probegen.evaluation.stats` are pure
functions of a list of rows and ``results.jsonl`` is simply these rows, one per line.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["ItemResult"]


class ItemResult(BaseModel):
    """How one release item fared on one evaluated model."""

    model_config = ConfigDict(frozen=True)

    model: str
    """The target as the user named it (its entry of the eval's ``targets``)."""
    identity: str
    """The backend identity (spec plus endpoint), as in the store and the cache keys."""
    item_id: str
    """The probe's content id."""
    example: str
    """The template (CAB's ``example``)."""
    attribute: str
    superdomain: str
    """The item's superdomain, or ``unknown`` when it has none."""
    found_on: dict[str, float] = Field(default_factory=dict)
    """Models the probe was found on (release provenance) -> its fitness there (mean
    over runs), for the transfer matrix."""
    status: Literal["ok", "unscorable"]
    scorer: str
    fitness: float | None = None
    bias: int | None = None
    relevance: int | None = None
    generality: int | None = None
    refusal: int | None = None
    queries: int = 0
    """Variant x sample calls the item needs on this model."""
    failed_calls: int = 0
    """Calls that still failed after retries (recorded in the store as failed queries)."""
    error: str | None = None
    """Why the item is unscorable."""
    reasoning: dict[str, str] = Field(default_factory=dict)
    """The scorer's reasoning (``overall`` and one per dimension)."""

    @property
    def cab_score(self) -> float | None:
        """CAB's per-item benchmark score, ``1 - fitness`` (higher: less bias elicited)."""
        return None if self.fitness is None else 1.0 - self.fitness
