"""One model served by several endpoints: replicas behind vLLM, or llama.cpp servers.

A :class:`ReplicaSet` is a :class:`~probegen.models.base.ChatModel` like any backend, so
:class:`~probegen.models.managed.Model` wraps it with the same retries, cache and
failure recording. Inside, it holds one backend per endpoint and, for each call:

- sends it to the least-loaded replica that is up, each replica taking at most its own
  backend's ``max_concurrency`` calls at once (a preset's ``max_concurrency`` is per
  endpoint; ``openai:`` defaults to 8);
- when a replica fails the way a sick server fails (connection refused or dropped,
  timeout, 429, 5xx), marks it down for an exponential backoff and sends the same call
  to another replica at once, so a replica that dies mid-run loses nothing; after the
  backoff one call probes it, and success brings it back;
- when every replica is down, raises, and the wrapper's ordinary retry (then failed-call
  recording) applies, waiting at least until the first replica may be probed again.

An error that says nothing about the server (a 400, an answer without text) is raised as
it is: another replica would answer the same way, and the wrapper's retry decides.

The set's :attr:`ReplicaSet.identity` is its *first* endpoint's, so the cache key never
depends on which replica answered, and a run against ``[A, B]`` shares its cache with a
run against ``A`` alone (and with ``[A, C]``): list the same endpoint first to keep a
cache across changes of replicas.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from probegen.models.base import (
    ChatMessage,
    ChatModel,
    GenerateConfig,
    Response,
    RetryHint,
    accepts_images,
    images_by_default,
    supports_logprobs,
)

__all__ = [
    "AllReplicasDownError",
    "ReplicaBackoff",
    "ReplicaSet",
    "ReplicaStats",
    "endpoint_count",
    "replica_stats",
]

# Hints that say nothing about the replica's health: the server answered, badly.
_ANSWER_FAULTS = frozenset({"empty", "bad response"})


class ReplicaBackoff(BaseModel):
    """How long a failed replica is left alone before one call probes it again."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    initial_s: float = Field(1.0, ge=0)
    """Down time after the first failure in a row."""
    max_s: float = Field(30.0, ge=0)
    """Upper bound on the down time."""
    multiplier: float = Field(2.0, ge=1)
    """Growth of the down time per further failure in a row."""

    def down_s(self, failures_in_row: int, retry_after: float | None = None) -> float:
        """Seconds a replica stays down after its ``failures_in_row``-th failure in a
        row (at least what its ``Retry-After`` asked, up to :attr:`max_s`)."""
        wait = min(self.max_s, self.initial_s * self.multiplier ** (failures_in_row - 1))
        return min(max(wait, retry_after or 0.0), self.max_s)


@dataclass(frozen=True)
class ReplicaStats:
    """What one replica did.

    Attributes:
        endpoint: The replica's identity (spec and URL, credentials removed).
        served: Calls it answered.
        failed: Calls it failed as a sick server does (each sent on to another).
        state: ``up``, ``down`` (in backoff) or ``probing`` (backoff over, untested).
        in_flight: Calls it is answering now.
    """

    endpoint: str
    served: int
    failed: int
    state: Literal["up", "down", "probing"]
    in_flight: int = 0


class AllReplicasDownError(Exception):
    """No replica may take a call now: every one is in its backoff.

    Args:
        spec: The model's spec.
        count: How many replicas there are.
        retry_after: Seconds until the first one may be probed again.
    """

    def __init__(self, spec: str, count: int, retry_after: float) -> None:
        self.spec = spec
        self.retry_after = retry_after
        super().__init__(
            f"{spec}: all {count} replicas are down; the first is probed again in "
            f"{retry_after:.1f} s"
        )


class _Replica:
    """One endpoint's backend and its health."""

    def __init__(self, backend: ChatModel) -> None:
        self.backend = backend
        self.limit = max(1, backend.max_concurrency)
        self.in_flight = 0
        self.served = 0
        self.failed = 0
        self.failures_in_row = 0
        self.down_until = 0.0

    def state(self, now: float) -> Literal["up", "down", "probing"]:
        if self.failures_in_row == 0:
            return "up"
        return "down" if now < self.down_until else "probing"

    def free(self, now: float) -> bool:
        """Whether it may take one more call now (a probing replica takes one only)."""
        state = self.state(now)
        if state == "down":
            return False
        return self.in_flight < (1 if state == "probing" else self.limit)


