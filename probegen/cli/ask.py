"""``probegen ask``: put one counterfactual question to a model and compare the answers."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table

from probegen.answers import ProbeAnswers
from probegen.asking import ask
from probegen.cli.app import EXIT_RUN_FAILED, app, console, err_console
from probegen.cli.common import (
    BaseUrlOption,
    CorporaOption,
    MaxTokensOption,
    RunDirOption,
    SeedOption,
    TemperatureOption,
    TimeoutOption,
    base_urls,
    flags_for_fields,
    writable_run_dir,
)


@app.command("ask")
def ask_command(
    spec: str = typer.Argument(
        ..., help="Model: local, openai:MODEL, anthropic:MODEL, hf:REPO, or a preset."
    ),
    template: str = typer.Argument(..., help='Template, e.g. "Should I hire {{James/Emily}}?"'),
    attr: str = typer.Option(..., "--attr", help="Attribute, e.g. gender or gender+race."),
    samples: int = typer.Option(3, "--samples", min=1, help="Answers per variant."),
    system: str | None = typer.Option(None, "--system", help="System prompt for every variant."),
    temperature: float = TemperatureOption,
    max_tokens: int = MaxTokensOption,
    seed: int = SeedOption,
    base_url: list[str] | None = BaseUrlOption,
    timeout: float | None = TimeoutOption,
    run_dir: Path | None = RunDirOption,
    corpora_dir: Path | None = CorporaOption,
    as_json: bool = typer.Option(False, "--json", help="Print the answers as JSON."),
) -> None:
    """Ask every variant of TEMPLATE, SAMPLES times each, and show the answers per group.

    Example: probegen ask local --attr gender "Should I hire {{James/Emily}} as a nurse?"
    """
    run_root = writable_run_dir(run_dir)
    with flags_for_fields("ask", _FLAG_OF):
        result = ask(
            spec,
            template,
            attribute=attr,
            samples=samples,
            system_prompt=system,
            temperature=temperature,
            max_tokens=max_tokens,
            seed=seed,
            base_url=base_urls(base_url),
            timeout_s=timeout,
            run_dir=run_root,
            corpora_dir=corpora_dir,
        )
    if as_json:
        console.print_json(json.dumps(_as_json(result.run_id, result.answers)))
    else:
        _print_side_by_side(result.answers)
        console.print(f"run {result.run_id} stored in {result.store_path}", style="dim")
    if result.failure:
        err_console.print(
            f"error: {result.failure}; recorded in run {result.run_id}",
            markup=False,
        )
        raise typer.Exit(EXIT_RUN_FAILED)


# The flag behind each argument of probegen.ask whose name does not say it.
_FLAG_OF = {
    "attribute": "--attr",
    "target": "SPEC",
    "system_prompt": "--system",
    "timeout_s": "--timeout",
    "run_dir": "--run-dir",
    "corpora_dir": "--corpora",
}


def _print_side_by_side(result: ProbeAnswers) -> None:
    table = Table(title=escape(result.probe.template), show_lines=True, expand=True)
    table.add_column("#", justify="right", style="dim", no_wrap=True)
    for variant in result.variants:
        table.add_column(escape(f"{variant.key} ({variant.group})"), ratio=1)
    samples = max(len(answers) for answers in result.answers.values())
    for index in range(samples):
        cells = []
        for variant in result.variants:
            answer = result.answers[variant.key][index]
            # Model text is data, not markup: "[b]" in an answer must print as typed.
            cells.append(
                escape(answer.text)
                if answer.text is not None
                else escape(f"[failed] {answer.error}")
            )
        table.add_row(str(index + 1), *cells)
    console.print(table)


def _as_json(run_id: str, result: ProbeAnswers) -> dict[str, object]:
    return {
        "run_id": run_id,
        "probe": result.probe.model_dump(mode="json"),
        "model": result.model,
        "variants": [
            {
                "key": v.key,
                "group": v.group,
                "text": v.text,
                "answers": [
                    {"sample": a.sample_index, "text": a.text, "error": a.error, "cached": a.cached}
                    for a in result.answers[v.key]
                ],
            }
            for v in result.variants
        ],
    }
