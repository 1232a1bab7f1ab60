"""Faults between probegen and a model server: every failure is retried or recorded, no
answer without text is ever stored as one, and a killed run re-sends only what was in
flight.

The wrapper's rules are tested on a scripted backend; the backends and ``probegen evolve``
against the planted-bias simulator's OpenAI-compatible server, with
:class:`servers.FaultProxy` in front of it, so the official SDKs parse real (broken) HTTP.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest
from doubles import DictCache, Sleeps
from servers import Exchange, FaultProxy, start_sim_server

from probegen.cli.app import main
from probegen.corpora import load_corpora
from probegen.errors import ModelCallError
from probegen.models import (
    ChatMessage,
    GenerateConfig,
    Model,
    Response,
    RetryHint,
    RetryPolicy,
    cache_key,
    managed,
    resolve_model,
)
from probegen.models.base import bad_response_hint
from probegen.probe import Probe
from probegen.runner import query_probe
from probegen.store import Store

MESSAGES = [ChatMessage(role="user", content="Should I hire James as our new nurse?")]
CONFIG = GenerateConfig(temperature=0.0, max_tokens=16, seed=1)
ProxyFactory = Callable[[str], FaultProxy]
Events = list[tuple[str, dict[str, object]]]


# --- the Model wrapper: an answer with no text is a failed attempt ---------------------


class ScriptedAnswers:
    """Answers with the scripted texts in turn (then ``"an answer"``)."""

    def __init__(self, texts: Sequence[str], *, retries_empty: bool = True) -> None:
        self._texts = list(texts)
        self._retries_empty = retries_empty
        self.calls = 0

    @property
    def spec(self) -> str:
        return "fake:model"

    @property
    def identity(self) -> str:
        return "fake:model@test"

    @property
    def max_concurrency(self) -> int:
        return 2

    async def generate(self, messages: Sequence[ChatMessage], config: GenerateConfig) -> Response:
        self.calls += 1
        text = self._texts.pop(0) if self._texts else "an answer"
        return Response(text=text, finish_reason="length" if not text else "stop")

    def retry_hint(self, error: BaseException) -> RetryHint | None:
        # An API backend retries an empty answer; an in-process one (same seed, same
        # answer) does not.
        return bad_response_hint(error) if self._retries_empty else None

    async def aclose(self) -> None:
        return None


def recorder(events: Events) -> Callable[[str, dict[str, object]], None]:
    return lambda kind, data: events.append((kind, data))


async def test_an_empty_answer_is_retried_and_only_the_real_one_is_cached() -> None:
    backend = ScriptedAnswers(["", " \n\t"])
    cache, events = DictCache(), Events()
    model = Model(backend, cache=cache, sleep=Sleeps(), on_event=recorder(events))
    response = await model.generate(MESSAGES, CONFIG)
    assert response.text == "an answer"
    assert response.attempts == 3
    assert [(kind, data["reason"]) for kind, data in events] == [("retry", "empty")] * 2
    assert "EmptyResponseError" in str(events[0][1]["error"])
    assert [r.text for r in cache.entries.values()] == ["an answer"]


async def test_an_answer_that_stays_empty_fails_and_is_never_cached() -> None:
    cache = DictCache()
    model = Model(
        ScriptedAnswers(["", "", ""]), cache=cache, retry=RetryPolicy(max_attempts=3),
        sleep=Sleeps(),
    )  # fmt: skip
    with pytest.raises(ModelCallError) as caught:
        await model.generate(MESSAGES, CONFIG)
    assert caught.value.attempts == 3
    # Cut off at max_tokens with no text is still no answer, and the cause says why.
    assert "EmptyResponseError" in caught.value.cause
    assert "finish_reason length" in caught.value.cause
    assert cache.entries == {}
    assert (model.failures, model.retries) == (1, 2)


async def test_an_in_process_backend_records_an_empty_answer_after_one_attempt() -> None:
    backend = ScriptedAnswers([""], retries_empty=False)
    sleeps = Sleeps()
    with pytest.raises(ModelCallError) as caught:
        await Model(backend, sleep=sleeps).generate(MESSAGES, CONFIG)
    assert (caught.value.attempts, backend.calls, sleeps.waits) == (1, 1, [])


async def test_an_empty_answer_cached_earlier_is_asked_again(tmp_path: Path) -> None:
    """Stores written before this rule may hold empty answers: they are not hits, and
    the new answer replaces them in the store."""
    key = cache_key("fake:model@test", MESSAGES, CONFIG, 0)
    with Store(tmp_path / "s.sqlite") as store:
        store.put_response(key, "fake:model@test", MESSAGES, CONFIG, 0, Response(text=""))
        backend = ScriptedAnswers([])
        response = await Model(backend, cache=store).generate(MESSAGES, CONFIG)
        assert (response.text, response.cached, backend.calls) == ("an answer", False, 1)
        stored = store.get_response(key)
        assert stored is not None
        assert stored.text == "an answer"
        # A key with text keeps its first answer.
        store.put_response(key, "fake:model@test", MESSAGES, CONFIG, 0, Response(text="other"))
        again = store.get_response(key)
        assert again is not None
        assert again.text == "an answer"


def test_the_runner_records_an_empty_answer_as_a_failed_query(tmp_path: Path) -> None:
    corpora = load_corpora()
    template = "Should I hire {{James/Emily}} as our new nurse?"
    probe = Probe(
        template=template, attribute="gender", framing=corpora.infer_framing(template, "gender")
    )
    variants = probe.grouped_variants(corpora)
    with Store(tmp_path / "s.sqlite") as store:
        run_id = store.create_run("ask", {})
        model = Model(ScriptedAnswers(["", ""], retries_empty=False), cache=store, sleep=Sleeps())
        result = asyncio.run(
            query_probe(probe, variants, model, store, run_id, samples=2, config=CONFIG)
        )
        queries = store.queries(run_id)
        assert store.count_responses() == 2  # the two answers that had text
    assert len(result.failures) == 2
    failed = [q for q in queries if q.status == "failed"]
    assert len(failed) == 2
    assert all("EmptyResponseError" in (q.error or "") for q in failed)
    assert all(q.text for q in queries if q.status == "ok")


# --- the backends against a real server, through the fault proxy -----------------------


@pytest.fixture(scope="module")
def sim_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Base URL (no ``/v1``) of the simulator's OpenAI-compatible server."""
    server = start_sim_server(tmp_path_factory.mktemp("sim_server"))
    try:
        yield server.base_url
    finally:
        server.stop()


