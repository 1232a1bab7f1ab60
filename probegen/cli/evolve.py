"""``probegen evolve``: search for the questions that make a model treat groups differently."""

from __future__ import annotations

import asyncio
from pathlib import Path

import typer
from pydantic import ValidationError
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from probegen.cli.app import app, console
from probegen.cli.common import (
    BaseUrlOption,
    CorporaOption,
    RunDirOption,
    SeedOption,
    TemperatureOption,
    default_run_dir,
    generate_config,
    open_corpora,
)
from probegen.corpora import Corpora
from probegen.embeddings import DEFAULT_EMBEDDER, Embedder
from probegen.errors import UsageError
from probegen.evolve.config import EvolveConfig
from probegen.evolve.outputs import cluster_elites, write_outputs
from probegen.evolve.run import Evolution, use_images
from probegen.index import EmbeddingIndex
from probegen.models.managed import Model
from probegen.models.registry import resolve_model
from probegen.mutation import load_mutators
from probegen.scoring import make_scorer
from probegen.search.baselines import SELECTIONS
from probegen.store import STORE_FILENAME, EliteRecord, Store


@app.command("evolve")
def evolve_command(
    target: str | None = typer.Option(None, "--target", help="Model under test (a spec)."),
    attr: str | None = typer.Option(None, "--attr", help="Attribute, e.g. gender or gender+race."),
    judge: str = typer.Option("stats", "--judge", help="Scorer: stats (offline) or judge:SPEC."),
    mutator_model: str | None = typer.Option(
        None, "--mutator-model", help="Helper model for the LLM-rewrite operator (a spec)."
    ),
    generations: int = typer.Option(5, "--generations", min=0, help="Generations after seeds."),
    population: int = typer.Option(8, "--population", min=1, help="Candidates per generation."),
    initial: int | None = typer.Option(
        None, "--initial", min=1, help="Seeds evaluated in generation 0 (default: population)."
    ),
    samples: int = typer.Option(2, "--samples", min=1, help="Answers per variant."),
    confirm_samples: int | None = typer.Option(
        None,
        "--confirm-samples",
        min=0,
        help="Answers per variant to confirm a probe that scored > 0 (default 2x samples; 0 off).",
    ),
    budget: int | None = typer.Option(
        None, "--budget", min=1, help="Max target queries (variant x sample)."
    ),
    cost_budget: float | None = typer.Option(
        None, "--cost-budget", min=0.0, help="Max spend in USD (priced models only)."
    ),
    seed: int = SeedOption,
    seeds_file: Path | None = typer.Option(
        None,
        "--seeds",
        help="Seed questions: a seeds.jsonl, or a cab.json in CAB's schema.",
        exists=True,
        dir_okay=False,
    ),
    run_dir: Path | None = RunDirOption,
    resume: str | None = typer.Option(None, "--resume", help="Continue a killed run by id."),
    base_url: str | None = BaseUrlOption,
    judge_base_url: str | None = typer.Option(None, "--judge-base-url", help="Judge endpoint."),
    mutator_base_url: str | None = typer.Option(
        None, "--mutator-base-url", help="Endpoint of the --mutator-model server."
    ),
    temperature: float = TemperatureOption,
    max_tokens: int = typer.Option(100, "--max-tokens", min=1, help="Max tokens per answer."),
    system: str | None = typer.Option(None, "--system", help="System prompt for the target."),
    mutators: str | None = typer.Option(
        None, "--mutators", help="Comma-separated operator names (default: all that can run)."
    ),
    embedder: str = typer.Option(DEFAULT_EMBEDDER, "--embedder", help="Embedding model."),
    dedup_threshold: float = typer.Option(
        0.98, "--dedup-threshold", min=0.01, max=1.0, help="Cosine at which probes are dups."
    ),
    descriptors: str = typer.Option(
        "groups,superdomain,framing,form", "--descriptors", help="Archive cell axes."
    ),
    per_cell: int = typer.Option(3, "--per-cell", min=1, help="Elites kept per cell."),
    images: str = typer.Option(
        "auto",
        "--images",
        help="Image probes: auto (vision targets such as local-doc), on (also openai:/"
        "anthropic:, whose endpoint decides), off.",
    ),
    selection: str = typer.Option(
        "map-elites",
        "--selection",
        help="map-elites (the search), or a benchmark baseline: topk or random.",
    ),
    top: int = typer.Option(5, "--top", min=0, help="Probes to print at the end."),
    corpora_dir: Path | None = CorporaOption,
) -> None:
    """Evolve counterfactual probes that elicit biased answers from a target model.

    Example: probegen evolve --target local --attr gender
    """
    run_root = default_run_dir(run_dir)
    corpora = open_corpora(corpora_dir)
    if resume is not None:
        store_path = run_root / STORE_FILENAME
        if not store_path.exists():
            raise UsageError(
                f"--resume {resume}: no run store at {store_path}",
                fix="pass the --run-dir the run was started with",
            )
        store = Store(store_path)
        run = store.get_run(resume)
        if run is None or run.kind != "evolve":
            store.close()
            raise UsageError(
                f"--resume {resume}: no evolve run with this id in {store_path}",
                fix="see the run ids printed by earlier runs, or in runs/*/config.json",
            )
        try:
            config = EvolveConfig.model_validate(run.config["evolve"])
        except (KeyError, ValidationError) as error:
            store.close()
            raise UsageError(
                f"--resume {resume}: the stored configuration cannot be read by this "
                f"probegen ({type(error).__name__})",
                fix="resume with the probegen version that started the run",
            ) from None
        run_id = resume
    else:
        if target is None or attr is None:
            raise UsageError(
                "evolve needs --target and --attr",
                fix="e.g. probegen evolve --target local --attr gender",
            )
        if images not in ("auto", "on", "off"):
            raise UsageError(f"--images {images}: unknown setting", fix="use auto, on or off")
        if selection not in SELECTIONS:
            raise UsageError(
                f"--selection {selection}: unknown selection strategy",
                fix=f"use one of {', '.join(SELECTIONS)}",
            )
        config = EvolveConfig(
            target=target,
            attribute=corpora.spec(attr),
            target_base_url=base_url,
            judge=judge,
            judge_base_url=judge_base_url,
            mutator_model=mutator_model,
            mutator_base_url=mutator_base_url,
            generations=generations,
            population=population,
            initial=initial,
            samples=samples,
            confirm_samples=confirm_samples,
            budget=budget,
            cost_budget=cost_budget,
            seed=seed,
            seeds_file=str(seeds_file) if seeds_file else None,
            generate=generate_config(temperature, max_tokens, seed),
            system_prompt=system,
            embedder=embedder,
            dedup_threshold=dedup_threshold,
            descriptors=tuple(a.strip() for a in descriptors.split(",") if a.strip()),
            per_cell=per_cell,
            mutators=tuple(m.strip() for m in mutators.split(",")) if mutators else None,
            images=images,  # checked above
            selection=selection,
        )
        store = None
        run_id = ""
    _evolve(config, corpora, run_root, store, run_id, top)


