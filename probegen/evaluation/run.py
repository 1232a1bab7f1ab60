"""Querying and scoring a release on target models: the I/O half of ``probegen eval``.

Every call goes through the same machinery as ``evolve`` and ``ask``:
:func:`probegen.runner.query_probe` sends every variant x sample through a managed
:class:`~probegen.models.Model` (bounded concurrency, retries, the store's response
cache) and records each answer or failure in the store; the scorer judges all variants
jointly; :meth:`Store.put_score` keeps the verdict. An eval is a run of kind ``eval``,
and because the response cache spans runs, re-running an eval (or adding a target)
sends only the calls that are not cached yet; failed calls are never cached, so a rerun
retries them.

Unlike ``evolve``, an item whose answers are incomplete (a call still failed after its
retries) is not scored: a benchmark compares models on the same design, and a verdict
over fewer samples for one group is not comparable. It is reported as unscorable with
the failure count, and the failed queries stay in the store.
"""

from __future__ import annotations

import asyncio
import json
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from probegen.batch import BatchCounts
from probegen.batch.collect import BatchEvent
from probegen.corpora import Corpora
from probegen.errors import ConfigError, TemplateError, UsageError
from probegen.evaluation.batch import answer_release_by_batch
from probegen.evaluation.results import ItemResult
from probegen.models.base import ChatModel, GenerateConfig
from probegen.models.managed import Model
from probegen.models.replicas import ReplicaStats, endpoint_count, replica_stats
from probegen.release.model import MANIFEST_FILE, PROBES_FILE, ReleaseItem, read_items
from probegen.runner import query_probe
from probegen.scoring.base import Score, Scorer
from probegen.store import Store

__all__ = [
    "EvalConfig",
    "ProgressHandler",
    "TargetOutcome",
    "all_unscorable",
    "check_attributes",
    "evaluate_release",
    "evaluate_target",
    "load_release",
]

ProgressHandler = Callable[[str, int, int], None]
"""``on_progress(target, done, total)`` after each item of a target."""


class EvalConfig(BaseModel):
    """Everything that determines an eval; stored with the run (secrets never go here:
    keys come from the environment, and the store redacts what slips in)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    release: str
    """The release directory evaluated."""
    release_name: str
    release_version: str | None = None
    targets: tuple[str, ...] = Field(min_length=1)
    """Model specs under test, as given."""
    judge: str = "stats"
    """``stats`` (offline) or ``judge:SPEC``."""
    judge_base_url: str | None = None
    samples: int = Field(3, ge=1)
    """Answers per variant (CAB uses 3)."""
    generate: GenerateConfig = GenerateConfig(temperature=0.7, max_tokens=256, seed=0)
    system_prompt: str | None = None
    concurrency: int | None = Field(None, ge=1)
    """Calls in flight per target (per endpoint of a target on several); None keeps each
    backend's own bound."""
    base_url: str | tuple[str, ...] | None = None
    """Endpoint of the targets that take one (``openai:``, ``anthropic:``), or several
    endpoints serving the same model (replicas)."""
    bootstrap: int = Field(1000, ge=0)
    """Bootstrap resamples for the confidence intervals (0: none)."""
    seed: int = 0
    """Seeds the bootstrap (sampling seeds live in ``generate``)."""
    batch: bool = False
    """Target calls go through the providers' batch APIs (half price, within 24 h)."""


