"""The ask/tell scheduler: proposes probes, learns from their scores. Never calls a target.

pyribs-style: :meth:`Scheduler.ask` draws parents from the archive, lets the operator
bandit pick a mutation operator, and returns validated, deduplicated candidates;
the caller queries the target and scores them; :meth:`Scheduler.tell` adds the results
to the archive and rewards the operators that produced improvements. Keeping model I/O
out of here is what makes the search testable and a killed run replayable: given the
same seed and the same scores, it proposes the same probes.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from probegen.index import EmbeddingIndex
from probegen.mutation import MutationContext, Mutator, validate_child
from probegen.probe import Probe
from probegen.scoring.base import Score
from probegen.search.archive import AddStatus, Archive, DescriptorSpace, Elite
from probegen.search.bandit import OperatorBandit

__all__ = ["Candidate", "Evaluated", "OperatorStats", "Scheduler"]

# Reward for an operator: how much the child beat its best parent, plus a bonus for
# reaching a new region of the descriptor space (diversity is half the goal).
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


@dataclass(frozen=True)
class Evaluated:
    """A candidate after the caller queried the target and scored the answers."""

    candidate: Candidate
    score: Score
    groups: tuple[str, ...]
    """The groups the probe's variants name, sorted (a descriptor axis)."""


@dataclass
class OperatorStats:
    """What one operator did over a run."""

    proposed: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    evaluated: int = 0
    new_cells: int = 0
    improved: int = 0
    reward: float = 0.0

    def as_dict(self) -> dict[str, object]:
        """A JSON-friendly summary."""
        return {
            "proposed": self.proposed,
            "rejected": dict(self.rejected),
            "evaluated": self.evaluated,
            "new_cells": self.new_cells,
            "improved": self.improved,
            "mean_reward": self.reward / self.evaluated if self.evaluated else 0.0,
        }


