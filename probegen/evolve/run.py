"""The evolve loop: the one runner that owns I/O for a search.

Generation 0 evaluates seed questions; every later generation asks the scheduler for
candidates, queries the target on every variant x sample (through
:func:`probegen.runner.query_probe`, so every answer and failure lands in the store),
scores them, and tells the scheduler. The scheduler never sees a model.

Resume is a replay: the search is deterministic given the seed and the answers, and
every finished model call is in the store's response cache, so re-running a killed run
from the start re-sends nothing that finished and picks up exactly where it stopped.
That is also why budgets count cached queries and cached costs: a replay must make the
same decisions as the original run.
"""

from __future__ import annotations

import asyncio
import dataclasses
import random
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from probegen.cab import cab_seeds
from probegen.corpora import Corpora, read_seeds
from probegen.decision.measure import DecisionSettings
from probegen.errors import ConfigError
from probegen.evolve.conclude import REPLICATION_MARK, Conclusion, conclude
from probegen.evolve.config import EvolveConfig
from probegen.imaging.seeds import image_seeds
from probegen.index import EmbeddingIndex
from probegen.measure import ProbeMeasurer
from probegen.models.base import accepts_images, images_by_default, supports_logprobs
from probegen.models.managed import Model
from probegen.mutation import MutationContext, Mutator, load_mutators
from probegen.probe import Probe
from probegen.runner import REPLICATION_SAMPLE_OFFSET
from probegen.scoring.base import Scorer
from probegen.scoring.stats import StatsScorer
from probegen.search.archive import Archive, DescriptorSpace
from probegen.search.bandit import OperatorBandit
from probegen.search.baselines import selection_parts
from probegen.search.emitters import Emitter, build_emitters
from probegen.search.llm_emitter import DirectedEmitter, ParentFeedback
from probegen.search.scheduler import Candidate, Evaluated, Scheduler
from probegen.search.surrogate import (
    SURROGATE_WORD_SHARES,
    FitnessSurrogate,
    RankCorrelation,
    ScreenWeights,
    rank_correlation,
)
from probegen.store import Store

__all__ = [
    "Evolution",
    "GenerationReport",
    "Prediction",
    "ProgressHandler",
    "SurrogateReport",
    "decision_settings",
    "load_seeds",
    "run_failure",
    "search_emitters",
    "select_seeds",
]


@dataclass(frozen=True)
class GenerationReport:
    """What one generation did; also logged as a ``generation`` event in the store."""

    generation: int
    evaluated: int
    unscorable: int
    new_cells: int
    queries_spent: int
    cost_usd: float
    best_fitness: float
    mean_fitness: float
    cells_filled: int
    elites: int
    surrogate_rho: float | None = None
    """Spearman's rho between the surrogate's predictions and the measured fitness of
    this generation's probes (None without a surrogate, or when undefined)."""


@dataclass(frozen=True)
class Prediction:
    """The surrogate's prediction for one queried probe, and what was measured."""

    generation: int
    probe_id: str
    predicted: float
    predicted_sd: float
    measured: float


@dataclass(frozen=True)
class SurrogateReport:
    """How well the surrogate ranked what it screened: per generation and over the run."""

    per_generation: list[tuple[int, RankCorrelation]]
    overall: RankCorrelation
    second_looks: tuple[int, int] | None = None
    """With ``EvolveConfig.second_look``: the probes whose screen showed nothing that got
    fresh answers because the surrogate expected them to clear their bar, and how many
    of them then scored above 0 (None: the second look was off)."""


ProgressHandler = Callable[[str, dict[str, object]], None]
"""``on_progress(kind, fields)``: ``generation_start``, ``probe_done``, ``generation_end``."""


