"""``probegen evolve``: search for the questions that make a model treat groups differently."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path

import typer
from pydantic import ValidationError
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from probegen.cli.app import EXIT_RUN_FAILED, app, console, err_console
from probegen.cli.common import (
    BaseUrlOption,
    CorporaOption,
    RunDirOption,
    SeedOption,
    TemperatureOption,
    TimeoutOption,
    check_base_url_option,
    generate_config,
    open_corpora,
    writable_run_dir,
)
from probegen.corpora import Corpora
from probegen.embeddings import DEFAULT_EMBEDDER, Embedder
from probegen.errors import ProbegenError, UsageError
from probegen.evolve.conclude import Conclusion
from probegen.evolve.config import EvolveConfig
from probegen.evolve.outputs import cluster_elites, write_outputs
from probegen.evolve.run import (
    Evolution,
    GenerationReport,
    decision_settings,
    load_seeds,
    run_failure,
    search_emitters,
    use_images,
)
from probegen.findings.assess import NOT_TESTED
from probegen.index import EmbeddingIndex
from probegen.models.base import ChatModel
from probegen.models.managed import Model
from probegen.models.registry import resolve_model
from probegen.mutation import load_mutators
from probegen.probe import Probe
from probegen.redaction import REDACTED, redact_config
from probegen.scoring import make_scorer
from probegen.search.baselines import SELECTIONS
from probegen.store import STORE_FILENAME, EliteRecord, Store


@app.command("evolve")
def evolve_command(
    ctx: typer.Context,
    target: str | None = typer.Option(None, "--target", help="Model under test (a spec)."),
    attr: str | None = typer.Option(None, "--attr", help="Attribute, e.g. gender or gender+race."),
    judge: str = typer.Option("stats", "--judge", help="Scorer: stats (offline) or judge:SPEC."),
    judge_repeats: int = typer.Option(
        1, "--judge-repeats", min=1, help="Judge verdicts per probe (persona orders)."
    ),
    mutator_model: str | None = typer.Option(
        None,
        "--mutator-model",
        help="Helper model for the llm_rewrite operator and the directed emitter (a spec).",
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
    judge_base_url: str | None = typer.Option(
        None, "--judge-base-url", help="Judge endpoint.", callback=check_base_url_option
    ),
    mutator_base_url: str | None = typer.Option(
        None,
        "--mutator-base-url",
        help="Endpoint of the --mutator-model server.",
        callback=check_base_url_option,
    ),
    temperature: float = TemperatureOption,
    max_tokens: int = typer.Option(100, "--max-tokens", min=1, help="Max tokens per answer."),
    system: str | None = typer.Option(None, "--system", help="System prompt for the target."),
    timeout: float | None = TimeoutOption,
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
    emitters: str | None = typer.Option(
        None,
        "--emitters",
        help="Comma-separated emitters: improve, explore, combine, directed (needs "
        "--mutator-model), operators (default: the first three, plus directed with a helper).",
    ),
    surrogate: bool | None = typer.Option(
        None,
        "--surrogate/--no-surrogate",
        help="Screen an over-generated pool with a surrogate fitness model (default: on "
        "for map-elites).",
    ),
    pool_factor: int = typer.Option(
        5, "--pool-factor", min=1, help="Candidates proposed per candidate queried (surrogate)."
    ),
    measure: str = typer.Option(
        "auto",
        "--measure",
        help="auto (yes/no probes by P(yes) per name where the target gives "
        "log-probabilities, else sampled answers), decision (yes/no probes only), sampled.",
    ),
    decision_screen: int = typer.Option(
        6, "--decision-screen", min=2, help="Rounds of names a decision probe is screened on."
    ),
    decision_rounds: int = typer.Option(
        20, "--decision-rounds", min=2, help="Rounds of fresh names to confirm and replicate."
    ),
    decision_wordings: int = typer.Option(
        1, "--decision-wordings", min=1, help="Instruction wordings per name (decision)."
    ),
    fdr: float = typer.Option(
        0.1, "--fdr", min=0.0001, max=0.9999, help="False-discovery rate of the findings."
    ),
    replicate: bool = typer.Option(
        True, "--replicate/--no-replicate", help="Re-measure findings on unseen data at the end."
    ),
    top: int = typer.Option(5, "--top", min=0, help="Probes to print at the end."),
    corpora_dir: Path | None = CorporaOption,
) -> None:
    """Evolve counterfactual probes that elicit biased answers from a target model.

    Example: probegen evolve --target local --attr gender
    """
    run_root = writable_run_dir(run_dir)
    corpora = open_corpora(corpora_dir)
    if resume is not None:
        _refuse_flags_a_resume_ignores(ctx, resume)
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
            config = EvolveConfig.model_validate(_searched_before_emitters(run.config["evolve"]))
        except (KeyError, ValidationError) as error:
            store.close()
            raise UsageError(
                f"--resume {resume}: the stored configuration cannot be read by this "
                f"probegen ({type(error).__name__})",
                fix="resume with the probegen version that started the run",
            ) from None
        try:
            config = _with_urls_passed_again(
                config,
                resume,
                {
                    "--base-url": base_url,
                    "--judge-base-url": judge_base_url,
                    "--mutator-base-url": mutator_base_url,
                },
            )
        except UsageError:
            store.close()
            raise
        if timeout is not None:
            config = config.model_copy(update={"timeout_s": timeout})
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
        config = _new_config(
            target=target,
            attribute=corpora.spec(attr),
            target_base_url=base_url,
            judge=judge,
            judge_base_url=judge_base_url,
            judge_repeats=judge_repeats,
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
            emitters=tuple(e.strip() for e in emitters.split(",")) if emitters else None,
            surrogate=surrogate,
            pool_factor=pool_factor,
            timeout_s=timeout,
            measure=measure,  # checked by the config
            decision_screen=decision_screen,
            decision_rounds=decision_rounds,
            decision_wordings=decision_wordings,
            fdr=fdr,
            replicate=replicate,
        )
        store = None
        run_id = ""
    _evolve(config, corpora, run_root, store, run_id, top)


def _searched_before_emitters(stored: object) -> object:
    """A stored configuration from before emitters and the surrogate existed: such a run
    searched with the operators emitter alone and queried every candidate, and its
    replay must do the same."""
    if isinstance(stored, dict) and "surrogate" not in stored:
        return {**stored, "emitters": ["operators"], "surrogate": False}
    return stored


# The config field each endpoint flag sets.
_URL_FIELDS = {
    "--base-url": "target_base_url",
    "--judge-base-url": "judge_base_url",
    "--mutator-base-url": "mutator_base_url",
}


def _with_urls_passed_again(
    config: EvolveConfig, run_id: str, passed: dict[str, str | None]
) -> EvolveConfig:
    """The stored ``config`` of a resumed run, with the endpoint URLs passed again.

    A URL's credentials and query-string values are stored redacted, never in clear, so
    resuming such a run needs the URL again from its flag; the flag must give the URL the
    run was started with (the same once redacted). A URL flag given to resume a run that
    stored no secret must match too, so a resume never moves a run to another server.
    """
    update: dict[str, str] = {}
    for flag, field in _URL_FIELDS.items():
        stored: str | None = getattr(config, field)
        url = passed.get(flag)
        if url is None:
            if stored is not None and REDACTED in stored:
                raise UsageError(
                    f"--resume {run_id}: the run's {flag} {stored} is stored without its "
                    "credentials",
                    fix=f"pass {flag} again with the full URL the run was started with",
                )
            continue
        shown = redact_config(url)
        if shown != stored:
            raise UsageError(
                f"--resume {run_id}: {flag} {shown} is not the URL the run was started with "
                f"({stored or f'no {flag}'})",
                fix=f"pass the run's own URL, or drop {flag}",
            )
        update[field] = url
    return config.model_copy(update=update)


# What a resume may be given: where the run lives, the corpora, the endpoints (whose
# credentials are not stored), how long a call may hang, and how much to print. Every
# other flag defines the run, which a resume replays from its stored configuration.
_RESUME_FLAGS = frozenset(
    {"resume", "run_dir", "corpora_dir", "base_url", "judge_base_url", "mutator_base_url"}
    | {"timeout", "top"}
)


def _refuse_flags_a_resume_ignores(ctx: typer.Context, run_id: str) -> None:
    given = [
        param.opts[0]
        for param in ctx.command.params
        if param.name not in _RESUME_FLAGS
        and param.name is not None
        and getattr(ctx.get_parameter_source(param.name), "name", "") == "COMMANDLINE"
    ]
    if given:
        allowed = sorted(
            p.opts[0] for p in ctx.command.params if p.name in _RESUME_FLAGS and p.opts
        )
        raise UsageError(
            f"--resume {run_id} replays the run's stored configuration, so it ignores "
            f"{', '.join(given)}",
            fix=f"drop {'it' if len(given) == 1 else 'them'} (a resume takes only "
            f"{', '.join(allowed)}), or start a new run without --resume",
        )


# The flag behind each EvolveConfig field whose name does not say it.
_FLAG_OF = {
    "attribute": "--attr",
    "target_base_url": "--base-url",
    "seeds_file": "--seeds",
    "system_prompt": "--system",
    "generate": "--temperature/--max-tokens",
    "timeout_s": "--timeout",
}


def _new_config(**fields: object) -> EvolveConfig:
    """The EvolveConfig of a new run; a value it refuses is a one-line UsageError naming
    the flag (typer checks most ranges; the config checks the rest, e.g. --descriptors)."""
    try:
        return EvolveConfig.model_validate(fields)
    except ValidationError as error:
        first = error.errors()[0]
        field = str(first["loc"][0]) if first["loc"] else ""
        flag = _FLAG_OF.get(field, "--" + field.replace("_", "-"))
        message = str(first["msg"]).removeprefix("Value error, ")
        raise UsageError(
            f"{flag}: {message}", fix=f"see `probegen evolve --help` for {flag}"
        ) from None


@dataclass
class _Parts:
    """Everything a run needs, built (and so validated) before the store is touched."""

    target: ChatModel
    helper: ChatModel | None
    index: EmbeddingIndex
    seeds: list[Probe]


def _build_parts(config: EvolveConfig, corpora: Corpora) -> _Parts:
    # A bad spec, key, operator name, seeds file or embedder must fail here, with one
    # line, and leave no run behind.
    timeout = config.timeout_s
    target = resolve_model(config.target, base_url=config.target_base_url, timeout_s=timeout)
    helper = (
        resolve_model(config.mutator_model, base_url=config.mutator_base_url, timeout_s=timeout)
        if config.mutator_model
        else None
    )
    mutators = load_mutators(
        config.mutators,
        helper_available=helper is not None,
        images_available=use_images(config.images, target),
    )
    search_emitters(config, mutators)  # an emitter must be able to use the operators
    make_scorer(config.judge, base_url=config.judge_base_url, timeout_s=timeout)  # validates
    decision_settings(config, target)  # --measure decision needs log-probabilities
    seeds = load_seeds(config, corpora)
    embedder = Embedder(config.embedder)
    embedder.encode(["load the embedding model now, not once the run exists"])
    return _Parts(target, helper, EmbeddingIndex(embedder, threshold=config.dedup_threshold), seeds)


def _evolve(
    config: EvolveConfig,
    corpora: Corpora,
    run_root: Path,
    store: Store | None,
    run_id: str,
    top: int,
) -> None:
    parts = _build_parts(config, corpora)
    store = store or Store.in_run_dir(run_root)
    with store:
        if not run_id:
            run_id = store.create_run(
                "evolve", {"command": "evolve", "evolve": config.model_dump(mode="json")}
            )
        try:
            records, target, failure = _search(config, corpora, run_root, store, run_id, parts, top)
        except KeyboardInterrupt:
            store.finish_run(run_id, "interrupted")
            console.print(f"interrupted; continue with: probegen evolve --resume {run_id}")
            raise typer.Exit(130) from None
        except BaseException as error:
            # Whatever stops a run that exists (a file that cannot be written, a bug) must
            # not leave it "running": that is what a killed run looks like.
            reason = str(error) if isinstance(error, ProbegenError) else repr(error)
            store.finish_run(run_id, "failed", reason=reason)
            raise
        store.finish_run(run_id, "failed" if failure else "finished", reason=failure)
    _print_top(records, top)
    console.print(
        f"{len(records)} elites -> {run_root / run_id}/elites.jsonl; summary.md beside it. "
        f"Target calls sent: {target.sent}, answered from cache: {target.cache_hits}."
    )
    if failure:
        err_console.print(
            f"error: run {run_id} failed: {failure} (see summary.md; the failures are "
            "recorded in the store)",
            markup=False,
            soft_wrap=True,
        )
        raise typer.Exit(EXIT_RUN_FAILED)


def _search(
    config: EvolveConfig,
    corpora: Corpora,
    run_root: Path,
    store: Store,
    run_id: str,
    parts: _Parts,
    top: int,
) -> tuple[list[dict[str, object]], Model, str | None]:
    """Run the search and write its outputs; returns the records, the target and why the
    run failed (None when it did not)."""
    timeout = config.timeout_s
    scorer = make_scorer(
        config.judge,
        base_url=config.judge_base_url,
        cache=store,
        timeout_s=timeout,
        repeats=config.judge_repeats,
    )
    console.print(f"run {run_id}: {config.target} / {config.attribute} / {config.judge}")

    def log(kind: str, data: dict[str, object]) -> None:
        store.log_event(run_id, kind, data)

    target = Model(parts.target, cache=store, on_event=log)
    helper = Model(parts.helper, cache=store, on_event=log) if parts.helper else None
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
            index=parts.index,
            helper=helper,
            on_progress=on_progress,
            seeds=parts.seeds,
        )

        async def search_and_conclude() -> tuple[list[GenerationReport], Conclusion]:
            # One event loop for both: the target's HTTP client belongs to it.
            reports = await evolution.run()
            progress.console.print(
                "testing every probe at the run's false-discovery rate"
                + ("; replicating the findings" if config.replicate else "")
            )
            return reports, await evolution.conclude()

        reports, conclusion = asyncio.run(search_and_conclude())
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
        emitter_stats=evolution.scheduler.emitter_stats,
        surrogate=evolution.surrogate_report(),
        clusters=cluster_elites(elites, parts.index.embedder, config.seed),
        top=top,
        conclusion=conclusion,
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
                finding=bool(r["finding"]),
                p_value=r["p_value"],
                q_value=r["q_value"],
                effect=conclusion.assessments.get(str(r["id"]), NOT_TESTED).effect,
                replicated=conclusion.replicated(str(r["id"])),
            )
            for r in records
        ],
    )
    _print_findings(conclusion, store, run_id)
    store.log_event(run_id, "calls", {"sent": target.sent, "cache_hits": target.cache_hits})
    return records, target, run_failure(reports, target)


def _print_findings(conclusion: Conclusion, store: Store, run_id: str) -> None:
    found = conclusion.findings
    header = (
        f"{len(found)} finding(s) among {conclusion.tested} probes tested "
        f"(false-discovery rate {conclusion.level:g})"
    )
    rate = conclusion.replication_rate
    if rate is not None:
        header += f"; replicated on fresh names, wordings or samples: {rate:.0%}"
    if not found:
        console.print(header, markup=False)
        return
    probes = {p.id: p for p in store.probes(run_id)}
    table = Table(title=header, show_lines=True)
    for column in ("effect [95% CI]", "q", "replicated", "probe"):
        table.add_column(column)
    for probe_id in found:
        assessment = conclusion.assessments[probe_id]
        effect = assessment.effect
        assert effect is not None
        direction = f"\n{' > '.join(effect.direction)}" if effect.direction else ""
        replicated = conclusion.replicated(probe_id)
        table.add_row(
            f"{effect.summary().split(' p=')[0]} {effect.measure}{direction}",
            f"{assessment.q_value or 0:.2g}",
            "-" if replicated is None else "yes" if replicated else "no",
            escape(probes[probe_id].template if probe_id in probes else probe_id),
        )
    console.print(table)


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
