"""Group commit in the run store: concurrent writes share transactions, a caller is
released only once its write is committed, and a process killed with SIGKILL keeps every
write a caller was told is stored."""

from __future__ import annotations

import asyncio
import signal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

from probegen.models.base import ChatMessage, GenerateConfig, Response, cache_key
from probegen.store import Store

MESSAGES = [ChatMessage(role="user", content="Should I hire James?")]
CONFIG = GenerateConfig(temperature=0.7, max_tokens=64, seed=3)


def key_for(i: int) -> str:
    return cache_key("local:x", MESSAGES, CONFIG, i)


async def answer(store: Store, run_id: str, i: int) -> None:
    """What the runner stores for one answered call."""
    response = Response(text=f"answer {i}")
    await store.aput_response(key_for(i), "local:x", MESSAGES, CONFIG, i, response)
    await store.arecord_query(run_id, "p", "local:x", "k", None, i, response_key=key_for(i))


async def test_concurrent_writes_share_transactions_and_all_land(tmp_path: Path) -> None:
    with Store(tmp_path / "s.sqlite") as store:
        run_id = store.create_run("ask", {})
        await asyncio.gather(*(answer(store, run_id, i) for i in range(100)))
        assert store.count_responses() == 100
        assert [q.text for q in store.queries(run_id)] == [f"answer {i}" for i in range(100)]
        # 200 writes issued in two waves by 100 tasks at once: two transactions.
        assert store.group_commit.writes == 200
        assert store.group_commit.transactions == 2


