"""``probegen eval``: score a benchmark release on one or more models and rank them."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

import typer
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from probegen.cli.app import EXIT_RUN_FAILED, app, console, err_console
from probegen.cli.common import (
    CorporaOption,
    MaxTokensOption,
    RunDirOption,
    SeedOption,
    TemperatureOption,
    TimeoutOption,
    check_base_url_option,
    generate_config,
    open_corpora,
    writable_dir,
    writable_run_dir,
)
from probegen.corpora import Corpora
from probegen.errors import ProbegenError, UsageError
from probegen.evaluation.report import (
    EvalReport,
    build_report,
    leaderboard_header,
    leaderboard_rows,
    write_outputs,
)
from probegen.evaluation.run import (
    EvalConfig,
    TargetOutcome,
    all_unscorable,
    check_attributes,
    evaluate_release,
    load_release,
)
from probegen.models.base import ChatModel
from probegen.models.registry import resolve_model
from probegen.release.model import ReleaseItem, resolve_release_dir
from probegen.scoring import make_scorer
from probegen.scoring.base import Scorer
from probegen.store import Store


@app.command("eval")
def eval_command(
    release: str = typer.Argument(
        ..., help="Release: a directory, NAME@X.Y.Z, or NAME for its newest version."
    ),
    targets: list[str] | None = typer.Option(
        None, "--target", help="Model under test (a spec); repeat for several."
    ),
    judge: str = typer.Option("stats", "--judge", help="Scorer: stats (offline) or judge:SPEC."),
    judge_base_url: str | None = typer.Option(
        None, "--judge-base-url", help="Judge endpoint.", callback=check_base_url_option
    ),
    samples: int = typer.Option(3, "--samples", min=1, help="Answers per variant."),
    run_dir: Path | None = RunDirOption,
    releases_dir: Path | None = typer.Option(
        None,
        "--releases-dir",
        file_okay=False,
        help="Where NAME@X.Y.Z is looked up (default: $PROBEGEN_RELEASES_DIR or ./releases).",
    ),
    out: Path | None = typer.Option(
        None, "--out", file_okay=False, help="Output directory (default: <run-dir>/<run-id>)."
    ),
    concurrency: int | None = typer.Option(
        None, "--concurrency", min=1, help="Calls in flight per target (default: the backend's)."
    ),
    seed: int = SeedOption,
    bootstrap: int = typer.Option(
        1000, "--bootstrap", min=0, help="Bootstrap resamples for the 95% intervals (0: none)."
    ),
    temperature: float = TemperatureOption,
    max_tokens: int = MaxTokensOption,
    system: str | None = typer.Option(None, "--system", help="System prompt for the targets."),
    timeout: float | None = TimeoutOption,
    corpora_dir: Path | None = CorporaOption,
) -> None:
    """Score every item of a release on every target and print a leaderboard.

    Example: probegen eval gender-bias@1.0.0 --target local --target sim --judge stats
    """
    # Validate everything before the store is touched: a bad release, spec or judge
    # must leave nothing behind.
    corpora = open_corpora(corpora_dir)
    release_dir = resolve_release_dir(release, releases_dir)
    items, name, version = load_release(release_dir)
    check_attributes(items, corpora, release_dir)
    targets = list(targets or [])
    if not targets:
        raise UsageError("eval needs at least one --target", fix="e.g. --target local")
    repeated = sorted({t for t in targets if targets.count(t) > 1})
    if repeated:
        raise UsageError(f"--target {repeated[0]} is given more than once", fix="name it once")
    backends = [(t, resolve_model(t, timeout_s=timeout)) for t in targets]
    make_scorer(judge, base_url=judge_base_url, timeout_s=timeout)  # validates the spec
    config = EvalConfig(
        release=str(release_dir),
        release_name=name,
        release_version=version,
        targets=tuple(targets),
        judge=judge,
        judge_base_url=judge_base_url,
        samples=samples,
        generate=generate_config(temperature, max_tokens, seed),
        system_prompt=system,
        concurrency=concurrency,
        bootstrap=bootstrap,
        seed=seed,
    )
    run_root = writable_run_dir(run_dir)
    if out is not None:
        writable_dir(out, "--out")
    with Store.in_run_dir(run_root) as store:
        run_id = store.create_run(
            "eval", {"command": "eval", "eval": config.model_dump(mode="json")}
        )
        scorer = make_scorer(judge, base_url=judge_base_url, cache=store, timeout_s=timeout)
        release_label = f"{name} {version}" if version else name
        console.print(
            f"run {run_id}: {release_label} ({len(items)} item{'s' * (len(items) != 1)}) on "
            f"{', '.join(targets)} / {judge}",
            markup=False,
        )
        try:
            outcomes = _evaluate(items, backends, config, store, run_id, corpora, scorer)
            report = build_report(run_id, config, len(items), outcomes)
            out_dir = out or run_root / run_id
            write_outputs(out_dir, report)
        except KeyboardInterrupt:
            store.finish_run(run_id, "interrupted")
            console.print("interrupted; finished calls are cached, so a rerun resends nothing")
            raise typer.Exit(130) from None
        except BaseException as error:
            # A run that exists must never be left "running" by what stopped it.
            reason = str(error) if isinstance(error, ProbegenError) else repr(error)
            store.finish_run(run_id, "failed", reason=reason)
            raise
        store.log_event(run_id, "outputs", {"dir": str(out_dir)})
        failure = all_unscorable(outcomes)
        store.finish_run(run_id, "failed" if failure else "finished", reason=failure)
    _print_leaderboard(report)
    for outcome in outcomes:
        unscorable = sum(r.status != "ok" for r in outcome.results)
        console.print(
            f"{outcome.label}: calls sent {outcome.sent}, answered from cache "
            f"{outcome.cache_hits}, failed {outcome.failures}; unscorable items {unscorable}",
            markup=False,
        )
    console.print(
        f"leaderboard.md, leaderboard.csv, results.jsonl, report.html, eval.json -> {out_dir}",
        markup=False,
    )
    failed = sum(o.failures for o in outcomes)
    if failure:
        err_console.print(
            f"error: run {run_id} failed: {failure}; recorded in the store (rerun the same "
            "command to retry failed calls)",
            markup=False,
        )
        raise typer.Exit(EXIT_RUN_FAILED)
    if failed:
        err_console.print(
            f"error: {failed} call(s) failed after retries; recorded in run {run_id}, and "
            "their items are reported unscorable (rerun the same command to retry them)",
            markup=False,
        )
        raise typer.Exit(EXIT_RUN_FAILED)


def _evaluate(
    items: Sequence[ReleaseItem],
    backends: Sequence[tuple[str, ChatModel]],
    config: EvalConfig,
    store: Store,
    run_id: str,
    corpora: Corpora,
    scorer: Scorer,
) -> list[TargetOutcome]:
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as progress:
        tasks: dict[str, TaskID] = {}

        def on_progress(label: str, done: int, total: int) -> None:
            if label not in tasks:
                tasks[label] = progress.add_task(escape(label), total=total)
            progress.update(tasks[label], completed=done)

        async def run() -> list[TargetOutcome]:
            try:
                return await evaluate_release(
                    items, backends,
                    config=config, store=store, run_id=run_id, corpora=corpora,
                    scorer=scorer, on_progress=on_progress,
                )  # fmt: skip
            finally:
                close = getattr(scorer, "aclose", None)
                if close is not None:
                    await close()

        return asyncio.run(run())


def _print_leaderboard(report: EvalReport) -> None:
    table = Table(title=escape(f"CAB leaderboard ({report.config.release_name})"))
    for index, header in enumerate(leaderboard_header(report, compact=True)):
        if index == 1:  # the model's name in full, folded if it must be
            table.add_column(escape(header), overflow="fold")
        else:
            table.add_column(escape(header), justify="right")
    for row in leaderboard_rows(report, compact=True):
        table.add_row(*(escape(cell) for cell in row))
    console.print(table)
