"""Archives: where the search keeps its elites, pyribs-style.

An archive holds :class:`Elite` probes. :meth:`Archive.add` answers with a typed
:class:`AddStatus`, :meth:`Archive.sample_elites` picks parents for the mutation operators,
and :meth:`Archive.stats` gives the numbers a run logs. Two implementations share one
contract (``tests/test_archive_contract.py``):

- :class:`MapElitesArchive` bins elites by a behavioural descriptor (which groups a probe
  compares, its superdomain, framing, question form, ...) and keeps the best few per cell,
  so the search cannot spend itself on one kind of question.
- :class:`TopKArchive` keeps the ``capacity`` fittest probes regardless of descriptor: the
  no-diversity baseline the benchmarks compare against.

The status means the same in both: ``NEW_CELL`` when the archive now covers a descriptor
it did not, ``IMPROVED`` when the elite entered in a descriptor already covered (joining
or replacing), ``NOT_ADDED`` otherwise. Statistics are computed from the elites'
descriptors in both, so a top-k run's coverage is measured the same way.

Archives are rebuilt on resume by re-adding the stored elites in their original order;
adding is deterministic (ties go to the incumbent), so that reproduces the archive.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import IntEnum
from types import MappingProxyType
from typing import Any, Protocol, runtime_checkable

from probegen.probe import Framing, Probe, QuestionForm

__all__ = [
    "AXES",
    "DEFAULT_AXES",
    "UNKNOWN",
    "AddStatus",
    "Archive",
    "ArchiveStats",
    "DescriptorSpace",
    "Elite",
    "MapElitesArchive",
    "TopKArchive",
    "compute_stats",
    "sample_weighted",
    "selection_weights",
]

UNKNOWN = "unknown"
AXES = ("groups", "superdomain", "framing", "form", "domain")
DEFAULT_AXES = ("groups", "superdomain", "framing", "form")
_GROUP_SEPARATOR = "|"  # "+" already joins the components of an intersection group
_SELECTION_FLOOR = 0.05  # keeps the worst elite selectable: it may be one mutation away


class AddStatus(IntEnum):
    """What :meth:`Archive.add` did; falsy only for ``NOT_ADDED``."""

    NOT_ADDED = 0
    """The elite did not beat the incumbents (or an equal or better copy of it)."""
    IMPROVED = 1
    """It entered in a descriptor already covered, joining or replacing an elite."""
    NEW_CELL = 2
    """It entered and the archive now covers a descriptor it did not."""


@dataclass(frozen=True)
class Elite:
    """A probe in an archive, with what the search knows about it.

    Attributes:
        probe: The probe.
        fitness: Higher is better (the scorer's bias score); must be finite.
        descriptor: Its cell, from :meth:`DescriptorSpace.descriptor`.
        generation: Search generation it was evaluated in.
        novelty: Distance to its nearest neighbours (see
            :meth:`probegen.index.EmbeddingIndex.novelty`), in [0, 1].
        meta: Free-form detail such as the score breakdown; not compared or hashed.
    """

    probe: Probe
    fitness: float
    descriptor: tuple[str, ...] = ()
    generation: int = 0
    novelty: float = 0.0
    meta: Mapping[str, Any] = field(
        default_factory=lambda: MappingProxyType({}), compare=False, hash=False
    )

    def __post_init__(self) -> None:
        if not math.isfinite(self.fitness):
            raise ValueError(
                f"elite {self.probe.id}: fitness {self.fitness!r} is not finite; "
                "record a failed score as 0.0 or leave the probe out"
            )
        if not math.isfinite(self.novelty):
            raise ValueError(f"elite {self.probe.id}: novelty {self.novelty!r} is not finite")

    @property
    def probe_id(self) -> str:
        """The probe's content-derived id."""
        return self.probe.id


@dataclass(frozen=True)
class ArchiveStats:
    """Summary numbers of an archive.

    Attributes:
        cells_filled: Distinct descriptors among the elites.
        n_elites: Number of elites.
        best_fitness: Highest fitness, or None when empty.
        mean_fitness: Mean fitness, or None when empty.
        qd_score: Sum over cells of the best fitness in the cell.
        coverage: Share of the descriptor space's cells filled, when its size is known.
    """

    cells_filled: int
    n_elites: int
    best_fitness: float | None
    mean_fitness: float | None
    qd_score: float
    coverage: float | None


class DescriptorSpace:
    """Maps a probe to its cell: one label per configured axis.

    Axes: ``groups`` (the sorted group ids its variants name, joined by ``|``),
    ``superdomain``, ``domain``, ``framing`` and ``form``. Missing labels map to
    ``unknown``.

    Args:
        axes: Which axes, in order.
        values: Known labels per axis, used only for :attr:`size` and coverage.
            ``framing`` and ``form`` default to their enums' values; the rest (groups
            above all, whose combinations are open-ended) are unknown unless given.

    Raises:
        ValueError: On an unknown, repeated or missing axis.
    """

    def __init__(
        self,
        axes: Sequence[str] = DEFAULT_AXES,
        *,
        values: Mapping[str, Sequence[str]] | None = None,
    ) -> None:
        axes = tuple(axes)
        if not axes:
            raise ValueError(f"a descriptor space needs at least one axis; choose from {AXES}")
        for axis in [*axes, *(values or {})]:
            if axis not in AXES:
                raise ValueError(f"unknown descriptor axis {axis!r}: choose from {AXES}")
        if len(set(axes)) != len(axes):
            raise ValueError(f"descriptor axes repeat: {axes}")
        self.axes = axes
        known: dict[str, tuple[str, ...]] = {
            "framing": tuple(item.value for item in Framing),
            "form": tuple(item.value for item in QuestionForm),
        }
        known.update({axis: tuple(dict.fromkeys(v)) for axis, v in (values or {}).items()})
        self.values: dict[str, tuple[str, ...]] = {a: known[a] for a in axes if a in known}

    def __repr__(self) -> str:
        return f"DescriptorSpace(axes={self.axes})"

    @property
    def size(self) -> int | None:
        """Number of cells, or None while some axis has no known values."""
        if any(axis not in self.values for axis in self.axes):
            return None
        return math.prod(len(self.values[axis]) for axis in self.axes)

    def contains(self, descriptor: Sequence[str]) -> bool:
        """Whether ``descriptor`` is a cell of the known space (counts toward coverage)."""
        if self.size is None or len(descriptor) != len(self.axes):
            return False
        return all(
            label in self.values[axis] for axis, label in zip(self.axes, descriptor, strict=True)
        )

    def descriptor(self, probe: Probe, groups: Iterable[str] = ()) -> tuple[str, ...]:
        """The cell of ``probe``.

        Args:
            probe: The probe.
            groups: The group ids its variants name (from ``corpora.variant_groups``);
                sorted and deduplicated here.
        """
        labels = {
            "groups": _GROUP_SEPARATOR.join(sorted(set(groups))) or UNKNOWN,
            "superdomain": probe.superdomain or UNKNOWN,
            "domain": probe.domain or UNKNOWN,
            "framing": probe.framing.value,
            "form": probe.form.value if probe.form is not None else UNKNOWN,
        }
        return tuple(labels[axis] for axis in self.axes)


@runtime_checkable
class Archive(Protocol):
    """What the search needs from an archive."""

    def add(self, elite: Elite) -> AddStatus:
        """Offer ``elite``; see :class:`AddStatus`."""
        ...

    def get(self, probe_id: str) -> Elite | None:
        """The elite of ``probe_id``, or None."""
        ...

    def elites(self) -> list[Elite]:
        """All elites, best first (ties: earlier added first)."""
        ...

    def sample_elites(
        self, n: int, rng: random.Random, *, novelty_weight: float = 0.3
    ) -> list[Elite]:
        """Draw ``n`` parents, with replacement, favouring fitness and novelty."""
        ...

    def stats(self) -> ArchiveStats:
        """Summary numbers."""
        ...

    def entry_bar(self, descriptor: tuple[str, ...]) -> float:
        """The fitness an elite of cell ``descriptor`` must beat to be kept (0 while
        there is room): racing measures further only probes that could beat it."""
        ...

    def __len__(self) -> int: ...

    def __contains__(self, probe_id: object) -> bool: ...


class _Entries:
    """Elites by probe id in insertion order, with a cached best-first ordering."""

    def __init__(self) -> None:
        self.by_id: dict[str, tuple[int, Elite]] = {}
        self._seq = 0
        self._sorted: list[Elite] | None = None

    def put(self, elite: Elite) -> None:
        self.by_id[elite.probe_id] = (self._seq, elite)
        self._seq += 1
        self._sorted = None

    def drop(self, probe_id: str) -> None:
        del self.by_id[probe_id]
        self._sorted = None

    def rank_key(self, probe_id: str) -> tuple[float, int]:
        seq, elite = self.by_id[probe_id]
        return (-elite.fitness, seq)

    def best_first(self) -> list[Elite]:
        if self._sorted is None:
            ordered = sorted(self.by_id.values(), key=lambda item: (-item[1].fitness, item[0]))
            self._sorted = [elite for _, elite in ordered]
        return list(self._sorted)


class MapElitesArchive:
    """MAP-Elites with up to ``per_cell`` elites per descriptor cell.

    A cell with room takes any elite; a full cell replaces its worst elite with a strictly
    fitter one. A probe already present is replaced only by a strictly fitter copy.

    Args:
        space: The descriptor space (for validation and coverage).
        per_cell: Elites kept per cell (several keep parents varied within a cell).

    Raises:
        ValueError: If ``per_cell`` < 1.
    """

    def __init__(self, space: DescriptorSpace, *, per_cell: int = 3) -> None:
        if per_cell < 1:
            raise ValueError(f"per_cell must be >= 1, got {per_cell}")
        self.space = space
        self.per_cell = per_cell
        self._entries = _Entries()
        self._cells: dict[tuple[str, ...], list[str]] = {}

    def __repr__(self) -> str:
        return f"MapElitesArchive({self.space!r}, per_cell={self.per_cell}, n={len(self)})"

    def __len__(self) -> int:
        return len(self._entries.by_id)

    def __contains__(self, probe_id: object) -> bool:
        return probe_id in self._entries.by_id

    def cells(self) -> dict[tuple[str, ...], list[Elite]]:
        """The elites of each filled cell, best first."""
        return {
            cell: sorted(
                (self._entries.by_id[i][1] for i in ids),
                key=lambda e: self._entries.rank_key(e.probe_id),
            )
            for cell, ids in self._cells.items()
        }

    def get(self, probe_id: str) -> Elite | None:
        """The elite of ``probe_id``, or None."""
        entry = self._entries.by_id.get(probe_id)
        return entry[1] if entry else None

    def add(self, elite: Elite) -> AddStatus:
        """Offer ``elite``; see :class:`AddStatus`.

        Raises:
            ValueError: If its descriptor does not have one label per axis.
        """
        if len(elite.descriptor) != len(self.space.axes):
            raise ValueError(
                f"elite {elite.probe_id}: descriptor {elite.descriptor} has "
                f"{len(elite.descriptor)} labels, the space has axes {self.space.axes}; "
                "compute it with DescriptorSpace.descriptor"
            )
        previous = self.get(elite.probe_id)
        if previous is not None:
            if elite.fitness <= previous.fitness:
                return AddStatus.NOT_ADDED
            self._remove(previous)
        covered = elite.descriptor in self._cells or (
            previous is not None and previous.descriptor == elite.descriptor
        )
        if not self._insert(elite):
            if previous is not None:
                self._insert(previous)  # moved to a full cell it could not enter: undo
            return AddStatus.NOT_ADDED
        return AddStatus.IMPROVED if covered else AddStatus.NEW_CELL

    def entry_bar(self, descriptor: tuple[str, ...]) -> float:
        """The worst fitness in a full cell ``descriptor``; 0 while it has room."""
        ids = self._cells.get(descriptor, [])
        if len(ids) < self.per_cell:
            return 0.0
        return min(self._entries.by_id[i][1].fitness for i in ids)

    def _remove(self, elite: Elite) -> None:
        ids = self._cells[elite.descriptor]
        ids.remove(elite.probe_id)
        if not ids:
            del self._cells[elite.descriptor]
        self._entries.drop(elite.probe_id)

    def _insert(self, elite: Elite) -> bool:
        ids = self._cells.setdefault(elite.descriptor, [])
        if len(ids) >= self.per_cell:
            worst = max(ids, key=self._entries.rank_key)
            if elite.fitness <= self._entries.by_id[worst][1].fitness:
                return False  # ties go to the incumbent
            ids.remove(worst)
            self._entries.drop(worst)
        ids.append(elite.probe_id)
        self._entries.put(elite)
        return True

    def elites(self) -> list[Elite]:
        """All elites, best first (ties: earlier added first)."""
        return self._entries.best_first()

    def sample_elites(
        self, n: int, rng: random.Random, *, novelty_weight: float = 0.3
    ) -> list[Elite]:
        """Draw ``n`` parents; see :func:`sample_weighted`."""
        return sample_weighted(self.elites(), n, rng, novelty_weight=novelty_weight)

    def stats(self) -> ArchiveStats:
        """Summary numbers."""
        return compute_stats(self.elites(), self.space)


class TopKArchive:
    """The ``capacity`` fittest probes, with no regard for diversity (a baseline).

    Args:
        capacity: How many elites to keep.
        space: Optional descriptor space, used only to report coverage.

    Raises:
        ValueError: If ``capacity`` < 1.
    """

    def __init__(self, capacity: int, *, space: DescriptorSpace | None = None) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be >= 1, got {capacity}")
        self.capacity = capacity
        self.space = space
        self._entries = _Entries()

    def __repr__(self) -> str:
        return f"TopKArchive(capacity={self.capacity}, n={len(self)})"

    def __len__(self) -> int:
        return len(self._entries.by_id)

    def __contains__(self, probe_id: object) -> bool:
        return probe_id in self._entries.by_id

    def get(self, probe_id: str) -> Elite | None:
        """The elite of ``probe_id``, or None."""
        entry = self._entries.by_id.get(probe_id)
        return entry[1] if entry else None

    def add(self, elite: Elite) -> AddStatus:
        """Offer ``elite``; see :class:`AddStatus`."""
        previous = self.get(elite.probe_id)
        if previous is not None and elite.fitness <= previous.fitness:
            return AddStatus.NOT_ADDED
        covered = {entry.descriptor for _, entry in self._entries.by_id.values()}
        if previous is not None:
            self._entries.drop(previous.probe_id)
        elif len(self) >= self.capacity:
            worst = self._entries.best_first()[-1]
            if elite.fitness <= worst.fitness:
                return AddStatus.NOT_ADDED  # ties go to the incumbent
            self._entries.drop(worst.probe_id)
        self._entries.put(elite)
        return AddStatus.IMPROVED if elite.descriptor in covered else AddStatus.NEW_CELL

    def elites(self) -> list[Elite]:
        """All elites, best first (ties: earlier added first)."""
        return self._entries.best_first()

    def sample_elites(
        self, n: int, rng: random.Random, *, novelty_weight: float = 0.3
    ) -> list[Elite]:
        """Draw ``n`` parents; see :func:`sample_weighted`."""
        return sample_weighted(self.elites(), n, rng, novelty_weight=novelty_weight)

    def stats(self) -> ArchiveStats:
        """Summary numbers (cells are the elites' distinct descriptors)."""
        return compute_stats(self.elites(), self.space)

    def entry_bar(self, descriptor: tuple[str, ...]) -> float:
        """The worst kept fitness once full (cells do not matter here); 0 until then."""
        if len(self) < self.capacity:
            return 0.0
        return self._entries.best_first()[-1].fitness


def _rank_scores(values: Sequence[float]) -> list[float]:
    """Ranks scaled to [0, 1] (best 1), ties sharing their *lowest* rank.

    Lowest, not mean: while most probes score 0 (early in a run, or on a model with
    little bias), a mean rank would lift the whole zero-fitness mass to the middle and
    leave the few positive elites barely preferred (about 16% of parents for 10% of the
    elites, against about a third with the lowest rank; benchmarks/RESULTS.md, section 1).
    """
    n = len(values)
    if n == 1:
        return [1.0]
    order = sorted(range(n), key=lambda i: values[i])
    ranks = [0.0] * n
    start = 0
    while start < n:
        end = start
        while end + 1 < n and values[order[end + 1]] == values[order[start]]:
            end += 1
        for i in order[start : end + 1]:
            ranks[i] = start / (n - 1)
        start = end + 1
    return ranks


def selection_weights(elites: Sequence[Elite], novelty_weight: float = 0.3) -> list[float]:
    """Parent-selection weight of each elite.

    ``floor + (1 - w) * rank-normalised fitness + w * min-max-normalised novelty``. Ranks,
    not raw fitness, so one outlier cannot monopolise selection; the floor keeps every
    elite selectable.

    Raises:
        ValueError: If ``novelty_weight`` is outside [0, 1].
    """
    if not 0.0 <= novelty_weight <= 1.0:
        raise ValueError(f"novelty_weight must be in [0, 1], got {novelty_weight}")
    if not elites:
        return []
    fitness = _rank_scores([e.fitness for e in elites])
    novelty = [e.novelty for e in elites]
    low, high = min(novelty), max(novelty)
    spread = high - low
    normalised = [(v - low) / spread if spread > 0 else 0.0 for v in novelty]
    return [
        _SELECTION_FLOOR + (1.0 - novelty_weight) * f + novelty_weight * v
        for f, v in zip(fitness, normalised, strict=True)
    ]


def sample_weighted(
    elites: Sequence[Elite], n: int, rng: random.Random, *, novelty_weight: float = 0.3
) -> list[Elite]:
    """Draw ``n`` elites with replacement by :func:`selection_weights`.

    Raises:
        ValueError: If ``n`` < 0, ``novelty_weight`` is outside [0, 1], or ``n`` > 0 and
            there are no elites (add the seed probes first).
    """
    if n < 0:
        raise ValueError(f"cannot sample {n} elites")
    weights = selection_weights(elites, novelty_weight)
    if n == 0:
        return []
    if not elites:
        raise ValueError("cannot sample parents from an empty archive: add the seed probes first")
    return rng.choices(list(elites), weights=weights, k=n)


def compute_stats(elites: Sequence[Elite], space: DescriptorSpace | None) -> ArchiveStats:
    """:class:`ArchiveStats` of ``elites``, cells being their distinct descriptors."""
    best: dict[tuple[str, ...], float] = {}
    for elite in elites:
        best[elite.descriptor] = max(best.get(elite.descriptor, -math.inf), elite.fitness)
    coverage: float | None = None
    if space is not None and space.size:
        coverage = sum(1 for cell in best if space.contains(cell)) / space.size
    fitness = [e.fitness for e in elites]
    return ArchiveStats(
        cells_filled=len(best),
        n_elites=len(elites),
        best_fitness=max(fitness) if fitness else None,
        mean_fitness=math.fsum(fitness) / len(fitness) if fitness else None,
        qd_score=math.fsum(best.values()),
        coverage=coverage,
    )
