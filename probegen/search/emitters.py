"""Emitters: mutation operators with a purpose, chosen by a bandit that pays per query.

As in pyribs, an emitter decides *where* in the archive the next child comes from and
*how* it is made; the scheduler decides which emitter gets the next slot (a discounted
UCB bandit, :mod:`probegen.search.bandit`) and pays each emitter, when its children are
scored, what they gained the archive (:data:`probegen.search.scheduler.Reward`) divided
by the target queries they cost, so an emitter whose children are cheap to measure and
often useful gets more slots.

- ``improve`` mutates a high-fitness elite (the positive ones, when there are any,
  weighted by fitness rank) with a one-parent operator picked by its own bandit; a
  share of its parents (``uniform_parents``, half in a run by default) is drawn
  uniformly from every elite instead, as classic MAP-Elites draws them, so that the
  first kind of question that pays does not take every parent (until the run exploits,
  :meth:`~probegen.search.scheduler.Scheduler.exploit`).
- ``explore`` aims at a cell: an empty (or zero-fitness) cell one descriptor step away
  from a filled one, the filled cells with fitter elites more often, and cells it has
  aimed at often without filling them less often. It mutates the best elite of the
  neighbouring cell with the operator most likely to change that descriptor axis
  (Thompson sampling over how often each operator's children moved along each axis in
  this run, so a plugin operator is judged by what it does, not by its name).
- ``combine`` crosses two elites of different cells, both drawn like ``improve``'s
  parents, with a two-parent operator (``crossover``).
- ``operators`` is the search as it was before emitters: any operator, picked by the
  operator bandit, applied to parents drawn by the archive's own weights. The ``topk``
  and ``random`` baselines use only this one (``random`` with a uniform operator choice).
- ``directed`` (:mod:`probegen.search.llm_emitter`) asks the helper model for children
  aimed at a cell, with feedback on the parent and on its own recent attempts.

Emitters never call the target; like the scheduler they are ask/tell: :meth:`propose`
returns children, :meth:`tell` reports what became of those that were queried.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Protocol, runtime_checkable

from probegen.corpora import Corpora
from probegen.mutation import MutationContext, Mutator
from probegen.probe import Probe
from probegen.scoring.base import Score
from probegen.search.archive import (
    UNKNOWN,
    AddStatus,
    Archive,
    DescriptorSpace,
    Elite,
    sample_weighted,
)
from probegen.search.bandit import OperatorBandit

__all__ = [
    "DEFAULT_EMITTERS",
    "EMITTERS",
    "CombineEmitter",
    "Emitter",
    "ExploreEmitter",
    "ImproveEmitter",
    "MoveStats",
    "OperatorEmitter",
    "Outcome",
    "Proposal",
    "SearchView",
    "Target",
    "axis_values",
    "build_emitters",
]

EMITTERS = ("operators", "improve", "explore", "combine", "directed")
"""Every emitter name ``EvolveConfig.emitters`` accepts."""
DEFAULT_EMITTERS = ("improve", "explore", "combine")
"""The map-elites search's emitters (plus ``directed`` when there is a helper model)."""

_WEAK_WEIGHT = 0.3  # a filled cell whose best elite scores 0 is worth less than an empty one
_STRENGTH_FLOOR = 0.2  # a source cell at fitness 0 still leads somewhere


@dataclass(frozen=True)
class Proposal:
    """What one emitter call produced.

    Attributes:
        operator: The operator that made the children (or the emitter's own name).
        parents: The elites the children were made from, first one the primary.
        children: The children, unvalidated (the scheduler validates and deduplicates).
        target: The cell the emitter aimed at, if it aimed.
        failure: Why there are no children, in a few words, when there are none.
    """

    operator: str
    parents: tuple[Elite, ...]
    children: tuple[Probe, ...] = ()
    target: tuple[str, ...] | None = None
    failure: str | None = None


