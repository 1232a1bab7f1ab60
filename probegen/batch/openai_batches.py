"""The OpenAI Batch API through the official SDK: upload the calls as a JSONL file
(``files.create``, ``purpose="batch"``), create the batch on ``/v1/chat/completions``
with the 24 h window (``batches.create``), poll it (``batches.retrieve``), read the
output and error files (``files.content``).

Each line's body is exactly what :class:`~probegen.models.openai_backend.OpenAIBackend`
sends for the same call, and each answer is read by the same code as a call's, so a
batch answer and a call's answer are interchangeable in the response cache.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Final, Literal

from probegen.batch.base import BatchCall, BatchItem, BatchState
from probegen.models.base import BadResponseError, RetryHint
from probegen.models.managed import describe_error

if TYPE_CHECKING:
    from openai import AsyncOpenAI

    from probegen.models.openai_backend import OpenAIBackend
    from probegen.store.batches import PendingBatch

__all__ = ["OpenAIBatches"]

ENDPOINT: Final[Literal["/v1/chat/completions"]] = "/v1/chat/completions"
_ENDED = frozenset({"completed", "expired", "failed", "cancelled"})
TOKEN_KEY = "probegen_submission"
"""The metadata key of the submission token."""
_FIND_WITHIN = 1000
"""How many of the newest batches are searched for a token (it was sent moments before
the run stopped)."""


class OpenAIBatches:
    """The Batch API of one ``openai:`` model.

    Args:
        client: The model's SDK client (its endpoint and key).
        model: The chat backend, which writes the request bodies and reads the answers.
    """

    provider = "openai"
    max_items = 50_000
    """The Batch API's limit per batch."""
    max_bytes = 200 * 1024 * 1024
    """The Batch API's limit on the input file."""

    def __init__(self, client: AsyncOpenAI, model: OpenAIBackend) -> None:
        self._client = client
        self._model = model

    async def submit(self, calls: Sequence[BatchCall], token: str) -> str:
        """Upload the calls and create the batch, ``token`` in its metadata; its id."""
        data = b"".join(self._line(call) for call in calls)
        uploaded = await self._client.files.create(
            file=("probegen-batch.jsonl", data, "application/jsonl"), purpose="batch"
        )
        batch = await self._client.batches.create(
            input_file_id=uploaded.id,
            endpoint=ENDPOINT,
            completion_window="24h",
            metadata={"source": "probegen", TOKEN_KEY: token},
        )
        return batch.id

    def request_bytes(self, call: BatchCall) -> int:
        """The size of the call's line in the input file."""
        return len(self._line(call))

    def _line(self, call: BatchCall) -> bytes:
        line = {
            "custom_id": call.custom_id,
            "method": "POST",
            "url": ENDPOINT,
            "body": self._model.request_body(call.messages, call.config),
        }
        return (json.dumps(line, ensure_ascii=False) + "\n").encode()

    async def find(self, submission: PendingBatch) -> str | None:
        """The batch whose metadata holds the submission's token, among the most recent
        ones."""
        seen = 0
        async for batch in self._client.batches.list(limit=100):
            if (batch.metadata or {}).get(TOKEN_KEY) == submission.token:
                return batch.id
            seen += 1
            if seen >= _FIND_WITHIN:
                break
        return None

    async def poll(self, batch_id: str) -> BatchState:
        """``completed``, ``expired``, ``failed`` and ``cancelled`` are ended."""
        batch = await self._client.batches.retrieve(batch_id)
        return BatchState(batch.status in _ENDED, batch.status)

    async def results(self, batch_id: str) -> list[BatchItem]:
        """The output file's answers and the error file's failures; a batch that failed
        validation has neither, and its errors say why (its items are then absent)."""
        batch = await self._client.batches.retrieve(batch_id)
        items: list[BatchItem] = []
        for file_id in (batch.output_file_id, batch.error_file_id):
            if file_id:
                content = await self._client.files.content(file_id)
                items += [
                    self._item(json.loads(line)) for line in content.text.splitlines() if line
                ]
        return items

    def _item(self, line: Any) -> BatchItem:
        custom_id = str(line.get("custom_id"))
        error, response = line.get("error"), line.get("response")
        if error:
            code = error.get("code") or "error"
            return BatchItem(
                custom_id,
                error=f"{code}: {error.get('message') or ''}".strip(),
                expired=code == "batch_expired",
            )
        status = (response or {}).get("status_code")
        body = (response or {}).get("body")
        if status != 200:
            message = (
                (body or {}).get("error", {}).get("message") if isinstance(body, dict) else None
            )
            return BatchItem(custom_id, error=f"HTTP {status}: {message or body}")
        try:
            return BatchItem(custom_id, response=self._model.parse_completion(_completion(body)))
        except BadResponseError as failure:
            return BatchItem(custom_id, error=describe_error(failure))

    def retry_hint(self, error: BaseException) -> RetryHint | None:
        """The chat backend's verdict: the same SDK, the same errors."""
        return self._model.retry_hint(error)


def _completion(body: object) -> object:
    """The SDK's chat completion type for a body (unvalidated, like the SDK's own), so
    the backend reads a batch answer exactly as a call's."""
    from openai.types.chat import ChatCompletion

    if not isinstance(body, dict):
        return body  # the backend says what is wrong with it
    try:
        return ChatCompletion.model_validate(body)
    except ValueError:
        return ChatCompletion.construct(**body)
