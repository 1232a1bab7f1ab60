"""A search's target calls through a provider's batch API: :class:`BatchGatherer`.

An eval knows every call before it starts, so it plans them and sends one batch
(:mod:`probegen.evaluation.batch`). A search does not: each generation's probes, and
each racing rung of them, are known only once the previous answers are scored. So the
gatherer sits where a call would go to the backend (``Model(gather=...)``) and collects
the calls the run makes together: every call that arrives within ``window_s`` of the
previous one joins the same batch, which then goes through
:func:`~probegen.batch.collect.answer_by_batch` (recorded in the store before it is
sent, polled until it ends, its answers written to the response cache at the batch
price). A generation therefore costs one batch round trip per rung, not one per call.

Resume is :func:`answer_by_batch`'s: a call's custom id is its response-cache key, so
the same call in a resumed run finds its answer cached, or its batch still pending in
the store and polls that batch instead of submitting it again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field

from probegen.batch.answered import BatchItemError
from probegen.batch.base import BatchBackend, BatchCall
from probegen.batch.collect import BatchEvent, answer_by_batch
from probegen.models.base import ChatMessage, ChatModel, GenerateConfig, Response, has_text
from probegen.store import Store

__all__ = ["BatchGatherer"]

DEFAULT_WINDOW_S = 0.25
"""Seconds of quiet after the last call before a gathered batch is sent: the calls of
one generation or rung are issued within milliseconds of each other."""


@dataclass
class _Gathered:
    calls: dict[str, BatchCall] = field(default_factory=dict)
    waiting: dict[str, list[asyncio.Future[Response]]] = field(default_factory=dict)


class BatchGatherer:
    """Answers a model's calls by provider batches of the calls made together.

    Args:
        model: The batched backend (its identity keys the store's batches and the
            cache, its spec the prices).
        api: Its batch API (:func:`~probegen.batch.base.batch_api_of`).
        store: The run store and response cache.
        run_id: The run the batches belong to.
        poll_s: Seconds between polls of an unfinished batch.
        window_s: Seconds of quiet that close a batch (see :data:`DEFAULT_WINDOW_S`).
        on_event: Receives ``batch_submitted``, ``batch_resumed`` and ``batch_ended``
            (the run's event log, where a search's batches are recorded).
    """

    def __init__(
        self,
        model: ChatModel,
        api: BatchBackend,
        store: Store,
        run_id: str,
        *,
        poll_s: float = 30.0,
        window_s: float = DEFAULT_WINDOW_S,
        on_event: BatchEvent | None = None,
    ) -> None:
        self.model, self.api, self.store, self.run_id = model, api, store, run_id
        self.poll_s, self.window_s, self.on_event = poll_s, window_s, on_event
        self._open = _Gathered()
        self._timer: asyncio.TimerHandle | None = None
        self._sending: set[asyncio.Task[None]] = set()

    async def answer(
        self,
        key: str,
        messages: Sequence[ChatMessage],
        config: GenerateConfig,
        sample_index: int,
    ) -> Response:
        """The answer to one call, once the batch it joins has ended (implements
        :class:`~probegen.models.managed.CallGatherer`).

        Raises:
            BatchItemError: The batch has no answer for it (its item failed or expired,
                or the batch could not be sent or read); a rerun sends it again.
        """
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[Response] = loop.create_future()
        self._open.calls.setdefault(key, BatchCall(key, tuple(messages), config, sample_index))
        self._open.waiting.setdefault(key, []).append(waiter)
        if self._timer is not None:
            self._timer.cancel()
        if len(self._open.calls) >= self.api.max_items:
            self._send()
        else:
            self._timer = loop.call_later(self.window_s, self._send)
        return await waiter

    def _send(self) -> None:
        """Close the open batch and send it (a task of its own: new calls meanwhile
        gather into the next one)."""
        self._timer = None
        gathered, self._open = self._open, _Gathered()
        if gathered.calls:
            task = asyncio.get_running_loop().create_task(self._collect(gathered))
            self._sending.add(task)  # a task nobody holds may be collected mid-run
            task.add_done_callback(self._sending.discard)

    async def _collect(self, gathered: _Gathered) -> None:
        try:
            answers = await answer_by_batch(
                list(gathered.calls.values()), self.model, self.api, self.store,
                self.run_id, poll_s=self.poll_s, on_event=self.on_event,
            )  # fmt: skip
        except Exception as error:  # every waiter must hear of it
            for waiters in gathered.waiting.values():
                _settle(waiters, error=error)
            return
        for key, waiters in gathered.waiting.items():
            cause = answers.failures.get(key)
            response = None if cause is not None else self.store.get_response(key)
            if response is None or not has_text(response):
                _settle(waiters, error=BatchItemError(cause or "the batch holds no answer"))
            else:
                _settle(waiters, result=response)


def _settle(
    waiters: Sequence[asyncio.Future[Response]],
    *,
    result: Response | None = None,
    error: BaseException | None = None,
) -> None:
    for waiter in waiters:
        if waiter.done():  # its caller was cancelled
            continue
        if error is not None:
            waiter.set_exception(error)
        else:
            assert result is not None
            waiter.set_result(result)
