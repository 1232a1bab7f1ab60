"""Which items a review queue offers, in one place.

A queue (``review serve`` or ``review cli``) is started for some runs and a fitness
threshold: it offers an elite of those runs when it is a finding (a group difference
that survived the run's false-discovery control) or its best fitness reaches the
threshold (:func:`offered`). The same rule is enforced three more times, so that what
the queue shows, what it accepts and what a release counts can never drift apart:

- :func:`check_offered` refuses a decision on anything the queue would not offer (every
  decision goes through it, from :func:`~probegen.review.record_decision`);
- each decision stores its scope (threshold and served runs), and
- :func:`decision_counts` lets the release builder count a decision only for an elite
  that the scope it was made under offers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from probegen.errors import UsageError
from probegen.store import Store

if TYPE_CHECKING:
    from probegen.review.decisions import Decision

__all__ = [
    "DEFAULT_THRESHOLD",
    "ItemNotOffered",
    "ReviewScope",
    "best_fitness",
    "check_offered",
    "decision_counts",
    "is_finding",
    "offered",
]

DEFAULT_THRESHOLD = 0.25
"""The queue's default minimum fitness; also the threshold a decision recorded before
scopes existed (schema v4) is held to."""


def offered(fitness: float, threshold: float, finding: bool = False) -> bool:
    """The queue's eligibility rule: a finding, or an elite whose best fitness is at
    least ``threshold``."""
    return finding or fitness >= threshold


@dataclass(frozen=True)
class ReviewScope:
    """What one queue offers.

    Attributes:
        runs: The run ids it was started for; empty means every run with elites.
        threshold: Its minimum elite fitness.
    """

    runs: tuple[str, ...] = ()
    threshold: float = DEFAULT_THRESHOLD

    def serves(self, run_id: str) -> bool:
        """Whether ``run_id`` is one of the queue's runs."""
        return not self.runs or run_id in self.runs


class ItemNotOffered(UsageError):
    """A decision on an item the queue does not offer.

    Attributes:
        kind: ``"unknown"`` when the item is not an elite of a served run (the web app
            answers 404), ``"below-threshold"`` when it is, but its fitness is below the
            threshold (403).
    """

    def __init__(self, message: str, kind: Literal["unknown", "below-threshold"]) -> None:
        super().__init__(message)
        self.kind = kind


def best_fitness(store: Store, run_id: str, probe_id: str) -> float | None:
    """The probe's best archive fitness in ``run_id`` (over targets), or None if it is
    not an elite there (a revision made by an edit never is)."""
    values = [e.fitness for e in store.elites(run_id) if e.probe_id == probe_id]
    return max(values, default=None)


def is_finding(store: Store, run_id: str, probe_id: str) -> bool:
    """Whether the probe is a finding of ``run_id`` (on any target)."""
    return any(e.finding for e in store.elites(run_id) if e.probe_id == probe_id)


def check_offered(store: Store, scope: ReviewScope, run_id: str, probe_id: str) -> float:
    """The item's best fitness, if the queue of ``scope`` offers it.

    Raises:
        ItemNotOffered: If the run is not served, the probe is not one of its elites, or
            its fitness is below the threshold; the message starts with ``item:``.
    """
    if not scope.serves(run_id):
        raise ItemNotOffered(
            f"item: run {run_id} is not served by this review queue "
            f"(served: {', '.join(scope.runs)})",
            "unknown",
        )
    fitness = best_fitness(store, run_id, probe_id)
    if fitness is None:
        raise ItemNotOffered(f"item: {probe_id} is not an elite of run {run_id}", "unknown")
    if not offered(fitness, scope.threshold, is_finding(store, run_id, probe_id)):
        raise ItemNotOffered(
            f"item: {probe_id} has fitness {fitness:.3f}, below the review threshold "
            f"{scope.threshold:g}",
            "below-threshold",
        )
    return fitness


def decision_counts(decision: Decision, fitness: float, finding: bool = False) -> bool:
    """Whether a release may count ``decision``: the queue it was made in served its run
    and offered an elite of ``fitness`` (its item's best fitness in that run now) that
    is, or is not, a ``finding``."""
    scope = ReviewScope(
        runs=decision.served_runs or (),
        threshold=DEFAULT_THRESHOLD if decision.threshold is None else decision.threshold,
    )
    return scope.serves(decision.run_id) and offered(fitness, scope.threshold, finding)
