"""How a search measures one probe, and how it re-measures a finding.

Two measurements, chosen per probe:

- **decision** (:mod:`probegen.decision`): where the target exposes next-token
  log-probabilities and the probe ends in a yes/no question, P(yes) per name and
  wording from one forward pass each; no sampling noise, rounds of names as the unit.
  A probe is *screened* on its own names and a few more rounds; only a promising one
  is *confirmed* on fresh names, and that confirmation alone is its score and its test
  (a screen that picked a lucky gap cannot count the luck as evidence).
- **sampled**: every variant answered ``samples`` times and scored jointly by the run's
  scorer. A probe that scores above 0 is *confirmed* on fresh samples (indices
  ``samples`` .. ``confirmation - 1``) and scored again, dimensions and between-group
  test, on the fresh answers only. Screening on some samples and scoring on the same
  ones would let the screen pick noise and then count it as evidence (the winner's
  curse); samples the screen never saw keep the score and its p-value honest.

**Racing** (adaptive sampling, successive halving per probe). Every probe starts on
the floor (``samples`` answers per variant, or the decision screen's rounds) and the
archive cell it would enter sets a bar (0 while the cell has room, else its worst
elite's fitness). A probe gets the next rung of fresh data only while it already beats
the bar, or while its effect's p-value is below ``keep_going`` (the decision screen:
``promising``) *and* the fitness at the upper end of its effect's interval could still
beat the bar. The fresh data come in two halves up to the ceiling (``confirmation``
answers per variant; ``rounds`` of fresh names), and a probe whose first half no longer
qualifies stops there. The score and test are then the fresh data's alone; stopping
early only for futility, never for success, keeps the test's false-positive rate at
or below its level. Hopeless probes stop after the screen; half-strength ones whose
interval still reaches the bar get the samples that can show them.

**Second look** (``second_look``, off unless set). The screen's few answers often show
nothing for a probe that is biased: on the graded simulators one strongly biased probe
in six to eight that a search kept in its archive was kept at fitness 0 (two answers
per variant, drawn where only part of a group's answers are biased, and a race that
ended at the screen), and the search never learnt what it had found. A probe the
search's surrogate expected at or above ``second_look``, and above its cell's bar, gets
the first fresh rung anyway; the race then goes on by the rule above. The score and
test are the fresh data's, as for every raced probe, so the look that picked it cannot
count. ``evolve`` leaves it off: it recovered most of the strongly biased probes it
looked at again (23 of 29 at 0.15 on the held-out graded simulator), but the searches'
top ten did not rise (``benchmarks/RESULTS.md`` section 6, "A second look").

**Prefetch** (``prefetch=True``). Racing asks for each rung only after reading the one
before, so a batched target (``EvolveConfig.batch``) answers a generation in one provider
batch per rung. Prefetching asks for a probe's whole race at once (the screen and every
rung up to the ceiling) and then races on those answers exactly as above, rung by rung:
the same decisions, scores and tests, in one batch round trip per generation, paying
for the data racing would not have read (every answer asked for counts against the
budget).

Replication (:meth:`ProbeMeasurer.replicate`) measures a finding again on data the search
never saw: for the decision measurement, other names of the same groups and other
instruction wordings (at temperature 0 fresh samples would repeat the same pass); for
the sampled path, fresh samples of the probe itself and, when names carry the groups,
fresh samples of the probe with other names of the same groups.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

from probegen.answers import Answer, ProbeAnswers
from probegen.corpora import Corpora
from probegen.corpora.name_rounds import balanced_rounds, name_slots, rename_template
from probegen.decision.form import decision_body
from probegen.decision.measure import SCORER as DECISION_SCORER
from probegen.decision.measure import (
    DecisionMeasurement,
    DecisionSettings,
    UnitResult,
    decision_score,
    measure_decision,
    planned_rounds,
    with_effect,
)
from probegen.decision.measure import reachable_fitness as decision_reachable
from probegen.decision.units import Phase, plan_units
from probegen.findings.assess import replication_holds, replication_scorer
from probegen.findings.effect import Effect, decision_effect
from probegen.models.base import GenerateConfig
from probegen.models.managed import Model
from probegen.probe import Probe, Provenance
from probegen.runner import REPLICATION_SAMPLE_OFFSET, query_probe
from probegen.scoring.base import Score, Scorer
from probegen.scoring.stats import StatsScorer
from probegen.scoring.stats import reachable_fitness as stats_reachable
from probegen.store import Store

__all__ = ["KEEP_GOING", "Measured", "ProbeMeasurer", "Replication"]

_OTHER_NAME_ROUNDS = 2
KEEP_GOING = 0.5
"""Racing's p-value below which a probe whose interval reaches the bar gets more data."""