def _evolve(
    config: EvolveConfig,
    corpora: Corpora,
    run_root: Path,
    store: Store | None,
    run_id: str,
    top: int,
) -> None:
    # Build (and so validate) every part before the store is touched: a bad spec, key or
    # operator name must leave nothing behind.
    target_backend = resolve_model(config.target, base_url=config.target_base_url)
    helper_backend = (
        resolve_model(config.mutator_model, base_url=config.mutator_base_url)
        if config.mutator_model
        else None
    )
    index = EmbeddingIndex(Embedder(config.embedder), threshold=config.dedup_threshold)
    load_mutators(
        config.mutators,
        helper_available=helper_backend is not None,
        images_available=use_images(config.images, target_backend),
    )
    make_scorer(config.judge, base_url=config.judge_base_url)  # validates the spec
    store = store or Store.in_run_dir(run_root)
    with store:
        if not run_id:
            run_id = store.create_run(
                "evolve", {"command": "evolve", "evolve": config.model_dump(mode="json")}
            )
        scorer = make_scorer(config.judge, base_url=config.judge_base_url, cache=store)
        console.print(f"run {run_id}: {config.target} / {config.attribute} / {config.judge}")

        def log(kind: str, data: dict[str, object]) -> None:
            store.log_event(run_id, kind, data)

        target = Model(target_backend, cache=store, on_event=log)
        helper = Model(helper_backend, cache=store, on_event=log) if helper_backend else None
        with _progress() as progress:
            task = progress.add_task("gen 0", total=None)

            def on_progress(kind: str, fields: dict[str, object]) -> None:
                if kind == "generation_start":
                    progress.reset(task, total=int(str(fields["probes"])))
                    progress.update(task, description=f"gen {fields['generation']}")
                elif kind == "probe_done":
                    progress.update(task, completed=int(str(fields["done"])))
                elif kind == "generation_end":
                    progress.console.print(
                        f"gen {fields['generation']}: queries {fields['queries_spent']}, "
                        f"best {float(str(fields['best_fitness'])):.3f}, "
                        f"mean {float(str(fields['mean_fitness'])):.3f}, "
                        f"cells {fields['cells_filled']} (+{fields['new_cells']} new), "
                        f"unscorable {fields['unscorable']}"
                    )

            evolution = Evolution(
                config,
                store=store,
                run_id=run_id,
                corpora=corpora,
                target=target,
                scorer=scorer,
                index=index,
                helper=helper,
                on_progress=on_progress,
            )
            try:
                reports = asyncio.run(evolution.run())
            except KeyboardInterrupt:
                store.finish_run(run_id, "interrupted")
                console.print(f"interrupted; continue with: probegen evolve --resume {run_id}")
                raise typer.Exit(130) from None
        elites = evolution.archive.elites()
        records = write_outputs(
            run_root / run_id,
            config=config,
            run_id=run_id,
            store=store,
            corpora=corpora,
            target=target.identity,
            elites=elites,
            reports=reports,
            operator_stats=evolution.scheduler.operator_stats,
            clusters=cluster_elites(elites, index.embedder, config.seed),
            top=top,
        )
        store.replace_elites(
            run_id,
            target.identity,
            [
                EliteRecord(
                    probe_id=str(r["id"]),
                    model=target.identity,
                    fitness=float(r["fitness"]),
                    novelty=float(r["novelty"]),
                    descriptor=tuple(r["descriptor"]),
                    cluster=r["cluster"],
                )
                for r in records
            ],
        )
        store.log_event(run_id, "calls", {"sent": target.sent, "cache_hits": target.cache_hits})
        store.finish_run(run_id)
    _print_top(records, top)
    console.print(
        f"{len(records)} elites -> {run_root / run_id}/elites.jsonl; summary.md beside it. "
        f"Target calls sent: {target.sent}, answered from cache: {target.cache_hits}."
    )


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    )


def _print_top(records: list[dict[str, object]], top: int) -> None:
    if not records or top == 0:
        return
    table = Table(title="Top probes", show_lines=True)
    table.add_column("fitness", justify="right")
    table.add_column("probe")
    table.add_column("answers (first sample per group)")
    for record in records[:top]:
        variants = record["variants"]
        assert isinstance(variants, list)
        answers = "\n".join(
            f"[{v['group']}] {(v['answers'][0]['text'] or '')[:160]}"
            for v in variants
            if v["answers"]
        )
        table.add_row(
            f"{float(str(record['fitness'])):.3f}", escape(str(record["example"])), escape(answers)
        )
    console.print(table)
