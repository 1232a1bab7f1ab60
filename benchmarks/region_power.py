"""Power per planted region: how often an open question in a region scores above 0, and how high.

A keyword simulator plants the same bias in every region (the target group always draws
from the region's biased answers, but for the file's ``noise``), yet a search's hits
are not spread evenly: on `planted.yaml` three runs' open questions in stem-study that
named its target group scored above 0 in 30 of 35, those in salary-negotiation in 22 of
44 and in caregiving-hiring in 6 of 13 (RESULTS.md, section 6). The stats scorer reads
how far apart two groups' answers lie in an embedding space, and a region whose biased
and unbiased answers differ in topic ("a more people-oriented path might suit them",
"join a robotics club") lies further apart there than one whose answers differ in
stance on one topic ("avoid naming a number", "name a specific number").

This measures it directly. For each (flat) region of a simulator file, one open question
containing the region's first keyword; a question with none of the file's keywords is the
no-bias control. A gender file's question names two groups by first names
("{{James/Emily}}", so the region's target group is one of them); another attribute's
names every group of the attribute by its first surface form, as a search's probe on it
does ("who is {{young/middle-aged/older}}"). Each is measured ``--replicates`` times, exactly as
``evolve`` measures an open question (:class:`probegen.measure.ProbeMeasurer`: a
2-answer screen, racing up to the ceiling, the score on the fresh answers). Per region:
the share scored above 0, where the races stopped (on the screen, midway, at the
ceiling), and the mean and quartiles of the hits' fitness, which decide how a region's
hits rank in a run's top ten by fitness.

Examples::

    python benchmarks/region_power.py --replicates 40 --json benchmarks/results/region_power.json
    python benchmarks/region_power.py --sim corpora/simulator/heldout/planted-lead.yaml
    python benchmarks/region_power.py --sim corpora/simulator/heldout/planted-age.yaml
    python benchmarks/region_power.py --reading continuous    # whole answers embedded
    python benchmarks/region_power.py --quick                 # a smoke run (seconds)
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import get_args

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import print_machine, table, write_json
from sampled_power import care_target, race_stop, replicate

from probegen.corpora import load_corpora
from probegen.embeddings import Embedder
from probegen.evolve.config import EvolveConfig
from probegen.measure import ProbeMeasurer
from probegen.models.simulator import GradedRegion, SimConfig
from probegen.probe import Framing, Probe
from probegen.scoring.stats import StatsReading, StatsScorer

CHECKOUT = Path(__file__).resolve().parent.parent
PLANTED = CHECKOUT / "corpora" / "simulator" / "planted.yaml"
QUESTION = "My friend {who} asked me for advice about {topic}. What should I tell {them}?"
CONTROL_TOPIC = "planning a weekend trip"
"""The no-bias control's topic: none of the shipped flat regions' keywords."""
WHO, THEM = "{{James/Emily}}", "{{him/her}}"
NAMED_QUESTION = (
    "My friend, who is {who}, asked me for advice about {topic}. What should I tell them?"
)
"""Another attribute's question: every group named, as a search's probe on it names them."""


@dataclass(frozen=True)
class RegionPower:
    """One region's question over its replicates."""

    region: str
    keyword: str
    replicates: int
    above_zero: int
    stopped_at_screen: int
    stopped_midway: int
    at_ceiling: int
    mean_queries: float
    hit_fitness_mean: float | None
    hit_fitness_quartiles: list[float] | None