def select_seeds(seeds: Sequence[Probe], n: int, rng: random.Random) -> list[Probe]:
    """Pick ``n`` seeds spread over superdomains (round-robin over a shuffled order), so
    generation 0 covers the topic space rather than the first lines of a file."""
    by_superdomain: dict[str, list[Probe]] = defaultdict(list)
    for probe in seeds:
        by_superdomain[probe.superdomain or "unknown"].append(probe)
    pools = [by_superdomain[k] for k in sorted(by_superdomain)]
    for pool in pools:
        rng.shuffle(pool)
    rng.shuffle(pools)
    chosen: list[Probe] = []
    while len(chosen) < n and any(pools):
        for pool in pools:
            if pool and len(chosen) < n:
                chosen.append(pool.pop())
    return chosen


def load_seeds(config: EvolveConfig, corpora: Corpora) -> list[Probe]:
    """The seed probes of a run's attribute: the shipped seeds, or ``config.seeds_file``
    (a seeds.jsonl, or a ``.json`` file in CAB's schema such as a release's cab.json).

    Raises:
        CorpusError: The seeds file is unreadable or breaks the seeds.jsonl format.
        UsageError: A CAB-schema file is invalid, or no seed has the run's attribute.
    """
    attribute = corpora.spec(config.attribute)
    if config.seeds_file and config.seeds_file.endswith(".json"):
        return cab_seeds(Path(config.seeds_file), corpora, attribute)
    if config.seeds_file:
        seeds = read_seeds(Path(config.seeds_file), corpora)
        where = config.seeds_file
    else:
        seeds = corpora.seeds
        where = "the shipped corpora"
    if not seeds and config.seeds_file:
        raise ConfigError(
            "seeds_file",
            "the file holds no seed questions",
            value=where,
            fix="write one seed per line in the format of corpora/seeds.jsonl",
        )
    probes = [s.to_probe() for s in seeds if s.attribute == attribute]
    if not probes:
        found = sorted({s.attribute for s in seeds})
        has = f" (it has seeds for {', '.join(found)} only)" if found else " (it has none)"
        raise ConfigError(
            "attribute",
            f"no seed questions for this attribute in {where}{has}",
            value=attribute,
            fix="add seeds for it (seeds.jsonl format) and pass them as `seeds_file`",
        )
    return probes


def run_failure(reports: Sequence[GenerationReport], target: Model) -> str | None:
    """Why a finished run counts as failed, or None: it evaluated probes but could score
    none of them (every target call failed, or the judge never answered), so its empty
    archive says nothing about the target."""
    evaluated = sum(r.evaluated for r in reports)
    unscorable = sum(r.unscorable for r in reports)
    if evaluated == 0 or unscorable < evaluated:
        return None
    calls = f"; {target.failures} target call(s) failed after retries" if target.failures else ""
    return f"all {evaluated} probe(s) evaluated were unscorable{calls}"


def decision_settings(config: EvolveConfig, backend: object) -> DecisionSettings | None:
    """The decision measurement's settings for a run, or None when it does not use it
    (``measure="sampled"``, or ``auto`` with a target that gives no log-probabilities).

    Raises:
        UsageError: ``measure="decision"`` with a target that gives no log-probabilities.
    """
    if config.measure == "sampled":
        return None
    if not supports_logprobs(backend):
        if config.measure == "decision":
            raise ConfigError(
                "measure",
                f"target {getattr(backend, 'spec', backend)} does not return token "
                "log-probabilities",
                value="decision",
                fix="use a target that does (local, hf:, openai: servers with logprobs, sim) "
                "or `measure` auto",
            )
        return None
    return DecisionSettings(
        screen=config.decision_screen,
        rounds=config.decision_rounds,
        instructions=config.decision_wordings,
    )


@dataclass
class _Spend:
    queries: int = 0
    cost_usd: float = 0.0
    reports: list[GenerationReport] = field(default_factory=list)


