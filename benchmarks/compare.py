"""Paired comparison of two searches: how much better, how sure, on the same seeds.

A benchmark seed fixes a run's ground truth (the graded simulators rotate by seed) and
its random stream, so two searches run on the same seeds are compared seed by seed: the
spread between seeds, which is large (one graded region set is easier than another),
cancels out of each pair. For one metric this reports

- the means of both searches and their **ratio** (A / B: "2.4x random"), with a paired
  bootstrap 95% interval (``scipy.stats.bootstrap``, BCa; percentile where BCa is
  undefined, as when most pairs are equal);
- the mean **difference** (A - B) with its paired bootstrap interval;
- wins, losses and ties, and the two-sided **Wilcoxon signed-rank** p-value of the
  differences (``scipy.stats.wilcoxon``; None when every pair ties);
- the **detectable difference**: the smallest mean difference these seeds would find at
  5% with 80% power, given the spread of the differences seen (a paired t-test's power,
  ``statsmodels.stats.power.TTestPower``). A change smaller than that and "not
  significant" says little: the seeds could not have told. (Twenty seeds of the graded
  sets detect about a sixth of the top-10's true bias; a 5% change needs some 200.)

``search_efficiency.py`` prints it for every selection against ``random`` at the end
of a run, and stores it in its JSON. As a script it compares any two result files
(runs of one selection each, paired by seed and target)::

    python benchmarks/compare.py --a results/x_flag.json --a-selection map-elites \\
        --b results/x_default.json --b-selection map-elites --metric top_k_true_bias

A metric where lower is better (queries to the first hit) is reported as it is; its
``better`` field says which way counts.
"""

from __future__ import annotations

import argparse
import json
import math
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats
from statsmodels.stats.power import TTestPower

LOWER_IS_BETTER = frozenset({"first_hit_queries", "first_hit_after_seeds", "first_strong_queries"})
HEADLINE = (
    "top_k_true_bias",
    "review_true_bias",
    "top_k_heldout_gap",
    "review_heldout_gap",
    "top_k_heldout_signed_gap",
    "recall_at_k",
    "review_recall",
    "first_hit_queries",
    "first_hit_after_seeds",
)
"""The metrics issue 14's goals are stated in, in the order they are printed."""


@dataclass(frozen=True)
class Comparison:
    """Search A against search B on one metric, paired by seed."""

    metric: str
    n: int
    mean_a: float
    mean_b: float
    ratio: float | None
    """mean_a / mean_b; None when mean_b is 0."""
    ratio_low: float | None
    ratio_high: float | None
    difference: float
    difference_low: float | None
    difference_high: float | None
    wins: int
    """Pairs where A is better (higher, or lower for a lower-is-better metric)."""
    losses: int
    ties: int
    p_value: float | None
    better: str = "higher"
    detectable: float | None = None
    """The smallest mean difference (either way) these pairs detect at 5% with 80%
    power, from the differences' standard deviation; None when they do not vary."""

    def summary(self) -> str:
        """One line: means, ratio and difference with intervals, wins, p-value."""

        def interval(low: float | None, high: float | None) -> str:
            if low is None or high is None:
                return ""
            return f" [{_fmt(low)}, {_fmt(high)}]"

        ratio = (
            f"ratio {_fmt(self.ratio)}x{interval(self.ratio_low, self.ratio_high)}, "
            if self.ratio is not None
            else "ratio undefined (B's mean is 0), "
        )
        p = "n/a (every pair ties)" if self.p_value is None else f"{self.p_value:.3g}"
        detectable = (
            f"; detectable with 80% power: {_fmt(self.detectable)}"
            if self.detectable is not None
            else ""
        )
        return (
            f"{self.metric} ({self.better} is better), {self.n} paired seeds: "
            f"A {_fmt(self.mean_a)} vs B {_fmt(self.mean_b)}; {ratio}difference "
            f"{_fmt(self.difference)}{interval(self.difference_low, self.difference_high)}; "
            f"A better in {self.wins}, worse in {self.losses}, tied {self.ties}; "
            f"Wilcoxon p = {p}{detectable}"
        )


