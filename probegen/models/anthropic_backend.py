"""``anthropic:MODEL``: the Anthropic Messages API or a server that speaks it.

Besides api.anthropic.com this serves any ``/v1/messages`` endpoint, e.g. llama.cpp's
``llama-server``: pass ``base_url`` or set ``ANTHROPIC_BASE_URL``.

Sampling parameters: the Anthropic SDK 2.x sends API version 2026-10-21, which rejects
``temperature``, ``top_p`` and ``top_k`` with HTTP 400 at any value, and the SDK no longer
accepts them. So against api.anthropic.com they are not sent (the model samples at its
own default); against a custom endpoint they are sent in the body, where compatible
servers such as llama-server honour them.

Images: a user message with images becomes a content list with one base64 ``image``
block per image before the text block (the order Anthropic recommends), so the backend
declares ``accepts_images = True``; a model or server that cannot see answers with an
error, which is recorded as a failed call. Messages without images are sent as plain
strings exactly as before.

A 200 that holds no answer is a failed attempt, retried like a 5xx: a body that does not
parse (invalid or truncated JSON, or not JSON at all), and a message whose text blocks
are missing, empty or whitespace (``content: []``, ``null``, only non-text blocks), see
:class:`~probegen.models.base.BadResponseError`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal, cast

from probegen.errors import ModelSpecError, ModelUnavailableError
from probegen.models.base import (
    BadResponseError,
    ChatMessage,
    EmptyResponseError,
    GenerateConfig,
    Response,
    RetryHint,
    Usage,
    bad_response_hint,
)
from probegen.models.endpoint import (
    http_client,
    is_unsupported_request,
    resolve_endpoint,
    timeout_or_connection,
)
from probegen.models.managed import parse_retry_after

if TYPE_CHECKING:
    from anthropic import AsyncAnthropic
    from anthropic.types import ContentBlockParam, MessageParam

    from probegen.batch.anthropic_batches import AnthropicBatches

__all__ = ["DEFAULT_BASE_URL", "AnthropicBackend"]

DEFAULT_BASE_URL = "https://api.anthropic.com"
DEFAULT_TIMEOUT_S = 60.0
DEFAULT_MAX_CONCURRENCY = 8
_RETRYABLE_STATUS = frozenset({408, 409, 429})
_MediaType = Literal["image/jpeg", "image/png", "image/gif", "image/webp"]


class AnthropicBackend:
    """One Anthropic Messages API model.

    Args:
        model: The model name, e.g. ``claude-sonnet-4-5``.
        base_url: The endpoint; defaults to ``ANTHROPIC_BASE_URL``, then api.anthropic.com.
        api_key: The key; defaults to ``ANTHROPIC_API_KEY``. Required only for the default
            endpoint: a custom server without auth gets a placeholder.
        timeout_s: Per-attempt timeout in seconds (default 60).
        max_concurrency: Calls in flight at once (default 8).

    Raises:
        ModelSpecError: ``model`` is empty.
        ModelUnavailableError: The ``anthropic`` package is missing, or the default
            endpoint is used without ``ANTHROPIC_API_KEY``.
    """

    accepts_images = True
    """Images go out as base64 ``image`` blocks; the endpoint decides if it can see."""
    images_by_default = False
    """A search sends images only when asked (a run's ``images`` is ``on``): many models behind
    this API are text-only."""

    def __init__(
        self,
        model: str,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        timeout_s: float | None = None,
        max_concurrency: int | None = None,
    ) -> None:
        if not model:
            raise ModelSpecError(
                "anthropic: needs a model name",
                fix="write anthropic:MODEL, e.g. anthropic:claude-sonnet-4-5",
            )
        self._model = model
        self._spec = f"anthropic:{model}"
        try:
            import anthropic
        except ImportError as error:
            raise ModelUnavailableError(
                f"{self._spec}: the anthropic package is not installed",
                fix="pip install 'anthropic>=0.40'",
            ) from error
        endpoint = resolve_endpoint(
            self._spec,
            base_url=base_url,
            api_key=api_key,
            default_url=DEFAULT_BASE_URL,
            url_env="ANTHROPIC_BASE_URL",
            key_env="ANTHROPIC_API_KEY",
            server_kind="a server that speaks the Messages API",
        )
        self._official = endpoint.official
        self._client: AsyncAnthropic = anthropic.AsyncAnthropic(
            api_key=endpoint.key,
            base_url=endpoint.sdk_base_url,
            default_query=endpoint.query,
            timeout=timeout_s if timeout_s is not None else DEFAULT_TIMEOUT_S,
            max_retries=0,
            http_client=http_client(anthropic, endpoint),
        )
        self._identity = endpoint.identity(self._spec)
        self._max_concurrency = max_concurrency or DEFAULT_MAX_CONCURRENCY

    @property
    def spec(self) -> str:
        """``anthropic:MODEL``."""
        return self._spec

    @property
    def identity(self) -> str:
        """``anthropic:MODEL@ENDPOINT``."""
        return self._identity

    @property
    def max_concurrency(self) -> int:
        """Calls in flight at once."""
        return self._max_concurrency

    def __repr__(self) -> str:
        return f"AnthropicBackend({self._identity!r})"

    async def generate(self, messages: Sequence[ChatMessage], config: GenerateConfig) -> Response:
        """One Messages API call; raises the SDK's exception on failure, and
        :class:`~probegen.models.base.BadResponseError` for a 200 without an answer."""
        from anthropic import APIResponseValidationError, omit

        system, turns = self._turns(messages)
        try:
            message: Any = await self._client.messages.create(
                model=self._model,
                max_tokens=config.max_tokens,
                messages=turns,
                system=system or omit,
                extra_body=None if self._official else _sampling_body(config),
            )
        except (json.JSONDecodeError, UnicodeDecodeError, APIResponseValidationError) as error:
            # Raised after a 200 arrived: the body is cut short or is not JSON at all.
            raise BadResponseError(
                self._spec, f"the answer does not parse ({type(error).__name__})"
            ) from error
        return self._response(message)

    def _turns(self, messages: Sequence[ChatMessage]) -> tuple[str, list[MessageParam]]:
        if any(m.images for m in messages if m.role != "user"):
            # The API takes images in user turns only; refuse rather than drop them.
            raise ValueError(f"{self._spec}: images are only sent with user messages")
        # The Messages API takes the system prompt as a parameter, not as a message.
        system = "\n\n".join(m.content for m in messages if m.role == "system")
        return system, [_to_anthropic(m) for m in messages if m.role != "system"]

    def request_params(self, messages: Sequence[ChatMessage], config: GenerateConfig) -> Any:
        """The Messages API parameters of one call, as a batch (:mod:`probegen.batch`)
        sends them per item: what :meth:`generate` sends, sampling included for a
        custom endpoint."""
        system, turns = self._turns(messages)
        params: dict[str, Any] = {
            "model": self._model,
            "max_tokens": config.max_tokens,
            "messages": turns,
        }
        if system:
            params["system"] = system
        return params if self._official else {**params, **_sampling_body(config)}

    def parse_message(self, message: Any) -> Response:
        """A Messages API message as a :class:`Response`; raises
        :class:`~probegen.models.base.BadResponseError` when it holds no answer."""
        return self._response(message)

    def batch_api(self) -> AnthropicBatches:
        """This model's Message Batches API (``probegen eval`` with ``batch``): the same
        client and the same parameters as its calls."""
        from probegen.batch.anthropic_batches import AnthropicBatches

        return AnthropicBatches(self._client, self)

    def _response(self, message: Any) -> Response:
        # The SDK builds its models without validation, so any field may be missing or
        # of the wrong type, and a body that is not JSON comes back as a plain string.
        blocks = getattr(message, "content", None)
        if isinstance(message, str) or not isinstance(blocks, list | None):
            raise BadResponseError(self._spec, "the answer is not a Messages API message")
        texts = [
            getattr(block, "text", None)
            for block in blocks or []
            if getattr(block, "type", None) == "text"
        ]
        text = "".join(t for t in texts if isinstance(t, str))
        stop_reason = getattr(message, "stop_reason", None)
        if not text.strip():
            what = "no content" if not blocks else "no text"
            cut = f", stop_reason {stop_reason}" if stop_reason else ""
            raise EmptyResponseError(self._spec, f"the answer has {what}{cut}")
        usage = getattr(message, "usage", None)
        # input_tokens counts only uncached prompt tokens; the prompt's size is the sum.
        parts = [
            getattr(usage, name, None)
            for name in ("input_tokens", "cache_read_input_tokens", "cache_creation_input_tokens")
        ]
        counted = [n for n in parts if isinstance(n, int)]
        output_tokens = getattr(usage, "output_tokens", None)
        return Response(
            text=text,
            finish_reason=stop_reason if isinstance(stop_reason, str) else None,
            model=str(getattr(message, "model", None) or self._model),
            usage=Usage(
                input_tokens=sum(counted) if isinstance(parts[0], int) else None,
                output_tokens=output_tokens if isinstance(output_tokens, int) else None,
            ),
        )

    def retry_hint(self, error: BaseException) -> RetryHint | None:
        """429, 529 (overloaded), other 5xx, 408, 409, timeouts, dropped connections (also
        mid-body) and 200s without an answer; not a 5xx that says the request is not
        supported (a refusal, not a fault)."""
        from anthropic import APIConnectionError, APIStatusError, APITimeoutError

        hint = bad_response_hint(error)
        if hint is not None:
            return hint
        if isinstance(error, APITimeoutError):
            return RetryHint(timeout_or_connection(error))
        if isinstance(error, APIConnectionError):
            return RetryHint("connection")
        if isinstance(error, APIStatusError):
            status = error.status_code
            if is_unsupported_request(status, str(error)):
                return None
            if status >= 500 or status in _RETRYABLE_STATUS:
                return RetryHint(str(status), parse_retry_after(error.response.headers))
        return None

    async def aclose(self) -> None:
        """Close the HTTP client."""
        await self._client.close()


def _sampling_body(config: GenerateConfig) -> dict[str, object]:
    body: dict[str, object] = {"temperature": config.temperature}
    if config.top_p is not None:
        body["top_p"] = config.top_p
    if config.seed is not None:
        body["seed"] = config.seed
    return body


def _to_anthropic(message: ChatMessage) -> MessageParam:
    if message.role == "assistant":
        return {"role": "assistant", "content": message.content}
    if not message.images:
        return {"role": "user", "content": message.content}
    # The API checks the media type against the four it reads; anything else is its 400.
    blocks: list[ContentBlockParam] = [
        {
            "type": "image",
            "source": {
                "type": "base64",
                "media_type": cast(_MediaType, image.media_type),
                "data": image.base64(),
            },
        }
        for image in message.images
    ]
    blocks.append({"type": "text", "text": message.content})
    return {"role": "user", "content": blocks}
