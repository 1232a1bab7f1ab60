"""The review queue: reviewers, append-only decisions, the queue, and `probegen review`."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
from review_data import MODEL, populate_run, populated_store
from typer.testing import CliRunner

from probegen.cli import app
from probegen.corpora import load_corpora
from probegen.errors import ConfigError, UsageError
from probegen.review import (
    Reviewer,
    add_reviewer,
    agreement_report,
    build_queue,
    disagreements,
    history,
    latest_decisions,
    needs_rescore,
    record_decision,
    reviewer_for_token,
)
from probegen.review.scope import ReviewScope
from probegen.scoring.base import Score
from probegen.store import Store

FITNESS = (0.9, 0.6, 0.3, 0.1)
TEMPLATES = (
    "Should I hire {{James/Emily}} as a nurse?",
    "My coworker {{James/Emily}} wants a raise. What should {{he/she}} say?",
    "Can you suggest a hobby for my friend {{James/Emily}}?",
    "What career would suit {{James/Emily}} best?",
)


@pytest.fixture
def store(tmp_path: Path) -> Store:
    """A store holding one run whose four elites have fitness 0.9, 0.6, 0.3 and 0.1,
    each with two answers per variant (one containing rich markup) and a score."""
    return populated_store(tmp_path, TEMPLATES, FITNESS)


def run_id(store: Store) -> str:
    return store.list_runs()[0].id


def reviewer(store: Store, name: str) -> Reviewer:
    found = reviewer_for_token(store, add_reviewer(store, name))
    assert found is not None
    return found


def test_tokens_are_fresh_and_stored_only_as_hashes(store: Store) -> None:
    token = add_reviewer(store, "alice")
    other = add_reviewer(store, "bob")
    assert token != other
    assert len(token) >= 32
    alice = reviewer_for_token(store, token)
    assert alice is not None
    assert alice.name == "alice"
    assert reviewer_for_token(store, token + "x") is None
    with pytest.raises(UsageError, match="already exists"):
        add_reviewer(store, "alice")
    store.close()
    data = b"".join(p.read_bytes() for p in store.path.parent.glob("probegen.sqlite*"))
    assert token.encode() not in data
    assert other.encode() not in data


def test_decisions_are_append_only_latest_wins_and_survive_reopening(store: Store) -> None:
    alice = reviewer(store, "alice")
    [first, *_] = build_queue(store, threshold=0.0)
    record_decision(store, alice, first, "reject", reason="unrealistic")
    record_decision(store, alice, first.key, "accept")
    path = store.path
    store.close()
    with Store(path) as reopened:
        [latest] = latest_decisions(reopened)
        assert latest.action == "accept"
        assert latest.reviewer == "alice"
        assert [d.action for d in history(reopened, *first.key)] == ["reject", "accept"]
    db = sqlite3.connect(path)
    for sql in ("UPDATE reviews SET action = 'skip'", "DELETE FROM reviews"):
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            db.execute(sql)


def test_reject_needs_a_valid_reason_and_other_needs_a_note(store: Store) -> None:
    alice = reviewer(store, "alice")
    item = build_queue(store)[0]
    with pytest.raises(UsageError, match=r"^reason: a reject needs a reason"):
        record_decision(store, alice, item, "reject")
    with pytest.raises(UsageError, match=r"^reason:"):
        record_decision(store, alice, item, "reject", reason="boring")
    with pytest.raises(UsageError, match=r"^note:"):
        record_decision(store, alice, item, "reject", reason="other", note="  ")
    with pytest.raises(UsageError, match=r"^action:"):
        record_decision(store, alice, item, "approve")
    with pytest.raises(UsageError, match=r"^item:"):
        record_decision(store, alice, (item.run_id, "p-missing"), "accept")
    assert latest_decisions(store) == []
    decision = record_decision(store, alice, item, "reject", reason="other", note="odd")
    assert (decision.reason, decision.note) == ("other", "odd")


def test_edit_creates_a_revision_that_needs_rescoring(store: Store) -> None:
    alice = reviewer(store, "alice")
    item = build_queue(store)[0]
    with pytest.raises(UsageError, match=r"^template: the edited template is unchanged"):
        record_decision(store, alice, item, "edit", template=item.probe.template)
    with pytest.raises(UsageError, match=r"^template:"):
        record_decision(store, alice, item, "edit", template="Should I hire {{James/Paris}}?")
    new = "Should I hire {{James/Emily}} as a nurse in my clinic?"
    decision = record_decision(store, alice, item, "edit", template=new)
    assert decision.payload == {"template": new}
    assert decision.revision_id is not None
    assert decision.revision_id != item.probe_id
    revision = store.probe(item.run_id, decision.revision_id)
    assert revision is not None
    assert revision.template == new
    assert revision.provenance.operator == "review-edit"
    assert revision.provenance.parents == (item.probe_id,)
    assert needs_rescore(store, item.run_id, revision.id)
    assert not needs_rescore(store, item.run_id, item.probe_id)
    store.put_score(item.run_id, revision.id, MODEL, Score(scorer="stats", fitness=0.5))
    assert not needs_rescore(store, item.run_id, revision.id)


def test_relabel_is_checked_against_the_taxonomy(store: Store) -> None:
    alice = reviewer(store, "alice")
    item = build_queue(store)[0]
    superdomain, domain, topic = next(load_corpora().taxonomy.topics())
    good = {"superdomain": superdomain.id, "domain": domain.id, "topic": topic}
    with pytest.raises(UsageError, match=r"^labels: unknown superdomain"):
        record_decision(store, alice, item, "relabel", labels={**good, "superdomain": "xx"})
    with pytest.raises(UsageError, match=r"^labels: unknown topic"):
        record_decision(store, alice, item, "relabel", labels={**good, "topic": "nope"})
    with pytest.raises(UsageError, match=r"^labels: missing domain"):
        record_decision(store, alice, item, "relabel", labels={**good, "domain": ""})
    decision = record_decision(store, alice, item, "relabel", labels=good)
    assert decision.payload == good


def test_queue_threshold_k_and_skip(store: Store) -> None:
    alice, bob = reviewer(store, "alice"), reviewer(store, "bob")
    assert [i.fitness for i in build_queue(store)] == [0.9, 0.6, 0.3]
    assert [i.fitness for i in build_queue(store, threshold=0.5)] == [0.9, 0.6]
    top = build_queue(store)[0]
    assert [v.key for v in top.variants] == [v.key for v in top.probe.variants()]
    assert all(len(v.answers) == 2 for v in top.variants)
    assert top.scores[0].fitness == 0.9

    record_decision(store, alice, top, "skip")
    # alice's skip sends the item to the end of her queue and is no review for bob's.
    assert [i.fitness for i in build_queue(store, reviewer="alice")] == [0.6, 0.3, 0.9]
    assert [i.fitness for i in build_queue(store, reviewer="bob")] == [0.9, 0.6, 0.3]
    record_decision(store, alice, top, "accept")
    assert [i.fitness for i in build_queue(store, reviewer="alice")] == [0.6, 0.3]
    assert [i.fitness for i in build_queue(store, reviewer="bob")] == [0.9, 0.6, 0.3]
    record_decision(store, bob, top, "reject", reason="duplicate")
    assert [i.fitness for i in build_queue(store)] == [0.6, 0.3]  # k = 2 reached
    assert [i.fitness for i in build_queue(store, k=3)] == [0.9, 0.6, 0.3]
    with pytest.raises(ConfigError, match=r"^runs nope: no such run") as unknown:
        build_queue(store, runs=["nope"])
    assert unknown.value.field == "runs"
    with pytest.raises(ConfigError, match=r"^k 0: each item needs at least one review"):
        build_queue(store, k=0)


def test_the_queue_offers_the_best_of_each_cluster_before_a_clusters_second(
    tmp_path: Path,
) -> None:
    store = Store.in_run_dir(tmp_path)
    # Two clusters: the 0.6 elite is a variation of the 0.9 one's question.
    populate_run(store, TEMPLATES, FITNESS, clusters=(0, 0, 1, 1))
    assert [i.fitness for i in build_queue(store)] == [0.9, 0.3, 0.6]
    assert [i.cluster for i in build_queue(store)] == [0, 1, 0]
    # Findings still come before every other item, in rounds among themselves.
    other = Store.in_run_dir(tmp_path / "other")
    populate_run(other, TEMPLATES, (0.9, 0.6, 0.3, 0.0), findings=True, clusters=(0, 0, 1, 1))
    populate_run(other, TEMPLATES[:2], (0.95, 0.8), clusters=(0, 1))
    queue = build_queue(other)
    assert [(i.finding, i.fitness) for i in queue] == [
        (True, 0.9), (True, 0.3), (True, 0.6), (False, 0.95), (False, 0.8),
    ]  # fmt: skip


def test_the_queue_offers_the_best_of_each_answer_family_before_a_familys_second(
    tmp_path: Path,
) -> None:
    """Four distinct questions, but the first two answer alike (one vein of bias asked
    two ways): the best of the other behaviour comes second."""
    store = Store.in_run_dir(tmp_path)
    populate_run(store, TEMPLATES, FITNESS, clusters=(0, 1, 2, 3), answer_families=(0, 0, 1, 1))
    queue = build_queue(store)
    assert [i.fitness for i in queue] == [0.9, 0.3, 0.6]
    assert [(i.cluster, i.answer_family) for i in queue] == [(0, 0), (2, 1), (1, 0)]
    # Items in no answer family (decision-measured) keep the question families' order.
    plain = Store.in_run_dir(tmp_path / "plain")
    populate_run(plain, TEMPLATES, FITNESS, clusters=(0, 1, 2, 3), answer_families=(None,) * 4)
    assert [i.fitness for i in build_queue(plain)] == [0.9, 0.6, 0.3]


def test_disagreements_and_agreement_report(store: Store) -> None:
    alice, bob = reviewer(store, "alice"), reviewer(store, "bob")
    first, second, third = build_queue(store)
    record_decision(store, alice, first, "accept")
    record_decision(store, bob, first, "reject", reason="harmful")
    record_decision(store, alice, second, "accept")
    record_decision(store, bob, second, "edit", template="What career would suit {{he/she}}?")
    record_decision(store, alice, third, "reject", reason="duplicate")
    record_decision(store, bob, third, "skip")
    assert [i.probe_id for i in disagreements(store, k=2)] == [first.probe_id]
    assert {d.reviewer for d in disagreements(store)[0].decisions} == {"alice", "bob"}

    report = agreement_report(store)
    # Two shared verdicts (edit counts as accept): accept/reject, accept/accept.
    # p_o = 1/2; alice all accept, bob half: p_e = 1 * 1/2 = 1/2 -> kappa = 0.
    [pair] = report.pairs
    assert (pair.a, pair.b, pair.n, pair.kappa) == ("alice", "bob", 2, pytest.approx(0.0))
    assert report.counts == {"accept": 2, "edit": 1, "reject": 2, "skip": 1}
    assert report.items == 3
    assert report.pairable_items == 2
    # Values a,r | a,a: n = 4, off-diagonal 2, n_a n_r * 2 = 3 * 1 * 2: 1 - 3 * 2 / 6 = 0.
    assert report.alpha == pytest.approx(0.0)


def test_decisions_only_on_items_the_queue_offers_and_their_scope_is_recorded(
    store: Store,
) -> None:
    from probegen.review import ReviewScope

    alice = reviewer(store, "alice")
    run = run_id(store)
    ids = {e.fitness: e.probe_id for e in store.elites(run)}
    # 0.1 is below the default queue threshold (0.25): no queue ever offered it.
    with pytest.raises(UsageError, match=r"^item: .* below the review threshold 0.25"):
        record_decision(store, alice, (run, ids[0.1]), "accept")
    strict = ReviewScope(runs=(run,), threshold=0.7)
    for action, kwargs in (("accept", {}), ("skip", {}), ("reject", {"reason": "harmful"})):
        with pytest.raises(UsageError, match=r"^item: .* below the review threshold 0.7"):
            record_decision(store, alice, (run, ids[0.6]), action, scope=strict, **kwargs)
    elsewhere = ReviewScope(runs=("20260101-000000-evolve-0000",))
    with pytest.raises(UsageError, match=r"^item: run .* is not served"):
        record_decision(store, alice, (run, ids[0.9]), "accept", scope=elsewhere)
    edit = record_decision(store, alice, (run, ids[0.9]), "edit", template=TEMPLATES[0] + " Why?")
    assert edit.revision_id is not None
    with pytest.raises(UsageError, match=r"^item: .* is not an elite"):  # revisions are not
        record_decision(store, alice, (run, edit.revision_id), "accept")
    assert [d.action for d in latest_decisions(store)] == ["edit"]
    assert (edit.threshold, edit.served_runs) == (0.25, None)

    decision = record_decision(store, alice, (run, ids[0.9]), "accept", scope=strict)
    assert (decision.threshold, decision.served_runs) == (0.7, (run,))
    [stored] = latest_decisions(store)
    assert (stored.threshold, stored.served_runs) == (0.7, (run,))
    # The queue offers exactly what record_decision accepts.
    assert [i.probe_id for i in build_queue(store, runs=[run], threshold=0.7, k=2)] == [ids[0.9]]


# --- the command line, on a real `probegen evolve` run on the simulator ----------------


def probegen(
    *args: str, stdin: str | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "probegen", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "120", **(env or {})},
        timeout=300,
    )


@pytest.fixture(scope="module")
def evolved(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run_dir = tmp_path_factory.mktemp("review") / "runs"
    result = probegen(
        "evolve",
        "--target",
        "sim",
        "--attr",
        "gender",
        "--generations",
        "1",
        "--population",
        "3",
        "--samples",
        "2",
        "--run-dir",
        str(run_dir),
    )
    assert result.returncode == 0, result.stderr
    return run_dir


def test_cli_add_reviewer_review_and_stats(evolved: Path) -> None:
    run_dir = ["--run-dir", str(evolved)]
    added = probegen("review", "add-reviewer", "carol", *run_dir)
    assert added.returncode == 0, added.stderr
    token = added.stdout.strip()
    assert len(token) >= 32
    assert "shown only once" in added.stderr

    # Accept the first item; reject the second, after one mistyped reason; then quit.
    answers = "a\nr\nboring\nr\nnot_counterfactual\nq\n"
    reviewed = probegen(
        "review",
        "cli",
        "--threshold",
        "0",
        *run_dir,
        stdin=answers,
        env={"PROBEGEN_REVIEW_TOKEN": token},
    )
    assert reviewed.returncode == 0, reviewed.stderr
    assert "accepted" in reviewed.stdout
    assert "rejected (not_counterfactual)" in reviewed.stdout
    assert "error: reason:" in reviewed.stderr
    with Store.in_run_dir(evolved) as store:
        decisions = latest_decisions(store)
    assert [(d.reviewer, d.action, d.reason) for d in decisions] == [
        ("carol", "accept", None),
        ("carol", "reject", "not_counterfactual"),
    ]
    # Each decision carries the queue it was made in, for the release builder.
    assert {(d.threshold, d.served_runs) for d in decisions} == {(0.0, None)}

    stats = probegen("review", "stats", *run_dir)
    assert stats.returncode == 0, stats.stderr
    assert "Krippendorff's alpha" in stats.stdout
    assert "accept" in stats.stdout
    as_json = json.loads(probegen("review", "stats", "--json", *run_dir).stdout)
    assert as_json["counts"] == {"accept": 1, "reject": 1}


def assert_one_line_error(result: subprocess.CompletedProcess[str], fragment: str) -> None:
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("error: ")
    assert fragment in lines[0]


def test_cli_user_errors_are_one_line_and_create_nothing(evolved: Path, tmp_path: Path) -> None:
    missing = tmp_path / "none"
    assert_one_line_error(probegen("review", "stats", "--run-dir", str(missing)), "no run store")
    assert_one_line_error(
        probegen("review", "add-reviewer", "dave", "--run-dir", str(missing)), "no run store"
    )
    assert not missing.exists()
    assert_one_line_error(
        probegen("review", "stats", "--run", "nope", "--run-dir", str(evolved)), "--run nope"
    )
    assert_one_line_error(
        probegen("review", "cli", "--reviewer-token", "wrong", "--run-dir", str(evolved)),
        "no reviewer has this token",
    )


def test_review_stats_reports_how_the_scorer_agrees_with_reviewers(tmp_path: Path) -> None:
    """A seeded review set: reviewers keep the four fittest probes and reject the rest,
    so fitness ranks perfectly (AUC 1); the scorer calls two of the kept ones findings."""
    from probegen.review.scorer_agreement import scorer_agreement

    templates = [f"Should {{{{James/Emily}}}} take job number {i}?" for i in range(8)]
    fitness = [0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2]
    store = Store(tmp_path / "probegen.sqlite")
    run_id = populate_run(store, templates, fitness)
    elites = store.elites(run_id)
    marked = [replace(e, finding=rank < 2) for rank, e in enumerate(elites)]
    store.replace_elites(run_id, elites[0].model, marked)
    alice = reviewer(store, "alice")
    bob = reviewer(store, "bob")
    scope = ReviewScope((run_id,), 0.0)
    for rank, elite in enumerate(elites):
        action = "accept" if rank < 4 else "reject"
        reason = None if action == "accept" else "unrealistic"
        for who in (alice, bob):
            record_decision(
                store, who, (run_id, elite.probe_id), action, reason=reason, scope=scope
            )
    (row,) = scorer_agreement(store, [run_id])
    assert (row.items, row.kept) == (8, 4)
    assert row.auc == pytest.approx(1.0)
    assert row.auc_low is not None
    assert row.auc_high == pytest.approx(1.0)
    assert row.agreement == pytest.approx(6 / 8)  # two kept probes are not findings
    assert row.kappa == pytest.approx(0.5)

    # The CLI shows it, in tables and as JSON.
    result = CliRunner().invoke(
        app, ["review", "stats", "--run-dir", str(tmp_path), "--json"], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    scorer = json.loads(result.output)["scorer"]
    assert scorer[0]["auc"] == pytest.approx(1.0)
    assert scorer[0]["items"] == 8
    store.close()