async def test_a_caller_returns_only_once_its_write_is_committed(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    with Store(path) as store:
        run_id = store.create_run("ask", {})
        await answer(store, run_id, 0)
        # Another connection (another process, as after a kill) sees it at once.
        other = sqlite3.connect(path)
        assert other.execute("SELECT count(*) FROM queries").fetchone() == (1,)
        other.close()


async def test_a_queued_response_is_found_before_it_is_committed(tmp_path: Path) -> None:
    with Store(tmp_path / "s.sqlite") as store:
        task = asyncio.create_task(
            store.aput_response(key_for(0), "local:x", MESSAGES, CONFIG, 0, Response(text="hi"))
        )
        await asyncio.sleep(0)  # queued, not yet flushed
        assert store.group_commit.pending
        hit = store.get_response(key_for(0))
        assert hit is not None
        assert (hit.text, hit.cached) == ("hi", True)
        await task
        assert not store.group_commit.pending
        assert store.count_responses() == 1


async def test_a_synchronous_write_commits_queued_writes_first(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    with Store(path) as store:
        run_id = store.create_run("ask", {})
        task = asyncio.create_task(
            store.arecord_query(run_id, "p", "m", "k", None, 0, response_key=None, error="500")
        )
        await asyncio.sleep(0)
        assert store.group_commit.pending
        # Issued after the query, so it must not land before it: the query is committed
        # first, in a transaction of its own.
        store.log_event(run_id, "later")
        other = sqlite3.connect(path)
        assert other.execute("SELECT count(*) FROM queries").fetchone() == (1,)
        other.close()
        assert not store.group_commit.pending
        await task


async def test_a_failed_query_and_its_event_commit_together(tmp_path: Path) -> None:
    with Store(tmp_path / "s.sqlite") as store:
        run_id = store.create_run("ask", {})
        await store.arecord_query(
            run_id, "p", "m", "k", None, 0, response_key=None, error="500 after 6 attempts",
            attempts=6, event=("query_failed", {"error": "500"}),
        )  # fmt: skip
        assert store.group_commit.transactions == 1
        assert [q.status for q in store.queries(run_id)] == ["failed"]
        assert [e["kind"] for e in store.events(run_id)] == ["query_failed"]


async def test_writes_of_one_flush_keep_their_order(tmp_path: Path) -> None:
    with Store(tmp_path / "s.sqlite") as store:
        run_id = store.create_run("ask", {})
        response = Response(text="second try")
        # One flush: runs of the same statement go to SQLite together, but a failure and
        # the later success of the same slot, and the events between them, stay in order.
        await asyncio.gather(
            store.arecord_query(
                run_id, "p", "m", "k", None, 0, response_key=None, error="500",
                event=("query_failed", {"n": 1}),
            ),
            store.aput_response(key_for(0), "m", MESSAGES, CONFIG, 0, response),
            store.arecord_query(run_id, "p", "m", "k", None, 0, response_key=key_for(0)),
            store.arecord_query(
                run_id, "p", "m", "k", None, 1, response_key=None, error="timeout",
                event=("query_failed", {"n": 2}),
            ),
        )  # fmt: skip
        assert store.group_commit.transactions == 1
        assert [(q.sample_index, q.status, q.text) for q in store.queries(run_id)] == [
            (0, "ok", "second try"),
            (1, "failed", None),
        ]
        assert [e["data"]["n"] for e in store.events(run_id)] == [1, 2]


async def test_one_bad_write_fails_only_its_caller(tmp_path: Path) -> None:
    with Store(tmp_path / "s.sqlite") as store:
        run_id = store.create_run("ask", {})
        # The queries table references runs: an unknown run id breaks the foreign key.
        results = await asyncio.gather(
            answer(store, run_id, 0),
            store.arecord_query("no-such-run", "p", "m", "k", None, 1, response_key=None),
            answer(store, run_id, 2),
            return_exceptions=True,
        )
        assert results[0::2] == [None, None]
        assert isinstance(results[1], sqlite3.IntegrityError)
        assert [q.sample_index for q in store.queries(run_id)] == [0, 2]


def test_closing_the_store_commits_writes_whose_callers_were_cancelled(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    store = Store(path)
    run_id = store.create_run("ask", {})

    async def cancelled() -> None:
        task = asyncio.create_task(answer(store, run_id, 0))
        await asyncio.sleep(0)
        task.cancel()

    asyncio.run(cancelled())
    store.close()
    with Store(path) as reopened:
        assert reopened.count_responses() == 1


ACKNOWLEDGER = textwrap.dedent(
    """
    import asyncio, sys
    from pathlib import Path
    from probegen.models.base import ChatMessage, GenerateConfig, Response, cache_key
    from probegen.store import Store

    store = Store(Path(sys.argv[1]))
    run = store.create_run("ask", {})
    config = GenerateConfig()

    async def call(i):
        await asyncio.sleep(0.001 * (i % 7))
        messages = [ChatMessage(role="user", content=f"question {i} " + "x" * 2000)]
        key = cache_key("local:x", messages, config, 0)
        await store.aput_response(key, "local:x", messages, config, 0, Response(text="a"))
        await store.arecord_query(run, f"p-{i}", "local:x", "k", None, 0, response_key=key)
        print(i, flush=True)  # acknowledged: the caller was told it is stored

    async def main():  # 64 calls in flight, until killed
        slots = asyncio.Semaphore(64)
        running = set()
        for i in range(1_000_000):
            await slots.acquire()
            task = asyncio.create_task(call(i))
            running.add(task)
            task.add_done_callback(running.discard)
            task.add_done_callback(lambda _: slots.release())

    asyncio.run(main())
    """
)


def test_sigkill_loses_nothing_acknowledged(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    writer = subprocess.Popen(
        [sys.executable, "-c", ACKNOWLEDGER, str(path)], stdout=subprocess.PIPE, text=True
    )
    assert writer.stdout is not None
    acknowledged = [writer.stdout.readline().strip() for _ in range(500)]
    assert all(acknowledged), "the writer stopped before 500 acknowledgements"
    writer.send_signal(signal.SIGKILL)
    writer.wait()
    assert writer.returncode == -signal.SIGKILL
    acknowledged += [line.strip() for line in writer.stdout if line.strip()]

    db = sqlite3.connect(path)
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    stored = {row[0] for row in db.execute("SELECT probe_id FROM queries WHERE status = 'ok'")}
    assert {f"p-{i}" for i in acknowledged} <= stored
    # Every recorded answer points at a stored response: no half-written pair.
    [(orphans,)] = db.execute(
        "SELECT count(*) FROM queries q LEFT JOIN responses r ON r.key = q.response_key"
        " WHERE r.key IS NULL"
    ).fetchall()
    assert orphans == 0
