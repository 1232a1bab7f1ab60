"""The calls a probe needs, as batch items: :func:`probe_calls`.

Each call is named by the response-cache key the runner computes for it
(:func:`~probegen.runner.recorded_call`), from the same chat
(:func:`~probegen.runner.variant_chats`) and the same per-sample config, so an answer a
batch brings back is the cache entry the runner then finds.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from probegen.batch.base import BatchCall
from probegen.corpora import GroupedVariant
from probegen.models.base import GenerateConfig, cache_key
from probegen.probe import Probe
from probegen.runner import variant_chats

__all__ = ["probe_calls"]


def probe_calls(
    probe: Probe,
    variants: Sequence[GroupedVariant],
    identity: str,
    run_dir: Path,
    *,
    samples: int,
    config: GenerateConfig,
    system_prompt: str | None = None,
    first_sample: int = 0,
) -> list[BatchCall]:
    """Every variant x sample call :func:`~probegen.runner.query_probe` would make with
    the same arguments, for the model ``identity``.

    Raises:
        UsageError: An image of the probe is missing or changed.
    """
    chats = variant_chats(probe, variants, run_dir, system_prompt)
    calls = []
    for variant in variants:
        messages = tuple(chats[variant.key])
        for index in range(first_sample, first_sample + samples):
            sample_config = config.for_sample(index)
            key = cache_key(identity, messages, sample_config, index)
            calls.append(BatchCall(key, messages, sample_config, index))
    return calls
