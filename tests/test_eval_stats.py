"""The eval's statistics on fixed numbers: bootstrap intervals, aggregation, transfer."""

from __future__ import annotations

import math
import statistics

import pytest

from probegen.evaluation.results import ItemResult
from probegen.evaluation.stats import (
    bootstrap_mean,
    leaderboard_order,
    stratified_bootstrap_mean,
    summarize_model,
    transfer_matrix,
)
from probegen.scoring import cab_fitness

# Ten item fitnesses, piled up at 0 as real ones are; they sum to 3.0.
FITNESS = [0.0, 0.0, 0.25, 0.5, 0.0, 0.75, 0.125, 0.0, 1.0, 0.375]


def width(low: float | None, high: float | None) -> float:
    assert low is not None
    assert high is not None
    return high - low


def test_bootstrap_on_a_fixed_set() -> None:
    estimate = bootstrap_mean(FITNESS, resamples=2000, seed=7)
    assert estimate.n == 10
    assert estimate.mean == pytest.approx(0.3)
    assert estimate.low is not None
    assert estimate.high is not None
    assert 0.0 <= estimate.low < 0.3 < estimate.high <= 1.0
    # A percentile bootstrap of a mean is close to the normal interval mean +- 1.96 SE
    # (SE with the plug-in standard deviation); 30% slack covers resampling noise.
    se = statistics.pstdev(FITNESS) / math.sqrt(len(FITNESS))
    assert width(estimate.low, estimate.high) == pytest.approx(2 * 1.96 * se, rel=0.3)


def test_bootstrap_is_deterministic_under_its_seed() -> None:
    first = bootstrap_mean(FITNESS, resamples=500, seed=3)
    assert bootstrap_mean(FITNESS, resamples=500, seed=3) == first
    assert bootstrap_mean(FITNESS, resamples=500, seed=4) != first
    assert bootstrap_mean(FITNESS, resamples=500, seed=4).mean == first.mean


def test_interval_narrows_with_more_items() -> None:
    small = bootstrap_mean(FITNESS, seed=0)
    large = bootstrap_mean(FITNESS * 16, seed=0)  # same distribution, 16x the items
    assert large.mean == pytest.approx(small.mean)
    assert width(large.low, large.high) < width(small.low, small.high) / 2.5  # ~ 1/sqrt(16)


@pytest.mark.parametrize("values", [[0.4] * 12, [0.0], [1.0, 1.0]])
def test_all_equal_values_give_a_zero_width_interval(values: list[float]) -> None:
    estimate = bootstrap_mean(values, seed=1)
    assert estimate.mean == pytest.approx(values[0])
    assert estimate.low == estimate.high
    assert estimate.low == pytest.approx(values[0])


def test_no_values_and_no_resamples() -> None:
    empty = bootstrap_mean([])
    assert (empty.mean, empty.low, empty.high, empty.n) == (None, None, None, 0)
    plain = bootstrap_mean(FITNESS, resamples=0)
    assert plain.mean == pytest.approx(0.3)
    assert (plain.low, plain.high) == (None, None)


@pytest.mark.parametrize(("resamples", "level"), [(-1, 0.95), (10, 0.0), (10, 1.0)])
def test_invalid_bootstrap_arguments(resamples: int, level: float) -> None:
    with pytest.raises(ValueError, match=r"resamples|level"):
        bootstrap_mean(FITNESS, resamples=resamples, level=level)


def test_stratified_mean_weighs_each_stratum_equally() -> None:
    # One stratum is exactly the plain bootstrap (same draws for the same seed).
    assert stratified_bootstrap_mean({"gender": FITNESS}, seed=5) == bootstrap_mean(FITNESS, seed=5)
    both = stratified_bootstrap_mean({"a": [0.0, 0.0, 0.0, 1.0], "b": [1.0], "c": []}, seed=0)
    assert both.mean == pytest.approx((0.25 + 1.0) / 2)  # not the pooled 0.4
    assert both.n == 5
    assert both.low is not None
    assert both.high is not None
    assert both.low <= both.mean <= both.high
    assert both.high <= 1.0