def compare(
    a: Sequence[float],
    b: Sequence[float],
    *,
    metric: str = "value",
    lower_is_better: bool | None = None,
    confidence: float = 0.95,
    resamples: int = 9999,
    seed: int = 0,
) -> Comparison:
    """Compare paired values ``a[i]`` and ``b[i]`` (the same seed) on ``metric``.

    ``lower_is_better`` defaults to whether ``metric`` is in :data:`LOWER_IS_BETTER`.

    Raises:
        ValueError: If the sequences differ in length or hold fewer than two pairs.
    """
    x, y = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError(f"compare: {len(a)} values for A, {len(b)} for B; pair them by seed")
    if len(x) < 2:
        raise ValueError(f"compare: {len(x)} pair(s); at least 2 seeds are needed")
    lower = metric in LOWER_IS_BETTER if lower_is_better is None else lower_is_better
    diff = x - y
    wins = int(np.sum(diff < 0)) if lower else int(np.sum(diff > 0))
    ties = int(np.sum(diff == 0))
    mean_a, mean_b = float(x.mean()), float(y.mean())
    ratio = mean_a / mean_b if mean_b != 0 else None

    def mean_difference(u: np.ndarray, v: np.ndarray, axis: int = -1) -> np.ndarray:
        return np.asarray(np.mean(u, axis=axis) - np.mean(v, axis=axis))

    def mean_ratio(u: np.ndarray, v: np.ndarray, axis: int = -1) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.asarray(np.mean(u, axis=axis) / np.mean(v, axis=axis))

    d_low, d_high = _paired_interval(x, y, mean_difference, confidence, resamples, seed)
    r_low, r_high = (
        _paired_interval(x, y, mean_ratio, confidence, resamples, seed)
        if ratio is not None
        else (None, None)
    )
    p_value = float(stats.wilcoxon(x, y).pvalue) if np.any(diff != 0) else None
    return Comparison(
        metric=metric,
        n=len(x),
        mean_a=mean_a,
        mean_b=mean_b,
        ratio=ratio,
        ratio_low=r_low,
        ratio_high=r_high,
        difference=mean_a - mean_b,
        difference_low=d_low,
        difference_high=d_high,
        wins=wins,
        losses=len(x) - wins - ties,
        ties=ties,
        p_value=p_value,
        better="lower" if lower else "higher",
        detectable=detectable_difference(diff),
    )


def detectable_difference(
    differences: np.ndarray, *, alpha: float = 0.05, power: float = 0.8
) -> float | None:
    """The smallest mean of ``differences`` a two-sided paired t-test at ``alpha`` finds
    with probability ``power``, at the differences' own standard deviation; None when
    they do not vary (every pair tied, or moved alike)."""
    spread = float(np.std(differences, ddof=1))
    if not math.isfinite(spread) or np.allclose(differences, differences[0]):
        return None
    effect = TTestPower().solve_power(nobs=len(differences), alpha=alpha, power=power)
    return float(effect) * spread


def _paired_interval(
    x: np.ndarray,
    y: np.ndarray,
    statistic: Any,
    confidence: float,
    resamples: int,
    seed: int,
) -> tuple[float | None, float | None]:
    """The paired bootstrap interval of ``statistic``: BCa, else percentile, else None.

    BCa needs a jackknife with some spread; with many tied pairs (or a resample whose
    denominator is 0) it comes back NaN, and the percentile interval is the honest
    fallback."""
    for method in ("BCa", "percentile"):
        with np.errstate(divide="ignore", invalid="ignore"), warnings.catch_warnings():
            # scipy warns when BCa degenerates; the NaN it returns is handled below.
            warnings.simplefilter("ignore")
            try:
                result = stats.bootstrap(
                    (x, y),
                    statistic,
                    paired=True,
                    vectorized=True,
                    confidence_level=confidence,
                    n_resamples=resamples,
                    method=method,
                    rng=np.random.default_rng(seed),
                )
            except ValueError:
                continue
        low, high = float(result.confidence_interval.low), float(result.confidence_interval.high)
        if math.isfinite(low) and math.isfinite(high):
            return low, high
    return None, None


