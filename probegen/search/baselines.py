"""Selection strategies (an evolve run's ``selection``): the search and its two baselines.

The benchmarks (``benchmarks/search_efficiency.py``) ask whether the quality-diversity
search finds more than simpler strategies at the same target-query budget. Every
strategy runs through the same scheduler, operators, validation, deduplication, runner,
scorer, confirmation and budget; only how parents and operators are picked differs:

- ``map-elites`` (the default): a :class:`~probegen.search.archive.MapElitesArchive`
  searched by emitters (improve a strong elite, reach an empty cell, combine two elites;
  :mod:`probegen.search.emitters`) chosen by a bandit paid per query, with a surrogate
  screening an over-generated pool (:mod:`probegen.search.surrogate`). With
  ``emitters=("operators",)`` and no surrogate it is the search as it was first built:
  parents weighted by fitness rank and novelty, operators chosen by the discounted-UCB
  bandit.

The baselines keep that first design (one ``operators`` emitter, no surrogate unless
``topk`` is given one), so each figure has its comparison:

- ``topk``: fitness-only selection without the diversity archive. A
  :class:`~probegen.search.archive.TopKArchive` keeps the ``per_cell x population``
  fittest probes, parents are weighted by fitness rank alone (novelty weight 0), and
  the bandit still picks operators.
- ``random``: no selection at all. :class:`UniformArchive` keeps every scored probe,
  parents are drawn uniformly from them (the seeds at first), and
  :class:`UniformOperators` picks each operator uniformly at random.
"""

from __future__ import annotations

import random
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Literal

from probegen.search.archive import (
    AddStatus,
    Archive,
    ArchiveStats,
    DescriptorSpace,
    Elite,
    MapElitesArchive,
    TopKArchive,
    compute_stats,
)
from probegen.search.bandit import OperatorBandit

__all__ = [
    "SELECTIONS",
    "Selection",
    "SelectionParts",
    "UniformArchive",
    "UniformOperators",
    "selection_parts",
]

Selection = Literal["map-elites", "topk", "random"]
SELECTIONS: tuple[Selection, ...] = ("map-elites", "topk", "random")


class UniformArchive:
    """Every scored probe, each equally likely to be a parent (the random baseline).

    A probe scored again keeps its better score. Statuses and statistics follow the
    :class:`~probegen.search.archive.Archive` contract, cells being the distinct
    descriptors of the probes kept.

    Args:
        space: Optional descriptor space, used only to report coverage.
    """

    def __init__(self, space: DescriptorSpace | None = None) -> None:
        self.space = space
        self._order: list[str] = []
        self._by_id: dict[str, Elite] = {}
        self._covered: set[tuple[str, ...]] = set()

    def __repr__(self) -> str:
        return f"UniformArchive(n={len(self)})"

    def __len__(self) -> int:
        return len(self._order)

    def __contains__(self, probe_id: object) -> bool:
        return probe_id in self._by_id

    def get(self, probe_id: str) -> Elite | None:
        """The elite of ``probe_id``, or None."""
        return self._by_id.get(probe_id)

    def add(self, elite: Elite) -> AddStatus:
        """Keep ``elite`` (a known probe only when it is strictly fitter now)."""
        previous = self._by_id.get(elite.probe_id)
        if previous is not None and elite.fitness <= previous.fitness:
            return AddStatus.NOT_ADDED
        if previous is None:
            self._order.append(elite.probe_id)
        self._by_id[elite.probe_id] = elite
        covered = elite.descriptor in self._covered
        self._covered.add(elite.descriptor)
        return AddStatus.IMPROVED if covered else AddStatus.NEW_CELL

    def elites(self) -> list[Elite]:
        """All kept probes, best first (ties: earlier added first)."""
        position = {probe_id: i for i, probe_id in enumerate(self._order)}
        return sorted(self._by_id.values(), key=lambda e: (-e.fitness, position[e.probe_id]))

    def sample_elites(
        self, n: int, rng: random.Random, *, novelty_weight: float = 0.3
    ) -> list[Elite]:
        """Draw ``n`` parents uniformly, with replacement (``novelty_weight`` is checked,
        as by every archive, but does not weigh).

        Raises:
            ValueError: If ``n`` < 0, ``novelty_weight`` is outside [0, 1], or ``n`` > 0
                and the archive is empty.
        """
        if n < 0:
            raise ValueError(f"cannot sample {n} elites")
        if not 0.0 <= novelty_weight <= 1.0:
            raise ValueError(f"novelty_weight must be in [0, 1], got {novelty_weight}")
        if n == 0:
            return []
        if not self._order:
            raise ValueError("cannot sample parents from an empty archive: add the seeds first")
        return [self._by_id[probe_id] for probe_id in rng.choices(self._order, k=n)]

    def stats(self) -> ArchiveStats:
        """Summary numbers."""
        return compute_stats(self.elites(), self.space)

    def entry_bar(self, descriptor: tuple[str, ...]) -> float:
        """0: every scored probe is kept."""
        return 0.0


class UniformOperators(OperatorBandit):
    """An operator "bandit" that ignores rewards: each choice is uniform at random.

    Rewards are still recorded, so operator statistics in the outputs stay comparable.
    """

    def choose(self, exclude: Collection[str] = ()) -> str:
        """A uniformly random operator (among those not excluded).

        Raises:
            ValueError: If every operator is excluded.
        """
        allowed = [n for n in self.names if n not in exclude] if exclude else self.names
        if not allowed:
            raise ValueError(f"every operator is excluded: {self.names}")
        return self.rng.choice(allowed)


@dataclass(frozen=True)
class SelectionParts:
    """What a selection strategy puts into the scheduler."""

    archive: Archive
    bandit: OperatorBandit
    novelty_weight: float


def selection_parts(
    selection: Selection,
    space: DescriptorSpace,
    operators: Sequence[str],
    *,
    seed: int,
    per_cell: int,
    population: int,
    novelty_weight: float,
) -> SelectionParts:
    """The archive, operator chooser and novelty weight of ``selection``.

    Args:
        selection: ``map-elites``, ``topk`` or ``random``.
        space: The descriptor space of the run.
        operators: The operator names.
        seed: The run's seed (the chooser gets ``seed + 1``, as the search always did).
        per_cell: Elites per MAP-Elites cell.
        population: Candidates per generation (``topk`` keeps ``per_cell x population``).
        novelty_weight: Parent-selection novelty weight of the search.

    Raises:
        ValueError: On an unknown ``selection``.
    """
    rng = random.Random(seed + 1)
    if selection == "map-elites":
        archive: Archive = MapElitesArchive(space, per_cell=per_cell)
        return SelectionParts(archive, OperatorBandit(list(operators), rng=rng), novelty_weight)
    if selection == "topk":
        archive = TopKArchive(per_cell * population, space=space)
        return SelectionParts(archive, OperatorBandit(list(operators), rng=rng), 0.0)
    if selection == "random":
        return SelectionParts(
            UniformArchive(space), UniformOperators(list(operators), rng=rng), novelty_weight
        )
    raise ValueError(f"unknown selection {selection!r}: choose from {', '.join(SELECTIONS)}")
