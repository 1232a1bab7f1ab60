"""Answering calls through a provider's batch API, resumably: :func:`answer_by_batch`.

Given the calls a run needs (each named by its response-cache key, which is the custom
id), it

1. drops the calls the response cache already answers;
2. finds those still ``pending`` in a batch the store records (an earlier run submitted
   them and was killed): that batch is polled, and they are not submitted again;
3. submits the rest in batches of at most the API's size, recording each batch's id
   and keys in the store the moment the provider accepts it;
4. polls every open batch until it ends, then reads its results, which arrive in no
   order and are matched by custom id: each answer goes into the response cache (at
   the batch price), each failed or expired item is kept as the cause of a failed call,
   and the outcomes are recorded with the batch.

The caller then runs its usual calls through :class:`~probegen.batch.answered.BatchAnswered`:
answered calls come from the cache, and failed ones fail with their cause, so they are
recorded exactly like any call that failed after its retries (and a rerun retries them).
"""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass, field
from functools import partial
from typing import TypeVar

from probegen.batch.base import BatchBackend, BatchCall, BatchItem
from probegen.errors import ProbegenError
from probegen.models.base import ChatModel, has_text
from probegen.models.managed import DEFAULT_RETRY, RetryPolicy, describe_error
from probegen.models.pricing import batch_cost_usd, cost_usd
from probegen.store import Store
from probegen.store.batches import (
    ItemStatus,
    confirm_batch,
    drop_submission,
    finish_batch_items,
    pending_batches,
    record_submission,
)

__all__ = ["BatchAnswers", "BatchCounts", "BatchError", "BatchEvent", "answer_by_batch"]

BatchEvent = Callable[[str, dict[str, object]], None]
"""``on_event(kind, fields)``: ``batch_submitted`` and ``batch_resumed`` (``batch``,
``items``), ``batch_ended`` (``batch``, ``status``, ``answered``, ``failed``,
``expired``)."""

_T = TypeVar("_T")


class BatchError(ProbegenError):
    """A recorded batch could not be polled or read after retries. The batch stays
    recorded, so running the same work again resumes it."""


@dataclass
class BatchCounts:
    """What the batch API did for one model in one run.

    Attributes:
        submitted: Calls this run submitted in new batches.
        resumed: Calls collected from batches an earlier run submitted.
        answered: Calls answered (now in the response cache).
        failed: Calls whose item failed (or whose submission failed).
        expired: Calls left unanswered when their batch's window ran out.
        cost_usd: What the answers cost at the batch price (None: unpriced model).
        list_cost_usd: What the same answers cost as calls, at the list price.
    """

    submitted: int = 0
    resumed: int = 0
    answered: int = 0
    failed: int = 0
    expired: int = 0
    cost_usd: float | None = None
    list_cost_usd: float | None = None

    @property
    def saved_usd(self) -> float | None:
        """The list price less the batch price of the answers (None: unknown)."""
        if self.cost_usd is None or self.list_cost_usd is None:
            return None
        return self.list_cost_usd - self.cost_usd

    def as_dict(self) -> dict[str, object]:
        """The counts and costs, with ``saved_usd``."""
        return {**asdict(self), "saved_usd": self.saved_usd}

    def add_cost(self, batch: float | None, listed: float | None) -> None:
        """Count one answer's cost at both prices (unknown costs are left out)."""
        if batch is not None:
            self.cost_usd = (self.cost_usd or 0.0) + batch
        if listed is not None:
            self.list_cost_usd = (self.list_cost_usd or 0.0) + listed


@dataclass
class BatchAnswers:
    """The outcome of :func:`answer_by_batch`.

    Attributes:
        counts: See :class:`BatchCounts`.
        failures: Custom id -> why that call has no answer (failed or expired).
        batches: The ids of the batches submitted or collected.
    """

    counts: BatchCounts = field(default_factory=BatchCounts)
    failures: dict[str, str] = field(default_factory=dict)
    batches: list[str] = field(default_factory=list)


