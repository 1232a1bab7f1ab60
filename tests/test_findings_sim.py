"""Findings on the simulator, where the truth is known.

With no planted region at all every group difference is noise (sampling noise in the
answers, quirks of names in the decisions), so every finding would be a false one: over
many seeded runs, runs with any finding must stay at about the false-discovery rate.
With planted regions, the findings are real and replicate.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from probegen import evolve
from probegen.corpora import load_corpora
from probegen.decision.form import decision_body
from probegen.evolve.conclude import Conclusion
from probegen.models.simulator import SimulatorBackend
from probegen.probe import Probe
from probegen.store import Store

NULL_SIM = {
    "attribute": "gender",
    "noise": 0.15,
    "sentences": 2,
    "regions": [],
    "neutral": [
        "Think about your goals before you decide.",
        "Gather the information you need first.",
        "Talk it through with someone you trust.",
        "Weigh the practical pros and cons.",
        "Consider the timing and your budget.",
        "Choose the option that fits your priorities best.",
    ],
}


def concluded(
    tmp_path: Path, sim: Path | None, seed: int, budget: int, **options: object
) -> Conclusion:
    """The conclusion of a whole run (``probegen.evolve``) on the simulator."""
    result = evolve(
        target="sim" if sim is None else f"sim:{sim}",
        attr="gender",
        generations=50,
        population=8,
        budget=budget,
        seed=seed,
        run_dir=tmp_path / f"run-{seed}",
        **options,
    )
    return result.conclusion


def test_no_true_difference_yields_findings_at_most_at_the_stated_rate(tmp_path: Path) -> None:
    sim = tmp_path / "null.yaml"
    sim.write_text(json.dumps(NULL_SIM))
    runs = [concluded(tmp_path, sim, seed, budget=200) for seed in range(8)]
    tested = sum(r.tested for r in runs)
    with_findings = sum(1 for r in runs if r.findings)
    # Every finding here is false, so the false-discovery rate (0.1) bounds the share of
    # runs with any at about 1 in 10 (benchmarks/findings.py null runs 20 seeds).
    assert tested >= 8 * 10  # the runs did test many probes, by both measurements
    assert with_findings <= 2, [r.findings for r in runs]


def test_planted_regions_become_findings_that_replicate(tmp_path: Path) -> None:
    conclusion = concluded(tmp_path, None, seed=0, budget=400)
    assert conclusion.findings
    sim = SimulatorBackend()
    with Store.in_run_dir(tmp_path / "run-0") as store:
        run_id = store.list_runs()[-1].id
        probes = {p.id: p for p in store.probes(run_id)}
    in_regions = [p for p in conclusion.findings if sim.region_of(probes[p].variants()[0].text)]
    assert len(in_regions) >= len(conclusion.findings) * 0.8
    assert conclusion.replication_rate is not None
    assert conclusion.replication_rate >= 0.75


def framings_after_the_question(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make ``refusal_trigger`` append its framings after a yes/no question, as it did
    before it learned to put them where the measurement reads: every such child then
    repeats its parent's measurement."""
    monkeypatch.setattr("mutators._wrap.decision_question", lambda template: None)


def test_distinct_measurements_tests_no_probe_twice(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The decision measurement reads a probe up to its last yes/no question, so a
    child that only adds a sentence after it is its parent's measurement again; with
    ``distinct_measurements`` the scheduler rejects it."""
    framings_after_the_question(monkeypatch)
    conclusion = concluded(
        tmp_path, None, seed=2, budget=600, measure="decision", distinct_measurements=True
    )
    with Store.in_run_dir(tmp_path / "run-2") as store:
        run_id = store.list_runs()[-1].id
        probes = {p.id: p for p in store.probes(run_id)}
        decided = [
            probes[pid] for pid, _, score in store.scores(run_id) if score.scorer == "decision"
        ]
    questions = [tuple(asked(p)) for p in decided]
    assert len(questions) >= 20
    assert len(set(questions)) == len(questions)
    assert conclusion.repeats == {}


def asked(probe: Probe) -> list[str]:
    """The questions the decision measurement asks of ``probe``, rendered, sorted."""
    body = decision_body(probe.template)
    assert body is not None
    return sorted(v.text for v in load_corpora().variant_groups(body, probe.attribute))


def test_a_repeated_measurement_is_one_test_and_at_most_one_finding(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """By default such children are queried (they are stepping stones), and the
    conclusion counts each measurement once: the repeats leave the corrected family."""
    framings_after_the_question(monkeypatch)
    conclusion = concluded(tmp_path, None, seed=2, budget=600, measure="decision")
    with Store.in_run_dir(tmp_path / "run-2") as store:
        run_id = store.list_runs()[-1].id
        probes = {p.id: p for p in store.probes(run_id)}
    assert conclusion.repeats
    for repeat, first in conclusion.repeats.items():
        assert asked(probes[repeat]) == asked(probes[first])
        assert repeat not in conclusion.assessments
        assert first in conclusion.assessments
    questions = [tuple(asked(probes[pid])) for pid in conclusion.findings]
    assert len(set(questions)) == len(questions)
