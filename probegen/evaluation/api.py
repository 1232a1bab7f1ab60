"""``probegen.evaluate(...)``: score a benchmark release on models, as a stored run.

``probegen eval`` is a thin layer over :func:`evaluate`. Everything is checked before the
store is touched (the release, its attributes, every target and the judge), so a bad
argument leaves no run behind. The run (kind ``eval``) then queries and scores every item
on every target in turn, writes the leaderboard files, and is marked ``finished``
(``failed`` when no item could be scored on any target, ``interrupted`` on Ctrl-C);
every model built from a spec is closed, models passed in stay the caller's.

Errors name the arguments (a :class:`~probegen.errors.ConfigError` carries the field),
never CLI flags.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import ValidationError

from probegen.api_common import ModelLike, OwnedModels, in_own_thread_if_a_loop_runs, sampling
from probegen.batch import batch_api_of
from probegen.batch.gather import BatchGatherer
from probegen.corpora import Corpora, load_corpora
from probegen.errors import ConfigError
from probegen.evaluation.batch import check_batch_targets
from probegen.evaluation.report import EvalReport, build_report, write_outputs
from probegen.evaluation.results import ItemResult
from probegen.evaluation.run import (
    EvalConfig,
    TargetOutcome,
    all_unscorable,
    check_attributes,
    evaluate_release,
    load_release,
)
from probegen.models.base import ChatModel
from probegen.models.registry import BaseUrls, takes_base_url, url_list
from probegen.release.model import ReleaseItem, resolve_release_dir
from probegen.run_dir import checked_run_dir, writable_dir
from probegen.run_lifecycle import recorded_run
from probegen.scoring import judge_model_spec, make_scorer
from probegen.scoring.base import Scorer
from probegen.store import Store

__all__ = ["EvalProgress", "EvalResult", "evaluate"]

EvalProgress = Callable[[str, dict[str, object]], None]
"""``on_progress(kind, fields)``: ``run_start`` (``run_id``, ``release``, ``version``,
``items``, ``targets``, ``judge``), then ``item_done`` (``target``, ``done``, ``total``)
after each item of each target; with ``batch``, also ``batch_submitted`` and
``batch_resumed`` (``target``, ``batch``, ``items``) and ``batch_ended`` (``target``,
``batch``, ``status``, ``answered``, ``failed``, ``expired``)."""


@dataclass(frozen=True, repr=False)
class EvalResult:
    """What an eval left: the leaderboard and every item's row, as written to
    ``out_dir`` and stored in the run.

    Attributes:
        run_id: The ``eval`` run's id in the store.
        out_dir: Where ``leaderboard.md``, ``leaderboard.csv``, ``results.jsonl``,
            ``report.html`` and ``eval.json`` are.
        status: ``finished``, or ``failed`` when no item could be scored on any target.
        report: The leaderboard (``report.summaries``, best CAB score first) and rows.
        outcomes: Per target, in the order given: its rows and call counts.
        failure: Why the run failed, or None.
        config: The eval's configuration, as stored.
    """

    run_id: str
    out_dir: Path
    status: Literal["finished", "failed"]
    report: EvalReport
    outcomes: tuple[TargetOutcome, ...]
    failure: str | None
    config: EvalConfig

    def __repr__(self) -> str:
        failure = f", failure={self.failure!r}" if self.failure else ""
        return (
            f"EvalResult(run_id={self.run_id!r}, status={self.status!r}, "
            f"items={self.report.items}, targets={len(self.outcomes)}, "
            f"failed_calls={self.failed_calls}{failure})"
        )

    @property
    def results(self) -> list[ItemResult]:
        """One row per item and target."""
        return self.report.results

    @property
    def failed_calls(self) -> int:
        """Calls that still failed after their retries (their items are unscorable)."""
        return sum(outcome.failures for outcome in self.outcomes)


def evaluate(
    release: str | Path | None = None,
    targets: ModelLike | Sequence[ModelLike] | None = None,
    *,
    config: EvalConfig | None = None,
    judge: ModelLike = "stats",
    judge_base_url: str | None = None,
    base_url: BaseUrls = None,
    samples: int = 3,
    temperature: float = 0.7,
    max_tokens: int = 256,
    seed: int = 0,
    system_prompt: str | None = None,
    concurrency: int | None = None,
    bootstrap: int = 1000,
    timeout_s: float | None = None,
    run_dir: str | Path | None = None,
    releases_dir: str | Path | None = None,
    out: str | Path | None = None,
    corpora_dir: str | Path | None = None,
    on_progress: EvalProgress | None = None,
    batch: bool = False,
    batch_poll_s: float = 30.0,
) -> EvalResult:
    """Score every item of a release on every target; return the leaderboard.

    Example::

        import probegen

        result = probegen.evaluate("gender-bias@1.0.0", ["sim", my_pipeline])
        for row in result.report.summaries:  # best CAB score first
            print(row.model, row.overall.mean)

    Args:
        release: A release directory, ``NAME@X.Y.Z``, or ``NAME`` for its newest version
            (default: the ``config``'s).
        targets: One model or several: a spec, a
            :class:`~probegen.models.base.ChatModel`, or ``async def f(messages, config)
            -> str`` (named by its spec, ``python:module:qualname``); default: the
            ``config``'s specs (a function target must be passed again).
        config: An :class:`~probegen.evaluation.run.EvalConfig` (e.g. a stored eval's
            ``result.config``) instead of the keyword arguments that define an eval
            (``judge``, ``judge_base_url``, ``base_url``, ``samples``, ``temperature``,
            ``max_tokens``, ``seed``, ``system_prompt``, ``concurrency``, ``bootstrap``,
            ``batch``): give one or the other.
        judge: ``stats`` (offline), ``judge:SPEC``, or a judge model object or function.
        judge_base_url: Endpoint of a ``judge:`` spec's model.
        base_url: Endpoint of every target spec that takes one (``openai:``,
            ``anthropic:``, or a preset of them), or a list of endpoints serving the same
            model: each such target then spreads its calls over these replicas.
        samples: Answers per variant.
        temperature: Sampling temperature of the targets.
        max_tokens: Most tokens per answer.
        seed: Base seed of the samples and the bootstrap.
        system_prompt: A system message for the targets.
        concurrency: Calls in flight per target, per endpoint for a target on several
            (default: each backend's own bound).
        bootstrap: Resamples for the 95% intervals (0: none).
        timeout_s: Per-attempt timeout of every call.
        run_dir: Where the store goes (default ``$PROBEGEN_RUN_DIR`` or ``./runs``).
        releases_dir: Where ``NAME@X.Y.Z`` is looked up (default
            ``$PROBEGEN_RELEASES_DIR`` or ``./releases``).
        out: Where the files go (default ``<run_dir>/<run-id>``).
        corpora_dir: The corpora (default ``$PROBEGEN_CORPORA`` or the shipped ones).
        on_progress: See :data:`EvalProgress`.
        batch: Send the targets' calls through the providers' batch APIs (OpenAI
            Batch, Anthropic Message Batches: half the price, answered within 24 hours).
            Each batch's id is recorded in the store, so running the same eval again
            after it was killed polls the batch instead of submitting it again. Only
            ``openai:`` and ``anthropic:`` targets have one. A ``judge:`` model that has
            one judges by batches too (one batch per target and verdict round).
        batch_poll_s: Seconds between polls of an unfinished batch.

    Returns:
        The finished (or failed) run; see :class:`EvalResult`.

    Raises:
        ConfigError: An argument is missing or invalid (names it).
        ProbegenError: A release, spec, key or weights the eval cannot start with, as one
            line; no run is left behind.
        RunInterrupted: Ctrl-C; the run is marked ``interrupted`` (a rerun answers the
            finished calls from the cache).
    """
    if config is not None:
        defining = {
            "judge": judge, "judge_base_url": judge_base_url, "base_url": base_url,
            "samples": samples, "temperature": temperature, "max_tokens": max_tokens,
            "seed": seed, "system_prompt": system_prompt, "concurrency": concurrency,
            "bootstrap": bootstrap, "batch": batch,
        }  # fmt: skip
        _refuse_both(defining)
        return evaluate(
            config.release if release is None else release,
            list(config.targets) if targets is None else targets,
            judge=config.judge,
            judge_base_url=config.judge_base_url,
            base_url=config.base_url,
            samples=config.samples,
            temperature=config.generate.temperature,
            max_tokens=config.generate.max_tokens or _DEFAULTS["max_tokens"],
            seed=config.seed,
            system_prompt=config.system_prompt,
            concurrency=config.concurrency,
            bootstrap=config.bootstrap,
            batch=config.batch,
            timeout_s=timeout_s,
            run_dir=run_dir,
            releases_dir=releases_dir,
            out=out,
            corpora_dir=corpora_dir,
            on_progress=on_progress,
            batch_poll_s=batch_poll_s,
        )
    if release is None:
        raise ConfigError("release", "is required", fix="name a release, or pass a config")
    if targets is None:
        raise ConfigError("targets", "needs at least one target", fix="e.g. targets=['local']")
    corpora = load_corpora(Path(corpora_dir) if corpora_dir else None)
    release_dir = resolve_release_dir(str(release), Path(releases_dir) if releases_dir else None)
    items, name, version = load_release(release_dir)
    check_attributes(items, corpora, release_dir)
    given = [targets] if isinstance(targets, str) or not isinstance(targets, Sequence) else targets
    if not given:
        raise ConfigError("targets", "needs at least one target", fix="e.g. targets=['local']")
    generate = sampling(temperature, max_tokens, seed)
    root = checked_run_dir(Path(run_dir) if run_dir else None)
    out_dir = writable_dir(Path(out), "out") if out is not None else None
    models = OwnedModels(timeout_s)
    try:
        urls = url_list(base_url)
        backends = _targets(models, list(given), urls)
        judge_spec, judge_backend = _judge(models, judge, judge_base_url)
        make_scorer(judge_spec, base_url=judge_base_url, backend=judge_backend)  # validates
        config = _config(
            release=str(release_dir),
            release_name=name,
            release_version=version,
            targets=tuple(label for label, _ in backends),
            judge=judge_spec,
            judge_base_url=judge_base_url,
            base_url=None if not urls else urls[0] if len(urls) == 1 else tuple(urls),
            samples=samples,
            generate=generate,
            system_prompt=system_prompt,
            concurrency=concurrency,
            bootstrap=bootstrap,
            seed=seed,
            batch=batch,
        )
        if batch:
            check_batch_targets(backends)
        if not batch_poll_s > 0:
            raise ConfigError("batch_poll_s", "must be positive", value=batch_poll_s)
    except BaseException:
        models.close()
        raise
    run = _EvalRun(config, items, corpora, backends, models, judge_backend, timeout_s, batch_poll_s)
    return in_own_thread_if_a_loop_runs(lambda: run.execute(root, out_dir, on_progress))


# The keyword arguments' defaults, read from the signature so they are written once.
_DEFAULTS = {
    name: parameter.default
    for name, parameter in inspect.signature(evaluate).parameters.items()
    if parameter.default is not inspect.Parameter.empty
}


def _refuse_both(defining: Mapping[str, object]) -> None:
    """A config defines the eval: an argument that says otherwise is a mistake."""
    given = sorted(name for name, value in defining.items() if value != _DEFAULTS[name])
    if given:
        raise ConfigError(
            "config",
            f"given together with {', '.join(f'`{name}`' for name in given)}",
            fix="give a config or those arguments, not both (change a config with model_copy)",
        )


def _targets(
    models: OwnedModels, given: list[ModelLike], urls: list[str]
) -> list[tuple[str, ChatModel]]:
    """``(label, backend)`` per target: a spec is labelled as given, an object or a
    function by its spec. ``urls`` go to every spec that takes an endpoint."""
    backends: list[tuple[str, ChatModel]] = []
    if urls and not any(isinstance(v, str) and takes_base_url(v) for v in given):
        raise ConfigError(
            "base_url",
            "applies to openai: and anthropic: targets, and no target is one",
            fix="drop it, or name the server's model as a target, e.g. openai:MODEL",
        )
    for value in given:
        takes = isinstance(value, str) and takes_base_url(value)
        url = urls if takes else None
        backend = models.get(value, "targets", base_url=url, url_field="base_url")
        label = value if isinstance(value, str) else backend.spec
        if any(label == seen for seen, _ in backends):
            raise ConfigError("targets", f"{label} is given more than once", fix="name it once")
        backends.append((label, backend))
    return backends


def _judge(
    models: OwnedModels, judge: ModelLike, base_url: str | None
) -> tuple[str, ChatModel | None]:
    """The scorer spec the run stores, and the judge model (None for ``stats``)."""
    if not isinstance(judge, str):
        backend = models.get(judge, "judge", base_url=base_url)
        return f"judge:{backend.spec}", backend
    model_spec = judge_model_spec(judge)
    if model_spec is None:
        return judge, None
    return judge, models.get(model_spec, "judge", base_url=base_url)


def _config(**fields: object) -> EvalConfig:
    try:
        return EvalConfig.model_validate(fields)
    except ValidationError as error:
        first = error.errors()[0]
        name = str(first["loc"][0]) if first["loc"] else "config"
        raise ConfigError(name, str(first["msg"]), value=first.get("input")) from None


class _EvalRun:
    """One eval from its checked parts to a finished row in the store (a class only to
    keep the parts together)."""

    def __init__(
        self,
        config: EvalConfig,
        items: Sequence[ReleaseItem],
        corpora: Corpora,
        backends: Sequence[tuple[str, ChatModel]],
        models: OwnedModels,
        judge: ChatModel | None,
        timeout_s: float | None,
        batch_poll_s: float = 30.0,
    ) -> None:
        self.config = config
        self.items = items
        self.corpora = corpora
        self.backends = backends
        self.models = models
        self.judge = judge
        self.timeout_s = timeout_s
        self.batch_poll_s = batch_poll_s

    def execute(
        self, root: Path, out_dir: Path | None, on_progress: EvalProgress | None
    ) -> EvalResult:
        emit = on_progress or (lambda kind, fields: None)
        config = self.config
        try:
            with Store.in_run_dir(root) as store:
                run_id = store.create_run(
                    "eval", {"command": "eval", "eval": config.model_dump(mode="json")}
                )
                start: dict[str, object] = {
                    "run_id": run_id,
                    "release": config.release_name,
                    "version": config.release_version,
                    "items": len(self.items),
                    "targets": config.targets,
                    "judge": config.judge,
                }
                emit("run_start", start)
                interrupted = (
                    f"run {run_id} interrupted; finished calls are cached, so a rerun "
                    "resends nothing"
                )
                with recorded_run(store, run_id, interrupted):
                    scorer = make_scorer(
                        config.judge,
                        base_url=config.judge_base_url,
                        cache=store,
                        timeout_s=self.timeout_s,
                        backend=self.judge,
                        gather=self._judge_batches(store, run_id, emit),
                    )
                    outcomes = asyncio.run(self._evaluate(store, run_id, scorer, emit))
                    report = build_report(run_id, config, len(self.items), outcomes)
                    written = out_dir or root / run_id
                    write_outputs(written, report)
                store.log_event(run_id, "outputs", {"dir": str(written)})
                failure = all_unscorable(outcomes)
                status: Literal["finished", "failed"] = "failed" if failure else "finished"
                store.finish_run(run_id, status, reason=failure)
        finally:
            self.models.close()  # if the run stopped before its models were closed
        return EvalResult(run_id, written, status, report, tuple(outcomes), failure, config)

    def _judge_batches(self, store: Store, run_id: str, emit: EvalProgress) -> BatchGatherer | None:
        """With ``batch``, a judge that has a batch API judges by batches too: a target's
        items are scored together, so their verdicts gather into one batch per round."""
        api = batch_api_of(self.judge) if self.config.batch and self.judge else None
        if self.judge is None or api is None:
            return None

        def event(kind: str, fields: dict[str, object]) -> None:
            store.log_event(run_id, kind, {"judge": self.config.judge, **fields})
            emit(kind, {"judge": self.config.judge, **fields})

        return BatchGatherer(
            self.judge, api, store, run_id, poll_s=self.batch_poll_s, on_event=event
        )

    async def _evaluate(
        self, store: Store, run_id: str, scorer: Scorer, emit: EvalProgress
    ) -> list[TargetOutcome]:
        def progress(label: str, done: int, total: int) -> None:
            emit("item_done", {"target": label, "done": done, "total": total})

        outcomes: list[TargetOutcome] = []
        try:
            for label, backend in self.backends:
                outcomes += await evaluate_release(
                    self.items, [(label, backend)],
                    config=self.config, store=store, run_id=run_id, corpora=self.corpora,
                    scorer=scorer, on_progress=progress, close_backends=False,
                    batch_poll_s=self.batch_poll_s, on_batch=emit,
                )  # fmt: skip
                await self.models.aclose_one(backend)  # its weights go before the next's
        finally:
            await self.models.aclose()  # in this loop: a client belongs to its loop
        return outcomes