def paired_values(
    runs_a: Iterable[dict[str, Any]], runs_b: Iterable[dict[str, Any]], metric: str
) -> tuple[list[float], list[float], list[int]]:
    """The metric of runs A and B on the seeds (and targets) both have a value for.

    Returns (A's values, B's values, the seeds), in seed order."""

    def by_seed(runs: Iterable[dict[str, Any]]) -> dict[tuple[int, str], float]:
        found: dict[tuple[int, str], float] = {}
        for run in runs:
            value = run.get(metric)
            if isinstance(value, bool):
                value = float(value)
            if isinstance(value, int | float):
                found[(int(run["seed"]), _target_key(str(run.get("target", ""))))] = float(value)
        return found

    a, b = by_seed(runs_a), by_seed(runs_b)
    keys = sorted(set(a) & set(b))
    return [a[k] for k in keys], [b[k] for k in keys], [k[0] for k in keys]


def _target_key(target: str) -> str:
    """A target as runs are paired on it: a simulator file by its name, since the
    checkout it was read from (``sim:/work/main/corpora/...``) is not part of what was
    measured."""
    kind, sep, path = target.partition(":")
    return f"{kind}:{Path(path).name}" if sep and kind == "sim" and "/" in path else target


def against(
    runs: Sequence[dict[str, Any]], baseline: str = "random", metrics: Sequence[str] = HEADLINE
) -> list[Comparison]:
    """Every other selection in ``runs`` (one benchmark's) against ``baseline``, on each
    metric that both have on at least two seeds."""
    selections = list(dict.fromkeys(str(r["selection"]) for r in runs))
    if baseline not in selections:
        return []
    base = [r for r in runs if r["selection"] == baseline]
    found = []
    for selection in selections:
        if selection == baseline:
            continue
        mine = [r for r in runs if r["selection"] == selection]
        for metric in metrics:
            a, b, _ = paired_values(mine, base, metric)
            if len(a) >= 2:
                found.append(
                    compare(
                        a,
                        b,
                        metric=f"{metric}: {selection} vs {baseline}",
                        lower_is_better=metric in LOWER_IS_BETTER,
                    )
                )
    return found


def _fmt(value: float | None) -> str:
    if value is None:
        return "n/a"
    return f"{value:.3g}" if abs(value) < 1000 else f"{value:.0f}"


def _runs(paths: Sequence[Path], selection: str) -> list[dict[str, Any]]:
    runs: list[dict[str, Any]] = []
    for path in paths:
        try:
            data = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as error:
            raise SystemExit(
                f"error: {path}: not a readable benchmark JSON file ({error})"
            ) from None
        runs += [r for r in data.get("runs", []) if r.get("selection") == selection]
    if not runs:
        raise SystemExit(
            f"error: no runs of selection {selection!r} in {', '.join(map(str, paths))}; "
            "pass the selection the file holds (--a-selection / --b-selection)"
        )
    return runs


def main(argv: Sequence[str] | None = None) -> Comparison:
    """Compare two result files' runs on one metric; prints and returns the comparison."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("--a", type=Path, nargs="+", required=True, help="result JSON(s) of A")
    parser.add_argument("--b", type=Path, nargs="+", required=True, help="result JSON(s) of B")
    parser.add_argument("--a-selection", default="map-elites")
    parser.add_argument("--b-selection", default="random")
    parser.add_argument("--metric", default="top_k_true_bias", help="a RunResult field")
    args = parser.parse_args(argv)
    a, b, seeds = paired_values(
        _runs(args.a, args.a_selection), _runs(args.b, args.b_selection), args.metric
    )
    if len(a) < 2:
        raise SystemExit(
            f"error: --metric {args.metric}: {len(a)} seed(s) with a value in both A and B; "
            "compare runs of the same seeds on a metric both recorded"
        )
    result = compare(a, b, metric=args.metric)
    print(f"seeds {','.join(map(str, seeds))}")
    print(result.summary())
    return result


if __name__ == "__main__":
    main()
