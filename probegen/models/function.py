"""A plain Python async function as a model, so a user audits their own pipeline (a RAG
app, an agent, a model behind a private client) without writing a backend class.

``async def answer(messages, config) -> str`` is wrapped by :class:`FunctionModel` into a
:class:`~probegen.models.base.ChatModel`; everything else (retries, the response cache,
concurrency limits, the store) then treats it like any other backend.

A function is code, not data: a run stores it by a readable name,
``python:module:qualname`` (:func:`function_spec`), and never imports anything from a
stored name. Resuming such a run needs the function passed again. The name is also the
response cache's key for the function's answers, so a function whose behaviour changed
should get another name (``FunctionModel(fn, name=...)``) or the cache answers as before.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Sequence

from probegen.errors import ConfigError
from probegen.models.base import (
    BadResponseError,
    ChatMessage,
    ChatModel,
    GenerateConfig,
    Response,
    RetryHint,
    bad_response_hint,
)

__all__ = [
    "PYTHON_PREFIX",
    "FunctionModel",
    "ModelFunction",
    "as_chat_model",
    "function_spec",
]

ModelFunction = Callable[[Sequence[ChatMessage], GenerateConfig], Awaitable[str | Response]]
"""``async def f(messages, config) -> str`` (or a :class:`Response`, to report usage)."""

PYTHON_PREFIX = "python:"
"""The spec prefix of a Python function model: ``python:module:qualname``."""


def function_spec(function: Callable[..., object]) -> str:
    """The readable name a run stores for ``function``: ``python:module:qualname``."""
    module = getattr(function, "__module__", None) or "unknown"
    qualname = getattr(function, "__qualname__", None) or type(function).__qualname__
    return f"{PYTHON_PREFIX}{module}:{qualname}"


def _is_async(function: object) -> bool:
    call = getattr(function, "__call__", None)  # noqa: B004 (an async __call__ counts)
    return inspect.iscoroutinefunction(function) or inspect.iscoroutinefunction(call)


class FunctionModel:
    """A :class:`~probegen.models.base.ChatModel` over an async function.

    Args:
        function: ``async def f(messages, config) -> str``; ``messages`` are
            :class:`~probegen.models.base.ChatMessage` s (system prompt first, if any),
            ``config`` the :class:`~probegen.models.base.GenerateConfig` of the call
            (temperature, max_tokens, the sample's seed).
        name: The spec the run stores and the cache keys by (default
            :func:`function_spec`).
        max_concurrency: Calls in flight at once.
        field: The argument the function was given as, for error messages.

    Raises:
        ConfigError: ``function`` is not an async callable.
    """

    accepts_images = False
    supports_logprobs = False

    def __init__(
        self,
        function: ModelFunction,
        *,
        name: str | None = None,
        max_concurrency: int = 4,
        field: str = "target",
    ) -> None:
        if not callable(function) or not _is_async(function):
            raise ConfigError(
                field,
                f"{function!r} is not an async function",
                fix="pass `async def f(messages, config) -> str` (wrap blocking code in "
                "asyncio.to_thread), a model spec string or a ChatModel",
            )
        if max_concurrency < 1:
            raise ConfigError(field, f"max_concurrency must be at least 1, got {max_concurrency}")
        self.function = function
        self._spec = name or function_spec(function)
        self._max_concurrency = max_concurrency

    @property
    def spec(self) -> str:
        """``python:module:qualname``, or the name given."""
        return self._spec

    @property
    def identity(self) -> str:
        """The spec: a function has no endpoint."""
        return self._spec

    @property
    def max_concurrency(self) -> int:
        """Calls in flight at once."""
        return self._max_concurrency

    def __repr__(self) -> str:
        return f"FunctionModel({self._spec})"

    async def generate(self, messages: Sequence[ChatMessage], config: GenerateConfig) -> Response:
        """Call the function once; a result that is neither text nor a
        :class:`Response` is a bad response, never an answer."""
        result = await self.function(list(messages), config)
        if isinstance(result, Response):
            return result
        if isinstance(result, str):
            return Response(text=result, model=self._spec)
        raise BadResponseError(self._spec, f"returned {type(result).__name__}, not str")

    def retry_hint(self, error: BaseException) -> RetryHint | None:
        """Empty or malformed answers are retried; the function's own exceptions are
        not (it has had its say; the failure is recorded)."""
        return bad_response_hint(error)

    async def aclose(self) -> None:
        """Nothing to release: the function belongs to the caller."""


def as_chat_model(value: object, field: str) -> ChatModel | None:
    """``value`` as a backend object: a :class:`ChatModel` itself, an async function
    wrapped in a :class:`FunctionModel`, or None for a spec string (resolved later).

    Raises:
        ConfigError: ``value`` is neither a spec, a ChatModel nor an async function.
    """
    if isinstance(value, str):
        return None
    if isinstance(value, ChatModel):
        return value
    if callable(value):
        return FunctionModel(value, field=field)
    raise ConfigError(
        field,
        f"{value!r} is not a model",
        fix="pass a model spec string, a ChatModel or `async def f(messages, config) -> str`",
    )