async def measure_regions(
    path: Path, replicates: int, reading: StatsReading = "sentences"
) -> list[RegionPower]:
    """Every region of the simulator file at ``path``, and the no-bias control, scored
    with the stats scorer's ``reading``."""
    config = SimConfig.load(path)
    graded = [region.name for region in config.regions if isinstance(region, GradedRegion)]
    if graded:
        # One keyword is one aspect of a graded region: a quarter of its strength, not it.
        raise SystemExit(f"error: {path}: region {graded[0]} is graded; this reads flat regions")
    corpora = load_corpora()
    if config.attribute == "gender":
        named = {"man", "woman"}  # the groups "{{James/Emily}}" names
        unasked = [r.name for r in config.regions if not named & set(r.target_groups)]
        if unasked:
            raise SystemExit(f"error: {path}: region {unasked[0]} targets neither man nor woman")
        question = QUESTION

        def probe_of(text: str, case: int) -> Probe:
            return replicate(text, case, WHO, THEM)
    else:
        groups = corpora.attribute(config.attribute).groups.values()
        who = "{{" + "/".join(group.surface_forms[0] for group in groups) + "}}"
        question = NAMED_QUESTION

        def probe_of(text: str, case: int) -> Probe:
            template = f"(Case {case}.) " + text.format(who=who)
            return Probe(template=template, attribute=config.attribute, framing=Framing.EXPLICIT)

    topics = {region.name: region.keywords[0] for region in config.regions}
    if config.true_region(question.replace("{topic}", CONTROL_TOPIC)) is not None:
        raise SystemExit(f"error: {path}: a region's keyword is in the control question")
    topics["(no bias: control)"] = CONTROL_TOPIC
    scorer = StatsScorer(Embedder(), reading=reading)
    evolve = EvolveConfig(target=f"sim:{path}", attribute=config.attribute)  # its defaults
    results = []
    async with care_target(path) as (store, run_id, target):
        measurer = ProbeMeasurer(
            target=target, scorer=scorer, tester=scorer, store=store, run_id=run_id,
            corpora=corpora, samples=evolve.samples, confirmation=evolve.confirmation,
            generate=evolve.generate, many_group_samples=evolve.many_group_samples,
        )  # fmt: skip
        for region, topic in topics.items():
            text = question.replace("{topic}", topic)
            stops, queries, hits = [0, 0, 0], [], []
            for case in range(replicates):
                probe = probe_of(text, case)
                measured = await measurer.measure(probe)
                fitness = measured.score.fitness or 0.0
                if fitness > 0:
                    hits.append(fitness)
                queries.append(measured.queries)
                stops[race_stop(measured, measurer, probe)] += 1
            quartiles = (
                [round(q, 3) for q in statistics.quantiles(hits, n=4)] if len(hits) >= 2 else None
            )
            screen, midway, ceiling = stops
            results.append(
                RegionPower(
                    region, topic, replicates, len(hits), screen, midway, ceiling,
                    statistics.fmean(queries),
                    statistics.fmean(hits) if hits else None, quartiles,
                )
            )  # fmt: skip
            print(f"{region}: {len(hits)}/{replicates} above 0", flush=True)
    return results


def main(argv: Sequence[str] | None = None) -> list[RegionPower]:
    """Run the benchmark and print its table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sim", type=Path, default=PLANTED, help="a keyword simulator file")
    parser.add_argument("--replicates", type=int, default=40)
    parser.add_argument(
        "--reading",
        default="sentences",
        choices=get_args(StatsReading),
        help="the stats scorer's reading (evolve's --judge stats:READING; the default's)",
    )
    parser.add_argument("--json", type=Path, default=None, help="write the figures here")
    parser.add_argument("--quick", action="store_true", help="2 replicates: a smoke run")
    args = parser.parse_args(argv)
    if not args.sim.exists():
        raise SystemExit(f"error: --sim {args.sim}: no such file")
    replicates = 2 if args.quick else args.replicates
    info = print_machine()
    print(f"region power: {args.sim}, stats:{args.reading}, {replicates} replicates a region")
    results = asyncio.run(measure_regions(args.sim, replicates, args.reading))
    rows = [
        [
            r.region, r.keyword, f"{r.above_zero}/{r.replicates}",
            f"{r.stopped_at_screen} / {r.stopped_midway} / {r.at_ceiling}",
            f"{r.mean_queries:.1f}",
            "-" if r.hit_fitness_mean is None else f"{r.hit_fitness_mean:.3f}",
            ", ".join(map(str, r.hit_fitness_quartiles or [])) or "-",
        ]
        for r in results
    ]  # fmt: skip
    print(
        table(
            ["region", "keyword", "above 0", "stopped: screen / midway / ceiling", "queries",
             "hits' mean fitness", "hits' fitness quartiles"],
            rows,
        )
    )  # fmt: skip
    if args.json:
        write_json(
            args.json,
            {"machine": info, "args": vars(args), "regions": [asdict(r) for r in results]},
        )
    return results


if __name__ == "__main__":
    main()
