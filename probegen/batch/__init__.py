"""Provider batch APIs (OpenAI Batch, Anthropic Message Batches): half-price calls,
answered within 24 hours, collected into the response cache and resumable.

- :mod:`.base`: the :class:`BatchBackend` protocol a provider's batch API implements;
  the ``openai:`` and ``anthropic:`` backends offer theirs (:func:`batch_api_of`).
- :mod:`.openai_batches`, :mod:`.anthropic_batches`: the two, through the official SDKs.
- :mod:`.plan`: the calls a probe needs, each named by its response-cache key.
- :mod:`.collect`: :func:`answer_by_batch` submits, records, polls and collects.
- :mod:`.gather`: :class:`~probegen.batch.gather.BatchGatherer` for searches, whose calls
  are known only as they are made: the calls made together go as one batch.
- :mod:`.answered`: :class:`BatchAnswered`, the backend a run's usual calls then go
  through, so failed items are recorded like any failed call.
"""

from probegen.batch.answered import BatchAnswered, BatchItemError, request_key
from probegen.batch.base import (
    BatchBackend,
    BatchCall,
    BatchItem,
    BatchState,
    batch_api_of,
    require_batch_api,
)
from probegen.batch.collect import BatchAnswers, BatchCounts, BatchError, answer_by_batch
from probegen.batch.plan import probe_calls

__all__ = [
    "BatchAnswered",
    "BatchAnswers",
    "BatchBackend",
    "BatchCall",
    "BatchCounts",
    "BatchError",
    "BatchItem",
    "BatchItemError",
    "BatchState",
    "answer_by_batch",
    "batch_api_of",
    "probe_calls",
    "request_key",
    "require_batch_api",
]
