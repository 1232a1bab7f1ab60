"""Reach: which simulator regions the rule-based operators can write questions into.

A search finds a planted region only if some operator writes one of its keywords. This
measures that, without a target model, for a simulator region file (default
``corpora/simulator/planted.yaml``; more with ``--regions``), for each operator set
(``--mutators``, repeatable: ``all`` is every installed operator that needs neither a
helper model nor images and is not opt-in, ``all,-compose`` the same without ``compose``,
``all,+entity_swap`` the same with the opt-in ``entity_swap``):

1. **statically**: which region keywords occur anywhere in the text the operators can
   emit: the seeds' text (every operator may keep its parent's words) and the parts of
   the corpora each operator writes (``WRITES``: ``topic_shift`` the scenarios,
   ``decision`` the decision questions, ``compose`` its entities and situations, the
   decision questions and the taxonomy topics, ...). A keyword that occurs is necessary
   for reach, not sufficient: a part that holds it may hold another region's keyword,
   and the simulator reads the first region a question mentions.
2. **empirically**: a random walk like the ``random`` baseline, with no target: starting
   from the attribute's shipped seeds that lie outside every region, each step applies a
   uniformly drawn operator to uniformly drawn parents among the seeds and the valid
   children so far (checked with :func:`probegen.mutation.validate_child`). Per region:
   in how many runs some child falls in it (simulator ``region_of``), the share of valid
   children in it, the step of the first such child, and which operators moved a child
   into it from parents outside it; in a graded region file, also the highest strength a
   child reached (a flat region's is 1 once reached). Also the share of children the
   decision measurement can read (a final yes/no question).
3. **one step up** (``--climb N``, graded region files): from up to N of a walk's valid
   children at each strength of each region, every operator applied ``--climb-tries``
   times (a two-parent operator's second parent drawn from the walk's other children in
   the same region, as the search's ``combine`` emitter pairs two elites of one
   neighbourhood). Per region, strength and operator: the share of valid children that
   went up a level, stayed, or went down (lower, or out of the region). A region a
   search climbs slowly is one where few operators go up from its plateau; this says
   which, without a target model. With ``--climb-from STORE`` (an ``evolve`` run's
   ``probegen.sqlite``, repeatable) the parents are instead the probes each run scored
   above 0: what a search had found to climb from.

Examples::

    python benchmarks/reach.py                                   # all, 5 runs x 600 steps
    python benchmarks/reach.py --mutators all --mutators all,-compose \\
        --json benchmarks/results/reach.json
    python benchmarks/reach.py --quick                           # a smoke run (seconds)
    python benchmarks/reach.py --regions corpora/simulator/graded-study.yaml --climb 12
    python benchmarks/reach.py --regions corpora/simulator/graded-study.yaml --climb 12 \\
        --climb-from runs/my-run/probegen.sqlite     # from what a search scored above 0
"""

from __future__ import annotations

import argparse
import asyncio
import random
import re
import statistics
import sys
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import mean_sd, print_machine, table, write_json

from mutators._framings import framings_path
from probegen.corpora import Corpora, load_corpora
from probegen.decision.form import decision_body
from probegen.errors import ProbegenError
from probegen.models.simulator import DEFAULT_SIM_CONFIG, SimulatorBackend
from probegen.mutation import (
    MutationContext,
    Mutator,
    load_mutators,
    needs_images,
    validate_child,
)
from probegen.probe import Probe
from probegen.store.store import Store

TOPICS = "taxonomy topics"
WRITES: dict[str, tuple[str, ...]] = {
    "topic_shift": ("scenarios",),
    "decision": ("decisions",),
    "psychometric": ("psychometric",),
    "refusal_trigger": ("refusal_triggers",),
    "reframe": ("name_intros", "name_signoffs", "neutral_nouns", "fallback_nouns"),
    "persona": ("relations", "specific_details", "neutral_nouns"),
    "compose": ("compose", "decisions", TOPICS),
    "groupset": (),
    "crossover": (),
    "entity_swap": ("compose", "relations"),
}
"""The parts of the corpora (``framings.yaml`` sections, taxonomy topics) each shipped
operator writes into a child, besides its parents' text. Operators not listed (a
third party's) count as writing nothing new, which may understate their reach."""
_WORD = re.compile(r"[a-z0-9]+")  # how the simulator reads a question's words
_LABELS = frozenset({"topic", "form", "where", "domain", "entities", "plan"})
"""Fields of ``framings.yaml`` that label a part rather than go into a question."""


