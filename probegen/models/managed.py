"""One managed model: bounded concurrency, retries with backoff, the response cache, cost.

Backends make exactly one attempt per call (see :mod:`probegen.models.base`); everything
that must behave the same for every provider lives here, so a retry against OpenAI and a
retry against a local llama.cpp server are logged, paced and counted identically.

A call either returns a :class:`~probegen.models.base.Response` with text or raises
:class:`probegen.errors.ModelCallError`; it never returns silently with nothing. An
answer with no text is a failed attempt (:class:`~probegen.models.base.EmptyResponseError`)
whatever the backend, classified like any other error by the backend's ``retry_hint``,
and it is never cached: enforced here so that no backend can pass an empty answer off.
"""

from __future__ import annotations

import asyncio
import email.utils
import random
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime
from types import TracebackType
from typing import Protocol

from pydantic import BaseModel, ConfigDict, Field

from probegen.errors import ModelCallError
from probegen.models.base import (
    AsyncResponseCache,
    ChatMessage,
    ChatModel,
    GenerateConfig,
    Response,
    ResponseCache,
    Usage,
    accepts_images,
    cache_key,
    has_text,
    require_text,
)
from probegen.models.pricing import cost_usd
from probegen.redaction import redact_text

__all__ = [
    "DEFAULT_RETRY",
    "CallGatherer",
    "EventHandler",
    "Model",
    "RetryPolicy",
    "describe_error",
    "parse_retry_after",
]

EventHandler = Callable[[str, dict[str, object]], None]
"""``on_event(kind, fields)``: kinds are ``retry`` and ``failure``."""

_MAX_CAUSE_CHARS = 300


class RetryPolicy(BaseModel):
    """How transient failures (429, 5xx, timeouts, answers with no text) are retried.

    Waits use exponential backoff with *full jitter* (uniform in ``[0, cap]``), so many
    concurrent callers that failed together do not retry together.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_attempts: int = Field(6, ge=1)
    """Attempts in all, the first included."""
    initial_backoff_s: float = Field(0.5, ge=0)
    """Backoff cap before the first retry."""
    max_backoff_s: float = Field(30.0, ge=0)
    """Upper bound on the backoff cap."""
    multiplier: float = Field(2.0, ge=1)
    """Growth of the backoff cap per retry."""
    max_retry_after_s: float = Field(120.0, ge=0)
    """A server's ``Retry-After`` is honoured up to this many seconds."""

    def wait_s(self, retry: int, retry_after: float | None, rng: random.Random) -> float:
        """Seconds to wait before retry number ``retry`` (1 for the first retry).

        Args:
            retry: Which retry this is, counting from 1.
            retry_after: The server's ``Retry-After`` in seconds, if it sent one.
            rng: Source of jitter.
        """
        cap = min(self.max_backoff_s, self.initial_backoff_s * self.multiplier ** (retry - 1))
        jittered = rng.uniform(0.0, cap)
        if retry_after is None:
            return jittered
        # The server knows its own load better than our backoff does: wait at least what it
        # asked, but never let one header stall a whole run for minutes.
        return min(max(retry_after, jittered), self.max_retry_after_s)


DEFAULT_RETRY = RetryPolicy()
"""The policy of a :class:`Model` built without one (the CLI's; tests shorten it)."""


class CallGatherer(Protocol):
    """Answers calls another way than one attempt each, e.g. a provider batch."""

    async def answer(
        self,
        key: str,
        messages: Sequence[ChatMessage],
        config: GenerateConfig,
        sample_index: int,
    ) -> Response:
        """The answer to one call (``key`` is its response-cache key, ``config`` the
        sample's), already stored in the response cache; raises when there is none."""
        ...


