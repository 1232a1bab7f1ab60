"""What a provider's batch API looks like to probegen: :class:`BatchBackend`.

A backend submits many calls as one batch and returns the provider's id, says whether
a batch has ended, and reads its results, one :class:`BatchItem` per custom id (in no
particular order: the providers promise none). It makes single attempts and raises its
SDK's exceptions, like a :class:`~probegen.models.base.ChatModel`; retries, the store
and the response cache are the coordinator's (:mod:`probegen.batch.collect`).

A chat backend offers its batch API with an optional ``batch_api()`` method (the
``openai:`` and ``anthropic:`` backends do), found by :func:`batch_api_of`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from probegen.errors import ConfigError
from probegen.models.base import ChatMessage, GenerateConfig, Response, RetryHint

if TYPE_CHECKING:
    from probegen.store.batches import PendingBatch

__all__ = [
    "BatchBackend",
    "BatchCall",
    "BatchItem",
    "BatchState",
    "batch_api_of",
    "require_batch_api",
]


@dataclass(frozen=True)
class BatchCall:
    """One call to put in a batch.

    Attributes:
        custom_id: The call's response-cache key (how its result comes back).
        messages: The chat.
        config: The sample's sampling parameters (its seed derived already).
        sample_index: Which sample of the query this is (stored with the answer).
    """

    custom_id: str
    messages: tuple[ChatMessage, ...]
    config: GenerateConfig
    sample_index: int


@dataclass(frozen=True)
class BatchState:
    """What the provider says of a batch.

    Attributes:
        ended: No item will change any more (completed, expired, failed or cancelled).
        status: The provider's own word (``in_progress``, ``completed``, ``expired``...).
    """

    ended: bool
    status: str


@dataclass(frozen=True)
class BatchItem:
    """The result of one item of an ended batch: an answer, or why there is none.

    Attributes:
        custom_id: The item's custom id.
        response: The answer (usage as reported; cost not set yet), or None.
        error: Why the item has no answer, one line (None when answered).
        expired: The batch's window ran out before the item was answered.
    """

    custom_id: str
    response: Response | None = None
    error: str | None = None
    expired: bool = False


@runtime_checkable
class BatchBackend(Protocol):
    """A provider's batch API for one model."""

    @property
    def provider(self) -> str:
        """``openai`` or ``anthropic``: what the store records, and the price's key."""
        ...

    @property
    def max_items(self) -> int:
        """The most calls one batch may carry (larger sets are split)."""
        ...

    @property
    def max_bytes(self) -> int:
        """The largest batch the API takes, in bytes of what :meth:`submit` sends
        (larger sets are split; a single call over it is failed without sending)."""
        ...

    def request_bytes(self, call: BatchCall) -> int:
        """How many bytes ``call`` adds to the batch :meth:`submit` sends."""
        ...

    async def submit(self, calls: Sequence[BatchCall], token: str) -> str:
        """Submit ``calls`` as one batch, tagged with ``token`` where the API keeps such
        a tag; return the provider's batch id."""
        ...

    async def find(self, submission: PendingBatch) -> str | None:
        """The id of the batch sent as ``submission`` (its ``token``, item count and time
        of sending), or None when the provider has none or cannot tell: for a run stopped
        between sending a batch and hearing its id."""
        ...

    async def poll(self, batch_id: str) -> BatchState:
        """The batch's state now."""
        ...

    async def results(self, batch_id: str) -> list[BatchItem]:
        """The results of an ended batch (items it has no line for are left out)."""
        ...

    def retry_hint(self, error: BaseException) -> RetryHint | None:
        """A hint if ``error`` (from any method here) is transient, else None."""
        ...


def batch_api_of(backend: object) -> BatchBackend | None:
    """The batch API a chat backend offers (its ``batch_api()``), or None."""
    make = getattr(backend, "batch_api", None)
    api = make() if callable(make) else None
    return api if isinstance(api, BatchBackend) else None


def require_batch_api(
    label: str, backend: object, fix: str = "run it without `batch`"
) -> BatchBackend:
    """:func:`batch_api_of` ``backend``, or a one-line refusal naming the ``batch``
    setting and the model (``label``).

    Raises:
        ConfigError: ``backend`` has no batch API.
    """
    api = batch_api_of(backend)
    if api is None:
        raise ConfigError(
            "batch",
            f"target {label} has no batch API (only openai: and anthropic: targets on one "
            "endpoint have one)",
            fix=fix,
        )
    return api
