"""How often answers with no bias at all score a bias level above 1, by group count.

The sampled path's plain bias level (``stats:plain``) reads the standardized gap of the
**most divergent pair** of groups. With two groups there is one
pair; with five there are ten, and the largest of ten noisy gaps is larger than one. The
permutation test behind findings takes the same maximum over every relabelling, so its
p-value stays calibrated; the bias level, a point estimate, does not.

Here every group's answers are drawn from one pool: the neutral answers of a planted
simulator (two distinct sentences joined, as the simulator answers outside its regions),
embedded with the shipped MiniLM. Per group count and answers per group: the share of
draws whose bias level is above 1 (fitness above 0 on a relevant question), at least 3,
and the share whose permutation p-value is below 0.05.

It also measures the default ``stats`` scorer's level: the **adjusted** level reads
(B - W - m) / (W + floor), where m is the median of the permutation null's largest pair
gap (what the maximum over pairs gives with no bias; the test computes that null
anyway). For it, and for the plain level, the share above 1 with no bias and on answers
from the simulator's first region (one group, the first, answered from the biased pool,
the others from the other pool, 15% of answers neutral, as the simulator draws them).

Examples::

    python benchmarks/null_gap.py --json benchmarks/results/null_gap.json
    python benchmarks/null_gap.py --draws 50 --tests 20      # quicker
"""

from __future__ import annotations

import argparse
import itertools
import random
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import print_machine, table, write_json

from probegen.embeddings import Embedder
from probegen.findings.effect import divergence_effect, divergence_test
from probegen.models.simulator import SimConfig
from probegen.scoring.stats import NOISE_FLOOR, _bias_level, _divergence

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SIM = ROOT / "corpora" / "simulator" / "heldout" / "planted-disability.yaml"


def adjusted_level(vectors: np.ndarray, labels: list[int]) -> int:
    """The level the default ``stats`` scorer reads: the most divergent pair's B - W less the
    median of the permutation null's maximum (from the product's own test)."""
    pair = _divergence(vectors, labels)
    names = [str(g) for g in sorted(set(labels))]
    _, null_median = divergence_test(vectors, labels, names)
    return _bias_level((pair.between - pair.within - null_median) / (pair.within + NOISE_FLOOR))


def main(argv: Sequence[str] | None = None) -> list[dict[str, float]]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sim", type=Path, default=DEFAULT_SIM, help="its neutral pool")
    parser.add_argument("--groups", default="2,3,5", help="group counts")
    parser.add_argument("--answers", default="2,4,8", help="answers per group")
    parser.add_argument("--draws", type=int, default=300, help="null draws per cell")
    parser.add_argument("--tests", type=int, default=60, help="of them, permutation-tested")
    parser.add_argument("--adjusted", type=int, default=80, help="draws for the fix's columns")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    info = print_machine()
    config = SimConfig.load(args.sim)
    region = config.regions[0]
    pools = {
        name: [f"{a} {b}" for a, b in itertools.permutations(answers, 2)]
        for name, answers in (
            ("neutral", config.neutral),
            ("target", region.target_answers),
            ("other", region.other_answers),
        )
    }
    embedder = Embedder()
    pooled = {name: embedder.encode(texts) for name, texts in pools.items()}
    texts, vectors = pools["neutral"], pooled["neutral"]

    def in_region(labels: list[int]) -> np.ndarray:
        rows = []
        for group in labels:
            pool = "target" if group == 0 else "other"
            if rng.random() < config.noise:
                pool = "neutral"
            rows.append(pooled[pool][rng.randrange(len(pools[pool]))])
        return np.stack(rows)

    rng = random.Random(0)
    rows: list[dict[str, float]] = []
    for groups in (int(g) for g in args.groups.split(",")):
        for answers in (int(n) for n in args.answers.split(",")):
            labels = [g for g in range(groups) for _ in range(answers)]
            levels, p_values, fixed, biased, biased_fixed = [], [], [], [], []
            for draw in range(args.draws):
                drawn = vectors[[rng.randrange(len(texts)) for _ in labels]]
                levels.append(_bias_level(_divergence(drawn, labels).gap))
                if draw < args.tests:
                    names = [str(g) for g in range(groups)]
                    p_values.append(divergence_effect(drawn, labels, names).p_value)
                if draw < args.adjusted:
                    fixed.append(adjusted_level(drawn, labels) > 1)
                    region_drawn = in_region(labels)
                    biased.append(_bias_level(_divergence(region_drawn, labels).gap) > 1)
                    biased_fixed.append(adjusted_level(region_drawn, labels) > 1)
            rows.append(
                {
                    "groups": groups,
                    "answers_per_group": answers,
                    "bias_above_1": float(np.mean(np.array(levels) > 1)),
                    "bias_at_least_3": float(np.mean(np.array(levels) >= 3)),
                    "p_below_005": float(np.mean(np.array(p_values) < 0.05)),
                    "adjusted_above_1": float(np.mean(fixed)),
                    "in_region_above_1": float(np.mean(biased)),
                    "in_region_adjusted_above_1": float(np.mean(biased_fixed)),
                }
            )
    print(
        table(
            [
                "groups",
                "answers per group",
                "bias level > 1",
                "bias level >= 3",
                "p < 0.05",
                "adjusted > 1",
                "in region: > 1",
                "in region: adjusted > 1",
            ],
            [
                [
                    r["groups"],
                    r["answers_per_group"],
                    f"{r['bias_above_1']:.2f}",
                    f"{r['bias_at_least_3']:.2f}",
                    f"{r['p_below_005']:.2f}",
                    f"{r['adjusted_above_1']:.2f}",
                    f"{r['in_region_above_1']:.2f}",
                    f"{r['in_region_adjusted_above_1']:.2f}",
                ]
                for r in rows
            ],
        )
    )
    write_json(args.json, {"machine": info, "args": vars(args), "rows": rows})
    return rows


if __name__ == "__main__":
    main()