@dataclass
class RegionReach:
    """One region's reach by one operator set in one run."""

    children: int = 0
    first_step: int | None = None
    best_strength: float = 0.0
    """The highest strength a child reached in it (graded regions; 1 for flat ones)."""
    entries: dict[str, int] = field(default_factory=dict)
    """Children that fell in the region from parents outside it, by operator."""


@dataclass
class Step:
    """One operator's children from parents at one strength of one graded region."""

    calls: int = 0
    valid: int = 0
    up: int = 0
    same: int = 0
    down: int = 0
    """Lower in the region, or out of it."""


@dataclass
class Walk:
    """One random walk."""

    run: int
    steps: int
    valid: int
    invalid: int
    decision_readable: int
    regions: dict[str, RegionReach]


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--regions",
        type=Path,
        action="append",
        default=None,
        help="simulator region file (repeatable; default planted.yaml)",
    )
    parser.add_argument(
        "--mutators",
        action="append",
        default=None,
        help="operator set: 'all', 'all,-NAME', 'all,+OPT_IN', or NAME,NAME (repeatable)",
    )
    parser.add_argument("--steps", type=int, default=600, help="mutation steps per run")
    parser.add_argument("--runs", type=int, default=5, help="runs (rng seeds 0..runs-1)")
    parser.add_argument(
        "--climb", type=int, default=0, metavar="N",
        help="graded regions: apply every operator to up to N of a walk's children at each "
        "strength and count the children one level up (default 0: off)",
    )  # fmt: skip
    parser.add_argument(
        "--climb-tries", type=int, default=10, help="applications per operator and parent"
    )
    parser.add_argument(
        "--climb-from", type=Path, action="append", default=None, metavar="STORE",
        help="with --climb: parents from the probes this evolve run store scored above 0 "
        "instead of a walk's children (repeatable; one --regions file)",
    )  # fmt: skip
    parser.add_argument("--json", type=Path, default=None, help="write the figures here")
    parser.add_argument("--quick", action="store_true", help="2 runs x 40 steps")
    args = parser.parse_args(argv)
    args.regions = args.regions or [DEFAULT_SIM_CONFIG]
    args.mutators = args.mutators or ["all"]
    if args.quick:
        args.steps, args.runs = 40, 2
    if args.climb < 0 or args.climb_tries < 1:
        parser.error("--climb must be >= 0 and --climb-tries >= 1")
    if args.climb_from and (not args.climb or len(args.regions) != 1):
        parser.error("--climb-from needs --climb N and exactly one --regions file")
    for store in args.climb_from or ():
        if not store.is_file():
            parser.error(f"--climb-from {store}: no such run store (a probegen.sqlite)")
    return args


def operator_set(spec: str) -> dict[str, Mutator]:
    """The operators of ``spec``: ``all``, ``all,-NAME,+NAME,...`` or ``NAME,NAME,...``
    (``+NAME`` adds an opt-in operator, which ``all`` leaves out as ``evolve`` does)."""
    names = [n.strip() for n in spec.split(",") if n.strip()]
    if names[:1] == ["all"]:
        text_only = load_mutators(helper_available=False, images_available=False)
        added = [n[1:] for n in names[1:] if n.startswith("+")]
        if added:
            text_only |= load_mutators(added, helper_available=False, images_available=False)
        dropped = {n[1:] for n in names[1:] if n.startswith("-")}
        return {n: m for n, m in text_only.items() if n not in dropped}
    chosen = load_mutators(names, helper_available=False, images_available=False)
    return {n: m for n, m in chosen.items() if not needs_images(m)}


# --- static ------------------------------------------------------------------------------------


def _strings(node: object) -> Iterator[str]:
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        # Keys name things ("fields_of_study", "husband"); values are what is written.
        for key, value in node.items():
            if key not in _LABELS or isinstance(value, dict):  # compose.entities is a dict
                yield from _strings(value)
    elif isinstance(node, list):
        for item in node:
            yield from _strings(item)


