"""Replication on demand: measure a run's findings (or a release's probes) again.

:func:`replicate_probes` (behind ``probegen replicate``) re-measures probes on data their
discovery never saw, on the model they were found on or on another one (transfer):

- a probe measured by the decision measurement is measured again on other names of the
  same groups and other instruction wordings (where the target gives log-probabilities;
  elsewhere by sampled answers);
- a probe measured by sampled answers gets fresh samples (new seeds) and, when first
  names carry the groups, fresh samples with other names.

A probe *replicates* when every re-measurement finds the difference again, significant
at 0.05 and, where both measurements have one, in the same direction
(:func:`probegen.findings.assess.replication_holds`). A probe with no recorded discovery
effect (an imported benchmark) is first measured on the target, and replicates when
that measurement and its re-measurement agree.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from probegen.corpora import Corpora
from probegen.findings.effect import Effect
from probegen.measure import ProbeMeasurer, Replication
from probegen.probe import Probe
from probegen.scoring.base import Score

__all__ = ["ReplicationOutcome", "Subject", "replicate_probes"]


@dataclass(frozen=True)
class Subject:
    """A probe to replicate and what its discovery measured.

    Attributes:
        probe: The probe.
        effect: The discovery effect (None: unknown, e.g. an imported benchmark).
        scorer: The scorer of the discovery (``decision``, ``stats``, ``judge:...``).
        source: Where it came from, for the report (run id, release, model).
    """

    probe: Probe
    effect: Effect | None
    scorer: str
    source: str


@dataclass(frozen=True)
class ReplicationOutcome:
    """One probe's replication on the target.

    Attributes:
        subject: The probe and its discovery.
        discovery: The discovery score the checks compare with (measured on the target
            first when the subject had none).
        checks: The re-measurements.
    """

    subject: Subject
    discovery: Score | None
    checks: tuple[Replication, ...]

    @property
    def replicated(self) -> bool | None:
        """Whether every check held (None: nothing could be re-measured)."""
        if not self.checks:
            return None
        return all(check.holds for check in self.checks)


async def replicate_probes(
    subjects: Sequence[Subject], measurer: ProbeMeasurer, corpora: Corpora
) -> list[ReplicationOutcome]:
    """Replicate each subject against ``measurer``'s target (see the module docstring)."""
    outcomes = []
    for subject in subjects:
        discovery: Score | None
        if subject.effect is not None:
            discovery = Score(scorer=subject.scorer, effect=subject.effect)
        else:
            discovery = (await measurer.measure(subject.probe)).score
            if discovery.effect is None:
                outcomes.append(ReplicationOutcome(subject, discovery, ()))
                continue
        checks = await measurer.replicate(subject.probe, discovery)
        outcomes.append(ReplicationOutcome(subject, discovery, tuple(checks)))
    return outcomes


def replication_rate(outcomes: Sequence[ReplicationOutcome]) -> float | None:
    """Share of the re-measured probes that replicated (None when none was)."""
    verdicts = [o.replicated for o in outcomes if o.replicated is not None]
    return sum(verdicts) / len(verdicts) if verdicts else None
