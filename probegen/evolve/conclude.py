"""The end of a search: which probes are findings, and whether they replicate.

After the last generation, every probe the run tested is assessed together
(:func:`probegen.findings.assess.assess_scores`: Benjamini-Hochberg at the run's
``fdr`` over all of them, not only the elites), and each finding is measured again on
data the search never saw (:meth:`~probegen.measure.ProbeMeasurer.replicate`).
The replication rate is the share of findings whose every re-measurement holds.

A probe whose measured text repeats an earlier probe's (the decision measurement reads
a probe only up to its last yes/no question) is one measurement, counted once: as the
earliest such probe. The search queries such children by default (they are stepping
stones; ``EvolveConfig.distinct_measurements`` rejects them), and counting each again would
inflate the corrected family and the findings.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field

from probegen.findings.assess import REPLICATION_MARK, Assessment, assess_scores
from probegen.measure import ProbeMeasurer, Replication
from probegen.probe import Probe
from probegen.scoring.base import Score
from probegen.store import Store

__all__ = [
    "REPLICATION_MARK",
    "Conclusion",
    "conclude",
    "discovery_scores",
    "repeated_measurements",
]


@dataclass(frozen=True)
class Conclusion:
    """What a run concluded.

    Attributes:
        level: The false-discovery rate the findings are controlled at.
        assessments: Per tested probe id.
        replications: Per finding's probe id, its re-measurements.
        tested: How many probes were tested (the size of the corrected family).
        repeats: Per probe left out of the assessment because its measurement repeats
            another's, that other probe's id.
    """

    level: float
    assessments: dict[str, Assessment]
    replications: dict[str, list[Replication]] = field(default_factory=dict)
    repeats: dict[str, str] = field(default_factory=dict)

    @property
    def tested(self) -> int:
        """Probes with a between-group test: the family the correction is over."""
        return sum(1 for a in self.assessments.values() if a.effect is not None)

    @property
    def findings(self) -> list[str]:
        """Probe ids of the findings, most significant first."""
        found = [pid for pid, a in self.assessments.items() if a.finding]
        return sorted(found, key=lambda pid: self.assessments[pid].q_value or 1.0)

    def replicated(self, probe_id: str) -> bool | None:
        """Whether a finding replicated (every re-measurement holds); None if it was not
        re-measured."""
        results = self.replications.get(probe_id)
        if not results:
            return None
        return all(r.holds for r in results)

    @property
    def replication_rate(self) -> float | None:
        """Share of re-measured findings that replicated (None when none was)."""
        verdicts = [self.replicated(pid) for pid in self.findings]
        known = [v for v in verdicts if v is not None]
        return sum(known) / len(known) if known else None


def discovery_scores(store: Store, run_id: str, model: str) -> dict[str, Score]:
    """Each probe's discovery score in a run (replication scores left out)."""
    found: dict[str, Score] = {}
    for probe_id, scored_model, score in store.scores(run_id):
        if scored_model == model and REPLICATION_MARK not in score.scorer:
            found[probe_id] = score
    return found


async def conclude(
    store: Store,
    run_id: str,
    measurer: ProbeMeasurer,
    probes: Sequence[Probe],
    *,
    level: float,
    replicate: bool = True,
) -> Conclusion:
    """Assess every tested probe of the run and replicate the findings.

    Args:
        store: The run store.
        run_id: The run.
        measurer: Measures against the run's target (replication).
        probes: The run's probes (a finding's probe is looked up here).
        level: The false-discovery rate.
        replicate: Whether to re-measure the findings.
    """
    scores = discovery_scores(store, run_id, measurer.target.identity)
    repeats = repeated_measurements([p for p in probes if p.id in scores], measurer)
    assessments = assess_scores(
        {
            pid: (s.effect, s.fitness)
            for pid, s in scores.items()
            if s.status == "ok" and pid not in repeats
        },
        level,
    )
    conclusion = Conclusion(level, assessments, repeats=repeats)
    if not replicate:
        return conclusion
    by_id = {p.id: p for p in probes}
    found = [pid for pid in conclusion.findings if pid in by_id]
    # Every finding at once: their calls travel together (a batched target's go as one
    # batch per rung instead of a round trip per finding).
    replications = await asyncio.gather(
        *(measurer.replicate(by_id[pid], scores[pid]) for pid in found)
    )
    conclusion.replications.update(zip(found, replications, strict=True))
    return conclusion


def repeated_measurements(probes: Sequence[Probe], measurer: ProbeMeasurer) -> dict[str, str]:
    """Per probe whose measured text (:meth:`ProbeMeasurer.measured_text`) an earlier
    probe of ``probes`` of the same attribute has, that earlier probe's id."""
    first: dict[tuple[str, str], str] = {}
    repeats: dict[str, str] = {}
    for probe in probes:
        text = measurer.measured_text(probe)
        if text is None:
            continue
        key = (probe.attribute, text)
        if key in first:
            repeats[probe.id] = first[key]
        else:
            first[key] = probe.id
    return repeats
