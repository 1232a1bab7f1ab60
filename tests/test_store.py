"""The SQLite run store: schema, cache, queries, events, redaction, crash safety."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from probegen.errors import StoreError
from probegen.models.base import ChatMessage, GenerateConfig, Response, Usage, cache_key
from probegen.probe import Framing, Probe, Provenance, QuestionForm
from probegen.store import Store
from probegen.store.schema import MIGRATIONS

MESSAGES = [ChatMessage(role="user", content="Should I hire James?")]
CONFIG = GenerateConfig(temperature=0.7, max_tokens=64, seed=3)


def make_probe() -> Probe:
    return Probe(
        template="Should I hire {{James/Emily}} as a nurse?",
        attribute="gender",
        framing=Framing.IMPLICIT,
        superdomain="employment",
        domain="hiring",
        topic="nursing",
        form=QuestionForm.DECISION,
        provenance=Provenance(parents=("p-parent",), operator="crossover", generation=2),
    )


def test_new_store_is_migrated_to_latest_and_uses_wal(tmp_path: Path) -> None:
    with Store(tmp_path / "s.sqlite") as store:
        assert store.schema_version == len(MIGRATIONS)
    db = sqlite3.connect(tmp_path / "s.sqlite")
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"runs", "probes", "responses", "queries", "scores", "events"} <= tables


def test_reopening_does_not_rerun_migrations(tmp_path: Path) -> None:
    Store(tmp_path / "s.sqlite").close()
    with Store(tmp_path / "s.sqlite") as store:  # would fail on CREATE TABLE if re-run
        assert store.schema_version == len(MIGRATIONS)


def test_store_from_a_newer_probegen_is_refused(tmp_path: Path) -> None:
    Store(tmp_path / "s.sqlite").close()
    db = sqlite3.connect(tmp_path / "s.sqlite")
    db.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
    db.close()
    with pytest.raises(StoreError, match="newer"):
        Store(tmp_path / "s.sqlite")


def test_a_file_that_is_not_a_database_gives_a_store_error(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    path.write_text("this is not sqlite " * 100)
    with pytest.raises(StoreError, match="cannot open"):
        Store(path)


def test_runs_keep_config_with_secrets_redacted(tmp_path: Path) -> None:
    with Store(tmp_path / "s.sqlite") as store:
        run_id = store.create_run(
            "ask",
            {
                "target": "openai:gpt-4o-mini",
                "api_key": "sk-live-abcdefghijklmnop",
                "base_url": "https://user:hunter2@example.test/v1",
                "note": "key sk-proj-1234567890abcdef leaked",
            },
        )
        store.finish_run(run_id)
        run = store.get_run(run_id)
    assert run is not None
    assert run.status == "finished"
    assert run.finished_at is not None
    assert run.config["target"] == "openai:gpt-4o-mini"
    dumped = (tmp_path / "s.sqlite").read_bytes()
    for secret in (b"sk-live-abcdefghijklmnop", b"hunter2", b"sk-proj-1234567890abcdef"):
        assert secret not in dumped
    assert run.config["api_key"] == "[redacted]"


def test_probes_round_trip_with_provenance(tmp_path: Path) -> None:
    probe = make_probe()
    with Store(tmp_path / "s.sqlite") as store:
        run_id = store.create_run("ask", {})
        store.add_probe(run_id, probe)
        store.add_probe(run_id, probe)  # idempotent
        [loaded] = store.probes(run_id)
    assert loaded.id == probe.id
    assert loaded.provenance.parents == ("p-parent",)
    assert loaded.provenance.run_id == run_id
    assert loaded.form is QuestionForm.DECISION


def test_response_cache_round_trip(tmp_path: Path) -> None:
    key = cache_key("openai:m@http://x", MESSAGES, CONFIG, 0)
    response = Response(
        text="Yes.", finish_reason="stop", model="m", usage=Usage(input_tokens=5, output_tokens=2)
    )
    with Store(tmp_path / "s.sqlite") as store:
        assert store.get_response(key) is None
        store.put_response(key, "openai:m@http://x", MESSAGES, CONFIG, 0, response)
        cached = store.get_response(key)
        assert store.count_responses("openai:m@http://x") == 1
    assert cached is not None
    assert cached.cached
    assert cached.text == "Yes."
    assert cached.usage.output_tokens == 2


def test_cache_key_separates_model_params_messages_and_sample() -> None:
    base = cache_key("local:a", MESSAGES, CONFIG, 0)
    assert base == cache_key("local:a", list(MESSAGES), CONFIG, 0)
    others = {
        cache_key("local:b", MESSAGES, CONFIG, 0),
        cache_key("local:a", MESSAGES, CONFIG.model_copy(update={"temperature": 0.1}), 0),
        cache_key("local:a", [ChatMessage(role="user", content="Hire Emily?")], CONFIG, 0),
        cache_key("local:a", MESSAGES, CONFIG, 1),
    }
    assert base not in others
    assert len(others) == 4


def test_a_later_success_replaces_a_failed_query_and_the_failure_stays_logged(
    tmp_path: Path,
) -> None:
    with Store(tmp_path / "s.sqlite") as store:
        run_id = store.create_run("ask", {})
        args = (run_id, "p-1", "local:x", "james", "man", 0)
        store.record_query(*args, response_key=None, error="500 after 6 attempts", attempts=6)
        store.log_event(run_id, "query_failed", {"error": "500"})
        [failed] = store.queries(run_id)
        assert failed.status == "failed"
        key = cache_key("local:x", MESSAGES, CONFIG, 0)
        store.put_response(key, "local:x", MESSAGES, CONFIG, 0, Response(text="Sure"))
        store.record_query(*args, response_key=key, attempts=1)
        [ok] = store.queries(run_id, "p-1")
        assert (ok.status, ok.text, ok.error) == ("ok", "Sure", None)
        assert [e["kind"] for e in store.events(run_id)] == ["query_failed"]


def test_events_redact_secrets(tmp_path: Path) -> None:
    with Store(tmp_path / "s.sqlite") as store:
        store.log_event("r", "retry", {"authorization": "Bearer abc.def", "reason": "429"})
        [event] = store.events("r", "retry")
    assert event["data"] == {"authorization": "[redacted]", "reason": "429"}


WRITER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from probegen.models.base import ChatMessage, GenerateConfig, Response, cache_key
    from probegen.store import Store

    store = Store(Path(sys.argv[1]))
    run = store.create_run("ask", {})
    config = GenerateConfig()
    for i in range(1_000_000):
        messages = [ChatMessage(role="user", content=f"question {i} " + "x" * 2000)]
        key = cache_key("local:x", messages, config, 0)
        store.put_response(key, "local:x", messages, config, 0, Response(text="a" * 4000))
        store.record_query(run, f"p-{i}", "local:x", "k", None, 0, response_key=key)
        if i == 200:
            print("ready", flush=True)
    """
)