@dataclass(frozen=True)
class Outcome:
    """What became of one queried child; told to the emitter that proposed it.

    Attributes:
        operator: The operator that made it.
        probe: The child.
        parents: Its parents' probe ids.
        target: The cell its emitter aimed at, if any.
        cell: The cell it was measured into.
        fitness: Its fitness, None when unscorable.
        parent_fitness: Best fitness among its parents.
        status: What the archive did with it.
        reward: The reward its emitter is paid, per query it cost.
        score: Its score (reasoning, effect), None for a result without one.
    """

    operator: str
    probe: Probe
    parents: tuple[str, ...]
    target: tuple[str, ...] | None
    cell: tuple[str, ...]
    fitness: float | None
    parent_fitness: float
    status: AddStatus
    reward: float
    score: Score | None = None


@dataclass(frozen=True)
class Target:
    """A cell worth aiming at, and the filled neighbour to start from.

    Attributes:
        source: A filled cell one step away.
        axis: The descriptor axis in which they differ.
        cell: The target cell.
        empty: Whether it is empty (else it is filled but weak: its best scores 0).
        weight: How much it is worth aiming at (before the emitter's own discount).
    """

    source: tuple[str, ...]
    axis: str
    cell: tuple[str, ...]
    empty: bool
    weight: float


class MoveStats:
    """How often each operator's children moved along each descriptor axis in this run.

    The scheduler records every valid, non-duplicate child against its first parent's
    cell, before any query is spent, so even children that are never queried teach the
    ``explore`` emitter which operator changes which axis.
    """

    def __init__(self, axes: Sequence[str]) -> None:
        self.axes = tuple(axes)
        self._children: Counter[str] = Counter()
        self._moves: Counter[tuple[str, str]] = Counter()

    def record(self, operator: str, parent: Sequence[str], child: Sequence[str]) -> None:
        """Count one child of ``operator``, from a parent in cell ``parent``."""
        self._children[operator] += 1
        for axis, old, new in zip(self.axes, parent, child, strict=True):
            if old != new:
                self._moves[(operator, axis)] += 1

    def rate(self, operator: str, axis: str) -> float:
        """Share of ``operator``'s children that moved along ``axis`` (Laplace-smoothed)."""
        return (self._moves[(operator, axis)] + 1) / (self._children[operator] + 2)

    def pick(self, axis: str, operators: Sequence[str], rng: random.Random) -> str:
        """An operator by Thompson sampling on its chance to move along ``axis``.

        Raises:
            ValueError: If ``operators`` is empty.
        """
        if not operators:
            raise ValueError("MoveStats.pick needs at least one operator")
        draws = []
        for name in operators:
            moved = self._moves[(name, axis)]
            draws.append(rng.betavariate(moved + 1, self._children[name] - moved + 1))
        return operators[max(range(len(draws)), key=lambda i: (draws[i], -i))]

    def as_dict(self) -> dict[str, dict[str, float]]:
        """Per operator: the smoothed rate of moving along each axis."""
        return {op: {axis: self.rate(op, axis) for axis in self.axes} for op in self._children}


def axis_values(space: DescriptorSpace, corpora: Corpora) -> dict[str, tuple[str, ...]]:
    """The labels each axis of ``space`` can take, as far as they are known up front:
    framing and form from their enums, superdomain and domain from the taxonomy. Group
    sets are open-ended: the ``explore`` emitter adds the ones the archive holds."""
    taxonomy = corpora.taxonomy
    known: dict[str, tuple[str, ...]] = dict(space.values)
    known.setdefault("superdomain", tuple(taxonomy.superdomains))
    known.setdefault("domain", tuple(d for s in taxonomy.superdomains.values() for d in s.domains))
    return {axis: known.get(axis, ()) for axis in space.axes}


