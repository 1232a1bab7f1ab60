"""The ask/tell scheduler: proposes probes, learns from their scores. Never calls a target.

pyribs-style: :meth:`Scheduler.ask` lets a bandit pick an emitter for each slot
(:mod:`probegen.search.emitters`: an operator with a purpose, such as improving a strong
elite or reaching an empty cell), validates and deduplicates the children, and, with a
surrogate, over-generates a pool and keeps the candidates the surrogate ranks best
(:mod:`probegen.search.surrogate`); the caller queries the target and scores them;
:meth:`Scheduler.tell` adds the results to the archive, refits the surrogate and pays
each emitter (and operator) its child's reward per target query spent. Keeping model I/O
out of here is what makes the search testable and a killed run replayable: given the
same seed and the same scores, it proposes the same probes.

``tell`` accepts only what ``ask`` (or :meth:`Scheduler.seed`) proposed, once each: a
result the scheduler never proposed would pay an emitter for work it did not do.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, get_args

import numpy as np
import numpy.typing as npt

from probegen.index import EmbeddingIndex
from probegen.mutation import MutationContext, Mutator, validate_child
from probegen.probe import Probe
from probegen.scoring.base import Score
from probegen.search.archive import AddStatus, Archive, DescriptorSpace, Elite
from probegen.search.bandit import OperatorBandit
from probegen.search.emitters import (
    CombineEmitter,
    Emitter,
    ImproveEmitter,
    MoveStats,
    OperatorEmitter,
    Outcome,
    Proposal,
    SearchView,
    axis_values,
)
from probegen.search.naming import naming_key
from probegen.search.surrogate import (
    FitnessSurrogate,
    OperatorResiduals,
    ScreenWeights,
    select_batch,
)
from probegen.search.words import Vocabulary, content_words

__all__ = ["Candidate", "EmitterStats", "Evaluated", "OperatorStats", "Scheduler"]

Reward = Literal["gain", "bonus"]
"""What an emitter and an operator are paid for a child, per target query it cost.

``gain`` (the default): what the archive gained, the child's fitness minus the bar of
the cell it entered (0 for an empty cell; nothing when it was not added). ``bonus`` (runs
stored before ``gain`` existed): how much the child beat its best parent, plus
:data:`NEW_CELL_BONUS` for a new cell and :data:`IMPROVED_BONUS` for an improved one.
The bonus paid a question copied into an empty cell at fitness 0 as much as a child that
doubled its parent's fitness, so operators that fill cells with unbiased questions won
the bandits (RESULTS.md, section 6)."""
NEW_CELL_BONUS = 0.5
IMPROVED_BONUS = 0.1


@dataclass(frozen=True)
class Candidate:
    """A probe proposed by :meth:`Scheduler.ask`, with where it came from."""

    probe: Probe
    operator: str
    """The mutation operator, or ``seed`` for the initial population."""
    parent_fitness: float
    """Best fitness among its parents (0 for seeds): the bar an improvement must clear."""
    emitter: str = "seed"
    """The emitter that proposed it (``seed`` for the initial population)."""
    target: tuple[str, ...] | None = None
    """The archive cell its emitter aimed at, if it aimed."""
    predicted: float | None = None
    """The surrogate's predicted fitness when it was chosen (None: not screened)."""
    predicted_sd: float | None = None
    """The surrogate's uncertainty (standard deviation) of that prediction."""


@dataclass(frozen=True)
class Evaluated:
    """A candidate after the caller queried the target and scored the answers."""

    candidate: Candidate
    score: Score
    groups: tuple[str, ...]
    """The groups the probe's variants name, sorted (a descriptor axis)."""
    queries: int = 1
    """Target queries measuring it cost (cached ones included): what its emitter's
    reward is divided by."""


@dataclass
class OperatorStats:
    """What one operator did over a run."""

    proposed: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    pooled: int = 0
    """Valid, new children it put in a pool."""
    queried: int = 0
    """Of those, how many the screen chose to query: an operator whose children are
    pooled but never queried is being vetoed by the surrogate, not judged by the bandit."""
    evaluated: int = 0
    new_cells: int = 0
    improved: int = 0
    reward: float = 0.0

    def as_dict(self) -> dict[str, object]:
        """A JSON-friendly summary."""
        return {
            "proposed": self.proposed,
            "rejected": dict(self.rejected),
            "pooled": self.pooled,
            "queried": self.queried,
            "evaluated": self.evaluated,
            "new_cells": self.new_cells,
            "improved": self.improved,
            "mean_reward": self.reward / self.evaluated if self.evaluated else 0.0,
        }