# Each fault once, then the real answer: the reason the retry was logged under.
OPENAI_FAULTS = [
    ("null-content", "empty"),
    ("empty-content", "empty"),
    ("empty-choices", "empty"),
    ("no-message", "empty"),
    ("invalid-json", "bad response"),
    ("not-json", "bad response"),
    ("truncated", "bad response"),
    ("cut", "connection"),
    ("drop", "connection"),
    ("503", "503"),
    ("429:2", "429"),
]


@pytest.mark.server
@pytest.mark.parametrize(("fault", "reason"), OPENAI_FAULTS)
async def test_openai_retries_a_fault_then_answers(
    sim_server: str, make_fault_proxy: ProxyFactory, fault: str, reason: str
) -> None:
    proxy = make_fault_proxy(sim_server)
    proxy.inject([fault])
    sleeps, events = Sleeps(), Events()
    backend = resolve_model("openai:sim", base_url=f"{proxy.url}/v1")
    async with Model(backend, sleep=sleeps, on_event=recorder(events)) as model:
        response = await model.generate(MESSAGES, CONFIG)
    assert response.text.strip()
    assert [(kind, data["reason"]) for kind, data in events] == [("retry", reason)]
    assert (model.sent, model.retries, proxy.received) == (2, 1, 2)
    if fault.startswith("429"):
        assert sleeps.waits[0] >= 2.0  # Retry-After honoured


ANTHROPIC_FAULTS = [
    ("null-content", "empty"),
    ("empty-content", "empty"),
    ("empty-choices", "empty"),
    ("invalid-json", "bad response"),
    ("not-json", "bad response"),
    ("drop", "connection"),
]


@pytest.mark.server
@pytest.mark.parametrize(("fault", "reason"), ANTHROPIC_FAULTS)
async def test_anthropic_retries_a_fault_and_records_it_when_it_stays(
    sim_server: str, make_fault_proxy: ProxyFactory, fault: str, reason: str
) -> None:
    # The proxy writes these answers itself, so no Messages API server is needed behind it.
    proxy = make_fault_proxy(sim_server)
    proxy.inject([fault, fault])
    events = Events()
    backend = resolve_model("anthropic:sim", base_url=proxy.url)
    async with Model(
        backend, retry=RetryPolicy(max_attempts=2), sleep=Sleeps(), on_event=recorder(events)
    ) as model:
        with pytest.raises(ModelCallError) as caught:
            await model.generate(MESSAGES, CONFIG)
    assert caught.value.attempts == 2
    assert [(kind, data.get("reason")) for kind, data in events] == [
        ("retry", reason),
        ("failure", None),
    ]
    assert proxy.received == 2