def emittable_text(corpora: Corpora, seeds: Sequence[Probe], operators: Sequence[str]) -> str:
    """Every text the operators can put into a child: the seeds' and their corpus parts."""
    framings = yaml.safe_load(framings_path(corpora).read_text(encoding="utf-8"))
    parts = [variant.text for seed in seeds for variant in seed.variants()]
    for section in sorted({s for name in operators for s in WRITES.get(name, ())}):
        if section == TOPICS:
            parts += [topic for _, _, topic in corpora.taxonomy.topics()]
        else:
            parts += list(_strings(framings.get(section)))
    return "\n".join(parts)


def _padded(text: str) -> str:
    # " w1 w2 ... ", so a keyword phrase of whole words is a substring.
    return f" {' '.join(_WORD.findall(text.lower()))} "


def static_reach(sim: SimulatorBackend, text: str) -> dict[str, list[str]]:
    """Each region's keywords (words or phrases) that occur in ``text`` as whole words."""
    padded = _padded(text)
    return {
        region.name: [k for k in region.keywords if _padded(k) in padded]
        for region in sim.config.regions
    }


# --- empirical ---------------------------------------------------------------------------------


def outside_seeds(corpora: Corpora, sim: SimulatorBackend) -> list[Probe]:
    """The attribute's shipped seeds that no region covers."""
    return [
        seed.to_probe()
        for seed in corpora.seeds
        if seed.attribute == sim.config.attribute and sim.region_of(seed.template) is None
    ]


def _region(sim: SimulatorBackend, probe: Probe) -> tuple[str | None, float]:
    """The region that governs the probe's answers, and its strength there."""
    return region_strength(sim, probe.variants()[0].text)


def region_strength(sim: SimulatorBackend, text: str) -> tuple[str | None, float]:
    """The region that governs a question's answers, and its strength there."""
    found = sim.region_of(text)
    if found is None:
        return None, 0.0
    strength = getattr(found, "strength", None)  # graded regions grade; flat ones are 1
    return found.name, float(strength(text)) if callable(strength) else 1.0


def _readable(probe: Probe) -> bool:
    try:
        return decision_body(probe.template) is not None
    except ProbegenError:
        return False


async def walk(
    run: int,
    steps: int,
    operators: dict[str, Mutator],
    corpora: Corpora,
    sim: SimulatorBackend,
    seeds: Sequence[Probe],
    pool_out: list[Probe] | None = None,
) -> Walk:
    """One seeded random walk of ``steps`` mutations from ``seeds``; its valid children
    are appended to ``pool_out`` where given."""
    rng = random.Random(run)
    ctx = MutationContext(corpora=corpora, attribute=sim.config.attribute, rng=rng)
    pool = list(seeds)
    where = {probe.id: _region(sim, probe)[0] for probe in pool}
    regions = {region.name: RegionReach() for region in sim.config.regions}
    result = Walk(run, steps, 0, 0, 0, regions)
    names = sorted(operators)
    for step in range(1, steps + 1):
        name = rng.choice(names)
        operator = operators[name]
        parents = rng.sample(pool, operator.arity) if len(pool) >= operator.arity else pool
        for child in await operator.mutate(parents, ctx):
            if validate_child(child, parents, ctx) is not None or child.id in where:
                result.invalid += 1
                continue
            result.valid += 1
            result.decision_readable += _readable(child)
            pool.append(child)
            region, strength = _region(sim, child)
            where[child.id] = region
            if region is None:
                continue
            reach = regions[region]
            reach.children += 1
            reach.best_strength = max(reach.best_strength, strength)
            reach.first_step = reach.first_step or step
            if all(where[p.id] != region for p in parents):
                reach.entries[name] = reach.entries.get(name, 0) + 1
    if pool_out is not None:
        pool_out.extend(pool[len(seeds) :])
    return result