class Model:
    """A :class:`~probegen.models.base.ChatModel` backend plus everything around a call.

    Args:
        backend: The backend that makes single attempts.
        cache: Where finished calls are stored; a hit is returned without sending.
        retry: Retry policy; defaults to :data:`DEFAULT_RETRY` (up to 6 attempts).
        max_concurrency: Calls in flight at once; defaults to the backend's own bound.
        on_event: Called with ``("retry", fields)`` before each retry's wait and with
            ``("failure", fields)`` before :class:`~probegen.errors.ModelCallError` is raised.
        sleep: The awaitable used to wait between attempts (tests pass a recorder).
        rng: Source of backoff jitter (tests pass a seeded one).
        gather: Answers the calls the cache does not have instead of the backend, e.g.
            :class:`~probegen.batch.gather.BatchGatherer`, which sends the calls a run
            makes together as one provider batch. It stores its answers in the cache
            itself; no concurrency slot is held while a call waits for it.

    Attributes:
        sent: Attempts sent to the backend, retries included.
        cache_hits: Calls answered from the cache.
        retries: Retries made.
        failures: Calls that raised :class:`~probegen.errors.ModelCallError`.
        usage: Tokens and cost summed over successful attempts (cache hits cost nothing).
    """

    def __init__(
        self,
        backend: ChatModel,
        *,
        cache: ResponseCache | None = None,
        retry: RetryPolicy | None = None,
        max_concurrency: int | None = None,
        on_event: EventHandler | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rng: random.Random | None = None,
        gather: CallGatherer | None = None,
    ) -> None:
        if max_concurrency is not None and max_concurrency < 1:
            raise ValueError(f"max_concurrency must be >= 1, got {max_concurrency}")
        self.backend = backend
        self.cache = cache
        # Checked once: a runtime protocol check costs more than the rest of a cache write.
        self._async_cache = cache if isinstance(cache, AsyncResponseCache) else None
        self.retry = retry or DEFAULT_RETRY
        self.max_concurrency = max_concurrency or backend.max_concurrency
        self._on_event = on_event
        self._sleep = sleep
        self.gather = gather
        # Calls being answered now, by (event loop, cache key); see generate().
        self._in_flight: dict[tuple[asyncio.AbstractEventLoop, str], asyncio.Future[Response]] = {}
        self._rng = rng or random.Random()
        # A semaphore binds to the event loop it first waits on; keeping one per loop lets
        # one Model serve several asyncio.run() calls (CLI, tests) without RuntimeError.
        self._semaphores: dict[asyncio.AbstractEventLoop, asyncio.Semaphore] = {}
        self.sent = 0
        self.cache_hits = 0
        self.retries = 0
        self.failures = 0
        self._input_tokens = 0
        self._output_tokens = 0
        self._cost_usd: float | None = None

    @property
    def spec(self) -> str:
        """The backend's spec, e.g. ``openai:gpt-4o-mini``."""
        return self.backend.spec

    @property
    def identity(self) -> str:
        """The backend's identity (spec plus endpoint), used in cache keys."""
        return self.backend.identity

    @property
    def accepts_images(self) -> bool:
        """Whether the backend can see images (see :func:`~probegen.models.base.accepts_images`)."""
        return accepts_images(self.backend)

    def __repr__(self) -> str:
        return f"Model({self.identity!r}, max_concurrency={self.max_concurrency})"

    async def generate(
        self,
        messages: Sequence[ChatMessage],
        config: GenerateConfig,
        *,
        sample_index: int = 0,
        key: str | None = None,
    ) -> Response:
        """Answer ``messages``: from the cache if possible, else from the backend.

        Args:
            messages: The conversation.
            config: Sampling parameters; sample ``i`` uses seed ``config.seed + i``.
            sample_index: Which sample of this query this is.
            key: This call's :func:`~probegen.models.base.cache_key`, when the caller has
                computed it already (the runner records it with the query); computed
                here otherwise.

        Returns:
            The response; ``cached`` is True when it came from the cache.

        Raises:
            ModelCallError: The error was not transient, or every attempt failed.
        """
        sample_config = config.for_sample(sample_index)
        if key is None:
            key = cache_key(self.identity, messages, sample_config, sample_index)
        if self.cache is not None:
            hit = self.cache.get_response(key)
            # An empty answer cached before empty answers counted as failures is no answer:
            # ask again (the store replaces it with the new one).
            if hit is not None and has_text(hit):
                self.cache_hits += 1
                return hit.model_copy(update={"cached": True, "attempts": 0})
        if self.cache is None:
            return await self._answer(key, messages, sample_config, sample_index)
        # The same call already in flight (two probes that share a variant, a
        # replication round on the probe's own names) is answered by that call, as the
        # cache would answer it a moment later: an identical query is never sent twice.
        loop = asyncio.get_running_loop()
        pending = self._in_flight.get((loop, key))
        if pending is not None:
            try:
                response = await asyncio.shield(pending)
            except asyncio.CancelledError:
                if not pending.cancelled():
                    raise  # this caller was cancelled
                # The call it waited for was cancelled, not this caller: ask again.
                return await self.generate(messages, config, sample_index=sample_index, key=key)
            self.cache_hits += 1
            return response.model_copy(update={"cached": True, "attempts": 0})
        pending = self._in_flight[(loop, key)] = loop.create_future()
        try:
            response = await self._answer(key, messages, sample_config, sample_index)
        except Exception as error:
            pending.set_exception(error)
            pending.exception()  # retrieved: no "never retrieved" warning without followers
            raise
        except BaseException:
            pending.cancel()  # cancelled or interrupted: a follower asks again
            raise
        else:
            pending.set_result(response)
        finally:
            del self._in_flight[(loop, key)]
        return response

    async def _answer(
        self,
        key: str,
        messages: Sequence[ChatMessage],
        config: GenerateConfig,
        sample_index: int,
    ) -> Response:
        """A call the cache does not have: gathered, or attempted until done and cached."""
        if self.gather is not None:
            return await self._gathered(key, messages, config, sample_index)
        async with self._semaphore():
            # The slot is held through the backoff waits on purpose: under a 429 storm this
            # throttles the whole model instead of letting queued calls pile onto it.
            response = await self._attempt_until_done(messages, config)
        if self._async_cache is not None:
            # Committed with the answers of the other calls in flight (group commit), and
            # durable before the caller sees it.
            await self._async_cache.aput_response(
                key, self.identity, messages, config, sample_index, response
            )
        elif self.cache is not None:
            self.cache.put_response(key, self.identity, messages, config, sample_index, response)
        return response

    async def _attempt_until_done(
        self, messages: Sequence[ChatMessage], config: GenerateConfig
    ) -> Response:
        attempt = 0
        while True:
            attempt += 1
            self.sent += 1
            started = time.perf_counter()
            try:
                response = require_text(self.spec, await self.backend.generate(messages, config))
            except Exception as error:  # every backend raises its own SDK's exceptions
                cause = describe_error(error)
                hint = self.backend.retry_hint(error)
                if hint is None or attempt >= self.retry.max_attempts:
                    self.failures += 1
                    self._emit("failure", {"attempts": attempt, "error": cause})
                    raise ModelCallError(self.spec, attempt, cause) from error
                wait = self.retry.wait_s(attempt, hint.retry_after, self._rng)
                self.retries += 1
                self._emit(
                    "retry",
                    {
                        "reason": hint.reason,
                        "attempt": attempt,
                        "wait_s": wait,
                        "retry_after": hint.retry_after,
                        "error": cause,
                    },
                )
                await self._sleep(wait)
                continue
            return self._account(response, time.perf_counter() - started, attempt)

    async def _gathered(
        self,
        key: str,
        messages: Sequence[ChatMessage],
        config: GenerateConfig,
        sample_index: int,
    ) -> Response:
        assert self.gather is not None
        self.sent += 1
        started = time.perf_counter()
        try:
            response = await self.gather.answer(key, messages, config, sample_index)
        except Exception as error:  # the gatherer's verdict: not retried here
            cause = describe_error(error)
            self.failures += 1
            self._emit("failure", {"attempts": 1, "error": cause})
            raise ModelCallError(self.spec, 1, cause) from error
        return self._account(response, time.perf_counter() - started, 1)

    def _account(self, response: Response, latency_s: float, attempts: int) -> Response:
        usage = response.usage
        if usage.cost_usd is None:
            priced = cost_usd(self.spec, usage)
            if priced is not None:
                usage = usage.model_copy(update={"cost_usd": priced})
        self._input_tokens += usage.input_tokens or 0
        self._output_tokens += usage.output_tokens or 0
        if usage.cost_usd is not None:
            self._cost_usd = (self._cost_usd or 0.0) + usage.cost_usd
        return response.model_copy(
            update={"usage": usage, "latency_s": latency_s, "cached": False, "attempts": attempts}
        )

    @property
    def usage(self) -> Usage:
        """Tokens and cost of the calls this model made (cache hits cost nothing); cost
        is None while no call was priced."""
        return Usage(
            input_tokens=self._input_tokens,
            output_tokens=self._output_tokens,
            cost_usd=self._cost_usd,
        )

    def _semaphore(self) -> asyncio.Semaphore:
        loop = asyncio.get_running_loop()
        semaphore = self._semaphores.get(loop)
        if semaphore is None:
            # Forget semaphores of closed loops so a long-lived Model does not leak them.
            self._semaphores = {k: v for k, v in self._semaphores.items() if not k.is_closed()}
            semaphore = self._semaphores[loop] = asyncio.Semaphore(self.max_concurrency)
        return semaphore

    def _emit(self, kind: str, fields: dict[str, object]) -> None:
        if self._on_event is not None:
            self._on_event(kind, {"spec": self.spec, **fields})

    async def aclose(self) -> None:
        """Release the backend's clients, servers or weights."""
        await self.backend.aclose()

    async def __aenter__(self) -> Model:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


def parse_retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds a server asked us to wait, from ``retry-after-ms`` or ``Retry-After``.

    ``Retry-After`` may be a number of seconds or an HTTP date; header names are matched
    case-insensitively. Returns None when absent or unparsable.
    """
    lowered = {name.lower(): value for name, value in headers.items()}
    millis = lowered.get("retry-after-ms")
    if millis is not None:
        try:
            return max(0.0, float(millis) / 1000)
        except ValueError:
            pass
    value = lowered.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def describe_error(error: BaseException) -> str:
    """One line naming the error's type and message, secrets redacted, length bounded."""
    message = " ".join(str(error).split())
    line = f"{type(error).__name__}: {message}" if message else type(error).__name__
    line = redact_text(line)
    if len(line) > _MAX_CAUSE_CHARS:
        line = line[: _MAX_CAUSE_CHARS - 3] + "..."
    return line
