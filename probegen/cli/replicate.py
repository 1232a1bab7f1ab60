"""``probegen replicate``: measure a run's findings, or a release's probes, again."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table

from probegen.cli.app import EXIT_RUN_FAILED, app, console, err_console
from probegen.cli.common import (
    BaseUrlOption,
    CorporaOption,
    RunDirOption,
    SeedOption,
    TemperatureOption,
    TimeoutOption,
    base_urls,
    flags_for_fields,
    generate_config,
    open_corpora,
    writable_run_dir,
)
from probegen.corpora import Corpora
from probegen.decision.measure import DecisionSettings
from probegen.embeddings import Embedder
from probegen.errors import ProbegenError, UsageError
from probegen.evaluation.run import load_release
from probegen.measure import ProbeMeasurer
from probegen.models.base import ChatModel, supports_logprobs
from probegen.models.managed import Model
from probegen.models.registry import resolve_model
from probegen.release.model import resolve_release_dir
from probegen.replicate import ReplicationOutcome, Subject, replicate_probes, replication_rate
from probegen.scoring import make_scorer
from probegen.scoring.stats import StatsScorer
from probegen.store import Store


@app.command("replicate")
def replicate_command(
    source: str = typer.Argument(
        ..., help="A run id (its findings), or a release: a directory, NAME@X.Y.Z or NAME."
    ),
    target: str = typer.Option(..., "--target", help="Model to replicate on (a spec)."),
    base_url: list[str] | None = BaseUrlOption,
    judge: str = typer.Option("stats", "--judge", help="Scorer: stats (offline) or judge:SPEC."),
    samples: int = typer.Option(2, "--samples", min=1, help="Answers per variant (sampled)."),
    everything: bool = typer.Option(
        False, "--all", help="Replicate every elite of the run, not only its findings."
    ),
    measure: str = typer.Option(
        "auto",
        "--measure",
        help="auto (decision where the target gives log-probabilities), or sampled.",
    ),
    decision_rounds: int = typer.Option(
        20, "--decision-rounds", min=2, help="Rounds of other names (decision probes)."
    ),
    releases_dir: Path | None = typer.Option(
        None, "--releases-dir", file_okay=False, help="Where NAME@X.Y.Z is looked up."
    ),
    run_dir: Path | None = RunDirOption,
    temperature: float = TemperatureOption,
    max_tokens: int = typer.Option(100, "--max-tokens", min=1, help="Max tokens per answer."),
    seed: int = SeedOption,
    timeout: float | None = TimeoutOption,
    corpora_dir: Path | None = CorporaOption,
) -> None:
    """Measure findings again on unseen names, wordings and samples, on any model.

    Example: probegen replicate 20261201-101500-evolve-3f9a --target local
    """
    if measure not in ("auto", "sampled"):
        raise UsageError(f"--measure {measure}: unknown setting", fix="use auto or sampled")
    corpora = open_corpora(corpora_dir)
    run_root = writable_run_dir(run_dir)
    with flags_for_fields("replicate", {"timeout_s": "--timeout"}):
        backend = resolve_model(target, base_url=base_urls(base_url), timeout_s=timeout)
        make_scorer(judge, timeout_s=timeout)  # validates the spec before anything is written
    store = Store.in_run_dir(run_root)
    with store:
        subjects = _subjects(store, source, everything, releases_dir)
        if not subjects:
            console.print(f"{source}: nothing to replicate (no findings; --all takes every elite)")
            return
        run_id = store.create_run(
            "replicate",
            {"command": "replicate", "source": source, "target": target, "judge": judge,
             "samples": samples, "measure": measure, "all": everything},
        )  # fmt: skip
        try:
            outcomes, model = _run(store, run_id, subjects, backend, judge, samples, measure,
                                   decision_rounds, temperature, max_tokens, seed, timeout,
                                   corpora)  # fmt: skip
        except BaseException as error:
            reason = str(error) if isinstance(error, ProbegenError) else repr(error)
            store.finish_run(run_id, "failed", reason=reason)
            raise
        failure = (
            f"every call to {target} failed" if model.sent and model.failures >= model.sent
            else None
        )  # fmt: skip
        store.finish_run(run_id, "failed" if failure else "finished", reason=failure)
    out_dir = run_root / run_id
    _write(out_dir, outcomes)
    _print(outcomes, target)
    console.print(f"-> {out_dir / 'replication.jsonl'}", markup=False)
    if failure:
        err_console.print(f"error: run {run_id} failed: {failure}", markup=False)
        raise typer.Exit(EXIT_RUN_FAILED)


def _subjects(
    store: Store, source: str, everything: bool, releases_dir: Path | None
) -> list[Subject]:
    run = store.get_run(source)
    if run is not None:
        probes = {p.id: p for p in store.probes(source)}
        scorers = {pid: s.scorer for pid, _, s in store.scores(source) if "@" not in s.scorer}
        return [
            Subject(
                probes[e.probe_id],
                e.effect,
                scorers.get(e.probe_id, "stats"),
                f"{source} on {e.model}",
            )
            for e in store.elites(source)
            if e.probe_id in probes and (everything or e.finding)
        ]
    looks_like_run = source[:8].isdigit() and "-" in source
    try:
        release_dir = resolve_release_dir(source, releases_dir)
    except UsageError:
        if looks_like_run:
            raise UsageError(
                f"{source}: no such run in {store.path}",
                fix="pass the --run-dir the run was made in, or a release NAME@X.Y.Z",
            ) from None
        raise
    items, name, version = load_release(release_dir)
    subjects = []
    for item in items:
        found = next((f for f in item.found_on if f.effect is not None), None)
        subjects.append(
            Subject(
                item.probe,
                found.effect if found else None,
                (found.scorer or "stats") if found else "stats",
                f"{name}@{version}" + (f" ({found.model})" if found else ""),
            )
        )
    return subjects


def _run(
    store: Store,
    run_id: str,
    subjects: list[Subject],
    backend: ChatModel,
    judge: str,
    samples: int,
    measure: str,
    decision_rounds: int,
    temperature: float,
    max_tokens: int,
    seed: int,
    timeout: float | None,
    corpora: Corpora,
) -> tuple[list[ReplicationOutcome], Model]:
    def log(kind: str, data: dict[str, object]) -> None:
        store.log_event(run_id, kind, data)

    model = Model(backend, cache=store, on_event=log)
    scorer = make_scorer(judge, cache=store, timeout_s=timeout)
    decision = (
        DecisionSettings(rounds=decision_rounds)
        if measure == "auto" and supports_logprobs(backend)
        else None
    )
    measurer = ProbeMeasurer(
        target=model,
        scorer=scorer,
        tester=scorer if isinstance(scorer, StatsScorer) else StatsScorer(Embedder()),
        store=store,
        run_id=run_id,
        corpora=corpora,
        samples=samples,
        confirmation=0,
        generate=generate_config(temperature, max_tokens, seed),
        decision=decision,
    )

    async def go() -> list[ReplicationOutcome]:
        try:
            return await replicate_probes(subjects, measurer, corpora)
        finally:
            await model.aclose()

    return asyncio.run(go()), model


def _record(outcome: ReplicationOutcome) -> dict[str, object]:
    subject = outcome.subject
    return {
        "id": subject.probe.id,
        "example": subject.probe.template,
        "attribute": subject.probe.attribute,
        "source": subject.source,
        "discovery": None
        if outcome.discovery is None or outcome.discovery.effect is None
        else outcome.discovery.effect.model_dump(mode="json"),
        "replicated": outcome.replicated,
        "checks": [
            {
                "kind": check.kind,
                "holds": check.holds,
                "effect": None if check.effect is None else check.effect.model_dump(mode="json"),
                "fitness": check.score.fitness,
            }
            for check in outcome.checks
        ],
    }


def _write(out_dir: Path, outcomes: list[ReplicationOutcome]) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    tmp = out_dir / ".replication.jsonl.tmp"
    tmp.write_text(
        "".join(json.dumps(_record(o), ensure_ascii=False) + "\n" for o in outcomes),
        encoding="utf-8",
    )
    os.replace(tmp, out_dir / "replication.jsonl")


def _print(outcomes: list[ReplicationOutcome], target: str) -> None:
    rate = replication_rate(outcomes)
    title = f"Replication on {target}: " + (
        "nothing could be re-measured" if rate is None
        else f"{rate:.0%} of {sum(o.replicated is not None for o in outcomes)} replicated"
    )  # fmt: skip
    table = Table(title=escape(title), show_lines=True)
    for column in ("discovery", "re-measured", "replicated", "probe"):
        table.add_column(column)
    for outcome in outcomes:
        found = outcome.discovery.effect if outcome.discovery else None
        checks = "\n".join(
            f"{c.kind}: {c.effect.summary() if c.effect else 'no test'}" for c in outcome.checks
        )
        verdict = outcome.replicated
        table.add_row(
            escape(found.summary() if found else "-"),
            escape(checks or "-"),
            "-" if verdict is None else "yes" if verdict else "no",
            escape(outcome.subject.probe.template),
        )
    console.print(table)