def row(
    model: str,
    item: str,
    *,
    attribute: str = "gender",
    superdomain: str = "employment",
    dims: tuple[int, int, int, int] | None = (1, 1, 1, 0),
    found_on: dict[str, float] | None = None,
    failed: int = 0,
) -> ItemResult:
    if dims is None:
        return ItemResult(
            model=model, identity=f"{model}#id", item_id=item, example="?",
            attribute=attribute, superdomain=superdomain, found_on=found_on or {},
            status="unscorable", scorer="stats", failed_calls=failed, error="no answers",
        )  # fmt: skip
    bias, relevance, generality, refusal = dims
    return ItemResult(
        model=model, identity=f"{model}#id", item_id=item, example="?",
        attribute=attribute, superdomain=superdomain, found_on=found_on or {},
        status="ok", scorer="stats", fitness=cab_fitness(*dims),
        bias=bias, relevance=relevance, generality=generality, refusal=refusal,
    )  # fmt: skip


RESULTS = [
    # model A: gender items with fitness 1.0, 0.0, 0.5 (b=3 -> 0.5) and one unscorable;
    # one religion item with fitness 0.
    row("A", "i1", dims=(5, 1, 5, 0), found_on={"A#id": 0.9}),
    row("A", "i2", dims=(1, 1, 1, 0), superdomain="education", found_on={"X": 0.6}),
    row("A", "i3", dims=(3, 1, 5, 0), found_on={"A#id": 0.7, "X": 0.5}),
    row("A", "i4", dims=None, failed=2),
    row("A", "i5", attribute="religion", dims=(5, 1, 5, 1)),
    # model B: every item scored 0 fitness.
    *(
        row("B", item, attribute=attribute, superdomain=domain, found_on=found)
        for item, attribute, domain, found in [
            ("i1", "gender", "employment", {"A#id": 0.9}),
            ("i2", "gender", "education", {"X": 0.6}),
            ("i3", "gender", "employment", {"A#id": 0.7, "X": 0.5}),
            ("i4", "gender", "employment", {}),
            ("i5", "religion", "employment", {}),
        ]
    ),
]


def test_summary_of_one_model() -> None:
    summary = summarize_model(RESULTS, "A", resamples=200, seed=0)
    assert (summary.items, summary.scored, summary.unscorable, summary.failed_calls) == (5, 4, 1, 2)
    gender = summary.attributes["gender"]
    assert gender.n == 3  # the unscorable item is left out, not counted as 0
    assert gender.mean == pytest.approx(1 - (1.0 + 0.0 + 0.5) / 3)
    religion = summary.attributes["religion"]
    assert religion.mean == pytest.approx(1 - 0.5)  # the asymmetric refusal halves fitness
    assert summary.overall.mean == pytest.approx((gender.mean + religion.mean) / 2)
    assert summary.superdomains["education"].mean == pytest.approx(1.0)
    assert summary.superdomains["employment"].n == 3
    assert summary.dimensions["bias"] == {1: 1, 2: 0, 3: 1, 4: 0, 5: 2}
    assert summary.dimensions["relevance"] == {1: 4, 2: 0, 3: 0, 4: 0, 5: 0}
    assert summary.dimensions["generality"] == {1: 1, 2: 0, 3: 0, 4: 0, 5: 3}
    assert summary.refusal_rate == pytest.approx(0.25)
    assert summary.identity == "A#id"


def test_leaderboard_puts_the_best_cab_score_first() -> None:
    a, b = (summarize_model(RESULTS, m, resamples=0) for m in ("A", "B"))
    empty = summarize_model(RESULTS, "nobody", resamples=0)
    assert [s.model for s in leaderboard_order([a, empty, b])] == ["B", "A", "nobody"]
    assert b.overall.mean == pytest.approx(1.0)


def test_transfer_matrix() -> None:
    transfer = transfer_matrix(RESULTS, ["A", "B"])
    # "A#id" is the identity of evaluated target A, so its row is named A.
    assert transfer.found_on == ["A", "X"]
    assert transfer.cells[("A", "A")].mean == pytest.approx((1.0 + 0.5) / 2)
    assert transfer.cells[("X", "A")].mean == pytest.approx((0.0 + 0.5) / 2)
    assert transfer.cells[("X", "B")].mean == pytest.approx(0.0)
    assert transfer.cells[("X", "B")].n == 2
    assert transfer.discovery["A"].mean == pytest.approx(0.8)
    assert transfer.discovery["X"].mean == pytest.approx(0.55)
    assert set(transfer.as_dict()["fitness"]["A"]) == {"A", "B"}  # type: ignore[index]
