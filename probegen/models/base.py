"""The one seam between probegen and every model it talks to.

Targets, judges and mutator helpers are all :class:`ChatModel` s: "target" is a role,
not a type. A backend implements only :meth:`ChatModel.generate` (one attempt, no
retries, no caching) and :meth:`ChatModel.retry_hint` (is this error worth another
try, and after how long). :class:`probegen.models.managed.Model` wraps a backend with
bounded concurrency, retries with backoff and the response cache, so every backend
gets them the same way.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "ChatMessage",
    "ChatModel",
    "GenerateConfig",
    "Response",
    "ResponseCache",
    "RetryHint",
    "Usage",
    "cache_key",
]

Role = Literal["system", "user", "assistant"]


class ChatMessage(BaseModel):
    """One message of a chat conversation."""

    model_config = ConfigDict(frozen=True)

    role: Role
    """Who speaks: ``system``, ``user`` or ``assistant``."""
    content: str
    """The message text."""


class GenerateConfig(BaseModel):
    """Sampling parameters for one call; part of the cache key."""

    model_config = ConfigDict(frozen=True)

    temperature: float = Field(0.7, ge=0.0, le=2.0)
    """Sampling temperature; 0 is greedy."""
    max_tokens: int = Field(256, ge=1)
    """Upper bound on generated tokens."""
    seed: int | None = None
    """Base seed. Sample *i* of a query uses ``seed + i`` so samples differ but repeat."""
    top_p: float | None = Field(None, gt=0.0, le=1.0)
    """Nucleus sampling mass, where the backend supports it."""

    def for_sample(self, index: int) -> GenerateConfig:
        """The config for sample ``index`` of a query (derives its seed)."""
        if self.seed is None:
            return self
        return self.model_copy(update={"seed": self.seed + index})


class Usage(BaseModel):
    """Token usage and cost of one call, where the provider reports them."""

    input_tokens: int | None = None
    output_tokens: int | None = None
    cost_usd: float | None = None
    """Computed from ``probegen/models/pricing.toml`` when the model is priced there."""


class Response(BaseModel):
    """What one successful call returned."""

    text: str
    """The assistant's answer."""
    finish_reason: str | None = None
    """The provider's stop reason (``stop``, ``length``, ``end_turn``, ...)."""
    model: str = ""
    """The model name the provider reported."""
    usage: Usage = Field(default_factory=Usage)
    latency_s: float = 0.0
    """Wall time of the successful attempt."""
    cached: bool = False
    """True when served from the response cache rather than the model."""
    attempts: int = 1
    """Attempts the call took, retries included (0 when served from the cache)."""


@dataclass(frozen=True)
class RetryHint:
    """A backend's verdict on a failed attempt.

    Attributes:
        reason: Short label for logs and the store ("429", "500", "timeout", ...).
        retry_after: Seconds the server asked us to wait (``Retry-After``), if any.
    """

    reason: str
    retry_after: float | None = None


@runtime_checkable
class ChatModel(Protocol):
    """A chat backend: one attempt per :meth:`generate` call."""

    @property
    def spec(self) -> str:
        """The spec string the user gave, e.g. ``openai:gpt-4o-mini`` or ``local``."""
        ...

    @property
    def identity(self) -> str:
        """What makes two instances the same model for caching (spec plus endpoint)."""
        ...

    @property
    def max_concurrency(self) -> int:
        """How many calls may be in flight at once against this backend."""
        ...

    async def generate(self, messages: Sequence[ChatMessage], config: GenerateConfig) -> Response:
        """Make one attempt; raise the SDK's own exception on failure."""
        ...

    def retry_hint(self, error: BaseException) -> RetryHint | None:
        """Return a hint if ``error`` is transient (429, 5xx, timeout), else None."""
        ...

    async def aclose(self) -> None:
        """Release clients, servers or weights."""
        ...


class ResponseCache(Protocol):
    """Where finished calls are kept so an identical query is never sent twice."""

    def get_response(self, key: str) -> Response | None:
        """The cached response for ``key``, or None."""
        ...

    def put_response(
        self,
        key: str,
        identity: str,
        messages: Sequence[ChatMessage],
        config: GenerateConfig,
        sample_index: int,
        response: Response,
    ) -> None:
        """Store a successful response under ``key``."""
        ...


def cache_key(
    identity: str,
    messages: Sequence[ChatMessage],
    config: GenerateConfig,
    sample_index: int,
) -> str:
    """The response-cache key: model identity + parameters + messages + sample index."""
    payload = {
        "model": identity,
        "config": config.model_dump(mode="json"),
        "messages": [m.model_dump(mode="json") for m in messages],
        "sample": sample_index,
    }
    blob = json.dumps(payload, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()