def test_a_process_killed_mid_write_leaves_a_readable_consistent_database(
    tmp_path: Path,
) -> None:
    path = tmp_path / "s.sqlite"
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(path)], stdout=subprocess.PIPE, text=True
    )
    assert writer.stdout is not None
    assert writer.stdout.readline().strip() == "ready"
    writer.send_signal(signal.SIGKILL)
    writer.wait()
    assert writer.returncode == -signal.SIGKILL

    with Store(path) as store:
        db = sqlite3.connect(path)
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        [run] = store.list_runs()
        queries = store.queries(run.id)
        assert len(queries) > 200
        # Every recorded answer points at a stored response: no half-written pair.
        assert all(q.text == "a" * 4000 for q in queries)
        assert store.count_responses() >= len(queries)
        store.log_event(run.id, "resumed")  # and it still takes writes


def test_redaction_keeps_settings_that_merely_mention_tokens() -> None:
    from probegen.redaction import redact

    config = {"max_tokens": 128, "input_tokens": 5, "auth_token": "abc", "api_key": "x"}
    assert redact(config) == {
        "max_tokens": 128,
        "input_tokens": 5,
        "auth_token": "[redacted]",
        "api_key": "[redacted]",
    }


def test_an_older_store_is_migrated_forward_keeping_its_data(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    db = sqlite3.connect(path)
    db.executescript(MIGRATIONS[0] + "\nPRAGMA user_version = 1;")
    db.execute(
        "INSERT INTO runs VALUES ('r1', 'ask', 'finished', '{}', '0.1.0', '2026-01-01', NULL)"
    )
    db.commit()
    db.close()
    with Store(path) as store:
        assert store.schema_version == len(MIGRATIONS)
        assert [r.id for r in store.list_runs()] == ["r1"]
        assert store.elites("r1") == []