class SearchView:
    """What emitters may read during one :meth:`Scheduler.ask`: the archive as it stands.

    Args:
        archive: The archive (not changed during an ask).
        space: The descriptor space.
        values: Known labels per axis (see :func:`axis_values`).
        moves: The run's move statistics.
    """

    def __init__(
        self,
        archive: Archive,
        space: DescriptorSpace,
        values: Mapping[str, Sequence[str]],
        moves: MoveStats,
    ) -> None:
        self.archive = archive
        self.space = space
        self.values = values
        self.moves = moves

    @cached_property
    def elites(self) -> list[Elite]:
        """All elites, best first."""
        return self.archive.elites()

    @cached_property
    def cells(self) -> dict[tuple[str, ...], list[Elite]]:
        """The elites of each filled cell, best first (from the elites' descriptors, so
        it works for every archive)."""
        cells: dict[tuple[str, ...], list[Elite]] = {}
        for elite in self.elites:
            cells.setdefault(elite.descriptor, []).append(elite)
        return cells

    def strong(
        self, rng: random.Random, among: Sequence[Elite] | None = None, uniform: float = 0.0
    ) -> Elite:
        """A high-fitness elite: the positive ones when there are any, by fitness rank;
        with probability ``uniform``, any elite, uniformly (classic MAP-Elites).

        Raises:
            ValueError: When there is no elite to draw from.
        """
        pool = list(self.elites if among is None else among)
        if uniform and rng.random() < uniform:
            return rng.choice(pool)
        positive = [e for e in pool if e.fitness > 0]
        return sample_weighted(positive or pool, 1, rng, novelty_weight=0.0)[0]

    @cached_property
    def targets(self) -> list[Target]:
        """Every empty or weak cell one axis step from a filled cell (module docstring)."""
        cells = self.cells
        axes = self.space.axes
        labels: list[list[str]] = []
        for i, axis in enumerate(axes):
            seen = dict.fromkeys(self.values.get(axis, ()))
            seen.update(dict.fromkeys(cell[i] for cell in cells))
            labels.append([label for label in seen if label != UNKNOWN])
        found: list[Target] = []
        for source, elites in cells.items():
            strength = _STRENGTH_FLOOR + max(0.0, elites[0].fitness)
            for i, axis in enumerate(axes):
                for label in labels[i]:
                    if label == source[i]:
                        continue
                    cell = (*source[:i], label, *source[i + 1 :])
                    there = cells.get(cell)
                    if there is None:
                        found.append(Target(source, axis, cell, True, strength))
                    elif there[0].fitness <= 0:
                        found.append(Target(source, axis, cell, False, strength * _WEAK_WEIGHT))
        return found


@runtime_checkable
class Emitter(Protocol):
    """A source of children with a purpose (module docstring).

    Attributes:
        name: The emitter's name, an arm of the scheduler's bandit.
        operators: The operators it may use (its children are credited to them too).
    """

    name: str
    operators: tuple[str, ...]

    async def propose(self, view: SearchView, ctx: MutationContext) -> Proposal:
        """Children for the next slot; a :class:`Proposal` without children (and with
        a ``failure``) when it has nothing to offer."""
        ...

    def tell(self, outcome: Outcome) -> None:
        """What became of one of its children that was queried."""
        ...

    def failed(self, proposal: Proposal) -> None:
        """A proposal none of whose children was valid and new."""
        ...

    def release(self, proposal: Proposal) -> None:
        """A proposal whose valid children were all screened out (never queried)."""
        ...


