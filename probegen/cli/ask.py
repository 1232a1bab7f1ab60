"""``probegen ask``: put one counterfactual question to a model and compare the answers."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table

from probegen.cli.app import EXIT_RUN_FAILED, app, console, err_console
from probegen.cli.common import (
    BaseUrlOption,
    CorporaOption,
    MaxTokensOption,
    RunDirOption,
    SeedOption,
    TemperatureOption,
    TimeoutOption,
    generate_config,
    open_corpora,
    writable_run_dir,
)
from probegen.corpora import GroupedVariant
from probegen.errors import ProbegenError
from probegen.models.base import ChatModel, GenerateConfig
from probegen.models.managed import Model
from probegen.models.registry import resolve_model
from probegen.probe import Probe, Provenance
from probegen.runner import ProbeAnswers, query_probe
from probegen.store import Store


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
    base_url: str | None = BaseUrlOption,
    timeout: float | None = TimeoutOption,
    run_dir: Path | None = RunDirOption,
    corpora_dir: Path | None = CorporaOption,
    as_json: bool = typer.Option(False, "--json", help="Print the answers as JSON."),
) -> None:
    """Ask every variant of TEMPLATE, SAMPLES times each, and show the answers per group.

    Example: probegen ask local --attr gender "Should I hire {{James/Emily}} as a nurse?"
    """
    # Validate everything before anything is written: a bad attribute, template or model
    # spec must leave no run behind.
    corpora = open_corpora(corpora_dir)
    variants = corpora.variant_groups(template, attr)
    probe = Probe(
        template=template,
        attribute=attr,
        framing=corpora.infer_framing(template, attr),
        provenance=Provenance(operator="cli"),
    )
    backend = resolve_model(spec, base_url=base_url, timeout_s=timeout)
    config = generate_config(temperature, max_tokens, seed)
    run_config = {
        "command": "ask",
        "target": spec,
        "base_url": base_url,
        "attribute": attr,
        "template": template,
        "samples": samples,
        "system": system,
        "generate": config.model_dump(mode="json"),
    }
    store = Store.in_run_dir(writable_run_dir(run_dir))
    with store:
        run_id = store.create_run("ask", run_config)
        try:
            result = asyncio.run(
                _ask(backend, probe, variants, store, run_id, samples, config, system)
            )
        except KeyboardInterrupt:
            store.finish_run(run_id, "interrupted")
            raise
        except BaseException as error:
            reason = str(error) if isinstance(error, ProbegenError) else repr(error)
            store.finish_run(run_id, "failed", reason=reason)
            raise
        failures = len(result.failures)
        store.finish_run(
            run_id,
            "failed" if failures else "finished",
            reason=f"{failures} call(s) failed after retries" if failures else None,
        )
    if as_json:
        console.print_json(json.dumps(_as_json(run_id, result)))
    else:
        _print_side_by_side(result)
        console.print(f"run {run_id} stored in {store.path}", style="dim")
    if result.failures:
        err_console.print(
            f"error: {len(result.failures)} call(s) failed after retries; recorded in run {run_id}",
            markup=False,
        )
        raise typer.Exit(EXIT_RUN_FAILED)


async def _ask(
    backend: ChatModel,
    probe: Probe,
    variants: list[GroupedVariant],
    store: Store,
    run_id: str,
    samples: int,
    config: GenerateConfig,
    system: str | None,
) -> ProbeAnswers:
    model = Model(
        backend, cache=store, on_event=lambda kind, data: store.log_event(run_id, kind, data)
    )
    try:
        return await query_probe(
            probe, variants, model, store, run_id,
            samples=samples, config=config, system_prompt=system,
        )  # fmt: skip
    finally:
        await model.aclose()


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