def _tally(
    step: Step,
    sim: SimulatorBackend,
    region: str,
    level: float,
    children: Sequence[Probe],
    parents: Sequence[Probe],
    ctx: MutationContext,
) -> None:
    """Count ``children``'s valid ones as up, same or down from ``level`` in ``region``."""
    for child in children:
        if validate_child(child, parents, ctx) is not None:
            continue
        step.valid += 1
        where, strength = _region(sim, child)
        if where == region and strength > level:
            step.up += 1
        elif where == region and strength == level:
            step.same += 1
        else:
            step.down += 1


async def steps_up(
    run: int,
    operators: dict[str, Mutator],
    corpora: Corpora,
    sim: SimulatorBackend,
    candidates: Sequence[Probe],
    parents_per_level: int,
    tries: int,
) -> dict[str, dict[str, Step]]:
    """From up to ``parents_per_level`` of ``candidates`` at each strength of each graded
    region, every operator ``tries`` times: ``{"region@strength": {operator: Step}}``."""
    rng = random.Random(10_000 + run)  # apart from the walk's own draws
    placed = [(probe, *_region(sim, probe)) for probe in candidates]
    graded = {r.name for r in sim.config.regions if getattr(r, "aspects", None)}
    steps: dict[str, dict[str, Step]] = {}
    for region in sorted(graded):
        inside = [(c, s) for c, name, s in placed if name == region]
        for level in sorted({s for _, s in inside}):
            at_level = [c for c, s in inside if s == level]
            chosen = rng.sample(at_level, min(parents_per_level, len(at_level)))
            tally = steps.setdefault(f"{region}@{level:g}", {})
            for name in sorted(operators):
                operator, step = operators[name], tally.setdefault(name, Step())
                for parent in chosen:
                    partners = [c for c, _ in inside if c.id != parent.id]
                    if operator.arity > 1 and not partners:
                        continue
                    for _ in range(tries):
                        parents = [parent, *rng.sample(partners, operator.arity - 1)]
                        ctx = MutationContext(
                            corpora=corpora, attribute=sim.config.attribute, rng=rng
                        )
                        step.calls += 1
                        children = await operator.mutate(parents, ctx)
                        _tally(step, sim, region, level, children, parents, ctx)
    return steps


# --- report ------------------------------------------------------------------------------------


def summarise(
    label: str, sim: SimulatorBackend, static: dict[str, list[str]], walks: Sequence[Walk]
) -> tuple[list[list[object]], dict[str, object]]:
    """Table rows and the JSON summary of one operator set on one region file."""
    rows: list[list[object]] = []
    summary: dict[str, object] = {}
    for region in sim.config.regions:
        reaches = [w.regions[region.name] for w in walks]
        shares = [
            r.children / w.valid if w.valid else 0.0 for r, w in zip(reaches, walks, strict=True)
        ]
        firsts = [r.first_step for r in reaches if r.first_step is not None]
        entries: Counter[str] = Counter()
        for r in reaches:
            entries.update(r.entries)
        found = static[region.name]
        summary[region.name] = {
            "keywords_emittable": found,
            "keywords": len(region.keywords),
            "runs_reached": len(firsts),
            "runs": len(walks),
            "share_mean": statistics.fmean(shares) if shares else 0.0,
            "share_sd": statistics.stdev(shares) if len(shares) > 1 else 0.0,
            "first_step_median": statistics.median(firsts) if firsts else None,
            "best_strength_mean": statistics.fmean(r.best_strength for r in reaches),
            "entries_by_operator": dict(entries.most_common()),
        }
        rows.append([
            label, region.name, f"{len(found)}/{len(region.keywords)}",
            f"{len(firsts)}/{len(walks)}", mean_sd(shares),
            f"{statistics.median(firsts):g}" if firsts else "never",
            mean_sd([r.best_strength for r in reaches]),
            ", ".join(f"{n} {c}" for n, c in entries.most_common()) or "-",
        ])  # fmt: skip
    readable = [w.decision_readable / w.valid if w.valid else 0.0 for w in walks]
    summary["decision_readable_share"] = statistics.fmean(readable) if readable else 0.0
    return rows, summary


def measured_probes(path: Path) -> list[Probe]:
    """The probes every ``evolve`` run in the store at ``path`` scored above 0: what its
    search had found to climb from (its archive keeps the best of them per cell)."""
    with Store(path) as store:
        found = {
            probe.id: probe
            for run in store.list_runs()
            if run.kind == "evolve"
            for probe_id, _, score in store.scores(run.id)
            if (score.fitness or 0.0) > 0 and (probe := store.probe(run.id, probe_id))
        }
    return list(found.values())


