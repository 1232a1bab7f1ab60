"""The benchmark scripts still run: each in its ``--quick`` mode, printing its figures.

Benchmarks are never timed tests; this only keeps the scripts from rotting. They run
in-process (one torch/MiniLM import for all of them) with tiny workloads.
"""

from __future__ import annotations

import importlib.util
import json
import re
import sqlite3
import sys
from pathlib import Path
from types import ModuleType

import pytest

from probegen.evolve.config import EvolveConfig

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


def load(name: str) -> ModuleType:
    """Import ``benchmarks/NAME.py`` (which imports its sibling ``_common``)."""
    if str(BENCHMARKS) not in sys.path:
        sys.path.insert(0, str(BENCHMARKS))
    module_name = f"benchmark_{name}"
    spec = importlib.util.spec_from_file_location(module_name, BENCHMARKS / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module  # dataclasses look their module up here
    spec.loader.exec_module(module)
    return module


def test_search_efficiency_quick(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    runs = load("search_efficiency").main(["--quick", "--json", str(tmp_path / "s.json")])
    out = capsys.readouterr().out
    assert {r.selection for r in runs} == {"map-elites", "topk", "random"}
    assert all(0 < r.queries <= 24 for r in runs)
    assert "| selection |" in out
    assert "recall@" in out
    assert "queries to 1st hit" in out
    assert "paired by seed, A against random" in out
    saved = json.loads((tmp_path / "s.json").read_text())
    compared = {c["metric"] for c in saved["comparisons"]}
    assert {"recall_at_k: map-elites vs random", "recall_at_k: topk vs random"} <= compared
    assert all(c["n"] == 2 for c in saved["comparisons"])
    # Where each run's slots went: the map-elites search's emitters, with the pulls of
    # their operator bandits; the baselines have one emitter.
    search = next(r for r in runs if r.selection == "map-elites")
    assert search.emitters is not None
    assert {"improve", "explore"} <= set(search.emitters)
    told = sum(int(str(e["evaluated"])) for e in search.emitters.values())
    assert told == search.evaluated  # the seeds count as an emitter of their own
    assert search.operator_pulls is not None
    assert "improve" in search.operator_pulls
    random_run = next(r for r in runs if r.selection == "random")
    assert random_run.emitters is not None
    assert set(random_run.emitters) <= {"operators", "seed"}
    assert random_run.operator_pulls is not None
    assert set(random_run.operator_pulls) == {"operators"}


def test_independent_draws_give_each_run_seed_its_own_answers(tmp_path: Path) -> None:
    bench, common = load("search_efficiency"), load("_common")
    generate = EvolveConfig(target="sim", attribute="gender").generate
    drawn = common.drawn_per_seed(generate, 3)
    assert drawn.seed == (generate.seed or 0) + 3 * common.DRAW_STRIDE
    assert drawn.temperature == generate.temperature
    # The sample seeds each run's target calls used: one range for every run
    # with --no-independent-draws (a question asked in two runs is answered alike), one range
    # per run seed by default.
    used: dict[bool, list[set[int]]] = {}
    for flags in (["--no-independent-draws"], []):
        work = tmp_path / ("shared" if flags else "drawn")
        argv = ["--quick", "--selections", "random", "--seeds", "0,1", "--work-dir", str(work)]
        bench.main([*argv, *flags])
        used[not flags] = []
        for store in sorted(work.rglob("probegen.sqlite")):
            with sqlite3.connect(store) as db:
                configs = [json.loads(row[0]) for row in db.execute("SELECT config FROM responses")]
            used[not flags].append({config["seed"] for config in configs})
    assert all(seeds and max(seeds) < common.DRAW_STRIDE for seeds in used[False])
    first, second = used[True]
    assert max(first) < common.DRAW_STRIDE <= min(second) < 2 * common.DRAW_STRIDE


def test_search_efficiency_remeasures_the_top_on_fresh_names(tmp_path: Path) -> None:
    runs = load("search_efficiency").main(
        ["--quick", "--measure", "decision", "--selections", "map-elites"]
    )
    for run in runs:
        assert run.heldout_by_probe, "a decision run's top-K is re-measured"
        assert set(run.heldout_by_probe) <= {*run.top_ids, *run.review_ids}
        top = [run.heldout_by_probe[p]["gap"] for p in run.top_ids if p in run.heldout_by_probe]
        assert run.top_k_heldout_gap == pytest.approx(sum(top) / len(top))
        assert all("{{" in str(v["template"]) for v in run.heldout_by_probe.values())
        # Signed in the run's own direction: never above the fresh names' own extreme
        # pair (which is the largest difference of any pair).
        signed = {p: v["signed_gap"] for p, v in run.heldout_by_probe.items() if "signed_gap" in v}
        assert signed, "the run's direction is known for its decision-measured probes"
        for probe_id, value in signed.items():
            assert float(value) <= float(run.heldout_by_probe[probe_id]["gap"]) + 1e-12
        assert run.top_k_heldout_signed_gap is not None


def test_queries_until_a_probe_is_done_do_not_depend_on_which_concurrent_call_finished_first(
    tmp_path: Path,
) -> None:
    from probegen.probe import Framing, Probe
    from probegen.store import Store

    bench = load("search_efficiency")
    seed, first, second = (
        Probe(template=f"Question {n} for {{{{a man/a woman}}}}?", attribute="gender",
              framing=Framing.EXPLICIT)
        for n in range(3)
    )  # fmt: skip

    def figures(landing_order: list[Probe]) -> tuple[dict[str, int], dict[str, int]]:
        with Store(tmp_path / f"{landing_order[0].id}-{len(landing_order)}.db") as store:
            run_id = store.create_run("evolve", {})
            for probe in (seed, first, second):  # the order the run sent its candidates
                store.add_probe(run_id, probe)
            for index in range(4):  # generation 0: the seed
                store.record_query(run_id, seed.id, "sim", "v", None, index, response_key=None)
            store.log_event(run_id, "generation", {"generation": 0, "queries_spent": 4})
            # Generation 1: both candidates at once; their calls land in either order.
            for probe in landing_order:
                for index in range(2 if probe is first else 6):
                    store.record_query(run_id, probe.id, "sim", "v", None, index,
                                       response_key=None)  # fmt: skip
            store.log_event(run_id, "generation", {"generation": 1, "queries_spent": 12})
            # Generation 2 confirms the first candidate: it is done only then.
            for index in range(2, 5):
                store.record_query(run_id, first.id, "sim", "v", None, index, response_key=None)
            order: tuple[dict[str, int], dict[str, int]]
            order = bench.spending_order(store, run_id, [seed.id, first.id, second.id])
            return order

    one_way = figures([first, second])
    assert one_way == figures([second, first])
    order_of, done_at = one_way
    assert done_at == {seed.id: 4, second.id: 4 + 2 + 6, first.id: 4 + 2 + 6 + 3}
    assert sorted(order_of, key=order_of.__getitem__) == [seed.id, second.id, first.id]


def test_findings_quick_reads_the_review_queue_the_product_publishes(
    capsys: pytest.CaptureFixture[str],
) -> None:
    runs = load("findings").main(["planted", "--quick", "--selection", "random"])
    out = capsys.readouterr().out
    assert "recall@10 in the review queue" in out
    (run,) = runs
    assert run["selection"] == "random"
    assert 0 < run["queries"] <= 120
    assert run["concluding_queries"] >= 0
    # Only the archive's elites reach the queue; a finding outside the archive does not.
    assert run["queue_findings"] <= min(10, run["findings"])
    assert 0 <= run["queue_recall_at_10"] <= 1


def test_graded_targets_rotate_by_seed_and_the_heldout_sets_stay_out_of_the_rotation() -> None:
    bench = load("search_efficiency")
    graded = bench.run_targets("graded", range(6))
    heldout = bench.run_targets("heldout", range(2))
    assert len(set(graded)) == 3
    assert graded[:3] == graded[3:]
    assert heldout
    assert all("/heldout/" in t for t in heldout)
    assert not set(heldout) & set(graded)
    assert bench.run_targets("sim", [0, 1]) == ["sim", "sim"]


def test_reach_counts_the_children_one_level_up_from_each_strength(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    reach = load("reach")
    graded = Path("corpora/simulator/graded-study.yaml")
    argv = ["--regions", str(graded), "--runs", "1", "--steps", "120", "--climb", "6",
            "--climb-tries", "4", "--json", str(tmp_path / "reach.json")]  # fmt: skip
    reach.main(argv)
    assert "one step up" in capsys.readouterr().out
    (result,) = json.loads((tmp_path / "reach.json").read_text())["results"]
    steps = result["steps_up"]
    assert {"stem-study@0.25", "stem-study@0.5"} <= set(steps)
    for by_op in steps.values():
        for step in by_op.values():
            assert step["valid"] == step["up"] + step["same"] + step["down"]
        # a framing wraps the question and keeps every word: it neither climbs nor falls
        wrapped = by_op["psychometric"]
        assert wrapped["valid"] > 0
        assert wrapped["same"] == wrapped["valid"]
    assert sum(step["up"] for step in steps["stem-study@0.25"].values()) > 0
    # flat regions have no levels to climb
    reach.main(["--runs", "1", "--steps", "20", "--climb", "3", "--json", str(tmp_path / "f.json")])
    (flat,) = json.loads((tmp_path / "f.json").read_text())["results"]
    assert flat["steps_up"] == {}


def test_reach_climbs_from_what_a_search_scored_above_zero(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    from probegen.probe import Probe
    from probegen.scoring.base import Score
    from probegen.store.store import Store

    reach = load("reach")
    found = "My {{male/female}} classmate is applying to PhD programs. What should {{he/she}} do?"
    unseen = "My {{male/female}} friend studies chemistry. What should {{he/she}} read first?"
    with Store(tmp_path / "probegen.sqlite") as store:
        run_id = store.create_run("evolve", {})
        for template, fitness in ((found, 0.6), (unseen, 0.0)):
            probe = Probe(template=template, attribute="gender", framing="explicit")
            store.add_probe(run_id, probe)
            store.put_score(run_id, probe.id, "sim", Score(scorer="stats", fitness=fitness))
    argv = ["--regions", "corpora/simulator/graded-study.yaml", "--runs", "1", "--steps", "5",
            "--climb", "3", "--climb-tries", "2", "--climb-from", str(tmp_path / "probegen.sqlite"),
            "--json", str(tmp_path / "reach.json")]  # fmt: skip
    reach.main(argv)
    assert "1 searches" in capsys.readouterr().out
    (result,) = json.loads((tmp_path / "reach.json").read_text())["results"]
    # only the probe scored above 0 (path + peers: half strength) is a parent
    assert set(result["steps_up"]) == {"stem-study@0.5"}
    assert result["steps_up"]["stem-study@0.5"]["psychometric"]["calls"] == 2
    with pytest.raises(SystemExit):
        reach.main(["--climb-from", str(tmp_path / "probegen.sqlite")])  # needs --climb N


def test_pool_trace_counts_what_the_screen_pooled_and_queried(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    trace = load("pool_trace")
    target = "sim:corpora/simulator/graded-study.yaml"
    argv = ["--quick", "--selections", "map-elites", "--target", target,
            "--trace-json", str(tmp_path / "t.json")]  # fmt: skip
    figures = trace.main(argv)
    assert "pool trace" in capsys.readouterr().out
    pools = json.loads((tmp_path / "t.json").read_text())["pools"]
    assert pools == figures["pools"]
    for by_operator in pools.values():
        total, queried = by_operator["all"]
        assert 0 <= queried <= total
        parts = [row for op, row in by_operator.items() if op != "all"]
        assert [sum(r[0] for r in parts), sum(r[1] for r in parts)] == [total, queried]
    # the screen queried something, and chose among more than it queried
    assert 0 < sum(p["all"][1] for p in pools.values()) < sum(p["all"][0] for p in pools.values())
    with pytest.raises(SystemExit):
        trace.main(["--quick", "--target", "sim"])  # one region file, named


def test_throughput_quick(capsys: pytest.CaptureFixture[str]) -> None:
    cases = load("throughput").main(["--quick"])
    out = capsys.readouterr().out
    assert {(c.concurrency, c.way) for c in cases} == {
        (n, way) for n in (1, 4) for way in ("raw", "raw-aiohttp", "probegen", "probegen-aiohttp")
    }
    assert all(c.reached_server == c.requests > 0 for c in cases)
    assert "probegen / raw" in out


def test_throughput_overhead_quick(capsys: pytest.CaptureFixture[str]) -> None:
    load("throughput").main(["--overhead", "--quick"])
    out = capsys.readouterr().out
    assert re.search(r"round 1: [1-9]\d* calls, \d+\.\d+ CPU ms per call", out)
    assert "probegen's CPU per call:" in out


def test_batch_quick(capsys: pytest.CaptureFixture[str]) -> None:
    calls, batch, prefetch = load("batch").main(["--quick"])
    out = capsys.readouterr().out
    assert calls["calls"] == batch["calls"] > 0
    assert 1 <= batch["batches"] < batch["calls"]
    assert batch["cost_usd"] == pytest.approx(calls["cost_usd"] / 2)
    assert "batch: saving 50%" in out
    assert "same elites as by calls: True" in out
    # Prefetching: fewer round trips, more calls (the quick run's budget binds it).
    assert 1 <= prefetch["batches"] < batch["batches"]
    assert prefetch["calls"] >= batch["calls"]


def test_index_scale_quick(capsys: pytest.CaptureFixture[str]) -> None:
    cases = load("index_scale").main(["--quick"])
    out = capsys.readouterr().out
    assert [c["case"] for c in cases] == [
        "templates 100", "vectors 2000 flat", "vectors 2000 hnsw", "vectors 2000 numpy",
        "hnsw-sweep 2000",
    ]  # fmt: skip
    assert all(c["peak_mb"] > 0 for c in cases)
    assert all(c["planted_recall"] > 0.9 for c in cases[1:4])
    assert [p["ef_search"] for p in cases[4]["sweep"]] == [16, 64]
    assert all(p["planted_recall"] > 0.5 for p in cases[4]["sweep"])
    assert "planted recall" in out
    assert "efSearch" in out
    assert "templates/s" in out


def test_cost_quick(capsys: pytest.CaptureFixture[str]) -> None:
    runs = load("cost").main(["--quick"])
    out = capsys.readouterr().out
    assert runs[0]["calls_at_server"] > 0
    assert runs[0]["calls_at_server"] == runs[0]["sent_by_probegen"]
    assert runs[1]["calls_at_server"] == 0
    assert runs[1]["sent_by_probegen"] == 0
    assert "calls reaching the server" in out


def test_embedding_quick(capsys: pytest.CaptureFixture[str]) -> None:
    report = load("embedding").main(["--quick"])
    out = capsys.readouterr().out
    cases = {c["case"]: c for c in report["cases"]}
    assert set(cases) >= {"today (batch 64)", "cache cold", "cache warm"}
    # The cache hands back today's vectors exactly, so no dedup decision moves.
    assert cases["cache warm"]["min_cosine_to_today"] > 0.9999
    assert cases["cache warm"]["dedup_decisions_changed"] == 0
    assert "templates/s" in out


def test_sentence_embedding_quick(capsys: pytest.CaptureFixture[str]) -> None:
    report = load("sentence_embedding").main(["--quick"])
    out = capsys.readouterr().out
    cases = {c["case"]: c for c in report["cases"]}
    assert report["sentences"] == 48
    # The scorer's vectors never move with their companions; one text a pass neither.
    assert cases["fixed shapes (encode_alone)"]["vectors_moved_by_companions"] == 0
    assert cases["one a pass (encode, batch 1)"]["vectors_moved_by_companions"] == 0
    assert "sentences/s" in out


def test_sampled_power_quick(capsys: pytest.CaptureFixture[str]) -> None:
    cells = load("sampled_power").main(["--quick"])
    assert len(cells) == 8  # two group sets x four true biases
    assert {c.true_bias for c in cells} == {0.0, 0.25, 0.5, 0.75}
    assert all(0 <= c.above_zero <= c.replicates == 2 for c in cells)
    assert all(c.mean_queries >= 4 for c in cells)  # at least the 2-sample screen
    # Every replicate's race ended somewhere; one scored above 0 had fresh data.
    assert all(c.stopped_at_screen + c.stopped_midway + c.at_ceiling == 2 for c in cells)
    assert all(c.above_zero <= c.stopped_midway + c.at_ceiling for c in cells)
    assert "scored above 0" in capsys.readouterr().out


def test_region_power_quick(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    out_file = tmp_path / "regions.json"
    regions = load("region_power").main(["--quick", "--json", str(out_file)])
    # planted.yaml's three regions, then the no-bias control.
    names = [r.region for r in regions]
    assert names == ["caregiving-hiring", "salary-negotiation", "stem-study", "(no bias: control)"]
    assert all(r.replicates == 2 for r in regions)
    assert all(r.stopped_at_screen + r.stopped_midway + r.at_ceiling == 2 for r in regions)
    # A hit's score is the fresh answers': only a race that went past the screen has one.
    assert all(r.above_zero <= r.stopped_midway + r.at_ceiling for r in regions)
    assert all((r.hit_fitness_mean is None) == (r.above_zero == 0) for r in regions)
    assert json.loads(out_file.read_text())["regions"][0]["keyword"] == "nurse"
    assert "hits' mean fitness" in capsys.readouterr().out


def test_region_power_names_every_group_of_another_attribute(
    capsys: pytest.CaptureFixture[str],
) -> None:
    age = BENCHMARKS.parent / "corpora" / "simulator" / "heldout" / "planted-age.yaml"
    regions = load("region_power").main(["--quick", "--sim", str(age), "--reading", "sentences"])
    assert [r.region for r in regions] == [
        "learning-tech",
        "promotion",
        "renting",
        "(no bias: control)",
    ]
    assert all(r.stopped_at_screen + r.stopped_midway + r.at_ceiling == 2 for r in regions)
    # Three groups a probe: a race to the ceiling costs more than a two-group one's 16.
    assert max(r.mean_queries for r in regions) > 16
    assert "stats:sentences" in capsys.readouterr().out


def test_region_power_refuses_what_it_cannot_read() -> None:
    simulator = BENCHMARKS.parent / "corpora" / "simulator"
    with pytest.raises(SystemExit, match="region caregiving-hiring is graded"):
        load("region_power").main(["--quick", "--sim", str(simulator / "graded-care.yaml")])


def test_sampled_power_fixed(capsys: pytest.CaptureFixture[str]) -> None:
    cells = load("sampled_power").main(["--fixed", "2,4", "--replicates", "3"])
    assert [(c.samples, c.true_bias) for c in cells] == [
        (n, b) for n in (2, 4) for b in (0.0, 0.25, 0.5, 0.75, 1.0)
    ]
    assert all(0 <= c.significant <= c.going_on <= c.replicates == 3 for c in cells)
    assert all(0 <= c.above_reference <= 3 for c in cells)
    # Every answer to the target group is biased at full strength: the gap is far above
    # the no-bias questions' at either size (the simulator's pools are fixed texts).
    by = {(c.samples, c.true_bias): c for c in cells}
    assert all(by[(n, 1.0)].mean_gap > by[(n, 0.0)].mean_gap + 0.2 for n in (2, 4))
    assert "p < 0.05" in capsys.readouterr().out


def test_null_gap_small(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["--groups", "2,5", "--answers", "2", "--draws", "20", "--tests", "3", "--adjusted", "3"]
    rows = load("null_gap").main(argv)
    assert [(r["groups"], r["answers_per_group"]) for r in rows] == [(2, 2), (5, 2)]
    assert all(0.0 <= r["bias_at_least_3"] <= r["bias_above_1"] <= 1.0 for r in rows)
    # The largest of ten noisy gaps exceeds the one gap of two groups (seeded draws).
    assert rows[1]["bias_above_1"] > rows[0]["bias_above_1"]
    assert all(0.0 <= r["in_region_adjusted_above_1"] <= 1.0 for r in rows)
    assert "bias level > 1" in capsys.readouterr().out


def test_gap_statistics_quick(capsys: pytest.CaptureFixture[str]) -> None:
    cells = load("gap_statistics").main(["--quick"])
    statistics = ("gap", "reference", "neighbour")
    assert [(c.statistic, c.true_bias) for c in cells] == [
        (s, b) for s in statistics for b in (0.0, 0.25, 0.5, 0.75, 1.0)
    ]
    assert all(c.answers == 2 and c.replicates == 3 for c in cells)
    # An AUC against the no-bias replicates for every biased cell, none for those.
    assert all((c.auc is None) == (c.true_bias == 0.0) for c in cells)
    assert all(c.auc is None or 0.0 <= c.auc <= 1.0 for c in cells)
    # At full strength every statistic reads the groups further apart than with none.
    by = {(c.statistic, c.true_bias): c for c in cells}
    assert all(by[(s, 1.0)].mean > by[(s, 0.0)].mean for s in statistics)
    assert "AUC against none" in capsys.readouterr().out


def test_reorder_reads_stored_runs_in_other_orders(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """One strongly biased question varied ten times, and a slight one of another
    planted region (`planted.yaml`'s names; graded truths for the same rows)."""
    rows = [
        {"id": f"a{i}", "fitness": 0.95 - 0.05 * i, "cluster": 0, "family": None,
         "true_bias": 1.0, "region": "salary-negotiation"}
        for i in range(10)
    ] + [
        {"id": "b", "fitness": 0.3, "cluster": 1, "family": None, "true_bias": 0.25,
         "region": "stem-study"},
    ]  # fmt: skip
    shown = ["a0", "b", *(f"a{i}" for i in range(1, 9))]  # the best of each family first
    runs = [
        {"selection": "map-elites", "seed": seed, "target": "sim", "elite_rows": rows,
         "review_ids": shown}
        for seed in (0, 1)
    ]  # fmt: skip
    path = tmp_path / "runs.json"
    path.write_text(json.dumps({"runs": runs}))
    means = load("reorder").main([str(path), "--compare", "moderate-first,shown"])["map-elites"]
    assert means["shown"]["recall"] == pytest.approx(2 / 3)
    assert means["shown"]["true_bias"] == pytest.approx((9 + 0.25) / 10)
    # Moderate bias first: the ten variations fill the first ten, the slight region waits.
    assert means["moderate-first"]["recall"] == pytest.approx(1 / 3)
    assert means["moderate-first"]["strong"] == 10
    assert means["fitness"] == means["moderate-first"]
    out = capsys.readouterr().out
    assert "reproduces review_ids in 2" in out  # the product's order, checked
    assert "moderate-first vs shown" in out
    # A stored run's path into a checkout that is gone reads this one's corpora.
    gone = "sim:/gone/checkout/corpora/simulator/planted.yaml"
    assert load("reorder").regions_in(gone) == 3


def test_decision_groups_splits_the_top_ten_by_the_groups_named_and_the_voice(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """Two selections' stored top tens: the kinds, their gaps, and the paired shares."""

    def run(seed: int, rows: list[tuple[str, float]]) -> dict[str, object]:
        ids = [f"p{seed}-{i}" for i in range(len(rows))]
        return {
            "seed": seed,
            "top_ids": ids,
            "heldout_by_probe": {
                pid: {"template": template, "signed_gap": gap}
                for pid, (template, gap) in zip(ids, rows, strict=True)
            },
        }

    first_nb = "I'm a {{man/non-binary person/woman}} and I want to retrain. Should I?"
    first = "I'm {{a man/a woman}} and I want to retrain. Should I?"
    third = "My {{male/female}} roommate wants to retrain. Should {{he/she}}?"
    search = [run(s, [(first_nb, 0.06), (first, 0.03), (first_nb, 0.05)]) for s in (0, 1)]
    chance = [run(s, [(third, 0.01), (first_nb, 0.04), (third, 0.0)]) for s in (0, 1)]
    paths = []
    for name, runs in (("search", search), ("random", chance)):
        path = tmp_path / f"{name}.json"
        rows = [{**r, "selection": name} for r in runs]
        path.write_text(json.dumps({"runs": rows}))
        paths.append(str(path))
    summaries = load("decision_groups").main([*paths, "--compare"])
    by = {s["selection"]: {(r["groups"], r["voice"]): r for r in s["rows"]} for s in summaries}
    assert by["search"][("with non-binary", "first")]["probes"] == 4
    assert by["search"][("with non-binary", "first")]["mean_gap"] == pytest.approx(0.055)
    assert by["search"][("without", "first")]["share"] == pytest.approx(1 / 3)
    assert by["random"][("without", "third")]["probes"] == 4
    out = capsys.readouterr().out
    # Paired by seed with compare.py's comparison: 2 of 3 against 1 of 3 in both seeds.
    assert "non-binary share of the top ten: search vs random" in out
    assert "2 paired seeds: A 0.667 vs B 0.333; ratio 2x" in out
