"""``openai:MODEL``: the official OpenAI API or any OpenAI-compatible server.

The same backend serves api.openai.com, vLLM, Ollama, llama.cpp and other
``/v1/chat/completions`` servers: pass ``base_url`` (or set ``OPENAI_BASE_URL``). The SDK
is imported only when this backend is built, and its own retries are off because
:class:`probegen.models.managed.Model` owns retries for every backend alike.

Images: a user message with images becomes a content list (its text, then one
``image_url`` part per image, as a base64 ``data:`` URL), so the backend declares
``accepts_images = True`` and leaves it to the endpoint to decide whether the model can
see. api.openai.com answers an image sent to a text-only model with HTTP 400, which is
not retried; some compatible servers answer 500 instead (``llama_cpp.server``'s text chat
handler cannot render a content list), which is retried like any server fault. Either
way the call ends as a recorded failure, never as an answer given without the image.
Messages without images are sent as plain strings exactly as before, so text-only
servers and existing caches are unaffected.

A 200 that holds no answer is a failed attempt, retried like a 5xx: a body that does not
parse (invalid or truncated JSON, which the SDK raises as ``json.JSONDecodeError``, or
returns as a bare string when the content type is not JSON), an empty ``choices`` list,
a choice without a message, and ``content`` that is null, empty or whitespace
(:class:`~probegen.models.base.BadResponseError`,
:class:`~probegen.models.base.EmptyResponseError`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

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
    from openai import AsyncOpenAI
    from openai.types.chat import ChatCompletionContentPartParam, ChatCompletionMessageParam

    from probegen.batch.openai_batches import OpenAIBatches

__all__ = ["DEFAULT_BASE_URL", "OpenAIBackend"]

DEFAULT_BASE_URL = "https://api.openai.com/v1"
DEFAULT_TIMEOUT_S = 60.0
DEFAULT_MAX_CONCURRENCY = 8
_RETRYABLE_STATUS = frozenset({408, 409})


class OpenAIBackend:
    """One OpenAI-compatible chat model.

    Args:
        model: The model name the endpoint knows, e.g. ``gpt-4o-mini``.
        base_url: The endpoint; defaults to ``OPENAI_BASE_URL``, then api.openai.com.
        api_key: The key; defaults to ``OPENAI_API_KEY``. Required only for the default
            endpoint: a custom server without auth gets a placeholder.
        timeout_s: Per-attempt timeout in seconds (default 60).
        max_concurrency: Calls in flight at once (default 8).

    Raises:
        ModelSpecError: ``model`` is empty.
        ModelUnavailableError: The ``openai`` package is missing, or the default
            endpoint is used without ``OPENAI_API_KEY``.
    """

    supports_logprobs = True
    """``logprobs``/``top_logprobs`` are asked for when a decision needs them; OpenAI's
    chat models, vLLM and llama.cpp's servers (``--logits_all``) answer them."""
    accepts_images = True
    """Images go out as ``image_url`` content parts; the endpoint decides if it can see."""
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
                "openai: needs a model name", fix="write openai:MODEL, e.g. openai:gpt-4o-mini"
            )
        self._model = model
        self._spec = f"openai:{model}"
        try:
            import openai
        except ImportError as error:
            raise ModelUnavailableError(
                f"{self._spec}: the openai package is not installed",
                fix="pip install 'openai>=1.40'",
            ) from error
        endpoint = resolve_endpoint(
            self._spec,
            base_url=base_url,
            api_key=api_key,
            default_url=DEFAULT_BASE_URL,
            url_env="OPENAI_BASE_URL",
            key_env="OPENAI_API_KEY",
            server_kind="an OpenAI-compatible server",
        )
        self._official = endpoint.official
        self._client: AsyncOpenAI = openai.AsyncOpenAI(
            api_key=endpoint.key,
            base_url=endpoint.sdk_base_url,
            default_query=endpoint.query,
            timeout=timeout_s if timeout_s is not None else DEFAULT_TIMEOUT_S,
            max_retries=0,
            http_client=http_client(openai, endpoint),
        )
        self._identity = endpoint.identity(self._spec)
        self._max_concurrency = max_concurrency or DEFAULT_MAX_CONCURRENCY

    @property
    def spec(self) -> str:
        """``openai:MODEL``."""
        return self._spec

    @property
    def identity(self) -> str:
        """``openai:MODEL@ENDPOINT``: the same model name on two servers is two models."""
        return self._identity

    @property
    def max_concurrency(self) -> int:
        """Calls in flight at once."""
        return self._max_concurrency

    def __repr__(self) -> str:
        return f"OpenAIBackend({self._identity!r})"

    async def generate(self, messages: Sequence[ChatMessage], config: GenerateConfig) -> Response:
        """One chat completion; raises the SDK's exception on failure, and
        :class:`~probegen.models.base.BadResponseError` for a 200 without an answer."""
        from openai import APIResponseValidationError

        body = self.request_body(messages, config)
        try:
            # The SDK "transforms" every parameter by walking its TypedDict annotations;
            # for the messages that walk is ~0.8 ms of CPU per call, a fifth of the SDK's
            # whole client cost, and it changes nothing: ours are already in wire form.
            # ``extra_body`` is sent as given and overrides the empty list in place, so the
            # request is byte for byte what ``create(messages=...)`` sends (tested).
            completion: Any = await self._client.chat.completions.create(
                **{**body, "messages": []}, extra_body={"messages": body["messages"]}
            )
        except (json.JSONDecodeError, UnicodeDecodeError, APIResponseValidationError) as error:
            # Raised after a 200 arrived: the body is cut short or is not JSON at all.
            raise BadResponseError(
                self._spec, f"the answer does not parse ({type(error).__name__})"
            ) from error
        return self._response(completion)

    def request_body(self, messages: Sequence[ChatMessage], config: GenerateConfig) -> Any:
        """The ``/v1/chat/completions`` body of one call: what :meth:`generate` sends, and
        what a batch (:mod:`probegen.batch`) sends per item."""
        body: dict[str, Any] = {
            "model": self._model,
            "messages": [_to_openai(message) for message in messages],
            "temperature": config.temperature,
        }
        # api.openai.com's reasoning models reject the deprecated max_tokens, while many
        # compatible servers only know max_tokens: send what the endpoint expects.
        body["max_completion_tokens" if self._official else "max_tokens"] = config.max_tokens
        if config.seed is not None:
            body["seed"] = config.seed
        if config.top_p is not None:
            body["top_p"] = config.top_p
        if config.top_logprobs is not None:
            body["logprobs"] = True
            body["top_logprobs"] = config.top_logprobs
        return body

    def parse_completion(self, completion: Any) -> Response:
        """A chat completion as a :class:`Response`; raises
        :class:`~probegen.models.base.BadResponseError` when it holds no answer."""
        return self._response(completion)

    def batch_api(self) -> OpenAIBatches:
        """This model's OpenAI Batch API (``probegen eval`` with ``batch``): the same
        client and the same request bodies as its calls."""
        from probegen.batch.openai_batches import OpenAIBatches

        return OpenAIBatches(self._client, self)

    def _response(self, completion: Any) -> Response:
        # The SDK builds its models without validation, so any field may be missing or
        # of the wrong type, and a body that is not JSON comes back as a plain string.
        choices = getattr(completion, "choices", None)
        if isinstance(completion, str) or not isinstance(choices, list):
            raise BadResponseError(self._spec, "the answer is not a chat completion")
        if not choices:
            raise EmptyResponseError(self._spec, "the answer has no choices")
        choice = choices[0]
        finish_reason = getattr(choice, "finish_reason", None)
        message = getattr(choice, "message", None)
        content = getattr(message, "content", None)
        refusal = getattr(message, "refusal", None)
        if not (isinstance(content, str) and content.strip()) and isinstance(refusal, str):
            content = refusal  # a refusal is an answer (it is scored as one), not a fault
        top_logprobs = _first_token_logprobs(choice)
        if top_logprobs and not isinstance(content, str):
            content = ""  # a one-token decision: its distribution is the answer
        if not isinstance(content, str) or not (content.strip() or top_logprobs):
            what = "no message" if message is None else f"{_describe(content)} content"
            cut = f", finish_reason {finish_reason}" if finish_reason else ""
            raise EmptyResponseError(self._spec, f"the answer has {what}{cut}")
        usage = getattr(completion, "usage", None)
        return Response(
            text=content,
            finish_reason=finish_reason if isinstance(finish_reason, str) else None,
            model=str(getattr(completion, "model", None) or self._model),
            usage=Usage(
                input_tokens=_count(getattr(usage, "prompt_tokens", None)),
                output_tokens=_count(getattr(usage, "completion_tokens", None)),
            ),
            top_logprobs=top_logprobs,
        )

    def retry_hint(self, error: BaseException) -> RetryHint | None:
        """429, 408, 409 and 5xx answers, timeouts, dropped connections (also mid-body)
        and 200s without an answer are transient; a 5xx saying the request is not
        supported is a refusal and is not retried."""
        from openai import APIConnectionError, APIStatusError, APITimeoutError

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
            if status == 429 or status >= 500 or status in _RETRYABLE_STATUS:
                return RetryHint(str(status), parse_retry_after(error.response.headers))
        return None

    async def aclose(self) -> None:
        """Close the HTTP client."""
        await self._client.close()