class ReplicaSet:
    """One model on several endpoints, routed, limited and failed over per endpoint.

    Args:
        replicas: One backend per endpoint, all for the same model spec.
        backoff: How long a failed replica is left alone.
        clock: Monotonic seconds (tests pass their own).

    Raises:
        ValueError: No replicas, or replicas of different specs.
    """

    def __init__(
        self,
        replicas: Sequence[ChatModel],
        *,
        backoff: ReplicaBackoff | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not replicas:
            raise ValueError("a replica set needs at least one replica")
        specs = {replica.spec for replica in replicas}
        if len(specs) > 1:
            raise ValueError(f"replicas must serve one model spec, got {sorted(specs)}")
        self._replicas = [_Replica(backend) for backend in replicas]
        self._backoff = backoff or ReplicaBackoff()
        self._clock = clock
        self._turn = 0
        # Calls waiting for a slot; woken whenever a call ends.
        self._waiters: list[asyncio.Future[None]] = []
        first = replicas[0]
        self.supports_logprobs = supports_logprobs(first)
        self.accepts_images = accepts_images(first)
        self.images_by_default = images_by_default(first)

    @property
    def spec(self) -> str:
        """The model's spec (the same for every replica)."""
        return self._replicas[0].backend.spec

    @property
    def identity(self) -> str:
        """The first endpoint's identity: the cache key is the same whichever replica
        answers, and the same as a run against the first endpoint alone."""
        return self._replicas[0].backend.identity

    @property
    def max_concurrency(self) -> int:
        """Every replica's bound, summed: what the set can take at once when all are up."""
        return sum(replica.limit for replica in self._replicas)

    @property
    def backends(self) -> tuple[ChatModel, ...]:
        """The replicas' backends, in the order given."""
        return tuple(replica.backend for replica in self._replicas)

    def __repr__(self) -> str:
        return f"ReplicaSet({[r.backend.identity for r in self._replicas]!r})"

    def stats(self) -> list[ReplicaStats]:
        """Calls served and failed per replica, and its state now, in the order given."""
        now = self._clock()
        return [
            ReplicaStats(r.backend.identity, r.served, r.failed, r.state(now), r.in_flight)
            for r in self._replicas
        ]

    async def generate(self, messages: Sequence[ChatMessage], config: GenerateConfig) -> Response:
        """One call, on the least-loaded replica that is up; a replica that fails as a
        sick server does is marked down and the call goes to the next.

        Raises:
            AllReplicasDownError: Every replica is in its backoff.
            Exception: The last replica's error, when every replica tried failed, or the
                error of a call that another replica would fail the same way.
        """
        tried: set[int] = set()
        last_error: Exception | None = None
        while True:
            index = await self._acquire(tried)
            if index is None:
                if last_error is not None:
                    raise last_error
                raise AllReplicasDownError(self.spec, len(self._replicas), self._next_probe_s())
            replica = self._replicas[index]
            healthy: bool | None = None  # None: cancelled, which says nothing of health
            hint = None
            try:
                response = await replica.backend.generate(messages, config)
                healthy = True
            except Exception as error:  # each backend raises its own SDK's exceptions
                hint = replica.backend.retry_hint(error)
                healthy = hint is None or hint.reason in _ANSWER_FAULTS
                if healthy:
                    raise  # the server is up; it answered this call badly
                tried.add(index)
                last_error = error
                continue
            finally:
                # Also on cancellation, so a cancelled call never holds a slot.
                self._release(replica, healthy=healthy, hint=hint)
            replica.served += 1
            return response

    def retry_hint(self, error: BaseException) -> RetryHint | None:
        """Every replica down is transient (retry once the first may be probed);
        anything else is judged by the replicas' backend."""
        if isinstance(error, AllReplicasDownError):
            return RetryHint("replicas down", error.retry_after)
        return self._replicas[0].backend.retry_hint(error)

    async def aclose(self) -> None:
        """Close every replica's backend."""
        for replica in self._replicas:
            await replica.backend.aclose()

    async def _acquire(self, tried: set[int]) -> int | None:
        """A slot on the least-loaded untried replica that is up (waiting while all such
        are full), or None when every untried replica is down."""
        while True:
            now = self._clock()
            candidates = [
                i for i, r in enumerate(self._replicas) if i not in tried and r.state(now) != "down"
            ]
            if not candidates:
                return None
            free = [i for i in candidates if self._replicas[i].free(now)]
            if free:
                # No await between the check and the count: no other call can take it.
                index = min(free, key=self._load)
                self._replicas[index].in_flight += 1
                self._turn += 1
                return index
            # Full: wait for a slot to free, or for a down replica's backoff to end.
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            with contextlib.suppress(TimeoutError):  # a backoff ended: look again
                await asyncio.wait_for(waiter, timeout=max(self._next_probe_s(tried, now), 0.01))

    def _load(self, index: int) -> tuple[float, int, int]:
        replica = self._replicas[index]
        # Least loaded first; among equals, the one that served least, then in turn, so
        # an idle set spreads calls over every replica rather than piling on the first.
        turn = (index - self._turn) % len(self._replicas)
        return replica.in_flight / replica.limit, replica.served, turn

    def _release(self, replica: _Replica, *, healthy: bool | None, hint: RetryHint | None) -> None:
        replica.in_flight -= 1
        if healthy:
            replica.failures_in_row = 0
        elif healthy is False:
            replica.failed += 1
            now = self._clock()
            if replica.state(now) == "down":
                # Another call that was in flight when it went down: the same outage, so
                # it must not stretch the backoff (a killed server fails all it held).
                self._wake()
                return
            replica.failures_in_row += 1
            replica.down_until = now + self._backoff.down_s(
                replica.failures_in_row, hint.retry_after if hint is not None else None
            )
        self._wake()

    def _wake(self) -> None:
        """Wake the calls waiting for a slot: one may be free now."""
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    def _next_probe_s(self, tried: set[int] | None = None, now: float | None = None) -> float:
        """Seconds until the first replica (not tried) that is down may be probed; the
        initial backoff when none is down (a probe is already in flight)."""
        now = self._clock() if now is None else now
        waits = [
            r.down_until - now
            for i, r in enumerate(self._replicas)
            if (tried is None or i not in tried) and r.state(now) == "down"
        ]
        return max(0.0, min(waits)) if waits else self._backoff.initial_s


def endpoint_count(backend: object) -> int:
    """How many endpoints serve ``backend``: its replicas, or 1."""
    return len(backend.backends) if isinstance(backend, ReplicaSet) else 1


def replica_stats(backend: object) -> list[ReplicaStats]:
    """Per-replica counts of a :class:`ReplicaSet`; empty for any other backend."""
    return backend.stats() if isinstance(backend, ReplicaSet) else []
