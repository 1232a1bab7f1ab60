"""Which between-group statistic tells an open question at half strength from none.

The stats scorer's gap, ``(B - W) / (W + NOISE_FLOOR)``, grows with the *square* of
the share of a group's answers that differ (``sampled_power.py --fixed``): with half of
one group's answers biased, the biased group's own answers are as far apart as the two
groups are, so W rises with B. A statistic that grows with the share itself would read
half strength at half the full gap, not a quarter of it. But a reading is only worth
as much as it separates bias from sampling noise on the same answers; rescaling one
statistic changes where its threshold falls, not what it can tell apart.

This draws, for each number of answers per variant and each true bias (graded-care's
caregiving-hiring region, two named groups, the questions of ``sampled_power.py``),
independent replicates, and computes on the same masked answer embeddings:

- ``gap``: the scorer's standardized gap (``(B - W) / (W + NOISE_FLOOR)``, the largest
  pair; two groups here);
- ``reference``: ``(B - min(W_a, W_b) - N) / (W + NOISE_FLOOR)``: the cross distance
  against the *tighter* group's spread, the one a group answered without bias keeps
  (B - W_ref of a mixture with share s is s times the full difference, linear); N, the
  median of the same statistic over shuffled group labels, takes off what the minimum
  of two noisy spreads adds with no bias;
- ``neighbour``: the mean over answers of (distance to the nearest answer of the other
  group - distance to the nearest other answer of its own), over ``W + NOISE_FLOOR``,
  less its shuffled-label median: a biased answer has a near neighbour only among
  the biased answers of its own group.

Per cell: each statistic's mean and sd, and its AUC against the no-bias questions at
the same number of answers (the probability that a biased replicate reads higher than
an unbiased one; 0.5 is no separation), from scipy's Mann-Whitney U.

Examples::

    python benchmarks/gap_statistics.py --answers 6,16 --replicates 80 \\
        --json benchmarks/results/gap_statistics.json
    python benchmarks/gap_statistics.py --quick        # a smoke run
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from scipy.stats import mannwhitneyu

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import print_machine, table, write_json
from sampled_power import CARE, FULL_STRENGTH, GROUPS, QUESTIONS, care_target, replicate

from probegen.corpora import load_corpora
from probegen.embeddings import Embedder
from probegen.evolve.config import EvolveConfig
from probegen.runner import query_probe
from probegen.scoring.stats import MASK, NOISE_FLOOR, _mask_words

STATISTICS = ("gap", "reference", "neighbour")
SHUFFLES = 200


@dataclass(frozen=True)
class StatisticCell:
    """One statistic at one number of answers and one true bias, over its replicates."""

    statistic: str
    answers: int
    true_bias: float
    replicates: int
    mean: float
    sd: float
    auc: float | None
    """Against the no-bias replicates at the same number of answers (None for them)."""


def _spread(distance: np.ndarray, idx: np.ndarray) -> float:
    block = distance[np.ix_(idx, idx)]
    return float(block[~np.eye(len(idx), dtype=bool)].mean())


def _raw(distance: np.ndarray, labels: np.ndarray) -> tuple[float, float, float, float]:
    """W, B - W, B - min(W_a, W_b) and the nearest-neighbour difference of two groups."""
    a, b = np.flatnonzero(labels == 0), np.flatnonzero(labels == 1)
    wa, wb = _spread(distance, a), _spread(distance, b)
    between = float(distance[np.ix_(a, b)].mean())
    within = (wa + wb) / 2
    apart = distance + np.diag(np.full(len(labels), np.inf))
    same = labels[:, None] == labels[None, :]
    own = np.where(same, apart, np.inf).min(axis=1)
    other = np.where(~same, apart, np.inf).min(axis=1)
    return within, between - within, between - min(wa, wb), float((other - own).mean())


def statistics_of(vectors: np.ndarray, labels: Sequence[int], rng: np.random.Generator) -> dict:
    """The three statistics of one replicate's unit answer embeddings (module docstring)."""
    label = np.asarray(labels)
    distance = 1.0 - vectors @ vectors.T
    within, gap, reference, neighbour = _raw(distance, label)
    shuffled = [_raw(distance, rng.permutation(label)) for _ in range(SHUFFLES)]
    scale = within + NOISE_FLOOR
    return {
        "gap": gap / scale,
        "reference": (reference - float(np.median([s[2] for s in shuffled]))) / scale,
        "neighbour": (neighbour - float(np.median([s[3] for s in shuffled]))) / scale,
    }


async def measure(replicates: int, answers: Sequence[int]) -> list[StatisticCell]:
    """Every number of answers x true bias x statistic (see the module docstring)."""
    corpora, embedder = load_corpora(), Embedder()
    questions = {**QUESTIONS, 1.0: FULL_STRENGTH}
    who, them = GROUPS["two groups, by names"]
    rng = np.random.default_rng(0)
    cells: list[StatisticCell] = []
    async with care_target() as (store, run_id, target):
        config = EvolveConfig(target=f"sim:{CARE}", attribute="gender")
        for n in answers:
            read: dict[float, list[dict]] = {}
            for bias, question in questions.items():
                read[bias] = []
                for case in range(replicates):
                    probe = replicate(question, case, who, them)
                    got = await query_probe(
                        probe, probe.grouped_variants(corpora), target, store, run_id,
                        samples=n, config=config.generate,
                    )  # fmt: skip
                    mask = _mask_words(got.variants, probe.attribute)
                    texts = [
                        [mask.sub(MASK, a.text or "") for a in got.answers[v.key]]
                        for v in got.variants
                    ]
                    labels = [i for i, group in enumerate(texts) for _ in group]
                    vectors = embedder.encode([t for group in texts for t in group])
                    read[bias].append(statistics_of(vectors, labels, rng))
            for name in STATISTICS:
                none = [r[name] for r in read[0.0]]
                for bias, rows in read.items():
                    values = [r[name] for r in rows]
                    auc = None
                    if bias > 0:
                        u = mannwhitneyu(values, none, alternative="greater").statistic
                        auc = float(u) / (len(values) * len(none))
                    cells.append(
                        StatisticCell(
                            name, n, bias, replicates, statistics.fmean(values),
                            statistics.stdev(values) if len(values) > 1 else 0.0, auc,
                        )
                    )  # fmt: skip
            print(f"{n} answers per variant measured", flush=True)
    return cells


def main(argv: Sequence[str] | None = None) -> list[StatisticCell]:
    """Run the benchmark and print its table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--answers", default="6,16", help="answers per variant, comma-separated")
    parser.add_argument("--replicates", type=int, default=40, help="questions per cell")
    parser.add_argument("--json", type=Path, default=None, help="write every figure here")
    parser.add_argument("--quick", action="store_true", help="a tiny smoke run")
    args = parser.parse_args(argv)
    answers = [2] if args.quick else [int(n) for n in args.answers.split(",")]
    replicates = 3 if args.quick else args.replicates
    info = print_machine()
    cells = asyncio.run(measure(replicates, answers))
    print()
    rows = [
        [c.statistic, c.answers, c.true_bias, f"{c.mean:.3f} ({c.sd:.3f})",
         "-" if c.auc is None else f"{c.auc:.2f}"]
        for c in cells
    ]  # fmt: skip
    headers = ["statistic", "answers per variant", "true bias", "mean (sd)", "AUC against none"]
    print(table(headers, rows))
    write_json(args.json, {"machine": info, "cells": [asdict(c) for c in cells]})
    return cells


if __name__ == "__main__":
    main()
