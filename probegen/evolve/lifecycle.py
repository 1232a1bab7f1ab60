"""The life of one evolve run, from parts to a finished row in the store.

:func:`build_parts` builds (and so validates) everything a run needs before the store is
touched, so a bad spec, key, operator, seeds file or embedder fails with one line and
leaves no run behind. :func:`execute` then owns the run: it creates (or reopens) the run
row, searches and concludes, writes ``runs/<run-id>/``, stores the elites that review and
release read, marks the run ``finished``, ``failed`` or ``interrupted`` whatever stops it,
and closes every model it built. :mod:`probegen.evolve.api` (``probegen.evolve``) and the
CLI both go through here, so a run started from a script is the same as one from the CLI.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

from probegen.batch.base import require_batch_api
from probegen.batch.gather import BatchGatherer
from probegen.corpora import Corpora
from probegen.elite import RunElite
from probegen.embedding_cache import EmbeddingCache
from probegen.embeddings import Embedder, TextEmbedder
from probegen.errors import ConfigError, RunInterrupted
from probegen.evolve.conclude import Conclusion
from probegen.evolve.config import EvolveConfig
from probegen.evolve.families import answer_families, cluster_elites
from probegen.evolve.outputs import write_outputs
from probegen.evolve.run import (
    Evolution,
    GenerationReport,
    ProgressHandler,
    decision_settings,
    load_seeds,
    run_failure,
    search_emitters,
    use_images,
)
from probegen.index import EmbeddingIndex
from probegen.models.base import ChatModel
from probegen.models.managed import Model
from probegen.models.registry import resolve_model
from probegen.models.replicas import ReplicaStats, replica_stats
from probegen.mutation import Mutator, load_mutators
from probegen.probe import Probe
from probegen.run_lifecycle import recorded_run
from probegen.scoring import Scorer, judge_model_spec, make_scorer
from probegen.search.archive import Archive
from probegen.store import EliteRecord, Store

__all__ = [
    "EvolveResult",
    "Parts",
    "PluginObjects",
    "RunInterrupted",
    "build_parts",
    "execute",
    "make_evolution",
    "publish_outputs",
]


@dataclass(frozen=True, repr=False)
class EvolveResult:
    """What an evolve run left: the same elites and findings that ``runs/<run-id>/``,
    ``probegen review`` and ``probegen release`` see.

    Attributes:
        run_id: The run's id in the store (what :func:`probegen.resume` takes).
        run_dir: ``runs/<run-id>/``: ``config.json``, ``elites.jsonl``, ``summary.md``.
        status: ``finished``, or ``failed`` when the run scored none of its probes
            (every target call failed, or the judge never answered).
        elites: The final archive as stored, best first.
        findings: Probe ids of the findings (elites or not), most significant first.
        probes: Every probe the run made, by id (an elite's or finding's question).
        conclusion: Effects, q-values and replications of every tested probe.
        calls_sent: Target calls sent to the model (not answered from the cache).
        cache_hits: Target calls answered from the store's response cache.
        failure: Why the run failed, or None.
        config: The run's configuration.
        replicas: Calls served and failed per endpoint, when the target has several
            (see :mod:`probegen.models.replicas`); empty otherwise.
    """

    run_id: str
    run_dir: Path
    status: Literal["finished", "failed"]
    elites: tuple[EliteRecord, ...]
    findings: tuple[str, ...]
    probes: Mapping[str, Probe]
    conclusion: Conclusion
    calls_sent: int
    cache_hits: int
    failure: str | None
    config: EvolveConfig
    replicas: tuple[ReplicaStats, ...] = ()

    def __repr__(self) -> str:
        failure = f", failure={self.failure!r}" if self.failure else ""
        return (
            f"EvolveResult(run_id={self.run_id!r}, status={self.status!r}, "
            f"elites={len(self.elites)}, findings={len(self.findings)}, "
            f"calls_sent={self.calls_sent}, cache_hits={self.cache_hits}{failure})"
        )

    def probe(self, elite: EliteRecord | str) -> Probe:
        """The probe of an elite (or of a probe id, e.g. a finding's)."""
        return self.probes[elite if isinstance(elite, str) else elite.probe_id]


@dataclass(frozen=True)
class PluginObjects:
    """Plugins passed to a run as objects instead of named in its configuration.

    Attributes:
        mutators: The operators, objects or names, in place of ``config.mutators``.
        scorer: The scorer, in place of the one ``config.judge`` names.
        archive: The archive, in place of the selection's own.
        embedder: The embedder, in place of the one ``config.embedder`` names.
    """

    mutators: tuple[Mutator | str, ...] | None = None
    scorer: Scorer | None = None
    archive: Archive | None = None
    embedder: TextEmbedder | None = None


@dataclass
class Parts:
    """Everything a run needs, built (and so validated) before the store is touched.

    Attributes:
        target: The model under test.
        helper: The mutation helper, if any.
        judge: The judge model of a ``judge:`` scorer, if any.
        index: The embedding index (dedup and novelty).
        seeds: The seed probes of the run's attribute.
        owned: The backends built here from specs: the run closes them at its end
            (objects the caller passed are the caller's to close).
        mutators: The run's operators, loaded and checked.
        scorer: A scorer object passed to the run, or None to build ``config.judge``'s.
        archive: An archive object passed to the run, or None for the selection's.
    """

    target: ChatModel
    helper: ChatModel | None
    judge: ChatModel | None
    index: EmbeddingIndex
    seeds: list[Probe]
    owned: list[ChatModel] = field(default_factory=list)
    mutators: dict[str, Mutator] | None = None
    scorer: Scorer | None = None
    archive: Archive | None = None


def build_parts(
    config: EvolveConfig,
    corpora: Corpora,
    given: Mapping[str, ChatModel] | None = None,
    *,
    run_root: Path | None = None,
    plugins: PluginObjects | None = None,
) -> Parts:
    """Build a run's models, operators, index and seeds from ``config``.

    Args:
        config: The run's configuration.
        corpora: Attributes, taxonomy and seeds.
        given: Backends passed as objects, by config field (``target``, ``judge``,
            ``mutator_model``); their specs in ``config`` are not resolved.
        run_root: The run directory, whose embedding cache the run uses (when
            ``config.embedding_cache``); None for no cache.
        plugins: Operators, scorer, archive or embedder passed as objects; their
            entries in ``config`` (``python:...`` records) are not resolved.

    Raises:
        ProbegenError: Anything the run could not start with, as one line.
    """
    given = given or {}
    plugins = plugins or PluginObjects()
    owned: list[ChatModel] = []
    timeout = config.timeout_s

    def model(name: str, spec: str, base_url: str | tuple[str, ...] | None) -> ChatModel:
        if name in given:
            return given[name]
        url_field = "mutator_base_url" if name == "mutator_model" else f"{name}_base_url"
        backend = resolve_model(spec, base_url=base_url, timeout_s=timeout, url_field=url_field)
        owned.append(backend)
        return backend

    try:
        target = model("target", config.target, config.target_base_url)
        if config.batch:
            require_batch_api(config.target, target)
        helper = (
            model("mutator_model", config.mutator_model, config.mutator_base_url)
            if config.mutator_model
            else None
        )
        mutators = load_mutators(
            config.mutators if plugins.mutators is None else plugins.mutators,
            helper_available=helper is not None,
            images_available=use_images(config.images, target),
        )
        search_emitters(config, mutators)  # an emitter must be able to use the operators
        judge = None
        if plugins.scorer is None:
            judge_spec = judge_model_spec(config.judge)
            judge = model("judge", judge_spec, config.judge_base_url) if judge_spec else None
            make_scorer(config.judge, base_url=config.judge_base_url, backend=judge)  # validates
        decision_settings(config, target)  # measure "decision" needs log-probabilities
        seeds = load_seeds(config, corpora)
        cache = (
            EmbeddingCache.in_run_dir(run_root)
            if run_root is not None and config.embedding_cache
            else None
        )
        embedder = plugins.embedder or Embedder(
            config.embedder, cache=cache, dtype=config.embedding_dtype
        )
        embedder.dimension  # noqa: B018  # load the model now, not once the run exists
    except BaseException:
        asyncio.run(_close(owned))
        raise
    index = EmbeddingIndex(embedder, threshold=config.dedup_threshold)
    return Parts(
        target,
        helper,
        judge,
        index,
        seeds,
        owned,
        mutators=mutators,
        scorer=plugins.scorer,
        archive=plugins.archive,
    )


async def _close(backends: Sequence[ChatModel]) -> None:
    for backend in backends:
        await backend.aclose()


def execute(
    config: EvolveConfig,
    corpora: Corpora,
    run_root: Path,
    parts: Parts,
    *,
    run_id: str = "",
    top: int = 5,
    on_progress: ProgressHandler | None = None,
) -> EvolveResult:
    """Run (or, with ``run_id``, resume) a search to its end and record it.

    Progress events go to ``on_progress(kind, fields)``: ``run_start`` (``run_id``,
    ``target``, ``attribute``, ``judge``, ``resumed``), the search's ``generation_start``,
    ``probe_done`` and ``generation_end``, then ``concluding`` (``replicate``).

    Raises:
        RunInterrupted: Ctrl-C; the run is marked ``interrupted``.
        BaseException: Whatever else stopped the run, after marking it ``failed``.
    """
    emit = on_progress or (lambda kind, fields: None)
    with Store.in_run_dir(run_root) as store:
        resumed = bool(run_id)
        if not run_id:
            run_id = store.create_run(
                "evolve", {"command": "evolve", "evolve": config.model_dump(mode="json")}
            )
        with recorded_run(store, run_id):
            start: dict[str, object] = {
                "run_id": run_id,
                "target": config.target,
                "attribute": config.attribute,
                "judge": config.judge,
                "resumed": resumed,
            }
            emit("run_start", start)
            result = _search(config, corpora, run_root, store, run_id, parts, top, emit)
        store.finish_run(run_id, result.status, reason=result.failure)
    return result


def make_evolution(
    config: EvolveConfig,
    *,
    store: Store,
    run_id: str,
    corpora: Corpora,
    target: ChatModel | Model,
    index: EmbeddingIndex,
    helper: ChatModel | Model | None = None,
    judge: ChatModel | None = None,
    scorer: Scorer | None = None,
    seeds: Sequence[Probe] | None = None,
    on_progress: ProgressHandler | None = None,
    mutators: Mapping[str, Mutator] | None = None,
    archive: Archive | None = None,
) -> Evolution:
    """Wire the search of ``config`` over the run ``run_id`` in ``store``.

    The one place an :class:`Evolution` is assembled: the product's runs, the benchmarks
    and the tests all come through here, so what they measure is what ships.

    Args:
        config: The run's configuration.
        store: The run store: the response cache of the target, helper and judge, and
            where the run's probes, scores and events go.
        run_id: The run (already created in ``store``).
        corpora: Attributes, taxonomy and seeds.
        target: The model under test; a bare backend is wrapped in a
            :class:`~probegen.models.managed.Model` caching in ``store`` and logging its
            retries and failures to the run, a ``Model`` is used as given.
        index: The embedding index (dedup and novelty); a ``stats`` scorer shares its
            embedder, so the model loads once.
        helper: The mutation helper, wrapped like ``target``; None for none.
        judge: The judge model of a ``judge:`` scorer, already built (else resolved from
            ``config.judge``).
        scorer: A scorer to use instead of the one ``config.judge`` names (tests that
            inject a special index keep the real stats scorer this way).
        seeds: The seed probes; None loads them from ``config`` and ``corpora``.
        on_progress: Receives the search's progress events.
        mutators: The operators, already loaded; None loads ``config.mutators``.
        archive: An archive to search into instead of the selection's own.

    Raises:
        ProbegenError: The scorer or the operators cannot be built, as one line.
    """

    def log(kind: str, data: dict[str, object]) -> None:
        store.log_event(run_id, kind, data)

    def managed(backend: ChatModel | Model) -> Model:
        # A Model carries the caller's cache and retry choices: keep them.
        return backend if isinstance(backend, Model) else Model(backend, cache=store, on_event=log)

    def batched(backend: ChatModel | Model) -> Model:
        # The target's calls go as provider batches, gathered per generation and rung.
        if isinstance(backend, Model):
            raise ConfigError(
                "batch", "the target is a Model, whose calls are its own",
                fix="pass the backend itself (e.g. get_model(...)), not a Model",
            )  # fmt: skip
        gatherer = BatchGatherer(
            backend, require_batch_api(backend.spec, backend), store, run_id,
            poll_s=config.batch_poll_s, on_event=log,
        )  # fmt: skip
        return Model(backend, cache=store, on_event=log, gather=gatherer)

    if scorer is None:
        scorer = make_scorer(
            config.judge,
            base_url=config.judge_base_url,
            cache=store,
            timeout_s=config.timeout_s,
            repeats=config.judge_repeats,
            backend=judge,
            embedder=index.embedder,
        )
    return Evolution(
        config,
        store=store,
        run_id=run_id,
        corpora=corpora,
        target=batched(target) if config.batch else managed(target),
        scorer=scorer,
        index=index,
        helper=managed(helper) if helper is not None else None,
        on_progress=on_progress,
        seeds=seeds,
        mutators=mutators,
        archive=archive,
    )


def publish_outputs(
    evolution: Evolution,
    reports: Sequence[GenerationReport],
    conclusion: Conclusion | None,
    out_dir: Path,
    *,
    store: Store,
    corpora: Corpora,
    top: int = 5,
) -> list[RunElite]:
    """What a finished search leaves behind: ``out_dir``'s files (``elites.jsonl``,
    ``summary.md``, ``config.json``) and the archive's elites in the store, with their
    question families and findings, which the review queue reads."""
    elites = evolution.archive.elites()
    records = write_outputs(
        out_dir,
        config=evolution.config,
        run_id=evolution.run_id,
        store=store,
        corpora=corpora,
        target=evolution.target.identity,
        elites=elites,
        reports=reports,
        operator_stats=evolution.scheduler.operator_stats,
        emitter_stats=evolution.scheduler.emitter_stats,
        surrogate=evolution.surrogate_report(),
        clusters=cluster_elites(elites, evolution.scheduler.index),
        answer_families=answer_families(
            elites,
            store=store,
            run_id=evolution.run_id,
            target=evolution.target.identity,
            corpora=corpora,
            embedder=evolution.scheduler.index.embedder,
        ),
        top=top,
        conclusion=conclusion,
    )
    # The store's row is the file record's store-facing subset (probegen.elite).
    stored = [record.store_record() for record in records]
    store.replace_elites(evolution.run_id, evolution.target.identity, stored)
    return records


def _search(
    config: EvolveConfig,
    corpora: Corpora,
    run_root: Path,
    store: Store,
    run_id: str,
    parts: Parts,
    top: int,
    emit: ProgressHandler,
) -> EvolveResult:
    """Search, conclude, write the outputs and the stored elites."""
    evolution = make_evolution(
        config,
        store=store,
        run_id=run_id,
        corpora=corpora,
        target=parts.target,
        index=parts.index,
        helper=parts.helper,
        judge=parts.judge,
        scorer=parts.scorer,
        seeds=parts.seeds,
        on_progress=emit,
        mutators=parts.mutators,
        archive=parts.archive,
    )
    target = evolution.target

    async def search_and_conclude() -> tuple[list[GenerationReport], Conclusion]:
        # One event loop for the search, the conclusion and the closing: a backend's
        # HTTP client belongs to the loop it was first used in.
        try:
            reports = await evolution.run()
            emit("concluding", {"replicate": config.replicate})
            return reports, await evolution.conclude()
        finally:
            await _close(parts.owned)

    reports, conclusion = asyncio.run(search_and_conclude())
    publish_outputs(
        evolution, reports, conclusion, run_root / run_id, store=store, corpora=corpora, top=top
    )
    calls: dict[str, object] = {"sent": target.sent, "cache_hits": target.cache_hits}
    replicas = tuple(replica_stats(parts.target))
    if replicas:
        calls["replicas"] = [asdict(replica) for replica in replicas]
    store.log_event(run_id, "calls", calls)
    failure = run_failure(reports, target)
    return EvolveResult(
        run_id=run_id,
        run_dir=run_root / run_id,
        status="failed" if failure else "finished",
        elites=tuple(store.elites(run_id)),
        findings=tuple(conclusion.findings),
        probes={probe.id: probe for probe in store.probes(run_id)},
        conclusion=conclusion,
        calls_sent=target.sent,
        cache_hits=target.cache_hits,
        failure=failure,
        config=config,
        replicas=replicas,
    )