async def answer_by_batch(
    calls: Sequence[BatchCall],
    model: ChatModel,
    api: BatchBackend,
    store: Store,
    run_id: str | None,
    *,
    poll_s: float = 30.0,
    on_event: BatchEvent | None = None,
    retry: RetryPolicy = DEFAULT_RETRY,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> BatchAnswers:
    """Answer ``calls`` through ``api`` into the response cache; see the module docs.

    Args:
        calls: The calls, custom id = response-cache key (duplicates are sent once).
        model: The chat model the calls are for (its identity keys the store's batches,
            its spec the prices).
        api: The model's batch API.
        store: The run store and response cache.
        run_id: The run submitting (recorded with its batches).
        poll_s: Seconds between polls of unfinished batches.
        on_event: See :data:`BatchEvent`.
        retry: How transient errors of the batch API's requests are retried.
        sleep: The awaitable used to wait (tests pass a faster one).

    Raises:
        BatchError: A recorded batch could not be polled or read (rerun to resume).
    """
    return await _Collector(model, api, store, run_id, poll_s, on_event, retry, sleep).run(calls)


class _Collector:
    def __init__(
        self,
        model: ChatModel,
        api: BatchBackend,
        store: Store,
        run_id: str | None,
        poll_s: float,
        on_event: BatchEvent | None,
        retry: RetryPolicy,
        sleep: Callable[[float], Awaitable[None]],
    ) -> None:
        self.model, self.api, self.store, self.run_id = model, api, store, run_id
        self.poll_s, self.retry, self.sleep = poll_s, retry, sleep
        self.emit = on_event or (lambda kind, fields: None)
        self.rng = random.Random()
        self.answers = BatchAnswers()
        self.calls: dict[str, BatchCall] = {}

    async def run(self, calls: Sequence[BatchCall]) -> BatchAnswers:
        self.calls = {call.custom_id: call for call in calls}
        needed = [key for key in self.calls if not self._cached(key)]
        counts = self.answers.counts
        open_batches: dict[str, tuple[str, ...]] = {}
        for pending in pending_batches(self.store, self.model.identity, needed):
            batch_id = pending.id
            if pending.status == "submitting":
                # Sent by a run that stopped before the provider's id came back.
                found = await self._request(pending.id, "look up", partial(self.api.find, pending))
                if found is None:  # never accepted (or not to be found): send again
                    drop_submission(self.store, pending.token)
                    continue
                confirm_batch(self.store, pending.token, found)
                batch_id = found
            open_batches[batch_id] = pending.keys
            counts.resumed += len(pending.keys)
            self.emit("batch_resumed", {"batch": batch_id, "items": len(pending.keys)})
        resumed = {key for keys in open_batches.values() for key in keys}
        fresh = [self.calls[key] for key in needed if key not in resumed]
        for chunk in self._chunks(fresh):
            submitted = await self._submit(chunk)
            if submitted is not None:
                open_batches[submitted] = tuple(call.custom_id for call in chunk)
        self.answers.batches = list(open_batches)
        while open_batches:
            for batch_id, keys in list(open_batches.items()):
                state = await self._request(batch_id, "poll", partial(self.api.poll, batch_id))
                if state.ended:
                    await self._collect(batch_id, keys, state.status)
                    del open_batches[batch_id]
            if open_batches:
                await self.sleep(self.poll_s)
        return self.answers

    def _chunks(self, calls: Sequence[BatchCall]) -> list[list[BatchCall]]:
        """``calls`` in batches within the API's item and byte limits, in order; a call
        that alone is over the byte limit fails here (no batch could carry it)."""
        chunks: list[list[BatchCall]] = []
        chunk: list[BatchCall] = []
        size = 0
        for call in calls:
            needed = self.api.request_bytes(call)
            if needed > self.api.max_bytes:
                cause = (
                    f"the request is {needed:,} bytes, over the batch API's limit of "
                    f"{self.api.max_bytes:,} bytes for a whole batch"
                )
                self.answers.failures[call.custom_id] = cause
                self.answers.counts.failed += 1
                continue
            if chunk and (len(chunk) >= self.api.max_items or size + needed > self.api.max_bytes):
                chunks.append(chunk)
                chunk, size = [], 0
            chunk.append(call)
            size += needed
        if chunk:
            chunks.append(chunk)
        return chunks

    def _cached(self, key: str) -> bool:
        hit = self.store.get_response(key)
        return hit is not None and has_text(hit)

    async def _submit(self, chunk: Sequence[BatchCall]) -> str | None:
        """Record, submit and confirm one batch; on failure its calls fail (a rerun
        retries them)."""
        token = uuid.uuid4().hex
        # Recorded before it is sent: a run killed before the id comes back leaves the
        # keys pending under the token, and the next run looks the batch up by it.
        record_submission(
            self.store, token, provider=self.api.provider, model=self.model.identity,
            run_id=self.run_id, keys=[call.custom_id for call in chunk],
        )  # fmt: skip
        attempt = 0
        while True:
            attempt += 1
            try:
                batch_id = await self.api.submit(chunk, token)
                break
            except Exception as error:  # every SDK raises its own exceptions
                hint = self.api.retry_hint(error)
                # Only a refusal the server answered (429, 5xx) is safe to send again: a
                # timeout or a dropped line may hide a batch the provider accepted, so
                # that submission stays recorded for the next run to look up.
                refused = hint is None or hint.reason.isdigit()
                if not refused or hint is None or attempt >= self.retry.max_attempts:
                    if refused:
                        drop_submission(self.store, token)
                    cause = f"batch submission failed: {describe_error(error)}"
                    for call in chunk:
                        self.answers.failures[call.custom_id] = cause
                    self.answers.counts.failed += len(chunk)
                    return None
                await self.sleep(self.retry.wait_s(attempt, hint.retry_after, self.rng))
        confirm_batch(self.store, token, batch_id)
        self.answers.counts.submitted += len(chunk)
        self.emit("batch_submitted", {"batch": batch_id, "items": len(chunk)})
        return batch_id

    async def _request(self, batch_id: str, what: str, make: Callable[[], Awaitable[_T]]) -> _T:
        """A poll or a read, retried while transient; a lasting failure stops the work
        (the batch stays recorded, so a rerun resumes it)."""
        attempt = 0
        while True:
            attempt += 1
            try:
                return await make()
            except Exception as error:  # every SDK raises its own exceptions
                hint = self.api.retry_hint(error)
                if hint is None or attempt >= self.retry.max_attempts:
                    raise BatchError(
                        f"batch {batch_id} of {self.model.spec}: cannot {what} it "
                        f"({describe_error(error)})",
                        fix="run the same command again: the batch is recorded in the store "
                        "and is polled, not submitted again",
                    ) from error
                await self.sleep(self.retry.wait_s(attempt, hint.retry_after, self.rng))

    async def _collect(self, batch_id: str, keys: Sequence[str], status: str) -> None:
        """Read an ended batch's results into the cache and the store."""
        items = await self._request(batch_id, "read", partial(self.api.results, batch_id))
        by_id: dict[str, BatchItem] = {item.custom_id: item for item in items}
        outcomes: list[tuple[str, ItemStatus, str | None]] = []
        writes = []
        counts = self.answers.counts
        spec, identity = self.model.spec, self.model.identity
        before = (counts.answered, counts.failed, counts.expired)
        for key in keys:
            item = by_id.get(key)
            if item is None:
                item = BatchItem(key, error=f"no result in batch {batch_id} (status {status})",
                                 expired=status == "expired")  # fmt: skip
            if item.response is not None and has_text(item.response):
                usage = item.response.usage
                batch_cost, listed = batch_cost_usd(spec, usage), cost_usd(spec, usage)
                counts.add_cost(batch_cost, listed)
                response = item.response.model_copy(
                    update={"usage": usage.model_copy(update={"cost_usd": batch_cost})}
                )
                call = self.calls[key]
                writes.append(
                    self.store.aput_response(
                        key, identity, call.messages, call.config, call.sample_index, response
                    )
                )
                outcomes.append((key, "answered", None))
                counts.answered += 1
                continue
            cause = item.error or "the batch returned no answer"
            self.answers.failures[key] = f"batch {batch_id}: {cause}"
            outcomes.append((key, "expired" if item.expired else "failed", cause))
            if item.expired:
                counts.expired += 1
            else:
                counts.failed += 1
        # The answers are durable before the batch is marked ended: a run killed in
        # between reads the batch again (it is still pending), never submits it again.
        await asyncio.gather(*writes)
        finish_batch_items(self.store, batch_id, outcomes, provider_status=status)
        answered, failed, expired = (
            now - then
            for now, then in zip(
                (counts.answered, counts.failed, counts.expired), before, strict=True
            )
        )
        self.emit(
            "batch_ended",
            {"batch": batch_id, "status": status, "answered": answered, "failed": failed,
             "expired": expired},
        )  # fmt: skip
