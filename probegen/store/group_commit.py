"""Group commit: the writes that concurrent tasks issue together share one transaction.

A run with many model calls in flight records every answer (a cached response and a
query row). Committing each one in its own transaction costs a WAL append, the locks and,
every thousand pages, a checkpoint with its fsyncs; at 64 calls in flight on two cores
that bookkeeping, not the model, bounds the throughput. :meth:`GroupCommit.commit` queues
a task's writes and schedules one flush for the next turn of the event loop, so every
write issued in the meantime, by any task, is committed in the same transaction.

Kill -9 safety is unchanged: a caller is released only once its writes are committed, so
nothing that a caller was told is stored can be lost; a process killed before the flush
loses writes whose callers were still waiting, exactly as if the answers had arrived a
moment later. Writes commit in the order they were issued, and a synchronous transaction
flushes what is queued first (see :meth:`probegen.store.Store.transaction`), so a later
write never lands before an earlier one.
"""

from __future__ import annotations

import asyncio
import itertools
import operator
import sqlite3
from collections.abc import Callable, Sequence
from typing import Any

__all__ = ["GroupCommit", "Write"]

Write = tuple[str, Sequence[Any]]
"""One SQL statement with its parameters."""

_Pending = tuple[Sequence[Write], "asyncio.Future[None]"]


class GroupCommit:
    """Queues writes from coroutines and commits each batch in one transaction.

    Args:
        db: The store's connection (autocommit mode: transactions are explicit).
        on_flushed: Called after every flush attempt, committed or not (the store drops
            its view of the responses that were queued).

    Attributes:
        transactions: Transactions committed by flushes.
        writes: Statements those transactions carried (``writes / transactions`` is the
            mean batch size).
    """

    def __init__(self, db: sqlite3.Connection, on_flushed: Callable[[], None]) -> None:
        self._db = db
        self._on_flushed = on_flushed
        self._pending: list[_Pending] = []
        self._scheduled_on: asyncio.AbstractEventLoop | None = None
        self.transactions = 0
        self.writes = 0

    @property
    def pending(self) -> bool:
        """Whether writes are queued and not yet committed."""
        return bool(self._pending)

    async def commit(self, *writes: Write) -> None:
        """Commit ``writes`` (in order, atomically) together with whatever other tasks
        queue before the next turn of the event loop; returns once they are committed.

        Raises:
            sqlite3.Error: This caller's writes failed (the other callers' writes of the
                batch are committed without them).
        """
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        self._pending.append((writes, future))
        # A flush scheduled on another loop (an earlier asyncio.run) may never run; one
        # thread runs one loop at a time, so a flush here is never a second concurrent one.
        if self._scheduled_on is not loop:
            self._scheduled_on = loop
            loop.call_soon(self.flush)
        await future

    def flush(self) -> None:
        """Commit every queued write now and release the callers (a no-op when none)."""
        self._scheduled_on = None
        pending, self._pending = self._pending, []
        if not pending:
            return
        try:
            self._run([write for writes, _ in pending for write in writes])
        except sqlite3.Error:
            # One bad write must not fail the rest: commit the callers one by one.
            for writes, future in pending:
                try:
                    self._run(writes)
                except sqlite3.Error as error:
                    _settle(future, error)
                else:
                    _settle(future, None)
            return
        except BaseException:
            # Interrupted (KeyboardInterrupt) before committing: keep the writes queued so
            # that closing the store still commits them.
            self._pending = pending + self._pending
            raise
        finally:
            self._on_flushed()
        for _, future in pending:
            _settle(future, None)

    def _run(self, writes: Sequence[Write]) -> None:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            # Runs of the same statement (the answers of calls that finished together)
            # go to SQLite in one executemany; the order of the writes is kept.
            for sql, run in itertools.groupby(writes, key=operator.itemgetter(0)):
                self._db.executemany(sql, [params for _, params in run])
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")
        self.transactions += 1
        self.writes += len(writes)


def _settle(future: asyncio.Future[None], error: BaseException | None) -> None:
    # A caller that was cancelled, or whose loop has closed, is no longer waiting.
    if future.done() or future.get_loop().is_closed():
        return
    if error is None:
        future.set_result(None)
    else:
        future.set_exception(error)
