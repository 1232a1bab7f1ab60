"""``probegen eval``: score a benchmark release on one or more models and rank them."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
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
    base_urls,
    check_base_url_option,
    config_defaults,
    flags_for_fields,
    replica_lines,
    writable_dir,
    writable_run_dir,
)
from probegen.errors import RunInterrupted
from probegen.evaluation.api import EvalProgress, evaluate
from probegen.evaluation.report import EvalReport, leaderboard_header, leaderboard_rows
from probegen.evaluation.run import EvalConfig

_DEFAULT = config_defaults(EvalConfig)  # every flag's default is the config's


@app.command("eval")
def eval_command(
    release: str = typer.Argument(
        ..., help="Release: a directory, NAME@X.Y.Z, or NAME for its newest version."
    ),
    targets: list[str] | None = typer.Option(
        None, "--target", help="Model under test (a spec); repeat for several."
    ),
    judge: str = typer.Option(
        _DEFAULT["judge"], "--judge", help="Scorer: stats (offline) or judge:SPEC."
    ),
    judge_base_url: str | None = typer.Option(
        None, "--judge-base-url", help="Judge endpoint.", callback=check_base_url_option
    ),
    base_url: list[str] | None = typer.Option(
        None,
        "--base-url",
        help="Endpoint of the openai:/anthropic: targets; repeat it for replicas serving the "
        "same model (calls spread over them; one that fails is backed off).",
        callback=check_base_url_option,
    ),
    samples: int = typer.Option(
        _DEFAULT["samples"], "--samples", min=1, help="Answers per variant."
    ),
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
        None,
        "--concurrency",
        min=1,
        help="Calls in flight per target, per endpoint with replicas (default: the backend's).",
    ),
    seed: int = SeedOption,
    bootstrap: int = typer.Option(
        _DEFAULT["bootstrap"],
        "--bootstrap",
        min=0,
        help="Bootstrap resamples for the 95% intervals (0: none).",
    ),
    temperature: float = TemperatureOption,
    max_tokens: int = MaxTokensOption,
    system: str | None = typer.Option(None, "--system", help="System prompt for the targets."),
    timeout: float | None = TimeoutOption,
    corpora_dir: Path | None = CorporaOption,
    batch: bool = typer.Option(
        _DEFAULT["batch"],
        "--batch",
        help="Send the targets' calls through the providers' batch APIs (openai:, "
        "anthropic:): half price, answered within 24 h; a killed run resumes by polling.",
    ),
    batch_poll_s: float = typer.Option(
        30.0, "--batch-poll-s", min=0.001, help="Seconds between polls of a batch."
    ),
) -> None:
    """Score every item of a release on every target and print a leaderboard.

    Example: probegen eval gender-bias@1.0.0 --target local --target sim --judge stats
    """
    run_root = writable_run_dir(run_dir)
    if out is not None:
        writable_dir(out, "--out")
    with flags_for_fields("eval", _FLAG_OF), _display() as show:
        result = evaluate(
            release,
            list(targets or []),
            judge=judge,
            judge_base_url=judge_base_url,
            base_url=base_urls(base_url),
            samples=samples,
            temperature=temperature,
            max_tokens=max_tokens,
            seed=seed,
            system_prompt=system,
            concurrency=concurrency,
            bootstrap=bootstrap,
            timeout_s=timeout,
            run_dir=run_root,
            releases_dir=releases_dir,
            out=out,
            corpora_dir=corpora_dir,
            on_progress=show,
            batch=batch,
            batch_poll_s=batch_poll_s,
        )
    _print_leaderboard(result.report)
    for outcome in result.outcomes:
        unscorable = sum(r.status != "ok" for r in outcome.results)
        console.print(
            f"{outcome.label}: calls sent {outcome.sent}, answered from cache "
            f"{outcome.cache_hits}, failed {outcome.failures}; unscorable items {unscorable}",
            markup=False,
        )
        for line in replica_lines(outcome.replicas):
            console.print(f"  {line}", markup=False)
        counts = outcome.batch
        if counts is not None:
            console.print(
                f"  batch: {counts.submitted} submitted, {counts.resumed} resumed; "
                f"{counts.answered} answered, {counts.failed} failed, {counts.expired} "
                f"expired; cost {_usd(counts.cost_usd)} (as calls "
                f"{_usd(counts.list_cost_usd)}, saved {_usd(counts.saved_usd)})",
                markup=False,
            )
    console.print(
        "leaderboard.md, leaderboard.csv, results.jsonl, report.html, eval.json -> "
        f"{result.out_dir}",
        markup=False,
    )
    run_id = result.run_id
    if result.failure:
        err_console.print(
            f"error: run {run_id} failed: {result.failure}; recorded in the store (rerun the "
            "same command to retry failed calls)",
            markup=False,
        )
        raise typer.Exit(EXIT_RUN_FAILED)
    if result.failed_calls:
        err_console.print(
            f"error: {result.failed_calls} call(s) failed after retries; recorded in run "
            f"{run_id}, and their items are reported unscorable (rerun the same command to "
            "retry them)",
            markup=False,
        )
        raise typer.Exit(EXIT_RUN_FAILED)


# The flag behind each argument of probegen.evaluate whose name does not say it.
_FLAG_OF = {
    "targets": "--target",
    "system_prompt": "--system",
    "timeout_s": "--timeout",
    "corpora_dir": "--corpora",
    "release": "RELEASE",
}


def _usd(value: float | None) -> str:
    return "unknown" if value is None else f"${value:.4f}"


_BATCH_EVENTS = {
    "batch_submitted": "{who}: batch {batch} submitted ({items} calls); waiting for it",
    "batch_resumed": "{who}: batch {batch} was submitted before ({items} calls); polling it",
    "batch_ended": "{who}: batch {batch} {status}: {answered} answered, {failed} failed, "
    "{expired} expired",
}


@contextmanager
def _display() -> Iterator[EvalProgress]:
    """A progress bar per target, fed by the run's progress events; Ctrl-C ends the
    command with the line that says a rerun resends nothing."""
    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    )
    tasks: dict[str, TaskID] = {}

    def show(kind: str, fields: dict[str, object]) -> None:
        if kind == "run_start":
            items = int(str(fields["items"]))
            release = f"{fields['release']} {fields['version']}" if fields["version"] else ""
            targets = fields["targets"]
            assert isinstance(targets, tuple)
            console.print(
                f"run {fields['run_id']}: {release or fields['release']} ({items} "
                f"item{'s' * (items != 1)}) on {', '.join(targets)} / {fields['judge']}",
                markup=False,
            )
            progress.start()
        elif kind in _BATCH_EVENTS:
            # A target's batches name the target; the judge's, the judge (judge:SPEC).
            who = fields.get("target") or fields.get("judge")
            line = _BATCH_EVENTS[kind].format(who=who, **fields)
            progress.console.print(line, markup=False)
        elif kind == "item_done":
            label = str(fields["target"])
            if label not in tasks:
                tasks[label] = progress.add_task(escape(label), total=int(str(fields["total"])))
            progress.update(tasks[label], completed=int(str(fields["done"])))

    try:
        yield show
    except RunInterrupted:
        progress.stop()
        console.print("interrupted; finished calls are cached, so a rerun resends nothing")
        raise typer.Exit(130) from None
    finally:
        progress.stop()


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
