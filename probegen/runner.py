"""The runner: the one place that sends probe variants to a model and records outcomes.

Everything that touches a model on behalf of a probe goes through :func:`query_probe`:
it fans out every variant x sample concurrently (the :class:`~probegen.models.Model`
bounds concurrency and owns retries and the cache), writes each outcome to the store as
soon as it arrives, so a killed run keeps what it finished, and records a call that
still fails after its retries as a failed query instead of dropping it. The writes of
calls that finish together share one transaction (group commit), and a call returns only
once its outcome is committed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

from probegen.answers import Answer, ProbeAnswers
from probegen.corpora import GroupedVariant
from probegen.errors import ModelCallError, UsageError
from probegen.media import image_input
from probegen.models.base import ChatMessage, GenerateConfig, ImageInput, Response, cache_key
from probegen.models.managed import Model
from probegen.probe import Probe
from probegen.store import Store

__all__ = [
    "REPLICATION_SAMPLE_OFFSET",
    "Answer",
    "ProbeAnswers",
    "build_messages",
    "query_probe",
    "recorded_call",
    "variant_chats",
]

REPLICATION_SAMPLE_OFFSET = 1000
"""Sample indices of re-measurements start here, so a replication never reuses a sample
the search drew (it would come back from the cache instead of being fresh), and readers
can tell discovery answers (below) from replication ones."""


def build_messages(
    variant_text: str, system_prompt: str | None = None, images: Sequence[ImageInput] = ()
) -> list[ChatMessage]:
    """The chat a target sees for one variant: an optional system prompt and the question,
    with the variant's images attached to it."""
    messages = [ChatMessage(role="system", content=system_prompt)] if system_prompt else []
    messages.append(ChatMessage(role="user", content=variant_text, images=tuple(images)))
    return messages


def variant_chats(
    probe: Probe,
    variants: Sequence[GroupedVariant],
    run_dir: Path,
    system_prompt: str | None = None,
) -> dict[str, list[ChatMessage]]:
    """The chat each variant of ``probe`` sends, by variant key: what
    :func:`query_probe` asks and what a batch of the same calls carries.

    Raises:
        UsageError: An image of the probe is missing or changed (see
            :func:`~probegen.media.image_input`).
    """
    # Images are read (and their checksums checked) once per variant, not per sample;
    # every sample of a variant sends the same chat.
    images = {v.key: [image_input(p, run_dir) for p in probe.media_for(v.key)] for v in variants}
    return {v.key: build_messages(v.text, system_prompt, images[v.key]) for v in variants}


async def recorded_call(
    model: Model,
    store: Store,
    run_id: str,
    probe_id: str,
    messages: Sequence[ChatMessage],
    config: GenerateConfig,
    *,
    variant: GroupedVariant | tuple[str, str],
    index: int,
    sample_index: int,
    event: dict[str, object],
) -> Response | ModelCallError:
    """One target call on behalf of a probe, recorded as a query of ``run_id`` whatever
    its outcome: answered (with its cache key) or failed after retries (with its cause
    and a ``query_failed`` event carrying ``event``).

    ``index`` numbers the query in the store; ``sample_index`` is the sample the model
    draws (it derives the seed and the cache key). They differ for the decision
    measurement, whose prompts are greedy passes numbered per phase.
    """
    key, group = variant if isinstance(variant, tuple) else (variant.key, variant.group)
    sample_config = config.for_sample(sample_index)
    answer_key = cache_key(model.identity, messages, sample_config, sample_index)
    try:
        response = await model.generate(messages, config, sample_index=sample_index, key=answer_key)
    except ModelCallError as error:
        await store.arecord_query(
            run_id, probe_id, model.identity, key, group, index,
            response_key=None, error=error.cause, attempts=error.attempts,
            event=("query_failed", {**event, "error": str(error)}),
        )  # fmt: skip
        return error
    await store.arecord_query(
        run_id, probe_id, model.identity, key, group, index,
        response_key=answer_key, attempts=response.attempts, cached=response.cached,
    )  # fmt: skip
    return response


async def query_probe(
    probe: Probe,
    variants: Sequence[GroupedVariant],
    model: Model,
    store: Store,
    run_id: str,
    *,
    samples: int,
    config: GenerateConfig,
    system_prompt: str | None = None,
    first_sample: int = 0,
) -> ProbeAnswers:
    """Ask ``model`` every variant of ``probe`` ``samples`` times and record the outcomes.

    Args:
        probe: The probe; recorded in the store under ``run_id``.
        variants: Its variants with their groups (from ``probe.grouped_variants``).
        model: The managed target model (retries, concurrency and cache inside).
        store: Where queries, failures and the response cache live.
        run_id: The run the queries belong to.
        samples: Answers per variant.
        config: Sampling parameters; sample *i* derives its seed from ``config.seed``.
        system_prompt: Optional system message sent before each variant.
        first_sample: Index of the first sample (samples ``first_sample`` ..
            ``first_sample + samples - 1`` are asked): later indices are fresh samples,
            never answered from the cache by an earlier, smaller request.

    Returns:
        The answers per variant key; failed calls appear as answers with ``error`` set.
    """
    if probe.media and not model.accepts_images:
        raise UsageError(
            f"target {model.spec} cannot see images, and probe {probe.id} has some",
            fix="use a vision target (local-doc, llava, hf: VLMs, openai:/anthropic: vision "
            "models) or leave out the image operators",
        )
    chats = variant_chats(probe, variants, store.path.parent, system_prompt)
    store.add_probe(run_id, probe)
    probe_id = probe.id  # hashed from the content: once, not per call

    async def one(variant: GroupedVariant, index: int) -> Answer:
        messages = chats[variant.key]
        response = await recorded_call(
            model, store, run_id, probe_id, messages, config, variant=variant, index=index,
            sample_index=index, event={"probe": probe_id, "variant": variant.key, "sample": index},
        )  # fmt: skip
        if isinstance(response, ModelCallError):
            return Answer(variant.key, variant.group, index, None, error=response.cause)
        return Answer(
            variant.key,
            variant.group,
            index,
            response.text,
            cached=response.cached,
            cost_usd=response.usage.cost_usd,
        )

    jobs = [one(v, i) for v in variants for i in range(first_sample, first_sample + samples)]
    results = await asyncio.gather(*jobs)
    grouped: dict[str, list[Answer]] = {v.key: [] for v in variants}
    for answer in results:
        grouped[answer.variant_key].append(answer)
    return ProbeAnswers(probe, model.identity, list(variants), grouped)
