"""The paired comparison the search benchmarks report (benchmarks/compare.py)."""

from __future__ import annotations

import importlib.util
import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest

_spec = importlib.util.spec_from_file_location(
    "benchmark_compare", Path(__file__).resolve().parent.parent / "benchmarks" / "compare.py"
)
assert _spec is not None
assert _spec.loader is not None
compare_module = importlib.util.module_from_spec(_spec)
sys.modules["benchmark_compare"] = compare_module  # dataclasses look their module up here
_spec.loader.exec_module(compare_module)


def test_a_uniform_doubling_is_a_ratio_of_two_with_a_tight_interval() -> None:
    result = compare_module.compare([2.0, 4.0, 6.0, 8.0], [1.0, 2.0, 3.0, 4.0], metric="x")
    assert result.ratio == pytest.approx(2.0)
    assert result.ratio_low == pytest.approx(2.0)
    assert result.ratio_high == pytest.approx(2.0)
    assert result.difference == pytest.approx(2.5)
    assert (result.wins, result.losses, result.ties) == (4, 0, 0)
    # Exact signed-rank test, 4 pairs all one way: p = 2 / 2**4.
    assert result.p_value == pytest.approx(0.125)


def test_the_interval_covers_the_ratio_and_widens_with_noise() -> None:
    a = [0.5, 0.1, 0.7, 0.3, 0.4, 0.9, 0.2, 0.6]
    b = [0.2, 0.2, 0.3, 0.1, 0.3, 0.2, 0.25, 0.3]
    result = compare_module.compare(a, b, metric="top_k_true_bias")
    assert result.ratio is not None
    assert result.ratio_low is not None
    assert result.ratio_high is not None
    assert result.ratio_low < result.ratio < result.ratio_high
    assert result.difference_low is not None
    assert result.difference_high is not None
    assert result.difference_low < result.difference < result.difference_high
    assert "top_k_true_bias (higher is better), 8 paired seeds" in result.summary()


def test_fewer_queries_to_a_hit_count_as_wins() -> None:
    result = compare_module.compare([100, 150, 90], [200, 140, 300], metric="first_hit_queries")
    assert result.better == "lower"
    assert (result.wins, result.losses) == (2, 1)
    assert result.ratio == pytest.approx(340 / 640)


def test_all_ties_have_no_p_value_and_a_zero_baseline_no_ratio() -> None:
    tied = compare_module.compare([0.3, 0.4], [0.3, 0.4])
    assert tied.p_value is None
    assert tied.ties == 2
    assert "every pair ties" in tied.summary()
    zero = compare_module.compare([0.1, 0.2], [0.0, 0.0])
    assert zero.ratio is None
    assert zero.ratio_low is None
    assert "ratio undefined" in zero.summary()
    assert zero.difference_low is not None
    assert math.isfinite(zero.difference_low)


def test_the_detectable_difference_shrinks_with_seeds_and_scales_with_spread() -> None:
    # Differences of standard deviation 1: a paired t-test at 5% with 80% power needs a
    # mean difference of about 0.66 sd with 20 pairs (Cohen's tables), 0.32 with 80.
    rng = np.random.default_rng(0)
    twenty = rng.standard_normal(20)
    twenty = (twenty - twenty.mean()) / twenty.std(ddof=1)
    result = compare_module.compare(list(twenty + 1.0), [1.0] * 20, metric="x")
    assert result.detectable == pytest.approx(0.66, abs=0.01)
    assert "detectable with 80% power: 0.66" in result.summary()
    eighty = np.tile(twenty, 4)
    assert compare_module.detectable_difference(eighty / eighty.std(ddof=1)) == pytest.approx(
        0.32, abs=0.01
    )
    assert compare_module.detectable_difference(3 * twenty) == pytest.approx(3 * 0.66, abs=0.03)
    assert compare_module.compare([0.3, 0.4, 0.5], [0.2, 0.3, 0.4]).detectable is None


def test_mismatched_or_single_pairs_are_refused() -> None:
    with pytest.raises(ValueError, match="pair them by seed"):
        compare_module.compare([1.0, 2.0], [1.0])
    with pytest.raises(ValueError, match="at least 2 seeds"):
        compare_module.compare([1.0], [1.0])


def test_runs_pair_by_seed_and_target_and_skip_missing_values() -> None:
    a = [
        {"selection": "map-elites", "seed": 2, "target": "t", "m": 0.4},
        {"selection": "map-elites", "seed": 1, "target": "t", "m": 0.2},
        {"selection": "map-elites", "seed": 3, "target": "t", "m": None},
    ]
    b = [
        {"selection": "random", "seed": 1, "target": "t", "m": 0.1},
        {"selection": "random", "seed": 2, "target": "t", "m": 0.3},
        {"selection": "random", "seed": 3, "target": "t", "m": 0.3},
        {"selection": "random", "seed": 2, "target": "other", "m": 9.0},
    ]
    values_a, values_b, seeds = compare_module.paired_values(a, b, "m")
    assert (values_a, values_b, seeds) == ([0.2, 0.4], [0.1, 0.3], [1, 2])
    found = compare_module.against(a + b, metrics=("m",))
    assert [c.metric for c in found] == ["m: map-elites vs random"]
    assert compare_module.against(a, metrics=("m",)) == []  # no baseline in the runs


def test_the_script_compares_two_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    def write(name: str, selection: str, values: list[float]) -> Path:
        runs = [
            {"selection": selection, "seed": i, "target": "g", "top_k_true_bias": v}
            for i, v in enumerate(values)
        ]
        path = tmp_path / name
        path.write_text(json.dumps({"runs": runs}))
        return path

    flag = write("flag.json", "map-elites", [0.5, 0.6, 0.4])
    default = write("default.json", "map-elites", [0.25, 0.3, 0.2])
    result = compare_module.main(
        ["--a", str(flag), "--b", str(default), "--b-selection", "map-elites"]
    )
    assert result.ratio == pytest.approx(2.0)
    assert "seeds 0,1,2" in capsys.readouterr().out
    with pytest.raises(SystemExit, match="no runs of selection 'random'"):
        compare_module.main(["--a", str(flag), "--b", str(default)])
    with pytest.raises(SystemExit, match="--metric recall_at_k: 0 seed"):
        compare_module.main(
            ["--a", str(flag), "--b", str(default), "--b-selection", "map-elites",
             "--metric", "recall_at_k"]
        )  # fmt: skip


def test_a_simulator_file_pairs_by_name_not_by_the_checkout_it_was_read_from() -> None:
    a = [{"seed": 0, "target": "sim:/work/main/corpora/simulator/graded-care.yaml", "m": 0.5}]
    b = [
        {"seed": 0, "target": "sim:/tmp/other/corpora/simulator/graded-care.yaml", "m": 0.2},
        {"seed": 0, "target": "sim:/tmp/other/corpora/simulator/graded-money.yaml", "m": 9.0},
    ]
    assert compare_module.paired_values(a, b, "m") == ([0.5], [0.2], [0])