def _describe(content: object) -> str:
    if content is None:
        return "null"
    return "empty" if isinstance(content, str) else f"non-text ({type(content).__name__})"


def _count(tokens: object) -> int | None:
    return tokens if isinstance(tokens, int) else None


def _first_token_logprobs(choice: Any) -> dict[str, float] | None:
    """``{token: logprob}`` of the first generated token's top alternatives, if sent."""
    content = getattr(getattr(choice, "logprobs", None), "content", None)
    if not isinstance(content, list) or not content:
        return None
    alternatives = getattr(content[0], "top_logprobs", None) or []
    found = {
        str(getattr(a, "token", "")): float(getattr(a, "logprob", -math.inf))
        for a in alternatives
        if isinstance(getattr(a, "logprob", None), int | float)
    }
    return found or None


def _to_openai(message: ChatMessage) -> ChatCompletionMessageParam:
    if message.images and message.role != "user":
        # The Chat Completions API takes images in user turns only; refuse rather than
        # send the turn without them.
        raise ValueError(f"images are only sent with user messages, not {message.role}")
    if message.role == "system":
        return {"role": "system", "content": message.content}
    if message.role == "assistant":
        return {"role": "assistant", "content": message.content}
    if not message.images:
        return {"role": "user", "content": message.content}
    parts: list[ChatCompletionContentPartParam] = [{"type": "text", "text": message.content}]
    parts += [
        {"type": "image_url", "image_url": {"url": image.data_url()}} for image in message.images
    ]
    return {"role": "user", "content": parts}