@dataclass
class EmitterStats:
    """What one emitter did over a run."""

    calls: int = 0
    """Times the bandit gave it a slot."""
    failures: Counter[str] = field(default_factory=Counter)
    """Calls that gave no valid, new child, by reason."""
    pooled: int = 0
    """Valid, new children it put in a pool."""
    queried: int = 0
    """Of those, how many were chosen to be queried."""
    evaluated: int = 0
    new_cells: int = 0
    improved: int = 0
    queries: int = 0
    """Target queries its evaluated children cost."""
    reward: float = 0.0
    """Sum of its children's rewards (before dividing by their queries)."""

    @property
    def reward_per_query(self) -> float:
        """Reward earned per target query spent on its children."""
        return self.reward / self.queries if self.queries else 0.0

    def as_dict(self) -> dict[str, object]:
        """A JSON-friendly summary."""
        return {
            "calls": self.calls,
            "failures": dict(self.failures),
            "pooled": self.pooled,
            "queried": self.queried,
            "evaluated": self.evaluated,
            "new_cells": self.new_cells,
            "improved": self.improved,
            "queries": self.queries,
            "reward_per_query": self.reward_per_query,
        }


def _spent(emitter: Emitter, calls: int) -> bool:
    """Whether an emitter has had as many calls this generation as it allows (the
    optional ``calls_per_ask``, e.g. the directed emitter's: each call is a request to
    the helper model)."""
    limit = getattr(emitter, "calls_per_ask", None)
    return isinstance(limit, int) and 0 < limit <= calls


@dataclass
class _Pool:
    """The candidates of one ask, and the proposals they came from."""

    size: int
    items: list[_Pooled] = field(default_factory=list)
    proposals: list[tuple[str, Proposal]] = field(default_factory=list)

    @property
    def room(self) -> int:
        return self.size - len(self.items)

    @property
    def full(self) -> bool:
        return self.room <= 0


class _Seen:
    """The probes of one dedup signature proposed for a query: ids and unit vectors."""

    def __init__(self) -> None:
        self.ids: set[str] = set()
        self._rows: list[npt.NDArray[np.float32]] = []
        self._matrix: npt.NDArray[np.float32] | None = None

    def add(self, probe_id: str, vector: npt.NDArray[np.float32]) -> None:
        if probe_id not in self.ids:
            self.ids.add(probe_id)
            self._rows.append(vector)
            self._matrix = None

    def matrix(self) -> npt.NDArray[np.float32]:
        if self._matrix is None:
            self._matrix = np.stack(self._rows)
        return self._matrix


@dataclass
class _Pooled:
    candidate: Candidate
    proposal: int  # position of its proposal in the ask's list of proposals
    cell: tuple[str, ...]


