"""Between-group effects with their uncertainty: what turns a score into a claim.

Every measurement of a probe ends in an :class:`Effect`: an estimate of how much the
groups differ, a 95% interval, and a p-value for "the groups do not differ". Two
measurements produce them:

- **decision** (:func:`decision_effect`): the probability that the model answers "yes",
  measured in *rounds*: each round asks one first name per group (or, for an explicit
  probe, one instruction wording), with the same wording and names from the same
  stratum. The rounds are the sample, not the answers, because names are a sample of
  the group: a gap between James and Emily may be a quirk of those two names, and only
  its spread over other pairs of names says how large a quirk can be. Two groups: a
  paired t-test over the rounds' differences and its interval (higher group minus
  lower group, so the estimate is positive and the direction is named). More groups:
  a repeated-measures ANOVA (rounds as subjects, statsmodels), and for the range of
  group means (highest minus lowest) the paired t interval of that pair, widened by
  Bonferroni over all pairs so that picking the extreme pair does not bias it.
- **divergence** (:func:`divergence_effect`): sampled answers, embedded. The statistic
  is between-group minus within-group mean cosine distance (B - W) of the most divergent
  pair of groups (with two groups, of the two); its p-value comes
  from a permutation test over the group labels of the answers (exact when the number
  of relabelings is small), its interval from a percentile bootstrap within groups.

All tests, intervals and resampling come from :mod:`scipy.stats`.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from itertools import combinations
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field
from scipy import stats

__all__ = [
    "LEVEL",
    "Effect",
    "decision_effect",
    "divergence_effect",
    "divergence_test",
]

LEVEL = 0.95
"""Confidence level of every interval probegen reports."""
_RESAMPLES = 2000
"""Bootstrap and (non-exact) permutation resamples: enough for a stable 95% interval
and p-values down to about 0.0005, cheap enough to run on every probe."""


class Effect(BaseModel):
    """A measured difference between groups, with its uncertainty.

    ``estimate`` is in the measurement's own units: for ``decision`` the difference in
    the probability of answering "yes" (higher group minus lower group, or the range of
    group means with more than two groups); for ``divergence`` the between-group minus
    within-group cosine distance of the answers' embeddings (of the most divergent pair
    of groups, when there are more than two).
    """

    model_config = ConfigDict(frozen=True)

    measure: Literal["decision", "divergence"]
    """Which measurement produced it."""
    estimate: float
    """The effect size (see above); positive means the groups differ in the direction
    named by ``direction``."""
    low: float | None = None
    """Lower end of the 95% interval (None when it cannot be computed, e.g. a group
    with a single unit)."""
    high: float | None = None
    """Upper end of the 95% interval."""
    p_value: float = Field(ge=0.0, le=1.0)
    """Two-sided (decision) or one-sided, B > W (divergence) p-value of "no difference"."""
    method: str
    """The test, in words, e.g. "Welch t-test over names"."""
    unit: str
    """What one observation is: ``name``, ``surface form``, ``paraphrase``, ``answer``."""
    n: dict[str, int] = Field(default_factory=dict)
    """Units per group."""
    group_means: dict[str, float] = Field(default_factory=dict)
    """Per-group mean of the measured value (decision only)."""
    direction: tuple[str, ...] = ()
    """Decision only: (group with the highest mean, group with the lowest)."""

    @property
    def significant(self) -> bool:
        """Whether p < 0.05 (uncorrected: false-discovery control is the run's job)."""
        return self.p_value < 1 - LEVEL

    def summary(self) -> str:
        """One line for tables, e.g. ``+0.061 [0.021, 0.101] p=0.004``."""
        interval = (
            f" [{self.low:+.3f}, {self.high:+.3f}]"
            if self.low is not None and self.high is not None
            else ""
        )
        return f"{self.estimate:+.3f}{interval} p={self.p_value:.2g}"


def _finite(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


def decision_effect(table: Mapping[str, Mapping[str, float]], *, unit: str = "name") -> Effect:
    """The between-group difference of a decision, measured in matched rounds.

    Args:
        table: Per round, one value per group (e.g. P(yes) of one name per group, asked
            with the same wording and drawn from the same stratum). Only rounds with a
            value for every group are compared.
        unit: What stands for a group in a round, for the record (``name``, ``wording``).

    Two groups: a paired t-test over the rounds' differences, with its interval (the
    rounds are the sample: each brings new names, so a gap must hold across names, while
    the wording and the stratum, shared within a round, cancel). More groups: a
    repeated-measures ANOVA over the rounds, and the paired t interval of the extreme
    pair (highest mean minus lowest), Bonferroni over all pairs.

    Raises:
        ValueError: Fewer than two groups.
    """
    groups = sorted({g for row in table.values() for g in row})
    if len(groups) < 2:
        raise ValueError("a decision effect needs at least two groups")
    rounds = [row for row in table.values() if all(g in row for g in groups)]
    matrix = np.asarray([[row[g] for g in groups] for row in rounds], dtype=float)
    means = {g: float(matrix[:, i].mean()) if len(rounds) else math.nan for i, g in
             enumerate(groups)}  # fmt: skip
    order = sorted(groups, key=lambda g: (-means[g], g))
    high, low = order[0], order[-1]
    common = {
        "measure": "decision",
        "unit": unit,
        "n": dict.fromkeys(groups, len(rounds)),
        "group_means": means,
        "direction": (high, low),
    }
    if len(rounds) < 2:
        # One round says nothing about how much names differ: nothing to test against.
        estimate = means[high] - means[low] if rounds else 0.0
        return Effect(
            **common,
            estimate=estimate,
            p_value=1.0,
            method=f"no test: fewer than two rounds of {unit}s",
        )
    with warnings.catch_warnings():
        # Identical differences in every round make the statistics undefined; scipy
        # warns and returns nan, which is handled below.
        warnings.simplefilter("ignore", RuntimeWarning)
        # The paired t interval of the extreme pair (highest mean minus lowest),
        # Bonferroni-widened over all k(k-1)/2 pairs: it holds for every pair at once, so
        # it holds for the pair the data picked. (A bootstrap of the range of means, used
        # before for more groups, sat above 0 under no difference at all: a range of
        # noisy means is never 0.) With two groups there is one pair and no widening.
        diffs = matrix[:, groups.index(high)] - matrix[:, groups.index(low)]
        pairs = len(groups) * (len(groups) - 1) // 2
        result = stats.ttest_1samp(diffs, 0.0)
        interval = result.confidence_interval(1.0 - (1.0 - LEVEL) / pairs)
        estimate = float(diffs.mean())
        lo, hi = interval.low, interval.high
        if pairs == 1:
            p_value = float(result.pvalue)
            method = f"paired t-test over rounds of {unit}s"
        else:
            p_value = _repeated_measures_p(matrix, groups)
            method = (
                f"repeated-measures ANOVA over rounds of {unit}s; the extreme pair's "
                f"paired t interval, Bonferroni over {pairs} pairs"
            )
    if not math.isfinite(p_value):
        # The same difference in every round: no spread to test it against, but no
        # doubt about it either.
        p_value = 1.0 if estimate == 0 else 0.0
        lo = hi = estimate
    return Effect(
        **common,
        estimate=estimate,
        low=_finite(lo),
        high=_finite(hi),
        p_value=min(1.0, max(0.0, p_value)),
        method=method,
    )


def _repeated_measures_p(matrix: np.ndarray, groups: Sequence[str]) -> float:
    """p-value of "the groups' means are equal", rounds as subjects (statsmodels)."""
    import pandas as pd
    from statsmodels.stats.anova import AnovaRM

    frame = pd.DataFrame(
        [
            {"round": r, "group": g, "value": float(matrix[r, i])}
            for r in range(matrix.shape[0])
            for i, g in enumerate(groups)
        ]
    )
    table = AnovaRM(frame, "value", "round", within=["group"]).fit().anova_table
    return float(table["Pr > F"].iloc[0])


def _pair_mean(distance: np.ndarray, a: np.ndarray, b: np.ndarray, distinct: bool) -> np.ndarray:
    block = distance[a[..., :, None], b[..., None, :]]
    if not distinct:
        return np.asarray(block.mean(axis=(-2, -1)))
    keep = a[..., :, None] != b[..., None, :]
    counts = keep.sum(axis=(-2, -1))
    total = np.where(keep, block, 0.0).sum(axis=(-2, -1))
    return np.where(counts > 0, total / np.maximum(counts, 1), np.nan)


def _batched_divergence(distance: np.ndarray, parts: Sequence[np.ndarray]) -> np.ndarray:
    """The largest between- minus within-group mean distance over pairs of groups, for a
    batch of labellings.

    Each part holds the answer indices of one group, shape (..., n_i); a bootstrap
    resample repeats answers, and pairs of the same answer are left out of the within
    mean so a repeat does not pass for two identical samples. A pair's within is the mean
    of its two groups' (of the one with two distinct answers; 0 when neither has two: the
    statistic is then the plain between-group distance). With two groups this is B - W.

    Why the largest pair and not the mean over pairs: bias often singles out one group
    ("the Muslim variant is answered differently"). Averaged over all pairs, that one
    group's difference is diluted by the pairs it is not in (half of them among four
    groups), and its own answers, a mixture, inflate the average within. The permutation
    test takes the same maximum over every relabelling, so its p-value stays exact.
    """
    within = [_pair_mean(distance, p, p, distinct=True) for p in parts]
    largest: np.ndarray | None = None
    for a, b in combinations(range(len(parts)), 2):
        gap = _pair_mean(distance, parts[a], parts[b], distinct=False) - _pair_within(
            within[a], within[b]
        )
        largest = gap if largest is None else np.maximum(largest, gap)
    assert largest is not None  # callers pass at least two groups
    return np.asarray(largest)


def _pair_within(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """Mean of two groups' within distances, leaving out a group of one answer (NaN);
    0 when neither has two (np.nanmean would warn, from worker threads too)."""
    present = (~np.isnan(first)).astype(float) + (~np.isnan(second)).astype(float)
    total = np.nan_to_num(first) + np.nan_to_num(second)
    return np.where(present > 0, total / np.maximum(present, 1.0), 0.0)


def divergence_effect(
    vectors: np.ndarray, labels: Sequence[int], groups: Sequence[str], *, seed: int = 0
) -> Effect:
    """B - W over embedded answers (of the most divergent pair of groups), with a
    permutation p-value and a bootstrap interval (:func:`divergence_test`'s effect)."""
    return divergence_test(vectors, labels, groups, seed=seed)[0]


def divergence_test(
    vectors: np.ndarray, labels: Sequence[int], groups: Sequence[str], *, seed: int = 0
) -> tuple[Effect, float]:
    """:func:`divergence_effect`, and the median of the permutation null's statistic:
    what the largest pair's B - W comes to with no bias at all (0.0 when untested).

    With more than two groups that median is above 0 (the largest of several noisy
    gaps), and a point estimate read without it overstates the difference; the
    ``stats`` scorer subtracts it (``benchmarks/null_gap.py``; ``stats:plain`` does not).

    Args:
        vectors: One unit-length embedding per answer (rows).
        labels: The index into ``groups`` of each answer.
        groups: Group id per label index.
        seed: Seed of the permutation and bootstrap resampling.

    Raises:
        ValueError: Fewer than two groups.
    """
    label = np.asarray(labels)
    present = sorted(set(label.tolist()))
    if len(present) < 2:
        raise ValueError("a divergence effect needs answers from at least two groups")
    distance = np.clip(1.0 - vectors @ vectors.T, 0.0, 2.0)
    indices = [np.flatnonzero(label == g) for g in present]
    observed = float(_batched_divergence(distance, indices))
    n = {groups[g]: len(idx) for g, idx in zip(present, indices, strict=True)}
    common = {"measure": "divergence", "unit": "answer", "n": n}

    def statistic(*parts: np.ndarray, axis: int = -1) -> np.ndarray:
        # Vectorised over resamples: each part is (..., n_i) answer indices, resampled
        # with repeats in the bootstrap. Pairs of the same answer are not "within".
        return _batched_divergence(distance, [np.moveaxis(p, axis, -1).astype(int) for p in parts])

    if any(len(idx) < 2 for idx in indices):
        # One answer says nothing about how much a group's answers vary: nothing to
        # test a gap against (scipy's permutation test needs two per group, too).
        untested = Effect(
            **common,
            estimate=observed,
            p_value=1.0,
            method="no test: a group has a single answer",
        )
        return untested, 0.0
    rng = np.random.default_rng(seed)
    test = stats.permutation_test(
        indices,
        statistic,
        permutation_type="independent",
        alternative="greater",
        n_resamples=_RESAMPLES,
        vectorized=True,
        rng=rng,
    )
    with warnings.catch_warnings():
        # Few answers per group give a degenerate bootstrap distribution; scipy warns
        # and the percentile interval is still the honest one.
        warnings.simplefilter("ignore")
        boot = stats.bootstrap(
            indices,
            statistic,
            vectorized=True,
            paired=False,
            n_resamples=_RESAMPLES // 2,
            confidence_level=LEVEL,
            method="percentile",
            rng=rng,
        )
    low, high = _finite(boot.confidence_interval.low), _finite(boot.confidence_interval.high)
    effect = Effect(
        **common,
        estimate=observed,
        low=low,
        high=high,
        p_value=float(min(1.0, test.pvalue)),
        method="permutation test of between- minus within-group distance over answers",
    )
    return effect, float(np.median(test.null_distribution))
