"""An eval's target calls through the provider's batch API (``evaluate(batch=True)``).

Before a target's items are queried, every call they need is answered by
:func:`~probegen.batch.collect.answer_by_batch` into the response cache (cached calls
are not sent; calls pending in a batch an earlier, killed run recorded are polled, not
submitted again). The items are then queried and scored exactly as without batches,
through :class:`~probegen.batch.answered.BatchAnswered`: answers come from the cache,
and a call whose batch item failed or expired is recorded as a failed call.
"""

from __future__ import annotations

from collections.abc import Sequence

from probegen.batch import (
    BatchAnswered,
    BatchBackend,
    BatchCall,
    BatchCounts,
    probe_calls,
    request_key,
    require_batch_api,
)
from probegen.batch.collect import BatchEvent, answer_by_batch
from probegen.corpora import Corpora
from probegen.errors import TemplateError
from probegen.models.base import ChatModel, GenerateConfig, accepts_images
from probegen.release.model import ReleaseItem
from probegen.store import Store

__all__ = ["answer_release_by_batch", "check_batch_targets"]


def check_batch_targets(backends: Sequence[tuple[str, ChatModel]]) -> None:
    """Refuse, before a run exists, a target that has no batch API.

    Raises:
        ConfigError: Naming ``batch`` and the first such target.
    """
    for label, backend in backends:
        _batch_api(label, backend)


def _batch_api(label: str, backend: ChatModel) -> BatchBackend:
    return require_batch_api(
        label, backend, fix="evaluate it without `batch`, or in a run of its own"
    )


def release_calls(
    items: Sequence[ReleaseItem],
    backend: ChatModel,
    *,
    samples: int,
    generate: GenerateConfig,
    system_prompt: str | None,
    corpora: Corpora,
    store: Store,
) -> list[BatchCall]:
    """Every call the eval makes for ``items`` on ``backend``; items the runner will not
    query (a template the corpora cannot expand, images for a target that cannot see)
    need none."""
    calls: list[BatchCall] = []
    for item in items:
        probe = item.probe
        if probe.media and not accepts_images(backend):
            continue
        try:
            variants = probe.grouped_variants(corpora)
        except TemplateError:
            continue
        calls += probe_calls(
            probe, variants, backend.identity, store.path.parent,
            samples=samples, config=generate, system_prompt=system_prompt,
        )  # fmt: skip
    return calls


async def answer_release_by_batch(
    items: Sequence[ReleaseItem],
    label: str,
    backend: ChatModel,
    *,
    samples: int,
    generate: GenerateConfig,
    system_prompt: str | None,
    store: Store,
    run_id: str,
    corpora: Corpora,
    poll_s: float,
    on_event: BatchEvent | None = None,
) -> tuple[BatchAnswered, BatchCounts]:
    """Answer every call of ``items`` on ``backend`` by batch; the backend the items
    are then queried through, and what the batches did.

    Raises:
        ConfigError: The backend has no batch API.
        BatchError: A recorded batch could not be polled or read (a rerun resumes it).
    """
    api = _batch_api(label, backend)
    calls = release_calls(
        items, backend, samples=samples, generate=generate, system_prompt=system_prompt,
        corpora=corpora, store=store,
    )  # fmt: skip
    answers = await answer_by_batch(
        calls, backend, api, store, run_id, poll_s=poll_s, on_event=on_event
    )
    by_id = {call.custom_id: call for call in calls}
    failures = {
        request_key(backend.identity, by_id[key].messages, by_id[key].config): cause
        for key, cause in answers.failures.items()
    }
    return BatchAnswered(backend, failures), answers.counts
