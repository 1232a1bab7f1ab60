"""Provider batch APIs end to end: ``probegen eval --batch`` (and ``evaluate(batch=True)``)
against the simulator server's OpenAI Batch and Anthropic Message Batches endpoints,
driven by the official SDKs; a run killed mid-batch resumes by polling, and no item is
ever submitted twice (checked in the server's own log of what each batch was given)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import openai
import pytest
from servers import HOST, FaultProxy, ServerProcess, free_port
from test_eval import make_release

import probegen
from probegen.batch import BatchCall, anthropic_batches, batch_api_of
from probegen.batch.anthropic_batches import AnthropicBatches
from probegen.batch.openai_batches import OpenAIBatches
from probegen.cli import main
from probegen.corpora import load_corpora
from probegen.errors import ConfigError
from probegen.evaluation.batch import release_calls
from probegen.models import GenerateConfig, resolve_model
from probegen.models.pricing import cost_usd
from probegen.models.simulator import SimulatorBackend
from probegen.release.model import PROBES_FILE, read_items
from probegen.store import Store
from probegen.store.batches import record_submission

OPENAI_TARGET = "openai:gpt-4o-mini"  # priced, so the batch's saving shows
ANTHROPIC_TARGET = "anthropic:claude-haiku-4-5"
CALLS = 4 * 2 * 3  # items x variants x samples of the release below


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Base URL (no ``/v1``) of a simulator server with the batch endpoints."""
    port = free_port()
    argv = [sys.executable, "-m", "probegen.models.sim_server", "--port", str(port)]
    log = tmp_path_factory.mktemp("batch_server") / "server.log"
    process = ServerProcess("sim_server", argv, f"http://{HOST}:{port}", "/health", log)
    process.start(timeout_s=60)
    try:
        yield process.base_url
    finally:
        process.stop()


