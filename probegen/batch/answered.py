"""A chat backend that answers only what a batch answered: :class:`BatchAnswered`.

After :func:`~probegen.batch.collect.answer_by_batch`, a run makes its calls as usual
through a managed :class:`~probegen.models.managed.Model` over this backend. Answered
calls never reach it (the response cache has them); a call whose batch item failed or
expired reaches it and fails at once with that cause, not retried, so the runner records
it exactly like any call that failed after its retries: a failed query with a
``query_failed`` event, never cached, and retried by a rerun.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from probegen.models.base import (
    ChatMessage,
    ChatModel,
    GenerateConfig,
    Response,
    RetryHint,
    accepts_images,
    cache_key,
    images_by_default,
    supports_logprobs,
)

__all__ = ["BatchAnswered", "BatchItemError", "request_key"]


class BatchItemError(Exception):
    """A call the batch did not answer (its item failed or expired)."""


def request_key(identity: str, messages: Sequence[ChatMessage], config: GenerateConfig) -> str:
    """What identifies a call as its backend sees it (chat and sample config, without the
    sample index, which a backend is not told)."""
    return cache_key(identity, messages, config, 0)


class BatchAnswered:
    """``backend`` with every call answered by the batch that was run for it.

    Args:
        backend: The model the batch was for (named by, and closed with, this one).
        failures: :func:`request_key` -> why the batch has no answer for that call.
    """

    def __init__(self, backend: ChatModel, failures: Mapping[str, str]) -> None:
        self.backend = backend
        self.failures = dict(failures)
        self.accepts_images = accepts_images(backend)
        self.images_by_default = images_by_default(backend)
        self.supports_logprobs = supports_logprobs(backend)

    @property
    def spec(self) -> str:
        """The batched model's spec."""
        return self.backend.spec

    @property
    def identity(self) -> str:
        """The batched model's identity: the cache keys are its own."""
        return self.backend.identity

    @property
    def max_concurrency(self) -> int:
        """The batched model's bound (nothing is sent, so it matters little)."""
        return self.backend.max_concurrency

    def __repr__(self) -> str:
        return f"BatchAnswered({self.identity!r})"

    async def generate(self, messages: Sequence[ChatMessage], config: GenerateConfig) -> Response:
        """Fail with the batch's cause: an answered call is served by the cache."""
        cause = self.failures.get(request_key(self.identity, messages, config))
        raise BatchItemError(cause or "the batch holds no answer for this call")

    def retry_hint(self, error: BaseException) -> RetryHint | None:
        """Never retried: the batch has spoken (a rerun submits the call again)."""
        return None

    async def aclose(self) -> None:
        """Close the batched model."""
        await self.backend.aclose()