def search_emitters(
    config: EvolveConfig,
    mutators: Mapping[str, Mutator],
    bandit: OperatorBandit | None = None,
    novelty_weight: float | None = None,
) -> list[Emitter]:
    """The rule-based emitters of a run (the directed one needs the run's store).

    Args:
        config: The run's configuration.
        mutators: The run's operators.
        bandit: The selection's operator bandit (for the ``operators`` emitter).
        novelty_weight: The selection's parent-selection novelty weight (``topk``: 0).

    Raises:
        UsageError: When no emitter of ``config.emitters`` can use the run's operators
            and none is ``directed``.
    """
    names = config.search_emitters
    emitters = build_emitters(
        names,
        mutators,
        bandit=bandit or OperatorBandit(list(mutators), rng=random.Random(config.seed + 1)),
        seed=config.seed,
        novelty_weight=config.novelty_weight if novelty_weight is None else novelty_weight,
        uniform_parents=config.uniform_parents,
    )
    if not emitters and "directed" not in names:
        raise ConfigError(
            "emitters",
            f"none of them can use the run's operators ({', '.join(mutators)})",
            value=",".join(names),
            fix="add operators (`mutators`) or other emitters (`emitters`)",
        )
    return emitters


def use_images(setting: str, backend: object) -> bool:
    """Whether a run uses image probes (``EvolveConfig.images`` against a target backend).

    Raises:
        ConfigError: For ``on`` with a target that cannot carry images.
    """
    if setting == "off":
        return False
    if setting == "on":
        if not accepts_images(backend):
            raise ConfigError(
                "images",
                f"target {getattr(backend, 'spec', backend)} cannot see images",
                value=setting,
                fix="use a vision target (local-doc, llava, hf: VLMs, openai:/anthropic:) "
                "or `images` auto",
            )
        return True
    return images_by_default(backend)