class Scheduler:
    """Proposes candidates from the archive and learns from their scores.

    Args:
        archive: Where elites live (MAP-Elites, or a baseline's archive).
        space: Maps a probe and its groups to an archive cell.
        index: Embedding index for near-duplicate rejection, novelty and the surrogate.
        bandit: The operator bandit of the default ``operators`` emitter (the one used
            when ``emitters`` is not given).
        mutators: The operators, by name.
        context: What operators may use (corpora, attribute, rng, helper model).
        novelty_weight: How much parent selection favours novel elites over fit ones.
        tries_per_slot: Emitter calls per wanted candidate before giving up, so a
            generation ends even when operators keep producing duplicates.
        emitters: The emitters; default one ``operators`` emitter over ``bandit``.
        emitter_bandit: Picks the emitter of each slot; default a discounted UCB bandit
            over the emitters' names (with one emitter it is never asked to break a tie).
        surrogate: A fitness model to screen an over-generated pool with; None queries
            what the emitters propose, in order.
        pool_factor: Candidates generated per candidate asked for, when screening.
        cost: Planned target queries of a probe (the surrogate ranks value per query).
        admissible: Which probes are worth a query at all (others never enter a pool).
        screen: Acquisition bonuses of the surrogate's ranking.
        measured_as: The text a target is actually asked for a probe, when that is less
            than its template (the decision measurement reads a probe only up to its
            last yes/no question); None for a probe asked whole. Two probes of one
            attribute with the same measured text are one measurement, so the second is
            rejected as a duplicate however different its templates look.
        reward: What a child pays its emitter and operator (see :data:`Reward`).

    Raises:
        ValueError: Without operators or emitters, or with ``pool_factor`` < 1.
    """

    def __init__(
        self,
        archive: Archive,
        space: DescriptorSpace,
        index: EmbeddingIndex,
        bandit: OperatorBandit,
        mutators: Mapping[str, Mutator],
        context: MutationContext,
        *,
        novelty_weight: float = 0.3,
        tries_per_slot: int = 6,
        emitters: Sequence[Emitter] | None = None,
        emitter_bandit: OperatorBandit | None = None,
        surrogate: FitnessSurrogate | None = None,
        pool_factor: int = 1,
        cost: Callable[[Probe], int] | None = None,
        admissible: Callable[[Probe], bool] | None = None,
        screen: ScreenWeights | None = None,
        measured_as: Callable[[Probe], str | None] | None = None,
        reward: Reward = "gain",
    ) -> None:
        if not mutators:
            raise ValueError("the scheduler needs at least one mutation operator")
        if pool_factor < 1:
            raise ValueError(f"pool_factor must be >= 1, got {pool_factor}")
        self.archive = archive
        self.space = space
        self.index = index
        self.bandit = bandit
        self.mutators = dict(mutators)
        self.context = context
        self.novelty_weight = novelty_weight
        self.tries_per_slot = tries_per_slot
        chosen = list(emitters) if emitters is not None else [
            OperatorEmitter(mutators, bandit, novelty_weight)
        ]  # fmt: skip
        if not chosen:
            raise ValueError("the scheduler needs at least one emitter")
        self.emitters: dict[str, Emitter] = {e.name: e for e in chosen}
        if len(self.emitters) != len(chosen):
            raise ValueError(f"emitter names repeat: {[e.name for e in chosen]}")
        self.emitter_bandit = emitter_bandit or OperatorBandit(list(self.emitters), rng=context.rng)
        if list(self.emitter_bandit.names) != list(self.emitters):
            raise ValueError("the emitter bandit's arms must be the emitters' names, in order")
        self.surrogate = surrogate
        self.pool_factor = pool_factor
        self.cost = cost
        self.admissible = admissible
        self.screen = screen or ScreenWeights()
        if reward not in get_args(Reward):
            raise ValueError(f"reward must be 'gain' or 'bonus', got {reward!r}")
        self.reward = reward
        self.residuals = (
            OperatorResiduals(self.screen.operator_sd) if self.screen.operator_sd > 0 else None
        )
        self.naming_residuals = (
            OperatorResiduals(self.screen.naming_sd) if self.screen.naming_sd > 0 else None
        )
        self.values = axis_values(space, context.corpora)
        self.moves = MoveStats(space.axes)
        operator_names = [*mutators, *(o for e in chosen for o in e.operators)]
        self.operator_stats: dict[str, OperatorStats] = {
            name: OperatorStats() for name in [*dict.fromkeys(operator_names), "seed"]
        }
        self.emitter_stats: dict[str, EmitterStats] = {
            name: EmitterStats() for name in [*self.emitters, "seed"]
        }
        # Near-duplicates are judged among probes with the same Probe.dedup_signature
        # (framing, modality, group set, images). `index` holds every probe, for novelty
        # (and embeds, caching by masked template, for everything here).
        self._dedup: dict[tuple[str, ...], _Seen] = {}
        # What the target is asked of each probe proposed for a query, when that is less
        # than its template (only with `measured_as`): a child that only appends a
        # sentence after a decision probe's question is its parent's measurement under a
        # new id, and would take a slot of the generation.
        self.measured_as = measured_as
        self.vocabulary = Vocabulary()
        """Content words of every question queried (the screen's ``new_words``)."""
        self._measured: set[tuple[str, str]] = set()
        self._measured_keys: dict[str, tuple[str, str] | None] = {}
        self._signatures: dict[str, tuple[str, ...]] = {}
        self._asked: dict[str, Candidate] = {}
        self._proposals: dict[str, Proposal] = {}
        self.exploiting = False
        """Whether :meth:`exploit` was called."""

    def exploit(self) -> None:
        """Spend what is left of the run on what it found: from now on the screen makes
        no exploring picks and no local competition (a copy of a strong probe into
        another cell is worth a query again), and the ``improve`` and ``combine``
        emitters draw every parent from the fittest elites (none uniformly). The run
        calls this once, when most of its budget is spent
        (``EvolveConfig.exploit_after``): exploring late finds what the budget can no
        longer follow up, while a strong probe's neighbourhood is where the next
        stronger one most likely is (RESULTS.md, section 6)."""
        self.exploiting = True
        self.screen = dataclasses.replace(self.screen, explore_every=0, local_radius=0.0)
        for emitter in self.emitters.values():
            if isinstance(emitter, ImproveEmitter | CombineEmitter):
                emitter.uniform_parents = 0.0

    # --- ask ---------------------------------------------------------------------------

    def seed(self, probes: Sequence[Probe]) -> list[Candidate]:
        """The initial population: the given probes, minus near-duplicates."""
        stats = self.operator_stats["seed"]
        self.index.embed([p.template for p in probes])  # one batch; cached by the index
        candidates: list[Candidate] = []
        for probe in probes:
            stats.proposed += 1
            reason = self._duplicate(probe, [c.probe for c in candidates])
            if reason is not None:
                stats.rejected[reason] += 1
                continue
            candidates.append(Candidate(probe, "seed", 0.0))
        # Seeds are never screened: every one that is not a duplicate is queried.
        stats.pooled += len(candidates)
        stats.queried += len(candidates)
        self._commit(candidates)
        return candidates

    async def ask(self, n: int, generation: int) -> list[Candidate]:
        """Up to ``n`` new, valid, non-duplicate candidates for ``generation``.

        With a surrogate, up to ``n x pool_factor`` candidates are made and the ``n``
        with the best acquisition per query are returned, best first.
        """
        if n < 1 or len(self.archive) == 0:
            return []
        size = n * self.pool_factor if self.surrogate is not None else n
        pool = _Pool(size)
        view = SearchView(self.archive, self.space, self.values, self.moves)
        tries = size * self.tries_per_slot
        calls: Counter[str] = Counter()
        while not pool.full and tries > 0:
            # Without screening, one call at a time, stopping as soon as the generation is
            # full; a pool is filled in rounds, so its children are embedded in batches.
            round_size = min(pool.room, tries) if self.surrogate is not None else 1
            tries -= round_size
            made = []
            for _ in range(round_size):
                spent = {name for name, e in self.emitters.items() if _spent(e, calls[name])}
                if len(spent) == len(self.emitters):
                    break
                name = self.emitter_bandit.choose(exclude=spent)
                calls[name] += 1
                self.emitter_stats[name].calls += 1
                made.append((name, await self.emitters[name].propose(view, self.context)))
            if not made:
                break
            for (name, proposal), fresh in zip(
                made, self._accept(made, generation, pool), strict=True
            ):
                self._pool(name, proposal, fresh, pool)
        chosen = self._choose(pool.items, n)
        used = {item.proposal for item in chosen}
        for position, (name, proposal) in enumerate(pool.proposals):
            if position not in used:
                # Its children were all screened out: no query was spent on it, so there
                # is nothing to pay or to charge.
                self._release(name, proposal)
        candidates = [item.candidate for item in chosen]
        for item in chosen:
            self.emitter_stats[item.candidate.emitter].queried += 1
            self.operator_stats[item.candidate.operator].queried += 1
            self._proposals[item.candidate.probe.id] = pool.proposals[item.proposal][1]
        self._commit(candidates)
        return candidates

    def _pool(
        self,
        name: str,
        proposal: Proposal,
        fresh: list[tuple[Probe, tuple[str, ...]]] | None,
        pool: _Pool,
    ) -> None:
        """Put a proposal's fresh children in the pool, or settle a proposal that has none."""
        if fresh is None:  # valid children, but the pool filled up first
            self._release(name, proposal)
            return
        if not fresh:
            # An emitter (and operator) that cannot produce a usable child has earned
            # nothing.
            self.emitter_stats[name].failures[proposal.failure or "no valid, new child"] += 1
            self.emitter_bandit.update(name, 0.0)
            self.emitters[name].failed(proposal)
            return
        self.emitter_stats[name].pooled += len(fresh)
        position = len(pool.proposals)
        pool.proposals.append((name, proposal))
        parent_fitness = max((e.fitness for e in proposal.parents), default=0.0)
        for child, cell in fresh:
            candidate = Candidate(child, proposal.operator, parent_fitness, name, proposal.target)
            pool.items.append(_Pooled(candidate, position, cell))

    def _release(self, name: str, proposal: Proposal) -> None:
        self.emitter_bandit.release(name)
        self.emitters[name].release(proposal)

    def _accept(
        self, made: Sequence[tuple[str, Proposal]], generation: int, pool: _Pool
    ) -> list[list[tuple[Probe, tuple[str, ...]]] | None]:
        """Per proposal, its valid children that duplicate nothing queried, nothing in
        the pool and no earlier child, with their cells (in order, until the pool is
        full; None for a proposal with valid children that came after that)."""
        room = pool.room
        valid: list[list[Probe]] = []
        for _, proposal in made:
            stats = self.operator_stats.setdefault(proposal.operator, OperatorStats())
            parents = [e.probe for e in proposal.parents]
            kept: list[Probe] = []
            for child in proposal.children:
                if len(kept) >= room:
                    break  # never embed a child that cannot enter the pool
                stats.proposed += 1
                child = child.model_copy(
                    update={
                        "provenance": child.provenance.model_copy(
                            update={"generation": generation, "operator": proposal.operator}
                        )
                    }
                )
                reason = validate_child(child, parents, self.context)
                if reason is None and self.admissible is not None and not self.admissible(child):
                    reason = "not measurable: the run measures other probes only"
                if reason is not None:
                    stats.rejected[reason.split(":")[0]] += 1
                    continue
                kept.append(child)
            valid.append(kept)
        # One embedding call for the round (the index caches by masked template).
        templates = [c.template for kept in valid for c in kept]
        if templates:
            self.index.embed(templates)
        pooled = [item.candidate.probe for item in pool.items]
        accepted: list[list[tuple[Probe, tuple[str, ...]]] | None] = []
        for (_, proposal), kept in zip(made, valid, strict=True):
            if kept and room <= 0:
                accepted.append(None)
                continue
            stats = self.operator_stats[proposal.operator]
            fresh = []
            for child in kept[:room]:
                reason = self._duplicate(child, pooled)
                if reason is not None:
                    stats.rejected[reason] += 1
                    continue
                cell = self._cell(child)
                if proposal.parents:
                    self.moves.record(proposal.operator, proposal.parents[0].descriptor, cell)
                fresh.append((child, cell))
                stats.pooled += 1
                pooled.append(child)
                room -= 1
            accepted.append(fresh)
        return accepted

    def _choose(self, pool: Sequence[_Pooled], n: int) -> list[_Pooled]:
        if self.surrogate is None or not pool:
            return list(pool[:n])
        templates = [item.candidate.probe.template for item in pool]
        vectors = self.index.embed(templates).astype(np.float64)
        bars = self._bars()
        costs = [float(self.cost(item.candidate.probe)) if self.cost else 1.0 for item in pool]
        selection = select_batch(
            self.surrogate,
            vectors,
            n=n,
            cells=[item.cell for item in pool],
            bars=bars,
            novelty=self.index.novelty_many(templates),
            costs=[max(c, 1.0) for c in costs],
            weights=self.screen,
            # Only a screen with climbing picks needs each candidate's lineage.
            climbing=[self._climbing(item) for item in pool] if self.screen.climb_every else None,
            offsets=self._offsets(pool),
            new_words=(
                [self.vocabulary.new_in(t) for t in templates] if self.screen.new_words else None
            ),
            words=[content_words(t) for t in templates] if self.surrogate.reads_words else None,
        )
        chosen = []
        for position in selection.chosen:
            item = pool[position]
            predicted = dataclasses.replace(
                item.candidate,
                predicted=selection.mean[position],
                predicted_sd=selection.sd[position],
            )
            chosen.append(_Pooled(predicted, item.proposal, item.cell))
        return chosen

    def _bars(self) -> dict[tuple[str, ...], float]:
        """Each filled archive cell's bar: its best measured fitness, or with
        ``smoothed_bars`` its elites' highest posterior mean (the surrogate's smoothing of
        their measurements by their neighbours'; :class:`ScreenWeights`)."""
        elites = list(self.archive.elites())
        fitness = [e.fitness for e in elites]
        if self.screen.smoothed_bars and elites and self.surrogate is not None:
            templates = [e.probe.template for e in elites]
            vectors = self.index.embed(templates).astype(np.float64)
            words = [content_words(t) for t in templates] if self.surrogate.reads_words else None
            fitness = self.surrogate.posterior_mean(vectors, words).tolist()
        bars: dict[tuple[str, ...], float] = {}
        for elite, value in zip(elites, fitness, strict=True):
            bars[elite.descriptor] = max(bars.get(elite.descriptor, 0.0), value)
        return bars

    def _offsets(self, pool: Sequence[_Pooled]) -> list[tuple[float, float]] | None:
        """Each candidate's correction to the surrogate's prediction (mean, sd): its
        operator's offset plus its naming's, whose uncertainty is left out (a learnt
        shift only; :class:`ScreenWeights`, ``naming_sd``)."""
        if self.residuals is None and self.naming_residuals is None:
            return None
        offsets = []
        for item in pool:
            mean, sd = 0.0, 0.0
            if self.residuals is not None:
                mean, sd = self.residuals.estimate(item.candidate.operator)
            if self.naming_residuals is not None:
                key = naming_key(item.candidate.probe, self.context.corpora)
                mean += self.naming_residuals.estimate(key)[0]
            offsets.append((mean, sd))
        return offsets

    def _climbing(self, item: _Pooled) -> float:
        """The fitness of the best parent whose archive cell ``item`` stays in (0 when
        it leaves every parent's cell): what it must beat to improve on its lineage."""
        parents = (self.archive.get(pid) for pid in item.candidate.probe.provenance.parents)
        return max(
            (p.fitness for p in parents if p is not None and p.descriptor == item.cell),
            default=0.0,
        )

    def entry_bar(self, probe: Probe) -> float:
        """The fitness ``probe`` must beat to enter the archive cell it would land in."""
        return self.archive.entry_bar(self._cell(probe))

    def _cell(self, probe: Probe) -> tuple[str, ...]:
        groups = {v.group for v in probe.grouped_variants(self.context.corpora)}
        return self.space.descriptor(probe, groups)

    def _signature(self, probe: Probe) -> tuple[str, ...]:
        found = self._signatures.get(probe.id)
        if found is None:
            found = self._signatures[probe.id] = probe.dedup_signature(self.context.corpora)
        return found

    def _measured_key(self, probe: Probe) -> tuple[str, str] | None:
        if self.measured_as is None:
            return None
        if probe.id not in self._measured_keys:
            text = self.measured_as(probe)
            self._measured_keys[probe.id] = None if text is None else (probe.attribute, text)
        return self._measured_keys[probe.id]

    def _duplicate(self, probe: Probe, pool: Sequence[Probe] = ()) -> str | None:
        """Why ``probe`` repeats a probe proposed for a query or one of ``pool``, or None.

        ``near-duplicate``: the same id, or cosine >= the index's threshold between the
        masked templates of probes with the same :meth:`Probe.dedup_signature`.
        ``same measurement``: the same measured text (see ``measured_as``)."""
        signature = self._signature(probe)
        seen = self._dedup.setdefault(signature, _Seen())
        peers = [p for p in pool if self._signature(p) == signature]
        if probe.id in seen.ids or any(p.id == probe.id for p in peers):
            return "near-duplicate"
        key = self._measured_key(probe)
        if key is not None and (
            key in self._measured or any(self._measured_key(p) == key for p in pool)
        ):
            return "same measurement"
        vector = self.index.embed([probe.template])[0]
        rows = [seen.matrix()] if seen.ids else []
        if peers:
            rows.append(self.index.embed([p.template for p in peers]))
        if any(self.index.reaches_threshold(float(np.max(m @ vector))) for m in rows):
            return "near-duplicate"
        return None

    def _commit(self, candidates: Sequence[Candidate]) -> None:
        """Index what will be queried (dedup and novelty) and expect it back in tell."""
        vectors = self.index.embed([c.probe.template for c in candidates])
        for candidate, vector in zip(candidates, vectors, strict=True):
            probe = candidate.probe
            self._dedup.setdefault(self._signature(probe), _Seen()).add(probe.id, vector)
            key = self._measured_key(probe)
            if key is not None:
                self._measured.add(key)
            self._asked[probe.id] = candidate
        self.index.add_many([(c.probe.id, c.probe.template) for c in candidates])
        self.vocabulary.add(c.probe.template for c in candidates)

    # --- tell --------------------------------------------------------------------------

    def tell(self, results: Sequence[Evaluated]) -> list[AddStatus]:
        """Add scored candidates to the archive, refit the surrogate, pay the emitters.

        Unscorable results are not added (their fitness is unknown, not 0) and earn
        their emitter nothing.

        Raises:
            ValueError: If a result is of a probe that :meth:`ask` or :meth:`seed` did
                not propose, or that was told already (nothing is changed then).
        """
        ids = [r.candidate.probe.id for r in results]
        unknown = [i for i in ids if i not in self._asked]
        repeated = [i for i, count in Counter(ids).items() if count > 1]
        if unknown or repeated:
            which = unknown[0] if unknown else repeated[0]
            raise ValueError(
                f"tell: probe {which} was not proposed by ask()/seed() or was told "
                "already; tell each asked candidate once"
            )
        statuses: list[AddStatus] = []
        scored = [r for r in results if r.score.fitness is not None]
        novelties = self.index.novelty_many(
            [r.candidate.probe.template for r in scored],
            keys=[r.candidate.probe.id for r in scored],
        )
        novelty_of = {r.candidate.probe.id: n for r, n in zip(scored, novelties, strict=True)}
        if self.surrogate is not None and scored:
            templates = [r.candidate.probe.template for r in scored]
            self.surrogate.observe(
                self.index.embed(templates),
                [float(r.score.fitness or 0.0) for r in scored],
                [content_words(t) for t in templates] if self.surrogate.reads_words else None,
            )
        # The screen's offsets learn from every screened child (seeds carry no prediction).
        for r in scored:
            predicted = r.candidate.predicted
            if predicted is None:
                continue
            measured = float(r.score.fitness or 0.0)
            if self.residuals is not None:
                self.residuals.observe(r.candidate.operator, measured, predicted)
            if self.naming_residuals is not None:
                key = naming_key(r.candidate.probe, self.context.corpora)
                self.naming_residuals.observe(key, measured, predicted)
        for result in results:
            candidate = result.candidate
            del self._asked[candidate.probe.id]
            proposal = self._proposals.pop(candidate.probe.id, None)
            statuses.append(self._tell_one(result, novelty_of.get(candidate.probe.id), proposal))
        return statuses

    def _tell_one(
        self, result: Evaluated, novelty: float | None, proposal: Proposal | None
    ) -> AddStatus:
        candidate = result.candidate
        stats = self.operator_stats.setdefault(candidate.operator, OperatorStats())
        emitter_stats = self.emitter_stats.setdefault(candidate.emitter, EmitterStats())
        stats.evaluated += 1
        emitter_stats.evaluated += 1
        queries = max(1, result.queries)
        emitter_stats.queries += queries
        fitness = result.score.fitness
        cell = self.space.descriptor(candidate.probe, result.groups)
        status, reward = AddStatus.NOT_ADDED, 0.0
        if fitness is not None:
            elite = Elite(
                probe=candidate.probe,
                fitness=fitness,
                novelty=novelty if novelty is not None else 0.0,
                descriptor=cell,
                generation=candidate.probe.provenance.generation,
            )
            bar = self.archive.entry_bar(cell)
            status = self.archive.add(elite)
            if self.reward == "gain":
                added = status is not AddStatus.NOT_ADDED
                reward = max(0.0, fitness - bar) if added else 0.0
            else:
                reward = max(0.0, fitness - candidate.parent_fitness)
                reward += {
                    AddStatus.NEW_CELL: NEW_CELL_BONUS,
                    AddStatus.IMPROVED: IMPROVED_BONUS,
                }.get(status, 0.0)
            if status is AddStatus.NEW_CELL:
                stats.new_cells += 1
                emitter_stats.new_cells += 1
            elif status is AddStatus.IMPROVED:
                stats.improved += 1
                emitter_stats.improved += 1
        stats.reward += reward
        emitter_stats.reward += reward
        emitter = self.emitters.get(candidate.emitter)
        if emitter is None:  # seeds are not an arm of the bandit
            return status
        per_query = reward / queries
        self.emitter_bandit.update(candidate.emitter, per_query)
        emitter.tell(
            Outcome(
                operator=candidate.operator,
                probe=candidate.probe,
                parents=tuple(e.probe_id for e in proposal.parents) if proposal else (),
                target=candidate.target,
                cell=cell,
                fitness=fitness,
                parent_fitness=candidate.parent_fitness,
                status=status,
                reward=per_query,
                score=result.score,
            )
        )
        return status