class _BanditEmitter:
    """Shared by the emitters that pick their operator with a bandit.

    Args:
        mutators: Its operators.
        bandit: Picks among them.
        uniform_parents: The share of parents drawn uniformly from every elite instead
            of from the fittest (see :meth:`SearchView.strong`).
    """

    name = ""

    def __init__(
        self,
        mutators: Mapping[str, Mutator],
        bandit: OperatorBandit,
        uniform_parents: float = 0.0,
    ) -> None:
        if not 0.0 <= uniform_parents <= 1.0:
            raise ValueError(f"uniform_parents must be in [0, 1], got {uniform_parents}")
        self.uniform_parents = uniform_parents
        if not mutators:
            raise ValueError(f"the {self.name} emitter needs at least one operator")
        if list(bandit.names) != list(mutators):
            raise ValueError(f"the {self.name} emitter's bandit must have its operators as arms")
        self.mutators = dict(mutators)
        self.bandit = bandit
        self.operators = tuple(mutators)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({list(self.operators)})"

    def tell(self, outcome: Outcome) -> None:
        """Pay the operator what the child earned (per query)."""
        if outcome.operator in self.mutators:
            self.bandit.update(outcome.operator, outcome.reward)

    def failed(self, proposal: Proposal) -> None:
        """An operator that could not produce a usable child has earned nothing."""
        if proposal.operator in self.mutators:
            self.bandit.update(proposal.operator, 0.0)

    def release(self, proposal: Proposal) -> None:
        """Nothing to judge the operator by: clear its pending pull."""
        if proposal.operator in self.mutators:
            self.bandit.release(proposal.operator)


class OperatorEmitter(_BanditEmitter):
    """Any operator (by the bandit), parents by the archive's own weights.

    Args:
        mutators: The operators.
        bandit: Picks the operator (a :class:`~probegen.search.baselines.UniformOperators`
            for the random baseline).
        novelty_weight: Parent-selection novelty weight (see
            :func:`~probegen.search.archive.selection_weights`).
    """

    name = "operators"

    def __init__(
        self, mutators: Mapping[str, Mutator], bandit: OperatorBandit, novelty_weight: float
    ) -> None:
        super().__init__(mutators, bandit)
        self.novelty_weight = novelty_weight

    async def propose(self, view: SearchView, ctx: MutationContext) -> Proposal:
        """One operator applied to parents drawn from the archive."""
        name = self.bandit.choose()
        operator = self.mutators[name]
        elites = view.archive.sample_elites(
            operator.arity, ctx.rng, novelty_weight=self.novelty_weight
        )
        if len(elites) < operator.arity:
            return Proposal(name, tuple(elites), failure="too few parents")
        children = await operator.mutate([e.probe for e in elites], ctx)
        return Proposal(name, tuple(elites), tuple(children), failure=_none(children))


class ImproveEmitter(_BanditEmitter):
    """Mutate a high-fitness elite with a one-parent operator picked by its bandit."""

    name = "improve"

    async def propose(self, view: SearchView, ctx: MutationContext) -> Proposal:
        """One child-making call on a strong elite."""
        name = self.bandit.choose()
        if not view.elites:
            return Proposal(name, (), failure="empty archive")
        parent = view.strong(ctx.rng, uniform=self.uniform_parents)
        children = await self.mutators[name].mutate([parent.probe], ctx)
        return Proposal(name, (parent,), tuple(children), failure=_none(children))


class CombineEmitter(_BanditEmitter):
    """Cross two strong elites of different cells with a two-parent operator."""

    name = "combine"

    async def propose(self, view: SearchView, ctx: MutationContext) -> Proposal:
        """One crossover of two strong elites."""
        name = self.bandit.choose()
        if not view.elites:
            return Proposal(name, (), failure="empty archive")
        first = view.strong(ctx.rng, uniform=self.uniform_parents)
        others = [e for e in view.elites if e.descriptor != first.descriptor] or [
            e for e in view.elites if e.probe_id != first.probe_id
        ]
        if not others:
            return Proposal(name, (first,), failure="too few parents")
        second = view.strong(ctx.rng, others, uniform=self.uniform_parents)
        children = await self.mutators[name].mutate([first.probe, second.probe], ctx)
        return Proposal(name, (first, second), tuple(children), failure=_none(children))