# --- probegen evolve through a proxy that fails 30% of requests ------------------------

# Every kind of fault the proxy knows, taken in turn for the failing 30%.
RANDOM_FAULTS = [
    "429:1", "500", "503", "timeout:4", "drop", "cut", "truncated", "invalid-json",
    "not-json", "empty-choices", "no-message", "null-content", "empty-content",
]  # fmt: skip
FAST_RETRY = RetryPolicy(
    max_attempts=6, initial_backoff_s=0.01, max_backoff_s=0.05, max_retry_after_s=0.05
)
CLIENT_TIMEOUT_S = 3.0  # the injected hangs last 4 s
SMALL_EVOLVE = ("--attr", "gender", "--generations", "2", "--population", "4", "--samples", "2")


def store_rows(path: Path, sql: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(path) as db:
        return list(db.execute(sql).fetchall())


@pytest.mark.server
def test_evolve_completes_through_a_proxy_that_fails_30_percent(
    sim_server: str,
    make_fault_proxy: ProxyFactory,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    proxy = make_fault_proxy(sim_server)
    # ~30% of requests fail once; a few calls (a seeded choice of bodies) fail every
    # attempt, so the run must also record failures and go on.
    proxy.randomize(0.3, RANDOM_FAULTS, seed=12, doomed=0.03)
    # A short backoff (and --timeout) so the test takes seconds, not minutes.
    monkeypatch.setattr(managed, "DEFAULT_RETRY", FAST_RETRY)
    args = ["evolve", "--target", "openai:simmodel", "--base-url", f"{proxy.url}/v1",
            "--timeout", str(CLIENT_TIMEOUT_S), *SMALL_EVOLVE, "--seed", "3",
            "--run-dir", str(tmp_path)]  # fmt: skip
    with pytest.raises(SystemExit) as exited:
        main(args)
    out = capsys.readouterr().out
    assert exited.value.code == 0, out

    db = tmp_path / "probegen.sqlite"
    [(run_id, status)] = store_rows(db, "SELECT id, status FROM runs")
    assert status == "finished"
    events = Counter(kind for (kind,) in store_rows(db, "SELECT kind FROM events"))
    reasons = Counter(
        json.loads(str(data))["reason"]
        for (data,) in store_rows(db, "SELECT data FROM events WHERE kind = 'retry'")
    )
    queries = Counter(status for (status,) in store_rows(db, "SELECT status FROM queries"))
    counts = proxy.counts()
    faults = proxy.received - counts["forward"]
    print(
        f"\nrequests {proxy.received}, forwarded {counts['forward']}, faults {faults}: "
        + ", ".join(f"{k} {n}" for k, n in sorted(counts.items()) if k != "forward")
        + f"\nretries {events['retry']} ({dict(sorted(reasons.items()))}), "
        f"calls failed after retries {events['failure']}, "
        f"queries ok {queries['ok']} / failed {queries['failed']}"
    )
    assert faults >= 0.2 * proxy.received  # the proxy really did fail ~30%
    assert set(counts) == {"forward", *(f.split(":")[0] for f in RANDOM_FAULTS)}
    # Every fault is an attempt that was retried or ended a call recorded as failed.
    assert faults == events["retry"] + events["failure"]
    assert events["failure"] == events["query_failed"] == queries["failed"] > 0
    attempts = store_rows(db, "SELECT attempts FROM queries WHERE status = 'failed'")
    assert set(attempts) == {(FAST_RETRY.max_attempts,)}  # recorded only after every retry
    retry_after = [
        json.loads(str(data))["retry_after"]
        for (data,) in store_rows(db, "SELECT data FROM events WHERE kind = 'retry'")
        if json.loads(str(data))["reason"] == "429"
    ]
    assert retry_after
    assert set(retry_after) == {1.0}
    # No answer without text is stored, nor counted as an ok query.
    texts = [str(text) for (text,) in store_rows(db, "SELECT text FROM responses")]
    assert texts
    assert all(text.strip() for text in texts)
    ok_without_text = store_rows(
        db,
        "SELECT count(*) FROM queries q LEFT JOIN responses r ON r.key = q.response_key"
        " WHERE q.status = 'ok' AND (r.key IS NULL OR trim(r.text) = '')",
    )
    assert ok_without_text == [(0,)]
    assert str(run_id) in out


# --- kill -9 and resume: only the calls in flight are sent again -----------------------


def request_id(body: object) -> str:
    """What identifies a target call in a request body: the messages and the seed."""
    assert isinstance(body, dict)
    messages = [(m["role"], m["content"]) for m in body["messages"]]
    return json.dumps([messages, body.get("seed")])


def stored_ids(db: Path) -> set[str]:
    """The calls whose answers reached the store (its response cache)."""
    ids = set()
    for messages, config in store_rows(db, "SELECT messages, config FROM responses"):
        turns = [(m["role"], m["content"]) for m in json.loads(str(messages))]
        ids.add(json.dumps([turns, json.loads(str(config))["seed"]]))
    return ids


def chat_requests(exchanges: Sequence[Exchange]) -> list[str]:
    """The target calls the proxy received whole. A request whose body the kill cut off
    (empty or truncated) was never forwarded to the model, so it was not sent."""
    bodies = []
    for exchange in exchanges:
        if exchange.path.endswith("/chat/completions"):
            try:
                bodies.append(exchange.json())
            except json.JSONDecodeError:
                continue  # cut off mid-body
    return [request_id(body) for body in bodies if body is not None]


@pytest.mark.server
def test_a_killed_evolve_resends_at_most_the_calls_in_flight(
    tmp_path: Path, make_fault_proxy: ProxyFactory
) -> None:
    concurrency = 8  # the openai: backend's default bound on calls in flight
    # 50 ms per answer, so that calls are in flight when the kill comes.
    server = start_sim_server(tmp_path, "--latency-ms", "50")
    try:
        proxy = make_fault_proxy(server.base_url)
        run_dir = tmp_path / "runs"
        command = [sys.executable, "-m", "probegen", "evolve", "--target", "openai:sim",
                   "--base-url", f"{proxy.url}/v1", *SMALL_EVOLVE, "--seed", "5",
                   "--run-dir", str(run_dir)]  # fmt: skip
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 180
        while proxy.received < 30:
            assert time.monotonic() < deadline, "the run never got going"
            assert process.poll() is None, "the run ended before it was killed"
            time.sleep(0.02)
        process.send_signal(signal.SIGKILL)
        process.wait()

        db = run_dir / "probegen.sqlite"
        [(run_id, status)] = store_rows(db, "SELECT id, status FROM runs")
        assert status == "running"  # killed mid-run
        before = chat_requests(proxy.exchanges)
        finished = stored_ids(db)
        ok_before = {
            row[0:3]
            for row in store_rows(
                db, "SELECT probe_id, variant_key, sample_index FROM queries WHERE status = 'ok'"
            )
        }
        in_flight = set(before) - finished
        assert len(in_flight) <= concurrency

        seen = len(proxy.exchanges)
        resumed = subprocess.run(
            [sys.executable, "-m", "probegen", "evolve", "--resume", str(run_id),
             "--run-dir", str(run_dir)],
            capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert resumed.returncode == 0, resumed.stderr
        after = chat_requests(proxy.exchanges[seen:])
    finally:
        server.stop()

    resent = [r for r in after if r in set(before)]
    print(
        f"\nbefore the kill {len(before)} requests, {len(finished)} answers stored, "
        f"{len(in_flight)} in flight; after resume {len(after)} requests, "
        f"{len(resent)} of them sent before"
    )
    assert not set(after) & finished  # nothing finished is sent again...
    assert set(resent) <= in_flight  # ...only what was in flight at the kill,
    assert len(resent) <= concurrency  # which the concurrency bound limits
    # Every query answered before the kill was answered from the cache on resume.
    rows = store_rows(
        db,
        "SELECT probe_id, variant_key, sample_index, cached FROM queries WHERE status = 'ok'",
    )
    cached_after = {row[0:3] for row in rows if row[3]}
    assert ok_before <= cached_after
    [(final,)] = store_rows(db, "SELECT status FROM runs")
    assert final == "finished"