class Scheduler:
    """Proposes candidates from the archive and learns from their scores.

    Args:
        archive: Where elites live (MAP-Elites, or a fitness-only baseline).
        space: Maps a probe and its groups to an archive cell.
        index: Embedding index for near-duplicate rejection and novelty.
        bandit: Picks which operator gets the next slot.
        mutators: The operators, by name.
        context: What operators may use (corpora, attribute, rng, helper model).
        novelty_weight: How much parent selection favours novel elites over fit ones.
        tries_per_slot: Operator attempts per wanted candidate before giving up, so a
            generation ends even when operators keep producing duplicates.
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
    ) -> None:
        if not mutators:
            raise ValueError("the scheduler needs at least one mutation operator")
        self.archive = archive
        self.space = space
        self.index = index
        self.bandit = bandit
        self.mutators = dict(mutators)
        self.context = context
        self.novelty_weight = novelty_weight
        self.tries_per_slot = tries_per_slot
        self.operator_stats: dict[str, OperatorStats] = {
            name: OperatorStats() for name in [*mutators, "seed"]
        }
        # Near-duplicates are judged among probes with the same Probe.dedup_signature
        # (framing, modality, group set, images). `index` holds every probe, for novelty.
        self._dedup: dict[tuple[str, ...], EmbeddingIndex] = {}

    def seed(self, probes: Sequence[Probe]) -> list[Candidate]:
        """The initial population: the given probes, minus near-duplicates."""
        stats = self.operator_stats["seed"]
        checks = self._add_unique(probes)
        candidates = []
        for probe, is_duplicate in zip(probes, checks, strict=True):
            stats.proposed += 1
            if is_duplicate:
                stats.rejected["near-duplicate"] += 1
                continue
            candidates.append(Candidate(probe, "seed", 0.0))
        return candidates

    async def ask(self, n: int, generation: int) -> list[Candidate]:
        """Up to ``n`` new, valid, non-duplicate candidates for ``generation``."""
        candidates: list[Candidate] = []
        rng = self.context.rng
        for _ in range(n * self.tries_per_slot):
            if len(candidates) >= n or len(self.archive) == 0:
                break
            name = self.bandit.choose()
            operator = self.mutators[name]
            stats = self.operator_stats[name]
            elites = self.archive.sample_elites(
                operator.arity, rng, novelty_weight=self.novelty_weight
            )
            parents = [e.probe for e in elites]
            if len(parents) < operator.arity:
                self.bandit.update(name, 0.0)
                continue
            children = await operator.mutate(parents, self.context)
            fresh = self._accept(
                children, parents, name, generation, stats, limit=n - len(candidates)
            )
            if not fresh:
                # An operator that cannot produce a usable child has earned nothing.
                self.bandit.update(name, 0.0)
            parent_fitness = max(e.fitness for e in elites)
            candidates.extend(Candidate(c, name, parent_fitness) for c in fresh)
        return candidates

    def _accept(
        self,
        children: Sequence[Probe],
        parents: Sequence[Probe],
        operator: str,
        generation: int,
        stats: OperatorStats,
        *,
        limit: int,
    ) -> list[Probe]:
        valid: list[Probe] = []
        for child in children:
            if len(valid) >= limit:
                break  # never index a child that will not be evaluated
            stats.proposed += 1
            child = child.model_copy(
                update={
                    "provenance": child.provenance.model_copy(
                        update={"generation": generation, "operator": operator}
                    )
                }
            )
            reason = validate_child(child, parents, self.context)
            if reason is not None:
                stats.rejected[reason.split(":")[0]] += 1
                continue
            valid.append(child)
        checks = self._add_unique(valid)
        fresh = []
        for child, is_duplicate in zip(valid, checks, strict=True):
            if is_duplicate:
                stats.rejected["near-duplicate"] += 1
            else:
                fresh.append(child)
        return fresh

    def _signature(self, probe: Probe) -> tuple[str, ...]:
        return probe.dedup_signature(self.context.corpora)

    def _add_unique(self, probes: Sequence[Probe]) -> list[bool]:
        """Whether each probe is a near-duplicate; the others join the indexes."""
        duplicate = [False] * len(probes)
        by_signature: dict[tuple[str, ...], list[int]] = {}
        for i, probe in enumerate(probes):
            by_signature.setdefault(self._signature(probe), []).append(i)
        for signature, positions in by_signature.items():
            index = self._dedup.get(signature)
            if index is None:
                index = self._dedup[signature] = EmbeddingIndex(
                    self.index.embedder, threshold=self.index.threshold
                )
            checks = index.add_unique([(probes[i].id, probes[i].template) for i in positions])
            for i, check in zip(positions, checks, strict=True):
                duplicate[i] = check.is_duplicate
        kept = [(p.id, p.template) for p, d in zip(probes, duplicate, strict=True) if not d]
        self.index.add_many(kept)
        return duplicate

    def tell(self, results: Sequence[Evaluated]) -> list[AddStatus]:
        """Add scored candidates to the archive and reward their operators.

        Unscorable results are not added (their fitness is unknown, not 0) and earn
        their operator nothing.
        """
        statuses: list[AddStatus] = []
        scored = [r for r in results if r.score.fitness is not None]
        novelties = self.index.novelty_many(
            [r.candidate.probe.template for r in scored],
            keys=[r.candidate.probe.id for r in scored],
        )
        novelty_of = {r.candidate.probe.id: n for r, n in zip(scored, novelties, strict=True)}
        for result in results:
            candidate = result.candidate
            stats = self.operator_stats[candidate.operator]
            stats.evaluated += 1
            fitness = result.score.fitness
            if fitness is None:
                statuses.append(AddStatus.NOT_ADDED)
                self._reward(candidate.operator, 0.0)
                continue
            elite = Elite(
                probe=candidate.probe,
                fitness=fitness,
                novelty=novelty_of[candidate.probe.id],
                descriptor=self.space.descriptor(candidate.probe, result.groups),
                generation=candidate.probe.provenance.generation,
            )
            status = self.archive.add(elite)
            statuses.append(status)
            reward = max(0.0, fitness - candidate.parent_fitness)
            if status is AddStatus.NEW_CELL:
                stats.new_cells += 1
                reward += NEW_CELL_BONUS
            elif status is AddStatus.IMPROVED:
                stats.improved += 1
                reward += IMPROVED_BONUS
            stats.reward += reward
            self._reward(candidate.operator, reward)
        return statuses

    def _reward(self, operator: str, reward: float) -> None:
        if operator in self.mutators:  # seeds are not an arm of the bandit
            self.bandit.update(operator, reward)
