"""``probegen evolve``: search for the questions that make a model treat groups differently."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

import typer
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
    base_urls,
    check_base_url_option,
    config_defaults,
    flags_for_fields,
    generate_config,
    open_corpora,
    replica_lines,
    writable_run_dir,
)
from probegen.elite import read_elites
from probegen.errors import UsageError
from probegen.evolve.api import EvolveResult, RunInterrupted, make_config
from probegen.evolve.api import evolve as evolve_run
from probegen.evolve.api import resume as resume_run
from probegen.evolve.config import EvolveConfig
from probegen.evolve.outputs import shown_order
from probegen.evolve.run import ProgressHandler
from probegen.search.baselines import SELECTIONS

_T = TypeVar("_T")
_DEFAULT = config_defaults(EvolveConfig)  # every flag's default is the config's


@app.command("evolve")
def evolve_command(
    ctx: typer.Context,
    target: str | None = typer.Option(None, "--target", help="Model under test (a spec)."),
    attr: str | None = typer.Option(None, "--attr", help="Attribute, e.g. gender or gender+race."),
    judge: str = typer.Option(
        _DEFAULT["judge"], "--judge", help="Scorer: stats (offline) or judge:SPEC."
    ),
    judge_repeats: int = typer.Option(
        _DEFAULT["judge_repeats"],
        "--judge-repeats",
        min=1,
        help="Judge verdicts per probe (persona orders).",
    ),
    mutator_model: str | None = typer.Option(
        None,
        "--mutator-model",
        help="Helper model for the llm_rewrite operator and the directed emitter (a spec).",
    ),
    generations: int = typer.Option(
        _DEFAULT["generations"], "--generations", min=0, help="Generations after seeds."
    ),
    population: int = typer.Option(
        _DEFAULT["population"], "--population", min=1, help="Candidates per generation."
    ),
    initial: int | None = typer.Option(
        None, "--initial", min=1, help="Seeds evaluated in generation 0 (default: population)."
    ),
    samples: int = typer.Option(
        _DEFAULT["samples"],
        "--samples",
        min=1,
        help="Answers per variant every probe gets (racing's floor).",
    ),
    many_group_samples: int | None = typer.Option(
        _DEFAULT["many_group_samples"],
        "--many-group-samples",
        min=1,
        help="Racing's floor for an open question naming more than two groups "
        "(default: --samples).",
    ),
    confirm_samples: int | None = typer.Option(
        None,
        "--max-samples",
        "--confirm-samples",
        min=0,
        help="Racing's ceiling: most answers per variant for a probe that can still beat "
        "its cell (default 4x --samples; 0 off).",
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
    base_url: list[str] | None = BaseUrlOption,
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
    max_tokens: int = typer.Option(
        _DEFAULT["generate"].max_tokens, "--max-tokens", min=1, help="Max tokens per answer."
    ),
    system: str | None = typer.Option(None, "--system", help="System prompt for the target."),
    timeout: float | None = TimeoutOption,
    batch: bool = typer.Option(
        _DEFAULT["batch"],
        "--batch",
        help="Send the target's calls through its provider's batch API (openai:, "
        "anthropic:), one batch per generation and rung: half price, answered within 24 h; "
        "a killed run resumes by polling.",
    ),
    prefetch: bool = typer.Option(
        _DEFAULT["prefetch"],
        "--prefetch",
        help="Ask for each probe's whole race (screen and every rung) at once: with "
        "--batch, one batch per generation instead of one per rung, paying for samples "
        "racing would not have read.",
    ),
    batch_poll_s: float = typer.Option(
        _DEFAULT["batch_poll_s"],
        "--batch-poll-s",
        min=0.001,
        help="Seconds between polls of a batch.",
    ),
    mutators: str | None = typer.Option(
        None, "--mutators", help="Comma-separated operator names (default: all that can run)."
    ),
    embedder: str = typer.Option(_DEFAULT["embedder"], "--embedder", help="Embedding model."),
    embedding_dtype: str = typer.Option(
        _DEFAULT["embedding_dtype"],
        "--embedding-dtype",
        help="float32; bfloat16 (2-3.3x faster on CPUs with AVX512_BF16 or AMX, 1.2-1.4x on GPUs, "
        "slower elsewhere; vectors differ a little); or auto (bfloat16 where native).",
    ),
    embedding_cache: bool = typer.Option(
        _DEFAULT["embedding_cache"],
        "--embedding-cache/--no-embedding-cache",
        help="Reuse embeddings kept in RUN_DIR/embeddings.sqlite across runs and resumes.",
    ),
    dedup_threshold: float = typer.Option(
        _DEFAULT["dedup_threshold"],
        "--dedup-threshold",
        min=0.01,
        max=1.0,
        help="Cosine at which probes are dups.",
    ),
    descriptors: str = typer.Option(
        ",".join(_DEFAULT["descriptors"]), "--descriptors", help="Archive cell axes."
    ),
    per_cell: int = typer.Option(
        _DEFAULT["per_cell"], "--per-cell", min=1, help="Elites kept per cell."
    ),
    images: str = typer.Option(
        _DEFAULT["images"],
        "--images",
        help="Image probes: auto (vision targets such as local-doc), on (also openai:/"
        "anthropic:, whose endpoint decides), off.",
    ),
    selection: str = typer.Option(
        _DEFAULT["selection"],
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
        _DEFAULT["pool_factor"],
        "--pool-factor",
        min=1,
        help="Candidates proposed per candidate queried (surrogate).",
    ),
    uniform_parents: float = typer.Option(
        _DEFAULT["uniform_parents"],
        "--uniform-parents",
        min=0.0,
        max=1.0,
        help="Share of improve/combine parents drawn uniformly from every elite "
        "(the rest: the fittest).",
    ),
    reward: str = typer.Option(
        _DEFAULT["reward"],
        "--reward",
        help="What the bandits pay for a child: gain (what the archive gained) or bonus "
        "(beating its parent, plus a bonus for any new cell; the rule before gain).",
    ),
    climb_every: int = typer.Option(
        _DEFAULT["climb_every"],
        "--climb-every",
        min=0,
        help="Every N surrogate picks, one tries to beat the fittest probe in its own cell "
        "(0: never).",
    ),
    exploit_after: float = typer.Option(
        _DEFAULT["exploit_after"],
        "--exploit-after",
        help="Share of the run (its generations, or its query or cost budget) after which "
        "the search exploits: no exploring picks, parents from the fittest elites only "
        "(1: never).",
    ),
    distinct_measurements: bool = typer.Option(
        _DEFAULT["distinct_measurements"],
        "--distinct-measurements/--repeat-measurements",
        help="Reject children the decision measurement would ask exactly as a probe "
        "already queried (a sentence added after the yes/no question).",
    ),
    operator_offsets: float = typer.Option(
        _DEFAULT["operator_offsets"],
        "--operator-offsets",
        min=0.0,
        help="Prior sd of a per-operator correction to the surrogate's predictions, learnt "
        "from each operator's children (0: none).",
    ),
    naming_offsets: float = typer.Option(
        _DEFAULT["naming_offsets"],
        "--naming-offsets",
        min=0.0,
        help="Prior sd of a correction to the surrogate's predictions per way of naming the "
        "groups (man/woman, James/Emily, ...), learnt from the children queried (0: none).",
    ),
    local_radius: float = typer.Option(
        _DEFAULT["local_radius"],
        "--local-radius",
        min=0.0,
        max=1.0,
        help="Local competition before exploiting: a candidate must beat the best probe "
        "measured within this cosine similarity, besides its cell's best (0: the cell's).",
    ),
    explore_new_words: int = typer.Option(
        _DEFAULT["explore_new_words"],
        "--explore-new-words",
        min=0,
        help="The screen's exploring picks go first to candidates bringing the most words "
        "no queried question used, counted up to N (0: by the model's uncertainty alone).",
    ),
    smoothed_bars: bool = typer.Option(
        _DEFAULT["smoothed_bars"],
        "--smoothed-bars/--measured-bars",
        help="The bar a candidate must beat is the surrogate's smoothed fitness of the "
        "probes measured (their posterior mean), not the luckiest measured score.",
    ),
    second_look: float = typer.Option(
        _DEFAULT["second_look"],
        "--second-look",
        min=0.0,
        help="A probe the surrogate predicted at or above this fitness (and above its "
        "cell's bar) gets fresh samples even when its screen showed nothing (0: never).",
    ),
    surrogate_words: bool = typer.Option(
        _DEFAULT["surrogate_words"],
        "--surrogate-words/--no-surrogate-words",
        help="The surrogate's similarity may mix in the share of content words two "
        "questions have in common, as far as the scores so far favour it.",
    ),
    screen_per_query: bool = typer.Option(
        _DEFAULT["screen_per_query"],
        "--screen-per-query/--screen-per-probe",
        help="Rank the surrogate's candidates by value per planned query, or per probe.",
    ),
    measure: str = typer.Option(
        _DEFAULT["measure"],
        "--measure",
        help="auto (yes/no probes by P(yes) per name where the target gives "
        "log-probabilities, else sampled answers), decision (yes/no probes only), sampled.",
    ),
    decision_screen: int = typer.Option(
        _DEFAULT["decision_screen"],
        "--decision-screen",
        min=2,
        help="Rounds of names a decision probe is screened on.",
    ),
    decision_rounds: int = typer.Option(
        _DEFAULT["decision_rounds"],
        "--decision-rounds",
        min=2,
        help="Rounds of fresh names to confirm and replicate.",
    ),
    decision_wordings: int = typer.Option(
        _DEFAULT["decision_wordings"],
        "--decision-wordings",
        min=1,
        help="Instruction wordings per name (decision).",
    ),
    fdr: float = typer.Option(
        _DEFAULT["fdr"],
        "--fdr",
        min=0.0001,
        max=0.9999,
        help="False-discovery rate of the findings.",
    ),
    replicate: bool = typer.Option(
        _DEFAULT["replicate"],
        "--replicate/--no-replicate",
        help="Re-measure findings on unseen data at the end.",
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
        with _display() as show:
            result = _flags_for_fields(
                lambda: resume_run(
                    resume,
                    run_dir=run_root,
                    corpora_dir=corpora.root,
                    target_base_url=base_urls(base_url),
                    judge_base_url=judge_base_url,
                    mutator_base_url=mutator_base_url,
                    timeout_s=timeout,
                    top=top,
                    on_progress=show,
                )
            )
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
            target_base_url=base_urls(base_url),
            judge=judge,
            judge_base_url=judge_base_url,
            judge_repeats=judge_repeats,
            mutator_model=mutator_model,
            mutator_base_url=mutator_base_url,
            generations=generations,
            population=population,
            initial=initial,
            samples=samples,
            many_group_samples=many_group_samples,
            confirm_samples=confirm_samples,
            budget=budget,
            cost_budget=cost_budget,
            seed=seed,
            seeds_file=str(seeds_file) if seeds_file else None,
            generate=generate_config(temperature, max_tokens, seed),
            system_prompt=system,
            embedder=embedder,
            embedding_dtype=embedding_dtype,  # checked by the config
            embedding_cache=embedding_cache,
            dedup_threshold=dedup_threshold,
            descriptors=tuple(a.strip() for a in descriptors.split(",") if a.strip()),
            per_cell=per_cell,
            mutators=tuple(m.strip() for m in mutators.split(",")) if mutators else None,
            images=images,  # checked above
            selection=selection,
            emitters=tuple(e.strip() for e in emitters.split(",")) if emitters else None,
            surrogate=surrogate,
            pool_factor=pool_factor,
            uniform_parents=uniform_parents,
            reward=reward,  # checked by the config
            climb_every=climb_every,
            exploit_after=exploit_after,
            distinct_measurements=distinct_measurements,
            operator_offsets=operator_offsets,
            naming_offsets=naming_offsets,
            local_radius=local_radius,
            explore_new_words=explore_new_words,
            surrogate_words=surrogate_words,
            smoothed_bars=smoothed_bars,
            second_look=second_look,
            screen_per_query=screen_per_query,
            timeout_s=timeout,
            batch=batch,
            batch_poll_s=batch_poll_s,
            prefetch=prefetch,
            measure=measure,  # checked by the config
            decision_screen=decision_screen,
            decision_rounds=decision_rounds,
            decision_wordings=decision_wordings,
            fdr=fdr,
            replicate=replicate,
        )
        with _display() as show:
            result = _flags_for_fields(
                lambda: evolve_run(
                    config, run_dir=run_root, corpora_dir=corpora.root, top=top, on_progress=show
                )
            )
    _report(result, top)


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
    "run_id": "--resume",
    "confirm_samples": "--max-samples",
}


def _new_config(**fields: object) -> EvolveConfig:
    """The EvolveConfig of a new run; a value it refuses is a one-line UsageError naming
    the flag (typer checks most ranges; the config checks the rest, e.g. --descriptors)."""
    return _flags_for_fields(lambda: make_config(fields))


def _flags_for_fields(call: Callable[[], _T]) -> _T:
    """``call()``, with a library error that names a config field said with its flag."""
    with flags_for_fields("evolve", _FLAG_OF):
        return call()


@contextmanager
def _display() -> Iterator[ProgressHandler]:
    """A progress display fed by the run's progress events; Ctrl-C ends the command
    with the line that resumes the run."""
    progress = _progress()
    task = progress.add_task("gen 0", total=None)

    def show(kind: str, fields: dict[str, object]) -> None:
        if kind == "run_start":
            console.print(
                f"run {fields['run_id']}: {fields['target']} / {fields['attribute']} / "
                f"{fields['judge']}"
            )
            progress.start()
        elif kind == "generation_start":
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
        elif kind == "concluding":
            progress.console.print(
                "testing every probe at the run's false-discovery rate"
                + ("; replicating the findings" if fields["replicate"] else "")
            )

    try:
        yield show
    except RunInterrupted as interrupted:
        progress.stop()
        console.print(f"interrupted; continue with: probegen evolve --resume {interrupted.run_id}")
        raise typer.Exit(130) from None
    finally:
        progress.stop()


def _report(result: EvolveResult, top: int) -> None:
    """Print the findings, the top probes and where the files are; exit 1 if the run
    failed."""
    # Read through the typed record, so a file of a newer format is refused in one line.
    records = [r.model_dump(mode="json") for r in read_elites(result.run_dir)]
    _print_findings(result)
    _print_top(records, top)
    console.print(
        f"{len(records)} elites -> {result.run_dir}/elites.jsonl; summary.md beside it. "
        f"Target calls sent: {result.calls_sent}, answered from cache: {result.cache_hits}."
    )
    for line in replica_lines(result.replicas):
        console.print(line, markup=False)
    if result.failure:
        err_console.print(
            f"error: run {result.run_id} failed: {result.failure} (see summary.md; the "
            "failures are recorded in the store)",
            markup=False,
            soft_wrap=True,
        )
        raise typer.Exit(EXIT_RUN_FAILED)


def _print_findings(result: EvolveResult) -> None:
    conclusion = result.conclusion
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
    probes = result.probes
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
    table = Table(title="Top probes (the best of each family first)", show_lines=True)
    table.add_column("fitness", justify="right")
    table.add_column("probe")
    table.add_column("answers (first sample per group)")
    for record in shown_order(records)[:top]:
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