class Evolution:
    """One evolve run.

    Args:
        config: The run's configuration.
        store: The run store (also the response cache).
        run_id: The run's id in the store.
        corpora: Attributes, taxonomy and seeds.
        target: The managed model under test.
        scorer: Scores each probe's answers jointly.
        index: Embedding index for deduplication and novelty.
        helper: Helper model for the LLM-rewrite operator, if any.
        on_progress: Receives progress events for a live display.
        seeds: The seed probes, when already loaded (see :func:`load_seeds`).
        mutators: The operators, when already loaded (see
            :func:`~probegen.mutation.load_mutators`); None loads ``config.mutators``.
        archive: An archive to search into instead of the selection's own (the
            selection still picks parents' operators and the novelty weight).
    """

    def __init__(
        self,
        config: EvolveConfig,
        *,
        store: Store,
        run_id: str,
        corpora: Corpora,
        target: Model,
        scorer: Scorer,
        index: EmbeddingIndex,
        helper: Model | None = None,
        on_progress: ProgressHandler | None = None,
        seeds: Sequence[Probe] | None = None,
        mutators: Mapping[str, Mutator] | None = None,
        archive: Archive | None = None,
    ) -> None:
        self.config = config
        self._seeds = list(seeds) if seeds is not None else None
        self.store = store
        self.run_id = run_id
        self.corpora = corpora
        self.target = target
        self.scorer = scorer
        self._on_progress = on_progress
        self.attribute = corpora.spec(config.attribute)
        self.rng = random.Random(config.seed)
        self.space = DescriptorSpace(config.descriptors)
        self.use_images = use_images(config.images, target.backend)
        if mutators is None:
            mutators = load_mutators(
                config.mutators,
                helper_available=helper is not None,
                images_available=self.use_images,
            )
        # The selection: the search (map-elites) or a benchmark baseline (topk, random).
        selection = selection_parts(
            config.selection,
            self.space,
            list(mutators),
            seed=config.seed,
            per_cell=config.per_cell,
            population=config.population,
            novelty_weight=config.novelty_weight,
        )
        self.archive: Archive = archive if archive is not None else selection.archive
        context = MutationContext(
            corpora=corpora,
            attribute=self.attribute,
            rng=self.rng,
            helper=helper,
            run_dir=store.path.parent,
            accepts_images=self.use_images,
        )
        # Emitters (operators with a purpose) for the search; the baselines keep the one
        # plain emitter, so their meaning is what it was.
        emitters = search_emitters(config, mutators, selection.bandit, selection.novelty_weight)
        if "directed" in config.search_emitters:
            emitters.append(DirectedEmitter(self._feedback, on_event=self._log))
        word_shares = SURROGATE_WORD_SHARES if config.surrogate_words else (0.0,)
        self.surrogate = FitnessSurrogate(word_shares=word_shares) if config.screens else None
        self.scheduler = Scheduler(
            self.archive,
            self.space,
            index,
            selection.bandit,
            mutators,
            context,
            novelty_weight=selection.novelty_weight,
            emitters=emitters,
            # Its own rng: a different seed offset than the operator bandit's (seed + 1).
            emitter_bandit=OperatorBandit(
                [e.name for e in emitters], rng=random.Random(config.seed + 101)
            ),
            surrogate=self.surrogate,
            pool_factor=config.pool_factor,
            cost=lambda probe: self.measurer.planned_queries(probe),
            screen=ScreenWeights(
                climb_every=config.climb_every,
                per_query=config.screen_per_query,
                operator_sd=config.operator_offsets,
                naming_sd=config.naming_offsets,
                local_radius=config.local_radius,
                new_words=config.explore_new_words,
                smoothed_bars=config.smoothed_bars,
            ),
            admissible=(
                (lambda probe: self.measurer.uses_decision(probe))
                if config.measure == "decision"
                else None
            ),
            measured_as=(
                (lambda probe: self.measurer.measured_text(probe))
                if config.distinct_measurements
                else None
            ),
            reward=config.reward,
        )
        self.predictions: list[Prediction] = []
        self.measurer = ProbeMeasurer(
            target=target,
            scorer=scorer,
            # The between-group test on sampled answers, whatever scorer judged them.
            tester=scorer if isinstance(scorer, StatsScorer) else StatsScorer(index.embedder),
            store=store,
            run_id=run_id,
            corpora=corpora,
            samples=config.samples,
            many_group_samples=config.many_group_samples,
            confirmation=config.confirmation,
            generate=config.generate,
            system_prompt=config.system_prompt,
            decision=decision_settings(config, target.backend),
            entry_bar=self.scheduler.entry_bar,
            prefetch=config.prefetch,
            second_look=config.second_look,
        )
        self.spend = _Spend()

    def seeds(self) -> list[Probe]:
        """The seed probes for this run's attribute (see :func:`load_seeds`)."""
        if self._seeds is None:
            self._seeds = load_seeds(self.config, self.corpora)
        return list(self._seeds)

    def image_seeds(self) -> list[Probe]:
        """Image seed probes from the corpora's image sets, when the run uses images
        (none otherwise); their images are copied into the run directory."""
        if not self.use_images:
            return []
        return image_seeds(self.corpora, self.attribute, self.store.path.parent)

    async def run(self) -> list[GenerationReport]:
        """Run every generation (or until a budget runs out); returns their reports."""
        seeds = self._initial_seeds()
        images = self.image_seeds()
        if images:
            # Half of generation 0 (at least one probe) asks about images, so a vision
            # target meets image probes from the start.
            share = min(len(images), max(1, self.config.initial_size // 2))
            kept = seeds[: self.config.initial_size - share]
            seeds = kept + select_seeds(images, share, self.rng)
        await self._generation(0, self._affordable(self.scheduler.seed(seeds)))
        for generation in range(1, self.config.generations + 1):
            if self._exhausted():
                break
            if (
                self.config.selection == "map-elites"
                and not self.scheduler.exploiting
                and self._spent_share(generation) >= self.config.exploit_after
            ):
                self.scheduler.exploit()
                self.store.log_event(
                    self.run_id,
                    "exploiting",
                    {"generation": generation, "queries": self.spend.queries},
                )
            candidates = await self.scheduler.ask(self.config.population, generation)
            if self.config.measure == "decision":
                # Only probes the decision measurement can read are worth a query.
                candidates = [c for c in candidates if self.measurer.uses_decision(c.probe)]
            if not candidates:
                self.store.log_event(self.run_id, "stalled", {"generation": generation})
                break
            affordable = self._affordable(candidates)
            if not affordable:
                # What is left of the budget cannot pay for one more probe (with no budget
                # everything is affordable): going on would only mutate and embed
                # candidates that are never evaluated.
                left = (self.config.budget or 0) - self.spend.queries
                self.store.log_event(
                    self.run_id, "budget_exhausted", {"generation": generation, "left": left}
                )
                break
            await self._generation(generation, affordable)
        return self.spend.reports

    def _exhausted(self) -> bool:
        budget, cost_budget = self.config.budget, self.config.cost_budget
        return (budget is not None and self.spend.queries >= budget) or (
            cost_budget is not None and self.spend.cost_usd >= cost_budget
        )

    def _spent_share(self, generation: int) -> float:
        """How much of the run is behind it when ``generation`` starts: the share of the
        generations done, of the query budget or of the cost budget, whichever is
        furthest along."""
        budget, cost_budget = self.config.budget, self.config.cost_budget
        shares = [(generation - 1) / self.config.generations]
        if budget is not None:
            shares.append(self.spend.queries / budget)
        if cost_budget is not None:
            shares.append(self.spend.cost_usd / cost_budget)
        return max(shares)

    def _affordable(self, candidates: Sequence[Candidate]) -> list[Candidate]:
        if self.config.budget is None:
            return list(candidates)
        left = self.config.budget - self.spend.queries
        # Reserve for a possible confirmation up front: whether a probe gets confirmed is
        # only known after scoring, and concurrent probes finish in any order.
        chosen = []
        for candidate in candidates:
            cost = self.measurer.planned_queries(candidate.probe)
            if cost <= left:
                chosen.append(candidate)
                left -= cost
        return chosen

    async def _generation(self, generation: int, candidates: Sequence[Candidate]) -> None:
        """Evaluate ``candidates`` (already cut to what the budget affords) and tell the
        scheduler."""
        self._emit("generation_start", {"generation": generation, "probes": len(candidates)})
        done = 0

        async def evaluate(candidate: Candidate) -> Evaluated:
            nonlocal done
            probe = candidate.probe.model_copy(
                update={
                    "provenance": candidate.probe.provenance.model_copy(
                        update={"run_id": self.run_id}
                    )
                }
            )
            measured = await self.measurer.measure(probe, candidate.predicted)
            self.spend.queries += measured.queries
            self.spend.cost_usd += measured.cost_usd
            if measured.looked_again:
                # What the second look found, for the run's record and the benchmarks.
                self._log(
                    "second_look",
                    {
                        "probe": probe.id,
                        "predicted": candidate.predicted,
                        "fitness": measured.score.fitness,
                        "queries": measured.queries,
                    },
                )
            done += 1
            self._emit("probe_done", {"done": done, "total": len(candidates)})
            groups = tuple(sorted({v.group for v in probe.grouped_variants(self.corpora)}))
            return Evaluated(
                dataclasses.replace(candidate, probe=probe),
                measured.score,
                groups,
                measured.read,  # emitters are paid per query the race read
            )

        results = await asyncio.gather(*(evaluate(c) for c in candidates))
        statuses = self.scheduler.tell(results)
        predictions = self._record_predictions(generation, results)
        stats = self.archive.stats()
        fitnesses = [r.score.fitness for r in results if r.score.fitness is not None]
        report = GenerationReport(
            generation=generation,
            evaluated=len(results),
            unscorable=sum(1 for r in results if r.score.fitness is None),
            new_cells=sum(1 for s in statuses if s.name == "NEW_CELL"),
            queries_spent=self.spend.queries,
            cost_usd=self.spend.cost_usd,
            best_fitness=stats.best_fitness or 0.0,
            mean_fitness=sum(fitnesses) / len(fitnesses) if fitnesses else 0.0,
            cells_filled=stats.cells_filled,
            elites=stats.n_elites,
            surrogate_rho=rank_correlation(
                [p.predicted for p in predictions], [p.measured for p in predictions]
            ).rho,
        )
        self.spend.reports.append(report)
        self.store.log_event(self.run_id, "generation", report.__dict__)
        self._emit("generation_end", dict(report.__dict__))

    def _record_predictions(
        self, generation: int, results: Sequence[Evaluated]
    ) -> list[Prediction]:
        """Keep (and log) the surrogate's prediction of every scored probe it screened."""
        predictions = [
            Prediction(
                generation,
                r.candidate.probe.id,
                r.candidate.predicted,
                r.candidate.predicted_sd or 0.0,
                r.score.fitness,
            )
            for r in results
            if r.candidate.predicted is not None and r.score.fitness is not None
        ]
        if predictions:
            self.predictions.extend(predictions)
            self._log(
                "surrogate",
                {
                    "generation": generation,
                    "predictions": [
                        {
                            "probe": p.probe_id,
                            "predicted": p.predicted,
                            "sd": p.predicted_sd,
                            "measured": p.measured,
                        }
                        for p in predictions
                    ],
                },
            )
        return predictions

    def surrogate_report(self) -> SurrogateReport | None:
        """Spearman's rho of the surrogate's predictions against the measured fitness,
        per generation and over the run; None when no surrogate screened candidates."""
        if self.surrogate is None:
            return None
        generations = sorted({p.generation for p in self.predictions})
        per_generation = [
            (
                g,
                rank_correlation(
                    [p.predicted for p in self.predictions if p.generation == g],
                    [p.measured for p in self.predictions if p.generation == g],
                ),
            )
            for g in generations
        ]
        overall = rank_correlation(
            [p.predicted for p in self.predictions], [p.measured for p in self.predictions]
        )
        looks = None
        if self.config.second_look:
            # From the store, so that a resumed run counts the looks made before it too.
            found = [
                e["data"].get("fitness") for e in self.store.events(self.run_id, "second_look")
            ]
            looks = (len(found), sum(1 for fitness in found if (fitness or 0.0) > 0.0))
        return SurrogateReport(per_generation, overall, looks)

    def _feedback(self, probe: Probe) -> ParentFeedback:
        """What the directed emitter is shown about a parent: the answers it was scored
        on, per group, and its discovery score."""
        answers: dict[str, list[str]] = {}
        for query in self.store.queries(self.run_id, probe.id):
            if query.model != self.target.identity or query.text is None:
                continue
            if query.sample_index >= REPLICATION_SAMPLE_OFFSET:
                continue
            answers.setdefault(query.group_id or query.variant_key, []).append(query.text)
        scores = [
            score
            for _, model, score in self.store.scores(self.run_id, probe.id)
            if model == self.target.identity and REPLICATION_MARK not in score.scorer
        ]
        return ParentFeedback(answers, scores[-1] if scores else None)

    def _log(self, kind: str, data: dict[str, object]) -> None:
        self.store.log_event(self.run_id, kind, data)

    async def conclude(self) -> Conclusion:
        """Which probes are findings (false-discovery control over every probe the run
        tested) and whether they replicate; call after :meth:`run`."""
        return await conclude(
            self.store,
            self.run_id,
            self.measurer,
            self.store.probes(self.run_id),
            level=self.config.fdr,
            replicate=self.config.replicate,
        )

    def _initial_seeds(self) -> list[Probe]:
        """Generation 0: seeds spread over superdomains. When yes/no probes will be read
        by the decision measurement, they make up at least half of it (all of it with
        ``measure="decision"``): they are what such a target is measured best on."""
        pool = self.seeds()
        size = self.config.initial_size
        if self.measurer.decision is None:
            return select_seeds(pool, size, self.rng)
        readable = [p for p in pool if self.measurer.uses_decision(p)]
        if self.config.measure == "decision":
            if not readable:
                raise ConfigError(
                    "measure",
                    f"no seed question for {self.attribute} ends in a yes/no question",
                    value="decision",
                    fix="pass `seeds_file` with yes/no questions, or use `measure` auto",
                )
            return select_seeds(readable, size, self.rng)
        share = min(len(readable), max(size // 2, size - (len(pool) - len(readable))))
        others = [p for p in pool if not self.measurer.uses_decision(p)]
        return select_seeds(readable, share, self.rng) + select_seeds(
            others, size - share, self.rng
        )

    def _emit(self, kind: str, fields: dict[str, object]) -> None:
        if self._on_progress is not None:
            self._on_progress(kind, fields)