class ExploreEmitter:
    """Aim at an empty or weak cell next to a filled one (module docstring).

    Args:
        mutators: One-parent operators.

    Raises:
        ValueError: Without operators.
    """

    name = "explore"

    def __init__(self, mutators: Mapping[str, Mutator]) -> None:
        if not mutators:
            raise ValueError("the explore emitter needs at least one operator")
        self.mutators = dict(mutators)
        self.operators = tuple(mutators)
        self.aimed: Counter[tuple[str, ...]] = Counter()
        """How often each cell was aimed at; a cell aimed at often and still empty is
        probably hard to reach, so it is aimed at less."""
        self.reached = 0
        """Queried children that landed in the cell they were aimed at."""

    def __repr__(self) -> str:
        return f"ExploreEmitter({list(self.operators)})"

    async def propose(self, view: SearchView, ctx: MutationContext) -> Proposal:
        """One child aimed at a target cell (the most novel elite, when there is none)."""
        if not view.elites:
            return Proposal(self.name, (), failure="empty archive")
        targets = view.targets
        if not targets:
            parent = view.archive.sample_elites(1, ctx.rng, novelty_weight=1.0)[0]
            name = ctx.rng.choice(self.operators)
            children = await self.mutators[name].mutate([parent.probe], ctx)
            return Proposal(name, (parent,), tuple(children), failure=_none(children))
        weights = [t.weight / (1 + self.aimed[t.cell]) for t in targets]
        target = ctx.rng.choices(targets, weights=weights)[0]
        self.aimed[target.cell] += 1
        parent = view.cells[target.source][0]
        name = view.moves.pick(target.axis, self.operators, ctx.rng)
        children = await self.mutators[name].mutate([parent.probe], ctx)
        return Proposal(name, (parent,), tuple(children), target.cell, _none(children))

    def tell(self, outcome: Outcome) -> None:
        """Count a child that reached its target cell."""
        if outcome.target is not None and outcome.cell == outcome.target:
            self.reached += 1

    def failed(self, proposal: Proposal) -> None:
        """Nothing to learn: the move statistics count only children that exist."""

    def release(self, proposal: Proposal) -> None:
        """Nothing to release: operators are picked by move statistics, not a bandit."""


def _none(children: Sequence[Probe]) -> str | None:
    return None if children else "operator made no child"


@dataclass
class _Split:
    unary: dict[str, Mutator] = field(default_factory=dict)
    binary: dict[str, Mutator] = field(default_factory=dict)


def build_emitters(
    names: Sequence[str],
    mutators: Mapping[str, Mutator],
    *,
    bandit: OperatorBandit,
    seed: int,
    novelty_weight: float,
    uniform_parents: float = 0.0,
) -> list[Emitter]:
    """The rule-based emitters among ``names`` (``directed`` is built by the caller,
    which owns the helper model). An emitter without an operator it can use (``combine``
    without a two-parent operator, say) is left out.

    Args:
        names: Emitter names, from :data:`EMITTERS`.
        mutators: The run's operators.
        bandit: The operator bandit of the ``operators`` emitter (the selection's).
        seed: The run's seed (each emitter's own bandit gets a seed derived from it).
        novelty_weight: Parent-selection novelty weight of the ``operators`` emitter.
        uniform_parents: The share of ``improve`` and ``combine`` parents drawn
            uniformly from every elite (see :meth:`SearchView.strong`).

    Raises:
        ValueError: On an unknown name.
    """
    split = _Split()
    for name, mutator in mutators.items():
        (split.unary if mutator.arity == 1 else split.binary)[name] = mutator
    emitters: list[Emitter] = []
    for offset, name in enumerate(names):
        rng = random.Random(seed + 2 + offset)
        if name == "operators":
            emitters.append(OperatorEmitter(mutators, bandit, novelty_weight))
        elif name == "improve" and split.unary:
            emitters.append(
                ImproveEmitter(
                    split.unary, OperatorBandit(list(split.unary), rng=rng), uniform_parents
                )
            )
        elif name == "explore" and split.unary:
            emitters.append(ExploreEmitter(split.unary))
        elif name == "combine" and split.binary:
            emitters.append(
                CombineEmitter(
                    split.binary, OperatorBandit(list(split.binary), rng=rng), uniform_parents
                )
            )
        elif name not in EMITTERS:
            raise ValueError(f"unknown emitter {name!r}: choose from {', '.join(EMITTERS)}")
    return emitters
