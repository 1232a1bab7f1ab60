"""Anthropic Message Batches through the official SDK: ``messages.batches.create`` with
one ``{custom_id, params}`` per call, ``.retrieve`` until ``processing_status`` is
``ended``, ``.results`` (JSONL, one line per item: succeeded, errored, expired or
canceled).

The params are exactly what :class:`~probegen.models.anthropic_backend.AnthropicBackend`
sends for the same call, and each answer is read by the same code as a call's. The
API's custom ids are 1 to 64 characters of ``[a-zA-Z0-9_-]``: a response-cache key (64
hex digits) is one.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from probegen.batch.base import BatchCall, BatchItem, BatchState
from probegen.models.base import BadResponseError, RetryHint
from probegen.models.managed import describe_error

if TYPE_CHECKING:
    from anthropic import AsyncAnthropic

    from probegen.models.anthropic_backend import AnthropicBackend
    from probegen.store.batches import PendingBatch

__all__ = ["AnthropicBatches"]

_CLOCK_SLACK = timedelta(minutes=1)
"""How far the provider's clock may run behind ours."""


class AnthropicBatches:
    """The Message Batches API of one ``anthropic:`` model.

    Args:
        client: The model's SDK client (its endpoint and key).
        model: The chat backend, which writes the params and reads the answers.
    """

    provider = "anthropic"
    max_items = 100_000
    """The Message Batches API's limit per batch."""
    max_bytes = 256 * 1024 * 1024
    """The Message Batches API's limit on one batch's request."""

    def __init__(self, client: AsyncAnthropic, model: AnthropicBackend) -> None:
        self._client = client
        self._model = model

    async def submit(self, calls: Sequence[BatchCall], token: str) -> str:
        """Create the batch; its id (the API keeps no tag, so ``token`` is not sent)."""
        requests: Any = [
            {
                "custom_id": call.custom_id,
                "params": self._model.request_params(call.messages, call.config),
            }
            for call in calls
        ]
        batch = await self._client.messages.batches.create(requests=requests)
        return batch.id

    def request_bytes(self, call: BatchCall) -> int:
        """The size of the call's entry in the batch's JSON request."""
        entry = {
            "custom_id": call.custom_id,
            "params": self._model.request_params(call.messages, call.config),
        }
        return len(json.dumps(entry, ensure_ascii=False).encode()) + 1  # and its comma

    async def find(self, submission: PendingBatch) -> str | None:
        """The one batch created since the submission was recorded (less a minute for
        clocks) with as many requests as it sent; None when there is none, or more
        than one.

        A Message Batch keeps no tag of ours, so its time and size are what identify it.
        A wrong match costs nothing but a rerun: results are matched by custom id, so
        another batch's answers are never taken for these calls, and any call it lacks
        fails as "no result" and is sent again by the next run.
        """
        since = datetime.fromisoformat(submission.created_at) - _CLOCK_SLACK
        found = []
        async for batch in self._client.messages.batches.list(limit=100):  # newest first
            if batch.created_at < since:
                break
            counts = batch.request_counts
            sent = (
                counts.processing + counts.succeeded + counts.errored + counts.canceled
                + counts.expired
            )  # fmt: skip
            if sent == submission.items:
                found.append(batch.id)
        return found[0] if len(found) == 1 else None

    async def poll(self, batch_id: str) -> BatchState:
        """Ended once ``processing_status`` is ``ended``."""
        batch = await self._client.messages.batches.retrieve(batch_id)
        return BatchState(batch.processing_status == "ended", batch.processing_status)

    async def results(self, batch_id: str) -> list[BatchItem]:
        """One item per result line."""
        decoder = await self._client.messages.batches.results(batch_id)
        return [self._item(entry) async for entry in decoder]

    def _item(self, entry: Any) -> BatchItem:
        custom_id = str(getattr(entry, "custom_id", ""))
        result = getattr(entry, "result", None)
        kind = getattr(result, "type", None)
        if kind == "succeeded":
            try:
                return BatchItem(custom_id, response=self._model.parse_message(result.message))  # type: ignore[union-attr]
            except BadResponseError as failure:
                return BatchItem(custom_id, error=describe_error(failure))
        if kind == "errored":
            inner = getattr(getattr(result, "error", None), "error", None)
            what = getattr(inner, "type", None) or "error"
            return BatchItem(custom_id, error=f"{what}: {getattr(inner, 'message', '')}")
        if kind == "expired":
            return BatchItem(custom_id, error="expired: the batch ended first", expired=True)
        return BatchItem(custom_id, error=f"{kind or 'unknown result'}: no answer")

    def retry_hint(self, error: BaseException) -> RetryHint | None:
        """The chat backend's verdict: the same SDK, the same errors."""
        return self._model.retry_hint(error)