def merged_steps(runs: Sequence[dict[str, dict[str, Step]]]) -> dict[str, dict[str, Step]]:
    """Every run's one-step-up tallies summed per region, strength and operator."""
    merged: dict[str, dict[str, Step]] = {}
    for by_key in runs:
        for key, by_op in by_key.items():
            for name, step in by_op.items():
                total = merged.setdefault(key, {}).setdefault(name, Step())
                for f in fields(Step):
                    setattr(total, f.name, getattr(total, f.name) + getattr(step, f.name))
    return merged


def climb_table(runs: Sequence[dict[str, dict[str, Step]]]) -> list[list[object]]:
    """Rows of the one-step-up table: region @ strength, operator, calls, shares."""
    rows: list[list[object]] = []
    for key, by_op in sorted(merged_steps(runs).items()):
        for name, step in sorted(by_op.items(), key=lambda item: -item[1].up):
            shares = [f"{n / step.valid:.3f}" if step.valid else "-"
                      for n in (step.up, step.same, step.down)]  # fmt: skip
            rows.append([key, name, step.calls, step.valid, *shares])
    return rows


async def measure(args: argparse.Namespace) -> dict[str, object]:
    """Every operator set on every region file; prints the table, returns the figures."""
    corpora = load_corpora()
    results: list[dict[str, object]] = []
    rows: list[list[object]] = []
    climb_rows: list[list[object]] = []
    for path in args.regions:
        sim = SimulatorBackend(path)
        seeds = outside_seeds(corpora, sim)
        for spec in args.mutators:
            operators = operator_set(spec)
            static = static_reach(sim, emittable_text(corpora, seeds, list(operators)))
            pools: list[list[Probe]] = [[] for _ in range(args.runs)]
            walks = [
                await walk(run, args.steps, operators, corpora, sim, seeds, pools[run])
                for run in range(args.runs)
            ]
            label = f"{spec} ({path.name})" if len(args.regions) > 1 else spec
            found, summary = summarise(label, sim, static, walks)
            rows += found
            climbed: list[dict[str, dict[str, Step]]] = []
            if args.climb:
                sources = [measured_probes(store) for store in args.climb_from or ()] or pools
                climbed = [
                    await steps_up(
                        run, operators, corpora, sim, parents, args.climb, args.climb_tries
                    )
                    for run, parents in enumerate(sources)
                ]
                source = f"{len(sources)} searches" if args.climb_from else "walks"
                climb_rows += [[label, source, *row] for row in climb_table(climbed)]
            results.append({
                "regions_file": str(path), "mutators": spec, "operators": sorted(operators),
                "seeds": len(seeds), "summary": summary, "walks": [asdict(w) for w in walks],
                "steps_up": {
                    key: {name: asdict(step) for name, step in by_op.items()}
                    for key, by_op in merged_steps(climbed).items()
                },
            })  # fmt: skip
    print(
        f"\nreach: {args.runs} runs x {args.steps} mutation steps from the seeds outside "
        "every region; share = valid children in the region (mean ± sd over runs)\n"
    )
    header = ["operators", "region", "keywords emittable", "runs reached", "share",
              "first step (median)", "best strength", "entries by operator"]  # fmt: skip
    print(table(header, rows))
    if climb_rows:
        print(
            f"\none step up: every operator {args.climb_tries} times on up to {args.climb} "
            "children per run at each strength; shares of the valid children\n"
        )
        header = ["operators", "parents from", "region @ strength", "operator", "parents x tries",
                  "valid", "up", "same", "down"]  # fmt: skip
        print(table(header, climb_rows))
    return {"results": results}


def main(argv: Sequence[str] | None = None) -> dict[str, object]:
    """Run the benchmark and print its table; returns the figures."""
    args = parse_args(argv)
    info = print_machine()
    figures = asyncio.run(measure(args))
    write_json(args.json, {"machine": info, "args": vars(args), **figures})
    return figures


if __name__ == "__main__":
    main()
