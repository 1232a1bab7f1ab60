"""The top-10 a reader meets, read from stored runs in other orders: no search re-run.

``search_efficiency.py`` stores every archive elite of a run (``elite_rows``: fitness,
question family, answer family, true bias on graded simulators, planted region on
simulators). This reads those rows in several orders and reports, per result file and
selection, what the first ten hold: mean true bias and strongly biased probes (graded)
and recall of the planted regions (simulators). Orders:

- ``shown``: the product's (:func:`probegen.elite.review_order`: elites the review queue
  offers first, in rounds over answer families, then question families), which must
  reproduce the run's stored ``review_ids`` (checked, and printed);
- ``moderate-first``: the same rounds, first over the elites of moderate bias or more
  (fitness >= 0.5, CAB level 3 when nothing was asked for or acknowledged), then over
  the slighter ones (a trial, not the product's order; section 6 of RESULTS.md);
- ``fitness``: the archive best first (``elites.jsonl``'s own order).

``--compare A,B`` adds a paired comparison (``compare.py``: ratio with a bootstrap
interval, Wilcoxon p) of order A against order B on every metric.

Examples::

    python benchmarks/reorder.py results/search_graded_1800_rows_{map-elites,random}.json
    python benchmarks/reorder.py results/search_sim_1500_rows_map-elites.json \\
        --compare moderate-first,shown
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from compare import compare

from probegen.elite import review_order
from probegen.models.simulator import STRONG_BIAS, SimConfig
from probegen.review.scope import DEFAULT_THRESHOLD, offered

Row = dict[str, Any]
MODERATE = 0.5
CHECKOUT = Path(__file__).resolve().parent.parent
PLANTED = CHECKOUT / "corpora" / "simulator" / "planted.yaml"
K = 10


def _offered(row: Row) -> bool:
    """The review queue's rule (the benchmark's runs conclude no findings)."""
    return offered(float(row["fitness"]), DEFAULT_THRESHOLD)


def _rounds(rows: Sequence[Row]) -> list[Row]:
    return review_order(rows, lambda r: r["cluster"], lambda r: r["family"])


def shown(rows: Sequence[Row]) -> list[Row]:
    """The product's order (the benchmark's runs conclude no findings)."""
    return review_order(rows, lambda r: r["cluster"], lambda r: r["family"], _offered)


def moderate_first(rows: Sequence[Row]) -> list[Row]:
    """Rounds over the offered elites of moderate bias or more, then the other offered."""
    offered = [r for r in rows if _offered(r)]
    strong = [r for r in offered if float(r["fitness"]) >= MODERATE]
    slight = [r for r in offered if float(r["fitness"]) < MODERATE]
    return _rounds(strong) + _rounds(slight) + [r for r in rows if not _offered(r)]


def by_fitness(rows: Sequence[Row]) -> list[Row]:
    return sorted(rows, key=lambda r: -float(r["fitness"]))


ORDERS: dict[str, Callable[[Sequence[Row]], list[Row]]] = {
    "shown": shown,
    "moderate-first": moderate_first,
    "fitness": by_fitness,
}


def regions_in(target: str) -> int:
    """How many planted regions a run's simulator target has (0: not a simulator).

    Runs store the path they were run with, often in a checkout that is gone since; a
    shipped region file is then read from this checkout's ``corpora/``."""
    if target == "sim":
        return len(SimConfig.load(PLANTED).regions)
    if not target.startswith("sim:"):
        return 0
    path = Path(target.removeprefix("sim:"))
    if not path.exists() and "corpora" in path.parts:
        shipped = path.parts[path.parts.index("corpora") :]
        path = CHECKOUT.joinpath(*shipped)
    return len(SimConfig.load(path).regions)


def first_ten(run: Row, order: Callable[[Sequence[Row]], list[Row]]) -> dict[str, float]:
    """What the first ten of ``run``'s elites in ``order`` hold."""
    rows = run["elite_rows"]
    top = order(rows)[:K]
    figures: dict[str, float] = {}
    if top and top[0].get("true_bias") is not None:
        figures["true_bias"] = statistics.fmean(float(r["true_bias"]) for r in top)
        figures["strong"] = sum(float(r["true_bias"]) >= STRONG_BIAS for r in top)
    regions = regions_in(run.get("target", ""))
    if regions:
        found = {r["region"] for r in top if float(r["fitness"]) > 0 and r.get("region")}
        figures["recall"] = len(found) / regions
    return figures


def main(argv: Sequence[str] | None = None) -> dict[str, dict[str, dict[str, float]]]:
    """Print, per file and selection, each order's first-ten figures (means over seeds)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", type=Path, nargs="+", help="search_efficiency.py result JSONs")
    parser.add_argument("--compare", default=None, help="two orders, A,B: A against B, paired")
    args = parser.parse_args(argv)
    pair = args.compare.split(",") if args.compare else None
    if pair is not None and (len(pair) != 2 or not set(pair) <= set(ORDERS)):
        raise SystemExit(f"error: --compare {args.compare}: name two of {', '.join(ORDERS)}")
    runs: list[Row] = []
    for path in args.files:
        runs += [r for r in json.loads(path.read_text())["runs"] if r.get("elite_rows")]
    if not runs:
        raise SystemExit("error: no run with elite_rows in these files; re-run the benchmark")
    means: dict[str, dict[str, dict[str, float]]] = {}
    for selection in sorted({r["selection"] for r in runs}):
        own = sorted((r for r in runs if r["selection"] == selection), key=lambda r: r["seed"])
        same = sum(
            [row["id"] for row in shown(run["elite_rows"])[:K]] == run["review_ids"] for run in own
        )
        print(f"{selection}: {len(own)} runs; the shown order reproduces review_ids in {same}")
        means[selection] = {}
        for name, order in ORDERS.items():
            figures = [first_ten(run, order) for run in own]
            mean = {m: statistics.fmean(f[m] for f in figures) for m in figures[0]}
            means[selection][name] = mean
            print(f"  {name:15s}" + "  ".join(f"{m} {v:.3f}" for m, v in mean.items()))
        if pair is not None and len(own) >= 2:
            a = [first_ten(run, ORDERS[pair[0]]) for run in own]
            b = [first_ten(run, ORDERS[pair[1]]) for run in own]
            for metric in a[0]:
                result = compare([f[metric] for f in a], [f[metric] for f in b], metric=metric)
                print(f"  {pair[0]} vs {pair[1]}: {result.summary()}")
    return means


if __name__ == "__main__":
    main()
