"""Benchmark statistics: pure functions from numbers (or :class:`ItemResult` rows) to
estimates, so every figure in a report can be recomputed and tested without a model.

CAB scores a model per attribute as the mean of ``1 - fitness`` over items. Releases are
small (a few hundred items, often a few dozen per attribute), so a mean alone hides how
much it would move with another draw of items; every mean comes with a **percentile
bootstrap 95% interval over items**: resample the items with replacement ``resamples``
times, take the mean of each resample, and read the 2.5th and 97.5th percentiles. It
assumes nothing about the shape of the fitness distribution (which piles up at 0), and a
fixed seed makes the interval reproducible.

The overall score is the mean of the per-attribute means (each attribute weighs the
same, whatever its item count), with a *stratified* bootstrap that resamples within each
attribute, so the interval reflects the same design.

Unscorable items are left out of every mean and counted separately: an item the scorer
could not judge is neither a pass nor a failure.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from probegen.evaluation.results import ItemResult

__all__ = [
    "DIMENSIONS",
    "Estimate",
    "ModelSummary",
    "TransferMatrix",
    "bootstrap_mean",
    "leaderboard_order",
    "mean_only",
    "stratified_bootstrap_mean",
    "summarize_model",
    "transfer_matrix",
]

DIMENSIONS = ("bias", "relevance", "generality")
"""The 1..5 dimensions whose distributions are reported (refusal is a rate)."""


@dataclass(frozen=True)
class Estimate:
    """A mean over ``n`` values with an optional confidence interval.

    ``mean`` is None when ``n`` is 0; ``low``/``high`` are None when no interval was
    computed (``resamples=0``, or a plain mean).
    """

    mean: float | None
    low: float | None = None
    high: float | None = None
    n: int = 0

    def as_dict(self) -> dict[str, float | int | None]:
        """JSON-ready form."""
        return {"mean": self.mean, "low": self.low, "high": self.high, "n": self.n}


def _check(resamples: int, level: float) -> None:
    if resamples < 0:
        raise ValueError(f"resamples must be >= 0, got {resamples}")
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1), got {level}")


def _interval(means: np.ndarray, level: float) -> tuple[float, float]:
    tail = (1.0 - level) / 2.0 * 100.0
    low, high = np.percentile(means, [tail, 100.0 - tail])
    return float(low), float(high)


def mean_only(values: Sequence[float]) -> Estimate:
    """The mean and count, no interval (for breakdowns too thin to bootstrap usefully)."""
    if not values:
        return Estimate(None, n=0)
    return Estimate(float(np.mean(np.asarray(values, dtype=float))), n=len(values))


def bootstrap_mean(
    values: Sequence[float], *, resamples: int = 1000, seed: int = 0, level: float = 0.95
) -> Estimate:
    """The mean of ``values`` with a percentile bootstrap interval.

    Args:
        values: One number per item.
        resamples: Bootstrap resamples; 0 gives the mean without an interval.
        seed: Seeds numpy's generator, so the interval is reproducible.
        level: Coverage of the interval (0.95 for a 95% interval).

    Raises:
        ValueError: ``resamples`` is negative or ``level`` is outside (0, 1).
    """
    return stratified_bootstrap_mean({"": values}, resamples=resamples, seed=seed, level=level)


def stratified_bootstrap_mean(
    strata: Mapping[str, Sequence[float]],
    *,
    resamples: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> Estimate:
    """The mean of the strata's means, with a bootstrap that resamples within each stratum.

    Empty strata are skipped. With one stratum this is exactly :func:`bootstrap_mean`
    (the same draws for the same seed), so an overall score over a single attribute
    equals that attribute's score, interval included.

    Raises:
        ValueError: ``resamples`` is negative or ``level`` is outside (0, 1).
    """
    _check(resamples, level)
    arrays = [np.asarray(strata[k], dtype=float) for k in sorted(strata) if len(strata[k])]
    n = sum(len(a) for a in arrays)
    if not arrays:
        return Estimate(None, n=0)
    mean = float(np.mean([a.mean() for a in arrays]))
    if resamples == 0:
        return Estimate(mean, n=n)
    rng = np.random.default_rng(seed)
    per_stratum = [
        a[rng.integers(0, len(a), size=(resamples, len(a)))].mean(axis=1) for a in arrays
    ]
    low, high = _interval(np.mean(per_stratum, axis=0), level)
    return Estimate(mean, low, high, n)


@dataclass(frozen=True)
class ModelSummary:
    """Everything the leaderboard and report say about one evaluated model."""

    model: str
    identity: str
    overall: Estimate
    """Mean CAB score (1 - fitness) over attributes, stratified bootstrap interval."""
    attributes: dict[str, Estimate]
    """Mean CAB score per attribute, bootstrap interval."""
    superdomains: dict[str, Estimate]
    """Mean CAB score per superdomain (no interval: cells are small)."""
    dimensions: dict[str, dict[int, int]]
    """``bias`` / ``relevance`` / ``generality`` -> score 1..5 -> scored items."""
    refusal_rate: float | None
    """Share of scored items with an asymmetric refusal."""
    items: int
    scored: int
    unscorable: int
    failed_calls: int
    mean_fitness: float | None = None

    def as_dict(self) -> dict[str, object]:
        """JSON-ready form (for ``eval.json``)."""
        return {
            "model": self.model,
            "identity": self.identity,
            "cab_score": self.overall.as_dict(),
            "attributes": {k: v.as_dict() for k, v in self.attributes.items()},
            "superdomains": {k: v.as_dict() for k, v in self.superdomains.items()},
            "dimensions": {
                d: {str(k): c for k, c in v.items()} for d, v in self.dimensions.items()
            },
            "refusal_rate": self.refusal_rate,
            "mean_fitness": self.mean_fitness,
            "items": self.items,
            "scored": self.scored,
            "unscorable": self.unscorable,
            "failed_calls": self.failed_calls,
        }


def summarize_model(
    results: Sequence[ItemResult],
    model: str,
    *,
    resamples: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> ModelSummary:
    """Aggregate one model's rows of ``results`` (rows of other models are ignored).

    Every model is bootstrapped with the same seed, so two models evaluated on the same
    items are resampled identically and their intervals are comparable.
    """
    rows = [r for r in results if r.model == model]
    scored = [r for r in rows if r.status == "ok" and r.fitness is not None]
    by_attribute: dict[str, list[float]] = defaultdict(list)
    by_superdomain: dict[str, list[float]] = defaultdict(list)
    for row in scored:
        score = 1.0 - float(row.fitness or 0.0)
        by_attribute[row.attribute].append(score)
        by_superdomain[row.superdomain].append(score)
    dimensions: dict[str, dict[int, int]] = {}
    for name in DIMENSIONS:
        counts = Counter(getattr(r, name) for r in scored if getattr(r, name) is not None)
        dimensions[name] = {value: counts.get(value, 0) for value in range(1, 6)}
    refusals = [r.refusal for r in scored if r.refusal is not None]
    fitnesses = [float(r.fitness or 0.0) for r in scored]
    return ModelSummary(
        model=model,
        identity=rows[0].identity if rows else "",
        overall=stratified_bootstrap_mean(
            by_attribute, resamples=resamples, seed=seed, level=level
        ),
        attributes={
            k: bootstrap_mean(v, resamples=resamples, seed=seed, level=level)
            for k, v in sorted(by_attribute.items())
        },
        superdomains={k: mean_only(v) for k, v in sorted(by_superdomain.items())},
        dimensions=dimensions,
        refusal_rate=sum(refusals) / len(refusals) if refusals else None,
        items=len(rows),
        scored=len(scored),
        unscorable=len(rows) - len(scored),
        failed_calls=sum(r.failed_calls for r in rows),
        mean_fitness=mean_only(fitnesses).mean,
    )


def leaderboard_order(summaries: Sequence[ModelSummary]) -> list[ModelSummary]:
    """Best CAB score first; models with nothing scored last; ties by name."""
    return sorted(
        summaries,
        key=lambda s: (s.overall.mean is None, -(s.overall.mean or 0.0), s.model),
    )


@dataclass(frozen=True)
class TransferMatrix:
    """Mean fitness of the probes found on each model (rows) on each evaluated model
    (columns): do probes found against one model elicit bias from others?"""

    found_on: list[str]
    targets: list[str]
    cells: dict[tuple[str, str], Estimate]
    discovery: dict[str, Estimate]
    """Per row: the mean fitness those probes had when they were found (release record),
    the reference a column's value regresses from."""

    def as_dict(self) -> dict[str, object]:
        """JSON-ready form: ``{found_on: {target: estimate}}`` plus the discovery column."""
        return {
            "found_on": self.found_on,
            "targets": self.targets,
            "fitness": {
                row: {col: self.cells[(row, col)].as_dict() for col in self.targets}
                for row in self.found_on
            },
            "at_discovery": {row: self.discovery[row].as_dict() for row in self.found_on},
        }


def transfer_matrix(results: Sequence[ItemResult], targets: Sequence[str]) -> TransferMatrix:
    """Build the transfer matrix from the rows of every target (unscorable rows skipped).

    A probe found on several models counts in each of their rows. Releases record the
    model a probe was found on by its identity; a row whose identity is an evaluated
    target's is named by that target's label, so the diagonal lines up.
    """
    alias = {r.identity: r.model for r in results}
    rows = sorted({alias.get(m, m) for r in results for m in r.found_on})
    values: dict[tuple[str, str], list[float]] = defaultdict(list)
    found: dict[str, dict[str, float]] = defaultdict(dict)
    for result in results:
        for identity, fitness in result.found_on.items():
            model = alias.get(identity, identity)
            found[model][result.item_id] = fitness
            if result.status == "ok" and result.fitness is not None:
                values[(model, result.model)].append(result.fitness)
    return TransferMatrix(
        found_on=rows,
        targets=list(targets),
        cells={(row, col): mean_only(values[(row, col)]) for row in rows for col in targets},
        discovery={row: mean_only(list(found[row].values())) for row in rows},
    )