def post(url: str, body: dict[str, Any]) -> Any:
    request = urllib.request.Request(
        url, json.dumps(body).encode(), {"Content-Type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(request, timeout=10) as reply:
        return json.load(reply)


def batches(server: str) -> list[dict[str, Any]]:
    """The server's log: every batch, with the custom ids it was given."""
    with urllib.request.urlopen(f"{server}/batch/log", timeout=10) as reply:
        found: list[dict[str, Any]] = json.load(reply)["batches"]
        return found


@pytest.fixture
def setup(server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """A release, a run directory, both SDKs pointed at the server, fast batches, and
    the number of batches the server held before the test."""
    monkeypatch.setenv("OPENAI_BASE_URL", f"{server}/v1")
    monkeypatch.setenv("ANTHROPIC_BASE_URL", server)
    post(f"{server}/batch/settings", {"delay_s": 0.05, "item_s": 0.0, "fail_share": 0.0,
                                      "expire_after": None, "seed": 0})  # fmt: skip
    release = make_release(tmp_path / "releases" / "gender-demo" / "1.0.0", "sim")
    return {"server": server, "release": release, "runs": tmp_path / "runs",
           "before": len(batches(server)), "root": tmp_path}  # fmt: skip


def new_batches(setup: dict[str, Any]) -> list[dict[str, Any]]:
    return batches(setup["server"])[setup["before"] :]


def submitted(setup: dict[str, Any]) -> Counter[str]:
    """How many times each custom id reached the server in a batch."""
    return Counter(cid for batch in new_batches(setup) for cid in batch["custom_ids"])


def evaluate(setup: dict[str, Any], target: str, **options: Any) -> probegen.EvalResult:
    return probegen.evaluate(
        setup["release"], [target], run_dir=setup["runs"], bootstrap=50,
        batch_poll_s=0.02, **options,
    )  # fmt: skip


@pytest.mark.parametrize("target", [OPENAI_TARGET, ANTHROPIC_TARGET])
def test_a_batch_eval_answers_as_calls_do_into_the_same_cache_at_half_price(
    setup: dict[str, Any], target: str
) -> None:
    result = evaluate(setup, target, batch=True)
    assert result.status == "finished", result.failure
    [outcome] = result.outcomes
    assert all(r.status == "ok" for r in result.results)
    counts = outcome.batch
    assert counts is not None
    assert (counts.submitted, counts.resumed, counts.answered) == (CALLS, 0, CALLS)
    assert (counts.failed, counts.expired, outcome.sent, outcome.cache_hits) == (0, 0, CALLS, 0)
    [batch] = new_batches(setup)
    assert batch["api"] == target.partition(":")[0]
    assert sorted(submitted(setup).values()) == [1] * CALLS

    with Store.in_run_dir(setup["runs"]) as store:
        # Custom id = response-cache key: every id the server saw is an answer in the cache.
        answers = [store.get_response(cid) for cid in batch["custom_ids"]]
        assert all(a is not None and a.text for a in answers)
        listed = sum(cost_usd(target, a.usage) or 0.0 for a in answers if a is not None)
        assert sum(a.usage.cost_usd or 0.0 for a in answers if a is not None) == pytest.approx(
            listed / 2
        )
        assert [e["data"]["batch"] for e in store.events(result.run_id, "batch_submitted")] == [
            batch["id"]
        ]
    assert counts.cost_usd == pytest.approx(listed / 2)
    assert counts.saved_usd == pytest.approx(listed / 2)
    assert listed > 0
    markdown = (result.out_dir / "leaderboard.md").read_text()
    assert f"| {target} | batch | {counts.cost_usd:.4f} | {listed:.4f} | {listed / 2:.4f} |" in (
        markdown
    )
    summary = json.loads((result.out_dir / "eval.json").read_text())
    assert summary["costs"][0]["saved_usd"] == pytest.approx(listed / 2)

    # A run without batches finds every answer cached and sends nothing.
    again = evaluate(setup, target)
    assert (again.outcomes[0].sent, again.outcomes[0].cache_hits) == (0, CALLS)
    assert len(new_batches(setup)) == 1
    # And the answers are the ones the same calls get from the server one by one.
    fresh = probegen.evaluate(
        setup["release"], [target], run_dir=setup["root"] / "sync", bootstrap=50
    )
    assert fresh.outcomes[0].sent == CALLS
    assert [r.fitness for r in fresh.results] == [r.fitness for r in result.results]
    with Store.in_run_dir(setup["root"] / "sync") as sync_store:
        sync_answers = [sync_store.get_response(cid) for cid in batch["custom_ids"]]
        assert [a.text for a in sync_answers if a] == [a.text for a in answers if a]


@pytest.mark.parametrize("target", [OPENAI_TARGET, ANTHROPIC_TARGET])
def test_failed_and_expired_items_are_failed_calls_and_a_rerun_retries_only_them(
    setup: dict[str, Any], target: str
) -> None:
    server = setup["server"]
    post(f"{server}/batch/settings", {"fail_share": 0.25, "expire_after": CALLS - 4})
    result = evaluate(setup, target, batch=True)
    [batch] = new_batches(setup)
    failed, expired = set(batch["failed"]), set(batch["expired"])
    assert len(expired) == 4
    assert len(failed) == 5  # a quarter of the 20 items answered, whatever their order
    assert failed.isdisjoint(expired)
    counts = result.outcomes[0].batch
    assert counts is not None
    assert (counts.answered, counts.failed, counts.expired) == (
        CALLS - len(failed) - len(expired), len(failed), len(expired),
    )  # fmt: skip
    assert result.failed_calls == len(failed) + len(expired)
    assert any(r.status == "unscorable" for r in result.results)

    with Store.in_run_dir(setup["runs"]) as store:
        # Recorded exactly as calls that failed after their retries.
        bad = [q for q in store.queries(result.run_id) if q.status == "failed"]
        assert len(bad) == len(failed) + len(expired)
        assert all(q.attempts == 1 for q in bad)
        errors = sorted(q.error or "" for q in bad)
        assert sum("injected item failure" in e for e in errors) == len(failed)
        assert sum("expired" in e for e in errors) == len(expired)
        assert len(store.events(result.run_id, "query_failed")) == len(bad)
        rows = store.select("SELECT custom_id, status FROM batch_items WHERE batch_id = ?",
                            (batch["id"],))  # fmt: skip
        status = {r["custom_id"]: r["status"] for r in rows}
        assert {k for k, s in status.items() if s == "failed"} == failed
        assert {k for k, s in status.items() if s == "expired"} == expired
        assert all(store.get_response(k) is None for k in failed | expired)

    # A rerun submits exactly the failed and expired items again, and nothing else.
    post(f"{server}/batch/settings", {"fail_share": 0.0, "expire_after": None})
    rerun = evaluate(setup, target, batch=True)
    assert rerun.status == "finished"
    assert rerun.failed_calls == 0
    _first, second = new_batches(setup)
    assert set(second["custom_ids"]) == failed | expired
    assert all(r.status == "ok" for r in rerun.results)


def probegen_cli(setup: dict[str, Any], target: str) -> list[str]:
    return [
        sys.executable, "-m", "probegen", "eval", str(setup["release"]), "--target", target,
        "--batch", "--batch-poll-s", "0.05", "--run-dir", str(setup["runs"]),
        "--bootstrap", "50",
    ]  # fmt: skip


def recorded_batches(runs: Path) -> int:
    path = runs / "probegen.sqlite"
    if not path.exists():
        return 0
    try:
        with sqlite3.connect(path, timeout=5) as db:
            return int(db.execute("SELECT count(*) FROM batches").fetchone()[0])
    except sqlite3.OperationalError:  # the schema is not there yet
        return 0


def kill_mid_batch(setup: dict[str, Any], argv: list[str], env: dict[str, str]) -> Any:
    """Run ``argv``, SIGKILL it once the server has a batch and the store has recorded
    it, and return that batch (still running: the kill came mid-batch)."""
    first = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while not (new_batches(setup) and recorded_batches(setup["runs"])):
        assert first.poll() is None, first.communicate()
        assert time.monotonic() < deadline, "no batch was created"
        time.sleep(0.05)
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=30)
    [batch] = new_batches(setup)
    assert batch["status"] in ("validating", "in_progress")  # killed mid-batch
    return batch


def test_eval_killed_mid_batch_resumes_by_polling_and_submits_nothing_twice(
    setup: dict[str, Any],
) -> None:
    server = setup["server"]
    # Long enough that the batch is still running when the client is killed.
    post(f"{server}/batch/settings", {"delay_s": 3.0, "item_s": 0.02})
    env = {**os.environ, "OPENAI_BASE_URL": f"{server}/v1"}
    argv = probegen_cli(setup, OPENAI_TARGET)
    batch = kill_mid_batch(setup, argv, env)
    assert len(batch["custom_ids"]) == CALLS

    second = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=180)
    assert second.returncode == 0, second.stderr
    said = " ".join(second.stdout.split())  # as printed, whatever the terminal's width
    assert f"batch {batch['id']} was submitted before ({CALLS} calls); polling it" in said
    # The server's own log: one batch, every custom id in it once, and every item answered.
    assert [b["id"] for b in new_batches(setup)] == [batch["id"]]
    assert sorted(submitted(setup).values()) == [1] * CALLS
    with Store.in_run_dir(setup["runs"]) as store:
        assert all(store.get_response(cid) is not None for cid in batch["custom_ids"])
        [killed, resumed] = store.list_runs()
        assert killed.status == "running"  # SIGKILL leaves no chance to say otherwise
        assert resumed.status == "finished"
        [event] = store.events(resumed.id, "batch_resumed")
        assert event["data"]["batch"] == batch["id"]
        assert not store.events(resumed.id, "batch_submitted")
        results = [json.loads(line) for line in (setup["runs"] / resumed.id / "results.jsonl")
                   .read_text().splitlines()]  # fmt: skip
        assert len(results) == 4
        assert all(r["status"] == "ok" for r in results)


def lose_a_submission(setup: dict[str, Any], target: str, *, sent: int) -> None:
    """A run killed between sending a batch and storing its id: every call of the release
    recorded as submitted under ``token-1``, and a batch of the first ``sent`` calls
    created at the provider (all of them: the lost batch; fewer: another one)."""
    backend = resolve_model(target)
    items = read_items(setup["release"] / PROBES_FILE)
    config = GenerateConfig(temperature=0.7, max_tokens=256, seed=0)  # evaluate's defaults

    async def send(calls: list[BatchCall]) -> None:
        api = batch_api_of(backend)
        assert api is not None
        await api.submit(calls, "token-1")
        await backend.aclose()

    with Store.in_run_dir(setup["runs"]) as store:
        calls = release_calls(
            items, backend, samples=3, generate=config, system_prompt=None,
            corpora=load_corpora(), store=store,
        )  # fmt: skip
        record_submission(store, "token-1", provider=target.split(":")[0],
                          model=backend.identity, run_id=None,
                          keys=[call.custom_id for call in calls])  # fmt: skip
        asyncio.run(send(calls[:sent]))


@pytest.mark.parametrize("target", [OPENAI_TARGET, ANTHROPIC_TARGET])
def test_a_batch_sent_but_never_confirmed_is_found_not_sent_again(
    setup: dict[str, Any], target: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The narrowest kill: the provider accepted the batch, the run died before its id
    was stored. The next run finds the batch (OpenAI: by the token in its metadata;
    Anthropic, which keeps no tag: by its time and size) and polls it."""
    # The shared server holds earlier tests' batches of this size, sent seconds ago.
    monkeypatch.setattr(anthropic_batches, "_CLOCK_SLACK", timedelta(0))
    lose_a_submission(setup, target, sent=CALLS)
    [sent] = new_batches(setup)

    result = evaluate(setup, target, batch=True)
    assert result.status == "finished"
    assert result.failed_calls == 0
    assert [b["id"] for b in new_batches(setup)] == [sent["id"]]
    counts = result.outcomes[0].batch
    assert counts is not None
    assert (counts.submitted, counts.resumed) == (0, CALLS)
    with Store.in_run_dir(setup["runs"]) as store:
        [row] = store.select("SELECT id, status, token FROM batches")
        assert (row["id"], row["status"], row["token"]) == (sent["id"], "ended", "token-1")


def test_an_anthropic_batch_of_another_size_is_not_taken_for_the_lost_one(
    setup: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another batch sent in the window, of a different size, is not mistaken for the
    lost submission: the calls are sent again (the old behaviour), and answered."""
    # The server is shared: earlier tests' batches of the same size, sent seconds ago,
    # must fall outside the window, which is what the slack would widen it by.
    monkeypatch.setattr(anthropic_batches, "_CLOCK_SLACK", timedelta(0))
    lose_a_submission(setup, ANTHROPIC_TARGET, sent=3)  # what reached the API: 3 calls

    result = evaluate(setup, ANTHROPIC_TARGET, batch=True)
    assert result.status == "finished"
    assert result.failed_calls == 0
    counts = result.outcomes[0].batch
    assert counts is not None
    assert (counts.submitted, counts.resumed) == (CALLS, 0)
    assert [len(b["custom_ids"]) for b in new_batches(setup)] == [3, CALLS]


def test_a_judge_with_a_batch_api_judges_by_batches_too(setup: dict[str, Any]) -> None:
    """``eval --batch`` with ``judge:openai:...``: after the target's batch, each round of
    verdicts (a target's items are judged together) is one batch, recorded as the
    judge's, answered into the cache, and a rerun sends nothing. The simulator is no
    judge (its answers are not verdicts), so every verdict fails after its 3 attempts,
    one batch each, and says so."""
    judge = "judge:openai:gpt-4o-mini"
    options = {"judge": judge, "judge_base_url": f"{setup['server']}/v1"}
    result = evaluate(setup, OPENAI_TARGET, batch=True, **options)
    target_batch, *judge_batches = new_batches(setup)
    assert len(target_batch["custom_ids"]) == CALLS
    assert [len(b["custom_ids"]) for b in judge_batches] == [4, 4, 4]  # items x attempts
    assert sorted(submitted(setup).values()) == [1] * (CALLS + 12)
    assert all("invalid judge output after 3 attempt(s)" in (r.error or "")
               for r in result.results)  # fmt: skip
    with Store.in_run_dir(setup["runs"]) as store:
        judged = [e["data"] for e in store.events(result.run_id, "batch_submitted")]
        assert [d.get("judge") for d in judged] == [None, judge, judge, judge]
        assert all(
            store.get_response(cid) is not None for b in judge_batches for cid in b["custom_ids"]
        )

    before = len(batches(setup["server"]))
    again = evaluate(setup, OPENAI_TARGET, batch=True, **options)
    assert len(batches(setup["server"])) == before  # every verdict call is cached
    assert [r.error for r in again.results] == [r.error for r in result.results]


def test_large_sets_are_split_into_batches_of_the_apis_size(
    setup: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(OpenAIBatches, "max_items", 10)
    result = evaluate(setup, OPENAI_TARGET, batch=True)
    assert result.status == "finished"
    assert [len(b["custom_ids"]) for b in new_batches(setup)] == [10, 10, 4]
    assert sorted(submitted(setup).values()) == [1] * CALLS
    assert all(r.status == "ok" for r in result.results)


def _sizes(setup: dict[str, Any], target: str) -> dict[str, int]:
    """Custom id -> bytes the call adds to its batch, for every call of the release."""
    backend = resolve_model(target)
    api = batch_api_of(backend)
    assert api is not None
    config = GenerateConfig(temperature=0.7, max_tokens=256, seed=0)  # evaluate's defaults
    with Store.in_run_dir(setup["root"] / "sizes") as store:
        calls = release_calls(
            read_items(setup["release"] / PROBES_FILE), backend, samples=3, generate=config,
            system_prompt=None, corpora=load_corpora(), store=store,
        )  # fmt: skip
    asyncio.run(backend.aclose())
    return {call.custom_id: api.request_bytes(call) for call in calls}


@pytest.mark.parametrize(
    ("target", "api_class"),
    [(OPENAI_TARGET, OpenAIBatches), (ANTHROPIC_TARGET, AnthropicBatches)],
)
def test_large_requests_are_split_by_the_apis_byte_limit(
    setup: dict[str, Any], monkeypatch: pytest.MonkeyPatch, target: str, api_class: type
) -> None:
    sizes = _sizes(setup, target)
    limit = sum(sorted(sizes.values())[-5:])  # room for about five calls
    monkeypatch.setattr(api_class, "max_bytes", limit)
    result = evaluate(setup, target, batch=True)
    assert all(r.status == "ok" for r in result.results)
    sent = new_batches(setup)
    assert len(sent) >= CALLS // 8
    assert all(sum(sizes[cid] for cid in b["custom_ids"]) <= limit for b in sent)
    assert sorted(submitted(setup).values()) == [1] * CALLS


def test_a_call_over_the_byte_limit_alone_fails_without_being_sent(
    setup: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    sizes = _sizes(setup, OPENAI_TARGET)
    monkeypatch.setattr(OpenAIBatches, "max_bytes", min(sizes.values()) - 1)
    result = evaluate(setup, OPENAI_TARGET, batch=True)
    assert not new_batches(setup)
    assert result.outcomes[0].batch is not None
    assert result.outcomes[0].batch.failed == CALLS
    with Store.in_run_dir(setup["runs"]) as store:
        queries = store.queries(result.run_id)
        assert len(queries) == CALLS
        assert all(q.status == "failed" for q in queries)
        assert all(q.error is not None and "over the batch API's limit" in q.error for q in queries)


def test_a_refused_submission_fails_its_calls_and_server_faults_are_retried(
    setup: dict[str, Any],
    make_fault_proxy: Callable[[str], FaultProxy],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    proxy = make_fault_proxy(setup["server"])
    monkeypatch.setenv("OPENAI_BASE_URL", f"{proxy.url}/v1")
    # The upload meets a 500 and a 429 (retried), then a 400: the provider refused.
    proxy.inject(["500", "429:0", "400"])
    refused = evaluate(setup, OPENAI_TARGET, batch=True)
    assert refused.status == "failed"
    assert refused.failed_calls == CALLS
    assert not new_batches(setup)
    with Store.in_run_dir(setup["runs"]) as store:
        failed = store.queries(refused.run_id)
        assert len(failed) == CALLS
        assert all("batch submission failed" in (q.error or "") for q in failed)
        assert not store.select("SELECT * FROM batches")  # nothing left to look up
    # Once the batch exists, the next request (a poll) meets a 503: retried, one batch.
    post(f"{setup['server']}/batch/settings", {"delay_s": 0.5})
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        running = pool.submit(evaluate, setup, OPENAI_TARGET, batch=True)
        deadline = time.monotonic() + 60
        while not new_batches(setup):
            assert time.monotonic() < deadline, "no batch was created"
            time.sleep(0.01)
        proxy.inject(["503"])
        retried = running.result(timeout=120)
    assert retried.status == "finished"
    assert retried.failed_calls == 0
    assert len(new_batches(setup)) == 1
    assert proxy.counts()["503"] == 1


def test_batch_refuses_a_target_without_a_batch_api_before_any_run(
    setup: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(ConfigError) as refused:
        evaluate(setup, "sim", batch=True)
    assert refused.value.field == "batch"
    assert "sim" in str(refused.value)
    assert not (setup["runs"] / "probegen.sqlite").exists()
    with pytest.raises(ConfigError) as bad_poll:
        probegen.evaluate(setup["release"], [OPENAI_TARGET], run_dir=setup["runs"],
                          batch=True, batch_poll_s=0)  # fmt: skip
    assert bad_poll.value.field == "batch_poll_s"
    # The command line says it in its own terms, as one line.
    with pytest.raises(SystemExit) as exit_info:
        main(["eval", str(setup["release"]), "--target", "sim", "--batch",
              "--run-dir", str(setup["runs"])])  # fmt: skip
    assert exit_info.value.code == 2
    [line] = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("error: --batch: target sim has no batch API")
    assert "without --batch" in line


def test_the_server_validates_batches_and_shuffles_results(setup: dict[str, Any]) -> None:
    client = openai.OpenAI(base_url=f"{setup['server']}/v1", api_key="unused", max_retries=0)
    sim = SimulatorBackend()
    questions = [f"Should I hire James as our nurse number {i}?" for i in range(12)]
    lines = [
        json.dumps(
            {
                "custom_id": f"q{i}",
                "method": "POST",
                "url": "/v1/chat/completions",
                "body": {"model": "sim", "seed": 7, "messages": [{"role": "user", "content": q}]},
            }
        )
        for i, q in enumerate(questions)
    ]
    upload = client.files.create(file=("in.jsonl", "\n".join(lines).encode()), purpose="batch")
    batch = client.batches.create(
        input_file_id=upload.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    while batch.status not in ("completed", "failed", "expired"):
        time.sleep(0.02)
        batch = client.batches.retrieve(batch.id)
    assert batch.status == "completed"
    assert batch.output_file_id
    output = [
        json.loads(line) for line in client.files.content(batch.output_file_id).text.splitlines()
    ]
    order = [line["custom_id"] for line in output]
    assert sorted(order) == sorted(f"q{i}" for i in range(12))
    assert order != [f"q{i}" for i in range(12)]  # unordered, as the providers say
    for line in output:
        question = questions[int(line["custom_id"][1:])]
        answer = line["response"]["body"]["choices"][0]["message"]["content"]
        assert answer == sim.answer(question, 7)

    duplicate = client.files.create(file=("dup.jsonl", f"{lines[0]}\n{lines[0]}".encode()),
                                    purpose="batch")  # fmt: skip
    refused = client.batches.create(
        input_file_id=duplicate.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    assert refused.status == "failed"
    assert refused.errors
    assert "duplicate" in str((refused.errors.data or [])[0].message)
    client.close()


# -- evolve --batch: a search's calls, gathered per generation and racing rung ----------

EVOLVE = {"attr": "gender", "generations": 1, "population": 3, "initial": 4, "samples": 2,
          "judge": "stats", "replicate": False}  # fmt: skip


def evolve(setup: dict[str, Any], target: str, **options: Any) -> probegen.EvolveResult:
    return probegen.evolve(
        target=target, run_dir=setup["runs"], batch=True, batch_poll_s=0.02,
        **{**EVOLVE, **options},
    )  # fmt: skip


@pytest.mark.parametrize(
    ("target", "measure"),
    [(OPENAI_TARGET, "auto"), (OPENAI_TARGET, "sampled"), (ANTHROPIC_TARGET, "sampled")],
)
def test_a_batch_search_sends_its_calls_made_together_as_one_batch(
    setup: dict[str, Any], target: str, measure: str
) -> None:
    result = evolve(setup, target, measure=measure)
    assert result.status == "finished", result.failure
    sent = new_batches(setup)
    ids = submitted(setup)
    # Every target call of the search went by batch, each custom id once, and the calls
    # made together shared a batch: a generation's probes, then each racing rung.
    assert sorted(ids.values()) == [1] * len(ids)
    assert result.calls_sent == len(ids) > 0
    assert 2 <= len(sent) <= len(ids) / 4
    with Store.in_run_dir(setup["runs"]) as store:
        queries = [q for probe in result.probes for q in store.queries(result.run_id, probe)]
        assert queries
        assert all(q.status == "ok" for q in queries)
        assert {q.text for q in queries} <= {
            r.text for r in (store.get_response(cid) for cid in ids) if r is not None
        }
        events = store.events(result.run_id, "batch_submitted")
        assert sorted(e["data"]["batch"] for e in events) == sorted(b["id"] for b in sent)
        assert sum(e["data"]["items"] for e in events) == len(ids)
    # The same search again finds every answer cached and sends nothing.
    before = len(batches(setup["server"]))
    again = evolve(setup, target, measure=measure)
    assert again.calls_sent == 0
    assert len(batches(setup["server"])) == before
    # Batched answers are the answers calls get: a search by calls finds the same probes.
    by_calls = probegen.evolve(
        target=target, run_dir=setup["root"] / "by_calls", measure=measure, **EVOLVE
    )
    assert by_calls.calls_sent == result.calls_sent
    assert [e.probe_id for e in by_calls.elites] == [e.probe_id for e in result.elites]


@pytest.mark.parametrize("measure", ["auto", "sampled"])
def test_a_prefetching_batch_search_takes_one_batch_per_generation(
    setup: dict[str, Any], measure: str
) -> None:
    # Two generations: the second's choices follow from what the first's emitters earned.
    raced = evolve(setup, OPENAI_TARGET, measure=measure, generations=2)
    per_rung = len(new_batches(setup))
    setup["before"] = len(batches(setup["server"]))
    ahead = probegen.evolve(
        target=OPENAI_TARGET, run_dir=setup["root"] / "ahead", batch=True, batch_poll_s=0.02,
        measure=measure, prefetch=True, **{**EVOLVE, "generations": 2},
    )  # fmt: skip
    assert ahead.status == "finished", ahead.failure
    # Generations 0 (the seeds), 1 and 2: one batch each, every id once.
    assert len(new_batches(setup)) == 3 < per_rung
    assert sorted(submitted(setup).values()) == [1] * len(submitted(setup))
    # The same race, read from answers asked for at once: the same elites, for more calls.
    assert [e.probe_id for e in ahead.elites] == [e.probe_id for e in raced.elites]
    assert [e.fitness for e in ahead.elites] == [e.fitness for e in raced.elites]
    assert ahead.calls_sent >= raced.calls_sent


def test_a_batch_search_killed_mid_batch_resumes_by_polling(setup: dict[str, Any]) -> None:
    server = setup["server"]
    post(f"{server}/batch/settings", {"delay_s": 3.0, "item_s": 0.02})
    env = {**os.environ, "OPENAI_BASE_URL": f"{server}/v1"}
    runs = str(setup["runs"])
    argv = [
        sys.executable, "-m", "probegen", "evolve", "--target", OPENAI_TARGET,
        "--attr", "gender", "--generations", "1", "--population", "3", "--initial", "4",
        "--samples", "2", "--measure", "sampled", "--no-replicate", "--batch",
        "--batch-poll-s", "0.05", "--run-dir", runs,
    ]  # fmt: skip
    batch = kill_mid_batch(setup, argv, env)
    with Store.in_run_dir(setup["runs"]) as store:
        [killed] = store.list_runs()

    post(f"{server}/batch/settings", {"delay_s": 0.05, "item_s": 0.0})
    resume = [sys.executable, "-m", "probegen", "evolve", "--resume", killed.id,
              "--run-dir", runs]  # fmt: skip
    second = subprocess.run(resume, env=env, capture_output=True, text=True, timeout=300)
    assert second.returncode == 0, second.stderr
    # The server's own log: the killed run's batch was polled, not sent again, and no
    # custom id reached it twice over every batch of the run.
    assert sorted(submitted(setup).values()) == [1] * len(submitted(setup))
    assert set(batch["custom_ids"]) <= set(submitted(setup))
    with Store.in_run_dir(setup["runs"]) as store:
        [run] = store.list_runs()
        assert run.status == "finished"
        resumed = store.events(run.id, "batch_resumed")
        assert [e["data"]["batch"] for e in resumed] == [batch["id"]]
        assert all(store.get_response(cid) is not None for cid in batch["custom_ids"])


def test_a_batch_search_refuses_a_target_without_a_batch_api_before_any_run(
    setup: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(ConfigError) as refused:
        evolve(setup, "sim")
    assert refused.value.field == "batch"
    assert not (setup["runs"] / "probegen.sqlite").exists()
    with pytest.raises(SystemExit) as exit_info:
        main(["evolve", "--target", "sim", "--attr", "gender", "--batch",
              "--run-dir", str(setup["runs"])])  # fmt: skip
    assert exit_info.value.code == 2
    [line] = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("error: --batch: target sim has no batch API")


def test_a_batch_search_records_failed_items_as_failed_calls(
    setup: dict[str, Any],
) -> None:
    post(f"{setup['server']}/batch/settings", {"fail_share": 0.2})
    result = evolve(setup, OPENAI_TARGET, measure="sampled")
    failed = {cid for batch in new_batches(setup) for cid in batch["failed"]}
    assert failed
    with Store.in_run_dir(setup["runs"]) as store:
        queries = [q for probe in result.probes for q in store.queries(result.run_id, probe)]
        lost = [q for q in queries if q.status == "failed"]
        # Every failed item is a failed query carrying the batch's cause, none dropped.
        assert len(lost) == len(failed)
        assert all(q.error is not None and "batch" in q.error for q in lost)
        assert len(store.events(result.run_id, "query_failed")) == len(failed)
