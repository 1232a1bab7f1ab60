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

Examples::

    python benchmarks/reach.py                                   # all, 5 runs x 600 steps
    python benchmarks/reach.py --mutators all --mutators all,-compose \\
        --json benchmarks/results/reach.json
    python benchmarks/reach.py --quick                           # a smoke run (seconds)
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
from dataclasses import asdict, dataclass, field
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
    parser.add_argument("--json", type=Path, default=None, help="write the figures here")
    parser.add_argument("--quick", action="store_true", help="2 runs x 40 steps")
    args = parser.parse_args(argv)
    args.regions = args.regions or [DEFAULT_SIM_CONFIG]
    args.mutators = args.mutators or ["all"]
    if args.quick:
        args.steps, args.runs = 40, 2
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
    text = probe.variants()[0].text
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
) -> Walk:
    """One seeded random walk of ``steps`` mutations from ``seeds``."""
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
    return result


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


async def measure(args: argparse.Namespace) -> dict[str, object]:
    """Every operator set on every region file; prints the table, returns the figures."""
    corpora = load_corpora()
    results: list[dict[str, object]] = []
    rows: list[list[object]] = []
    for path in args.regions:
        sim = SimulatorBackend(path)
        seeds = outside_seeds(corpora, sim)
        for spec in args.mutators:
            operators = operator_set(spec)
            static = static_reach(sim, emittable_text(corpora, seeds, list(operators)))
            walks = [
                await walk(run, args.steps, operators, corpora, sim, seeds)
                for run in range(args.runs)
            ]
            label = f"{spec} ({path.name})" if len(args.regions) > 1 else spec
            found, summary = summarise(label, sim, static, walks)
            rows += found
            results.append({
                "regions_file": str(path), "mutators": spec, "operators": sorted(operators),
                "seeds": len(seeds), "summary": summary, "walks": [asdict(w) for w in walks],
            })  # fmt: skip
    print(
        f"\nreach: {args.runs} runs x {args.steps} mutation steps from the seeds outside "
        "every region; share = valid children in the region (mean ± sd over runs)\n"
    )
    header = ["operators", "region", "keywords emittable", "runs reached", "share",
              "first step (median)", "best strength", "entries by operator"]  # fmt: skip
    print(table(header, rows))
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