def load_release(release_dir: Path) -> tuple[list[ReleaseItem], str, str | None]:
    """The items of a release and its name and version.

    Name and version come from ``MANIFEST.json`` when it has them, else from the layout
    ``NAME/X.Y.Z/``, else the directory's name (version unknown).

    Raises:
        UsageError: ``probes.jsonl`` is unreadable, invalid or empty.
    """
    path = release_dir / PROBES_FILE
    try:
        items = read_items(path)
    except OSError as error:
        raise UsageError(f"{path}: cannot read ({error.strerror})") from error
    except (ValidationError, ValueError) as error:
        first = " ".join(str(error).splitlines()[:2])
        raise UsageError(
            f"{path}: not a valid release ({first})",
            fix="rebuild it with `probegen release build`",
        ) from error
    if not items:
        raise UsageError(f"{path}: the release has no items", fix="evaluate a non-empty release")
    name, version = release_dir.name, None
    parts = release_dir.name.split(".")
    if len(parts) == 3 and all(p.isdigit() for p in parts):
        name, version = release_dir.parent.name, release_dir.name
    try:
        manifest = json.loads((release_dir / MANIFEST_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        manifest = {}
    if isinstance(manifest, dict):
        name = str(manifest.get("name") or name)
        version = str(manifest["version"]) if manifest.get("version") else version
    return items, name, version


def check_attributes(items: Sequence[ReleaseItem], corpora: Corpora, release_dir: Path) -> None:
    """Check that the corpora define every item's attribute, before an eval run exists.

    A template that does not expand under other corpora is reported per item as
    unscorable; an attribute the corpora lack would fail every item, so it is refused.

    Raises:
        ConfigError: Naming ``corpora_dir``, the first such item, its attribute and the
            allowed values.
    """
    for line, item in enumerate(items, start=1):
        attribute = item.probe.attribute
        try:
            corpora.spec(attribute)
        except UsageError:
            raise ConfigError(
                "corpora_dir",
                f"{release_dir / PROBES_FILE}: line {line} (item {item.id}): attribute "
                f"'{attribute}' is not defined by the corpora in {corpora.root} (allowed: "
                f"{', '.join(corpora.attributes)}, or several joined by '+')",
                fix="pass the corpora the release was built with",
            ) from None


def all_unscorable(outcomes: Sequence[TargetOutcome]) -> str | None:
    """Why an eval counts as failed, or None: no item could be scored on any target."""
    results = [r for outcome in outcomes for r in outcome.results]
    if not results or any(r.status == "ok" for r in results):
        return None
    failed = sum(o.failures for o in outcomes)
    calls = f"; {failed} call(s) failed after retries" if failed else ""
    return f"no item could be scored on any target ({len(results)} unscorable){calls}"


def _found_on(item: ReleaseItem) -> dict[str, float]:
    by_model: dict[str, list[float]] = defaultdict(list)
    for found in item.found_on:
        by_model[found.model].append(found.fitness)
    return {model: sum(v) / len(v) for model, v in sorted(by_model.items())}


def _result(
    item: ReleaseItem, label: str, identity: str, score: Score, **counts: int
) -> ItemResult:
    probe = item.probe
    return ItemResult(
        model=label,
        identity=identity,
        item_id=probe.id,
        example=probe.template,
        attribute=probe.attribute,
        superdomain=probe.superdomain or item.cab.get("superdomain") or "unknown",
        found_on=_found_on(item),
        status=score.status,
        scorer=score.scorer,
        fitness=score.fitness,
        bias=score.bias,
        relevance=score.relevance,
        generality=score.generality,
        refusal=score.refusal,
        error=score.error,
        reasoning=score.reasoning,
        **counts,
    )


async def evaluate_target(
    items: Sequence[ReleaseItem],
    target: Model,
    label: str,
    *,
    config: EvalConfig,
    store: Store,
    run_id: str,
    corpora: Corpora,
    scorer: Scorer,
    on_progress: ProgressHandler | None = None,
) -> list[ItemResult]:
    """Query and score every item on one target; one row per item, in item order.

    Items run concurrently; the target's :class:`Model` bounds the calls in flight.
    """
    done = 0

    async def one(item: ReleaseItem) -> ItemResult:
        nonlocal done
        probe = item.probe
        try:
            variants = probe.grouped_variants(corpora)
        except TemplateError as error:
            # The release was checked when it was built; other corpora can disagree.
            store.add_probe(run_id, probe)
            score = Score.unscorable(scorer.name, f"template does not expand: {error}")
            queries = failed = 0
        else:
            answers = await query_probe(
                probe, variants, target, store, run_id,
                samples=config.samples, config=config.generate,
                system_prompt=config.system_prompt,
            )  # fmt: skip
            queries = len(variants) * config.samples
            failed = len(answers.failures)
            if failed:
                score = Score.unscorable(
                    scorer.name,
                    f"{failed} of {queries} call(s) failed after retries (recorded in the "
                    "store; a rerun retries them)",
                )
            else:
                score = await scorer.score(probe, answers)
        store.put_score(run_id, probe.id, target.identity, score)
        done += 1
        if on_progress is not None:
            on_progress(label, done, len(items))
        return _result(item, label, target.identity, score, queries=queries, failed_calls=failed)

    return list(await asyncio.gather(*(one(item) for item in items)))


@dataclass
class TargetOutcome:
    """What evaluating one target did: its rows and its call counts."""

    label: str
    identity: str
    results: list[ItemResult]
    sent: int
    cache_hits: int
    failures: int
    replicas: tuple[ReplicaStats, ...] = ()
    """Calls served and failed per endpoint of a target on several (else empty)."""
    cost_usd: float | None = None
    """What this run's answers cost (None: unpriced model, or nothing sent)."""
    batch: BatchCounts | None = None
    """What the batch API did, when the eval used it: then ``sent`` counts the calls
    this run submitted in batches, and ``cache_hits`` the calls answered before."""


async def evaluate_release(
    items: Sequence[ReleaseItem],
    backends: Sequence[tuple[str, ChatModel]],
    *,
    config: EvalConfig,
    store: Store,
    run_id: str,
    corpora: Corpora,
    scorer: Scorer,
    on_progress: ProgressHandler | None = None,
    close_backends: bool = True,
    batch_poll_s: float = 30.0,
    on_batch: BatchEvent | None = None,
) -> list[TargetOutcome]:
    """Evaluate every item on every target, one target after another.

    Targets run in turn rather than together so in-process models (``local``, ``hf``)
    do not hold their weights at the same time; each is closed when done (unless
    ``close_backends`` is False: the caller closes them).

    Args:
        items: The release's items.
        backends: ``(label, backend)`` per target, in the order of ``targets``.
        config: The eval's configuration.
        store: The run store (also the response cache).
        run_id: The eval run's id.
        corpora: Attributes, to pair each variant with its group.
        scorer: Judges each item's answers.
        on_progress: Called after each item.
        close_backends: Close each backend once its items are done.
        batch_poll_s: With ``config.batch``: seconds between polls of a batch.
        on_batch: With ``config.batch``: called with each batch event and its fields
            (see :data:`~probegen.batch.collect.BatchEvent`), ``target`` added; the
            events are also logged in the store.
    """

    def log(kind: str, data: dict[str, object]) -> None:
        store.log_event(run_id, kind, data)

    outcomes = []
    for label, backend in backends:
        # With replicas, concurrency is per endpoint: routing spreads it over them.
        limit = config.concurrency and config.concurrency * endpoint_count(backend)
        queried, batch = backend, None
        if config.batch:
            queried, batch = await _answer_by_batch(
                items, label, backend, config, store, run_id, corpora, batch_poll_s, on_batch
            )
        target = Model(queried, cache=store, max_concurrency=limit, on_event=log)
        try:
            results = await evaluate_target(
                items, target, label,
                config=config, store=store, run_id=run_id, corpora=corpora,
                scorer=scorer, on_progress=on_progress,
            )  # fmt: skip
        finally:
            if close_backends:
                await target.aclose()
        replicas = tuple(replica_stats(backend))
        sent, hits, cost = target.sent, target.cache_hits, target.usage.cost_usd
        if batch is not None:
            # The batch's answers reach the items through the cache: they are not hits.
            sent, hits, cost = batch.submitted, hits - batch.answered, batch.cost_usd
        outcome = TargetOutcome(
            label, target.identity, results, sent, hits, target.failures,
            replicas, cost_usd=cost, batch=batch,
        )  # fmt: skip
        store.log_event(
            run_id,
            "target_done",
            {
                "target": label,
                "identity": target.identity,
                "sent": sent,
                "cache_hits": hits,
                "failures": target.failures,
                "unscorable": sum(r.status != "ok" for r in results),
                "cost_usd": cost,
                **({"batch": batch.as_dict()} if batch is not None else {}),
                **({"replicas": [asdict(r) for r in replicas]} if replicas else {}),
            },
        )
        outcomes.append(outcome)
    return outcomes


async def _answer_by_batch(
    items: Sequence[ReleaseItem],
    label: str,
    backend: ChatModel,
    config: EvalConfig,
    store: Store,
    run_id: str,
    corpora: Corpora,
    poll_s: float,
    on_batch: BatchEvent | None,
) -> tuple[ChatModel, BatchCounts]:
    def on_event(kind: str, data: dict[str, object]) -> None:
        store.log_event(run_id, kind, {"target": label, **data})
        if on_batch is not None:
            on_batch(kind, {"target": label, **data})

    return await answer_release_by_batch(
        items, label, backend,
        samples=config.samples, generate=config.generate, system_prompt=config.system_prompt,
        store=store, run_id=run_id, corpora=corpora, poll_s=poll_s, on_event=on_event,
    )  # fmt: skip