@dataclass(frozen=True)
class Measured:
    """One probe's measurement: its score (with its effect), and what it cost."""

    score: Score
    queries: int
    """Queries asked for (cached ones included): what the budget counts."""
    cost_usd: float
    rungs: int = 1
    """Rungs of the race it ran (1: the screen only)."""
    raced: int | None = None
    """Queries the race read, when a prefetch asked for more (None: ``queries``). The
    search pays its emitters per query read, so prefetching changes none of its choices."""
    looked_again: bool = False
    """Whether it got fresh data by the second look alone (its screen would have ended
    the race; module docstring, "Second look")."""

    @property
    def read(self) -> int:
        """Queries the race read (see ``raced``)."""
        return self.queries if self.raced is None else self.raced


@dataclass(frozen=True)
class Replication:
    """One re-measurement of a finding.

    Attributes:
        kind: ``other names and wordings`` (decision), ``fresh samples`` or
            ``other names`` (sampled).
        score: The score of the re-measurement (its ``effect`` is the new test).
        holds: Whether it confirms the discovery (same direction, significant).
    """

    kind: str
    score: Score
    holds: bool

    @property
    def effect(self) -> Effect | None:
        """The re-measured effect."""
        return self.score.effect


class ProbeMeasurer:
    """Measures probes for one run against one target.

    Args:
        target: The managed target model.
        scorer: Scores sampled answers (the run's ``judge``).
        tester: Tests sampled answers for a group difference (the stats scorer's
            between-group test), whatever scorer judged them.
        store: The run store.
        run_id: The run the queries belong to.
        corpora: Names, instructions and the attribute's groups.
        samples: Answers per variant when screening.
        many_group_samples: Answers per variant when screening a probe with more than
            two variants (None: ``samples``).
        confirmation: Answers per variant in all once a probe is confirmed (0: never).
        generate: Sampling parameters of the target.
        system_prompt: Optional system prompt for the target.
        decision: Decision-measurement settings; None turns the measurement off.
        entry_bar: The fitness a probe must beat to enter the archive cell it would
            land in (0 for a cell with room); None: always 0.
        keep_going: The p-value below which a probe whose interval can still beat that
            bar gets its next rung (see the module docstring, "Racing").
        second_look: A probe the search expected at or above this fitness, and above
            the bar of the cell it would enter (``measure``'s ``expected``), gets its
            race's first fresh rung even when its screen showed nothing (module
            docstring, "Second look"); 0: never.
        prefetch: Ask for a probe's whole race at once (module docstring, "Prefetch").
    """

    def __init__(
        self,
        *,
        target: Model,
        scorer: Scorer,
        tester: StatsScorer,
        store: Store,
        run_id: str,
        corpora: Corpora,
        samples: int,
        confirmation: int,
        generate: GenerateConfig,
        system_prompt: str | None = None,
        decision: DecisionSettings | None = None,
        entry_bar: Callable[[Probe], float] | None = None,
        keep_going: float = KEEP_GOING,
        prefetch: bool = False,
        many_group_samples: int | None = None,
        second_look: float = 0.0,
    ) -> None:
        self.target = target
        self.scorer = scorer
        self.tester = tester
        self.store = store
        self.run_id = run_id
        self.corpora = corpora
        self.samples = samples
        self.many_group_samples = many_group_samples
        self.confirmation = confirmation
        self.generate = generate
        self.system_prompt = system_prompt
        self.decision = decision
        self.entry_bar = entry_bar
        self.keep_going = keep_going
        self.prefetch = prefetch
        self.second_look = second_look
        self._planned: dict[str, int] = {}

    def uses_decision(self, probe: Probe) -> bool:
        """Whether ``probe`` is measured by the decision measurement."""
        return self._decision_units(probe) > 0

    def measured_text(self, probe: Probe) -> str | None:
        """What the target is asked of ``probe`` when that is less than its template:
        the decision measurement reads it only up to its last yes/no question, so a
        sentence after that question changes the probe but not its measurement. Given
        as each group's rendered question, one per line, sorted: ``a {{man/woman}}`` and
        ``{{a man/a woman}}`` ask the same. None for a probe measured whole (by sampled
        answers)."""
        if not self.uses_decision(probe):
            return None
        body = decision_body(probe.template)
        assert body is not None  # uses_decision planned units from it
        variants = self.corpora.variant_groups(body, probe.attribute)
        return "\n".join(sorted(f"{v.group}: {' '.join(v.text.split())}" for v in variants))

    def _decision_units(self, probe: Probe) -> int:
        """The most prompts a decision measurement of ``probe`` sends (screen and
        confirmation); 0 when it is not measured that way."""
        if self.decision is None:
            return 0
        if probe.id not in self._planned:
            self._planned[probe.id] = sum(
                len(
                    plan_units(
                        probe,
                        self.corpora,
                        phase=phase,
                        screen=self.decision.screen,
                        rounds=self.decision.rounds,
                        instructions=self.decision.instructions,
                    )
                )
                for phase in ("screen", "confirm")
            )
        return self._planned[probe.id]

    def planned_queries(self, probe: Probe) -> int:
        """The most queries measuring ``probe`` can take (confirmation included)."""
        units = self._decision_units(probe)
        if units:
            return units
        return len(probe.variants()) * max(self._floor(probe), self.confirmation)

    def _floor(self, probe: Probe) -> int:
        """Answers per variant of ``probe``'s screen."""
        if self.many_group_samples is None or len(probe.variants()) <= 2:
            return self.samples
        return self.many_group_samples

    async def measure(self, probe: Probe, expected: float | None = None) -> Measured:
        """Measure ``probe`` (see the module docstring) and store its score.

        ``expected`` is the fitness the search predicted for it, if it predicted one
        (read only with ``second_look``)."""
        if self.uses_decision(probe):
            measured = await self._measure_decision(probe, expected)
        else:
            measured = await self._measure_sampled(probe, expected)
        self.store.put_score(self.run_id, probe.id, self.target.identity, measured.score)
        return measured

    def _worth_more(
        self, probe: Probe, score: Score, threshold: float, *, screen: bool = False
    ) -> bool:
        """Racing's rule: a probe gets its next rung when it already beats the bar of
        the archive cell it would enter, or when its effect's p-value is below
        ``threshold`` and the upper end of its interval could still beat that bar.

        A screen that scored above 0 always goes on: a positive fitness is only ever
        kept from fresh data, never from the look that picked it."""
        if score.status != "ok":
            return False
        bar = self.entry_bar(probe) if self.entry_bar is not None else 0.0
        if (score.fitness or 0.0) > (0.0 if screen else bar):
            return True
        effect = score.effect
        return effect is not None and effect.p_value < threshold and _reachable(score) > bar

    def _looks_again(self, probe: Probe, score: Score, expected: float | None) -> bool:
        """The second look: a screen that showed nothing does not end the race of a
        probe the search expected to clear its bar (module docstring)."""
        if not self.second_look or expected is None or score.status != "ok":
            return False
        bar = self.entry_bar(probe) if self.entry_bar is not None else 0.0
        return expected >= self.second_look and expected > bar

    async def _measure_decision(self, probe: Probe, expected: float | None) -> Measured:
        """Screen on a few rounds of names; race a promising probe through the
        confirmation's fresh names in rungs. The confirmation's rounds alone are then its
        score and its test (stopping early only for futility keeps that test valid)."""
        assert self.decision is not None
        ahead: DecisionMeasurement | None = None
        if self.prefetch:
            # Screen and whole confirmation together: one round trip for a batched target.
            screened, ahead = await asyncio.gather(
                self._decision(probe, "screen"), self._decision(probe, "confirm")
            )
        else:
            screened = await self._decision(probe, "screen")
        assert screened is not None  # uses_decision checked the plan
        queries, cost, score = screened.queries, screened.cost_usd, decision_score(screened)
        # Everything asked for is spent, whether racing reads it or not.
        asked = None if ahead is None else queries + ahead.queries
        if ahead is not None:
            cost += ahead.cost_usd
        worth_more = self._worth_more(probe, score, self.decision.promising, screen=True)
        looked_again = not worth_more and self._looks_again(probe, score, expected)
        if not (worth_more or looked_again):
            return _measured(score, queries, asked, cost, rungs=1)
        total = planned_rounds(probe, self.corpora, self.decision, "confirm")
        results: list[UnitResult] = []
        rungs = _rungs(total)
        done = 1
        for position, (start, stop) in enumerate(rungs):
            if ahead is not None:
                measured = _rounds(ahead, start, stop)
            else:
                measured = await self._decision(probe, "confirm", part=(start, stop))
            if measured is None:
                break
            done += 1
            queries += measured.queries
            if ahead is None:
                cost += measured.cost_usd
            results.extend(measured.results)
            score = decision_score(with_effect(probe, "confirm", results))
            last = position == len(rungs) - 1
            if not last and not self._worth_more(probe, score, self.keep_going):
                break
        return _measured(score, queries, asked, cost, rungs=done, looked_again=looked_again)

    async def _decision(
        self, probe: Probe, phase: Phase, part: tuple[int, int] | None = None
    ) -> DecisionMeasurement | None:
        assert self.decision is not None
        return await measure_decision(
            probe,
            self.target,
            corpora=self.corpora,
            store=self.store,
            run_id=self.run_id,
            settings=self.decision,
            phase=phase,
            system_prompt=self.system_prompt,
            part=part,
        )

    async def _query(self, probe: Probe, samples: int, first: int = 0) -> ProbeAnswers:
        return await query_probe(
            probe,
            probe.grouped_variants(self.corpora),
            self.target,
            self.store,
            self.run_id,
            samples=samples,
            first_sample=first,
            config=self.generate,
            system_prompt=self.system_prompt,
        )

    async def _measure_sampled(self, probe: Probe, expected: float | None) -> Measured:
        floor = self._floor(probe)
        races = self.confirmation > floor
        ahead: ProbeAnswers | None = None
        if self.prefetch and races:
            # Every sample up to the ceiling at once: one round trip for a batched target.
            ahead = await self._query(probe, self.confirmation)
        answers = (
            _samples(ahead, 0, floor) if ahead is not None else await self._query(probe, floor)
        )
        score = await self._scored(probe, answers)
        samples, judged, rungs = floor, _judge_cost(score), 1
        worth_more = races and self._worth_more(probe, score, self.keep_going, screen=True)
        looked_again = races and not worth_more and self._looks_again(probe, score, expected)
        if worth_more or looked_again:
            fresh: ProbeAnswers | None = None
            planned = _rungs(self.confirmation - floor)
            for position, (start, stop) in enumerate(planned):
                first, last_sample = floor + start, floor + stop
                batch = (
                    _samples(ahead, first, last_sample)
                    if ahead is not None
                    else await self._query(probe, stop - start, first)
                )
                fresh = batch if fresh is None else _merge(fresh, batch)
                samples, rungs = last_sample, rungs + 1
                # Scored on the fresh answers alone: the screening answers were picked
                # for looking different, and counting them again would keep their luck.
                score = await self._with_test(probe, fresh)
                judged += _judge_cost(score)
                last = position == len(planned) - 1
                if not last and not self._worth_more(probe, score, self.keep_going):
                    break
            assert fresh is not None
            answers = _merge(answers, fresh)
        read = len(answers.variants) * samples
        if ahead is None:
            return Measured(
                score, read, _cost(answers) + judged, rungs=rungs, looked_again=looked_again
            )
        # Everything asked for is spent, whether racing read it or not.
        asked = len(ahead.variants) * self.confirmation
        return _measured(
            score, read, asked, _cost(ahead) + judged, rungs=rungs, looked_again=looked_again
        )

    async def _scored(self, probe: Probe, answers: ProbeAnswers) -> Score:
        score = await self.scorer.score(probe, answers)
        if score.effect is None and score.status == "ok":
            score = score.model_copy(update={"effect": await self.tester.effect(probe, answers)})
        return score

    async def replicate(self, probe: Probe, discovery: Score) -> list[Replication]:
        """Measure a finding again on data the search never saw; store each result as a
        score whose scorer name ends in ``@replication:<kind>``."""
        if discovery.effect is None:
            return []
        if discovery.scorer == "decision" and self.decision is not None:
            measurement = await self._decision(probe, "replication")
            if measurement is None:
                return []
            score = decision_score(measurement)
            checked = _directed(discovery.effect, measurement.rounds(), score.effect)
            stored = self._store_replication(
                probe, discovery.scorer, "other names and wordings", score
            )
            return [Replication("other names and wordings", stored,
                                replication_holds(discovery.effect, checked))]  # fmt: skip
        else:
            # Both at once: their calls then travel together (one batch for a batched
            # target, more calls in flight for any other).
            fresh, renamed = await asyncio.gather(self._fresh(probe), self._other_names(probe))
            results = [("fresh samples", fresh)]
            if renamed is not None:
                results.append(("other names", renamed))
        replications = []
        for kind, score in results:
            stored = self._store_replication(probe, discovery.scorer, kind, score)
            replications.append(
                Replication(kind, stored, replication_holds(discovery.effect, score.effect))
            )
        return replications

    def _store_replication(self, probe: Probe, scorer: str, kind: str, score: Score) -> Score:
        stored = score.model_copy(update={"scorer": replication_scorer(scorer, kind)})
        self.store.put_score(self.run_id, probe.id, self.target.identity, stored)
        return stored

    def _replication_samples(self) -> int:
        # Enough answers per variant for a permutation test to reach p < 0.05.
        return max(self.samples, self.confirmation, 6)

    async def _fresh(self, probe: Probe) -> Score:
        answers = await self._query(probe, self._replication_samples(), REPLICATION_SAMPLE_OFFSET)
        return await self._with_test(probe, answers)

    async def _with_test(self, probe: Probe, answers: ProbeAnswers) -> Score:
        score = await self.scorer.score(probe, answers)
        return score.model_copy(update={"effect": await self.tester.effect(probe, answers)})

    async def _other_names(self, probe: Probe) -> Score | None:
        """The probe with other names of the same groups, fresh samples, pooled by group;
        None when names do not carry the groups."""
        slots = name_slots(probe.template, probe.attribute, self.corpora)
        if slots is None:
            return None
        rounds = balanced_rounds(slots, probe.attribute, self.corpora, seed=probe.id)
        if not rounds:
            return None
        per_round = max(2, self._replication_samples() // min(len(rounds), _OTHER_NAME_ROUNDS))
        renamed = [
            probe.model_copy(
                update={
                    "template": rename_template(probe.template, slots, names),
                    "provenance": Provenance(
                        parents=(probe.id,), operator="replication", run_id=self.run_id
                    ),
                }
            )
            for names in rounds[:_OTHER_NAME_ROUNDS]
        ]
        # The rounds are asked at once and pooled in their order, as if one by one.
        answered = await asyncio.gather(
            *(self._query(r, per_round, REPLICATION_SAMPLE_OFFSET) for r in renamed)
        )
        pooled = _relabel(answered[0], probe, self.corpora)
        for answers in answered[1:]:
            pooled = _merge(pooled, _relabel(answers, probe, self.corpora))
        return await self._with_test(probe, pooled)


def _rungs(total: int) -> list[tuple[int, int]]:
    """The fresh part of a race, as (start, stop) slices of ``total`` samples or rounds:
    two halves, so a probe whose first half shows nothing stops there (one rung when
    there are too few to halve)."""
    if total <= 0:
        return []
    if total < 4:
        return [(0, total)]
    half = total // 2
    return [(0, half), (half, total)]


def _measured(
    score: Score,
    read: int,
    asked: int | None,
    cost: float,
    rungs: int,
    *,
    looked_again: bool = False,
) -> Measured:
    """A measurement that read ``read`` queries of the ``asked`` it asked for (None: no
    prefetch, so the two are the same)."""
    if asked is None:
        return Measured(score, read, cost, rungs=rungs, looked_again=looked_again)
    return Measured(score, asked, cost, rungs=rungs, raced=read, looked_again=looked_again)


def _samples(answers: ProbeAnswers, first: int, stop: int) -> ProbeAnswers:
    """The answers with sample indices ``first`` .. ``stop - 1`` (a prefetched race's
    rung)."""
    kept = {
        key: [a for a in found if first <= a.sample_index < stop]
        for key, found in answers.answers.items()
    }
    return ProbeAnswers(answers.probe, answers.model, answers.variants, kept)


def _rounds(measurement: DecisionMeasurement, start: int, stop: int) -> DecisionMeasurement | None:
    """Rounds ``start`` .. ``stop - 1`` (in plan order) of a prefetched confirmation, as
    :func:`~probegen.decision.measure.measure_decision` with ``part`` would measure them;
    None when there are none."""
    order = list(dict.fromkeys(r.unit.round for r in measurement.results))
    wanted = set(order[start:stop])
    results = [r for r in measurement.results if r.unit.round in wanted]
    if not results:
        return None
    return with_effect(measurement.probe, measurement.phase, results)


def _reachable(score: Score) -> float:
    """What ``score``'s probe could still reach with more data (the upper end of its
    interval, read by the measurement that made it; 1 where the scorer gives none)."""
    if score.scorer == DECISION_SCORER:
        return decision_reachable(score)
    if "within" in score.detail:
        return stats_reachable(score)
    return 1.0


def _judge_cost(score: Score) -> float:
    return float(score.detail.get("cost_usd", 0.0))


def _merge(first: ProbeAnswers, second: ProbeAnswers) -> ProbeAnswers:
    merged = {
        key: [*answers, *second.answers.get(key, [])] for key, answers in first.answers.items()
    }
    return ProbeAnswers(first.probe, first.model, first.variants, merged)


def _relabel(answers: ProbeAnswers, probe: Probe, corpora: Corpora) -> ProbeAnswers:
    """Answers to a renamed probe, filed under the original probe's variant keys (the
    keys of a name template are the names themselves); variants keep their order."""
    variants = probe.grouped_variants(corpora)
    mapping = {new.key: old for new, old in zip(answers.variants, variants, strict=True)}
    relabelled = {
        mapping[key].key: [
            Answer(mapping[key].key, a.group, a.sample_index, a.text, a.error, a.cached, a.cost_usd)
            for a in group
        ]
        for key, group in answers.answers.items()
    }
    return ProbeAnswers(probe, answers.model, variants, relabelled)


def _cost(answers: ProbeAnswers) -> float:
    return sum(a.cost_usd or 0.0 for group in answers.answers.values() for a in group)


def _directed(
    discovery: Effect, rounds: dict[str, dict[str, float]], measured: Effect | None
) -> Effect | None:
    """The replication's test of the discovery's directional claim: among more than two
    groups, the two the discovery found highest and lowest, compared alone (a paired
    test, so one-sided in the claim's direction); otherwise the measured effect."""
    if measured is None or len(discovery.direction) != 2 or len(measured.group_means) <= 2:
        return measured
    pair = {r: {g: row[g] for g in discovery.direction if g in row} for r, row in rounds.items()}
    if sum(len(row) == 2 for row in pair.values()) < 2:
        return measured
    return decision_effect(pair, unit=measured.unit)
