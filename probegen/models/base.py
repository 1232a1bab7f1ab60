"""The one seam between probegen and every model it talks to.

Targets, judges and mutator helpers are all :class:`ChatModel` s: "target" is a role,
not a type. A backend implements only :meth:`ChatModel.generate` (one attempt, no
retries, no caching) and :meth:`ChatModel.retry_hint` (is this error worth another
try, and after how long). :class:`probegen.models.managed.Model` wraps a backend with
bounded concurrency, retries with backoff and the response cache, so every backend
gets them the same way.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "AsyncResponseCache",
    "BadResponseError",
    "ChatMessage",
    "ChatModel",
    "EmptyResponseError",
    "GenerateConfig",
    "ImageInput",
    "Response",
    "ResponseCache",
    "RetryHint",
    "Usage",
    "accepts_images",
    "bad_response_hint",
    "cache_key",
    "has_text",
    "images_by_default",
    "require_text",
    "supports_logprobs",
]

Role = Literal["system", "user", "assistant"]


class ImageInput(BaseModel):
    """An image attached to a chat message.

    The bytes travel with the message but are left out of its serialisation: the cache
    key and the stored message name the image by its SHA-256, so the same image from
    another run directory hits the same cache entry and the store holds no copies.
    """

    model_config = ConfigDict(frozen=True)

    sha256: str
    """Checksum of :attr:`data`; what identifies the image."""
    media_type: str = "image/png"
    """MIME type, e.g. ``image/png`` or ``image/jpeg``."""
    data: bytes = Field(default=b"", exclude=True, repr=False)
    """The encoded image file."""

    @classmethod
    def from_bytes(cls, data: bytes, media_type: str = "image/png") -> ImageInput:
        """An image input with its checksum computed."""
        return cls(sha256=hashlib.sha256(data).hexdigest(), media_type=media_type, data=data)

    def base64(self) -> str:
        """The bytes as base64 text (for API content parts)."""
        return base64.b64encode(self.data).decode("ascii")

    def data_url(self) -> str:
        """A ``data:`` URL (OpenAI's ``image_url`` content part)."""
        return f"data:{self.media_type};base64,{self.base64()}"


class ChatMessage(BaseModel):
    """One message of a chat conversation."""

    model_config = ConfigDict(frozen=True)

    role: Role
    """Who speaks: ``system``, ``user`` or ``assistant``."""
    content: str
    """The message text."""
    images: tuple[ImageInput, ...] = ()
    """Images shown with the text (user messages of vision targets only). Backends that
    cannot see images say so with :attr:`ChatModel.accepts_images` = False."""


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
    top_logprobs: int | None = Field(None, ge=1, le=20)
    """Ask for the first generated token's top alternatives with their log-probabilities
    (:attr:`Response.top_logprobs`); only backends with ``supports_logprobs`` honour it."""

    def for_sample(self, index: int) -> GenerateConfig:
        """The config for sample ``index`` of a query (derives its seed)."""
        if self.seed is None:
            return self
        return _config_for_sample(self, index)


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
    top_logprobs: dict[str, float] | None = None
    """The first token's top alternatives, ``{token: logprob}``, when
    :attr:`GenerateConfig.top_logprobs` asked for them."""


@dataclass(frozen=True)
class RetryHint:
    """A backend's verdict on a failed attempt.

    Attributes:
        reason: Short label for logs and the store ("429", "500", "timeout", ...).
        retry_after: Seconds the server asked us to wait (``Retry-After``), if any.
    """

    reason: str
    retry_after: float | None = None


class BadResponseError(Exception):
    """A server said 200 but sent no usable answer: a body that does not parse (invalid
    or truncated JSON, the wrong content type) or lacks the answer's fields.

    A failed call, never an answer: API backends call it transient (see
    :func:`bad_response_hint`), since it is how overloaded servers and proxies fail.

    Args:
        spec: The model spec that answered.
        problem: What was wrong with the answer, in a few words.
    """

    def __init__(self, spec: str, problem: str) -> None:
        self.spec = spec
        self.problem = problem
        super().__init__(f"{spec}: {problem}")


class EmptyResponseError(BadResponseError):
    """The answer has no text: null or missing content, an empty ``choices`` list, no
    message, or only whitespace.

    Raised by the backends that can see why (``content: null``, no choices) and by
    :class:`probegen.models.managed.Model` for any backend whose :class:`Response` has no
    text, so no backend can pass an empty answer off as one. An empty answer cut off at
    ``finish_reason="length"`` (a tiny ``max_tokens``) is one too: with no text there is
    nothing to compare between variants, and scoring it as "" would read as a difference.
    """


def bad_response_hint(error: BaseException) -> RetryHint | None:
    """The retry hint of a :class:`BadResponseError` (``empty`` or ``bad response``), else
    None; network backends start their :meth:`ChatModel.retry_hint` with it."""
    if isinstance(error, EmptyResponseError):
        return RetryHint("empty")
    if isinstance(error, BadResponseError):
        return RetryHint("bad response")
    return None


def has_text(response: Response) -> bool:
    """Whether ``response`` carries an answer: text other than whitespace, or the first
    token's log-probabilities that were asked for (a one-token decision may be a
    whitespace token, and its distribution is the answer)."""
    return bool(response.text.strip()) or bool(response.top_logprobs)


def require_text(spec: str, response: Response) -> Response:
    """``response`` itself if it has text, else raise :class:`EmptyResponseError`."""
    if not has_text(response):
        cut = f", finish_reason {response.finish_reason}" if response.finish_reason else ""
        raise EmptyResponseError(spec, f"the answer has no text{cut}")
    return response


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
        """Make one attempt; raise the SDK's own exception on failure, and
        :class:`BadResponseError` (or :class:`EmptyResponseError`) for a 200 that holds
        no answer."""
        ...

    def retry_hint(self, error: BaseException) -> RetryHint | None:
        """Return a hint if ``error`` is transient (429, 5xx, timeout, a
        :class:`BadResponseError` from a server), else None."""
        ...

    async def aclose(self) -> None:
        """Release clients, servers or weights."""
        ...


def supports_logprobs(backend: object) -> bool:
    """Whether a backend returns :attr:`Response.top_logprobs` when asked.

    An optional attribute like :func:`accepts_images`: backends that can read the first
    token's distribution (llama.cpp, transformers, OpenAI-compatible servers, the
    simulator) set ``supports_logprobs = True``; Anthropic's API cannot.
    """
    return bool(getattr(backend, "supports_logprobs", False))


def accepts_images(backend: object) -> bool:
    """Whether a backend can see :attr:`ChatMessage.images`.

    An optional attribute rather than a protocol member, so text-only backends (most of
    them) need not declare anything: vision backends set ``accepts_images = True``.
    """
    return bool(getattr(backend, "accepts_images", False))


def images_by_default(backend: object) -> bool:
    """Whether a search should send images to this backend unless told otherwise.

    API backends can carry images but whether the model behind them sees any is the
    endpoint's business (many are text-only), so they set ``images_by_default = False``
    and image probes need a run's ``images`` set to ``on``; vision backends default to their
    :func:`accepts_images`.
    """
    return bool(getattr(backend, "images_by_default", accepts_images(backend)))


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


@runtime_checkable
class AsyncResponseCache(ResponseCache, Protocol):
    """A :class:`ResponseCache` that can also store a response without a transaction of
    its own (the run store commits concurrent callers' writes together)."""

    async def aput_response(
        self,
        key: str,
        identity: str,
        messages: Sequence[ChatMessage],
        config: GenerateConfig,
        sample_index: int,
        response: Response,
    ) -> None:
        """Store a successful response under ``key``; returns once it is durable."""
        ...


def cache_key(
    identity: str,
    messages: Sequence[ChatMessage],
    config: GenerateConfig,
    sample_index: int,
) -> str:
    """The response-cache key: model identity + parameters + messages + sample index.

    The SHA-256 of ``{"config": ..., "messages": [...], "model": ..., "sample": ...}`` as
    compact JSON with sorted keys. It is assembled from parts that are serialised once
    per config and per text message (every sample of a variant sends the same ones), which
    gives byte for byte the JSON of the whole payload, so keys never change.
    """
    messages_json = ",".join(
        _message_key_json(m) if not m.images else _json(_message_payload(m)) for m in messages
    )
    blob = (
        f'{{"config":{_config_key_json(config)},"messages":[{messages_json}],'
        f'"model":{_json(identity)},"sample":{_json(sample_index)}}}'
    )
    return hashlib.sha256(blob.encode()).hexdigest()


def _json(value: object) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def _message_payload(message: ChatMessage) -> dict[str, object]:
    # A text-only message keys exactly as before images existed, so caches built then
    # still hit; a message with images keys by their checksums (the bytes are excluded).
    return message.model_dump(mode="json", exclude=None if message.images else {"images"})


@functools.lru_cache(maxsize=4096)
def _message_key_json(message: ChatMessage) -> str:
    """A text-only message's part of the key (messages with images are not memoised:
    their bytes would stay in memory)."""
    return _json(_message_payload(message))


@functools.lru_cache(maxsize=1024)
def _config_key_json(config: GenerateConfig) -> str:
    # A config that asks for no log-probabilities keys exactly as before the field
    # existed, so caches built then still hit.
    exclude = {"top_logprobs"} if config.top_logprobs is None else None
    return _json(config.model_dump(mode="json", exclude=exclude))


@functools.lru_cache(maxsize=4096)
def _config_for_sample(config: GenerateConfig, index: int) -> GenerateConfig:
    # Memoised: a run asks for the same few (config, sample) pairs thousands of times, and
    # a pydantic copy costs more than the lookup. Configs are frozen, so sharing is safe.
    assert config.seed is not None
    return config.model_copy(update={"seed": config.seed + index})
