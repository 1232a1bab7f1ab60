"""Pool trace: which children a search pools at each true strength, and which it queries.

`reach.py --climb` says how often an operator *can* take a graded region's question up a
level. A search still has to propose such a child (an emitter picks a parent and an
operator) and its screen has to query it (the surrogate ranks each pool and only the best
are asked). This runs ``search_efficiency.py`` with the same arguments and records every
pool the screen ranked: each candidate's operator, whether the screen chose it, and the
region and strength the simulator gives its question. Per region @ strength: children
pooled, children queried, and both by operator.

Besides the counts, the screen's view of each group, queried and passed over: the
surrogate's mean prediction, the prediction less the bar of the archive cell the child
would enter (filled cells), the share headed for an empty cell, and novelty.

It watches the screen by wrapping ``Scheduler._choose`` and the ``select_batch`` it calls
for the length of the run (the scheduler has no observer hook; this is a benchmark, not
a product feature). The
simulator is read from ``--target sim:FILE`` (one region file; not the rotations), and
one ``--selections`` is traced at a time (``random`` queries every child it pools).

Example::

    python benchmarks/pool_trace.py --target sim:corpora/simulator/graded-study.yaml \\
        --budget 1800 --seeds 2,5,8 --selections map-elites --trace-json results/pool_trace.json
"""

from __future__ import annotations

import argparse
import statistics
import sys
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import search_efficiency
from _common import table, write_json
from reach import region_strength

from probegen.models.simulator import SimulatorBackend
from probegen.search import scheduler


@dataclass
class Pooled:
    """One pooled child and how the screen saw it (None where no surrogate ranked it)."""

    text: str
    """Its question (first variant)."""
    operator: str
    queried: bool
    predicted: float | None = None
    """The surrogate's predicted fitness."""
    bar: float | None = None
    """The best fitness in the archive cell it would enter; None for an empty cell."""
    novelty: float | None = None


@contextmanager
def traced_pools() -> Iterator[list[Pooled]]:
    """Every candidate the screen ranks while the block runs, with its prediction."""
    seen: list[Pooled] = []
    choose, select = scheduler.Scheduler._choose, scheduler.select_batch
    last: dict[str, Any] = {}

    def capturing(*args: Any, **kwargs: Any) -> Any:
        selection = select(*args, **kwargs)
        last.update(selection=selection, cells=kwargs["cells"], bars=kwargs["bars"],
                    novelty=kwargs["novelty"])  # fmt: skip
        return selection

    def recording(
        self: scheduler.Scheduler, pool: Sequence[scheduler._Pooled], n: int
    ) -> list[scheduler._Pooled]:
        last.clear()
        chosen = choose(self, pool, n)
        queried = {item.candidate.probe.id for item in chosen}
        for position, item in enumerate(pool):
            probe = item.candidate.probe
            row = Pooled(probe.variants()[0].text, item.candidate.operator, probe.id in queried)
            if last:  # the surrogate ranked this pool
                row.predicted = float(last["selection"].mean[position])
                row.bar = last["bars"].get(last["cells"][position])
                row.novelty = float(last["novelty"][position])
            seen.append(row)
        return chosen

    scheduler.Scheduler._choose = recording  # type: ignore[method-assign]
    scheduler.select_batch = capturing  # type: ignore[assignment]
    try:
        yield seen
    finally:
        scheduler.Scheduler._choose = choose  # type: ignore[method-assign]
        scheduler.select_batch = select


def where(sim: SimulatorBackend, text: str) -> str:
    """``region@strength`` of a question (``-@0`` outside every region)."""
    region, strength = region_strength(sim, text)
    return f"{region or '-'}@{strength:g}"


def tally(sim: SimulatorBackend, pooled: Sequence[Pooled]) -> dict[str, dict[str, list[int]]]:
    """``{"region@strength": {"all" or operator: [pooled, queried]}}``."""
    counts: dict[str, dict[str, list[int]]] = {}
    for row in pooled:
        by_operator = counts.setdefault(where(sim, row.text), {})
        for key in ("all", row.operator):
            tallied = by_operator.setdefault(key, [0, 0])
            tallied[0] += 1
            tallied[1] += row.queried
    return counts


def _mean(values: Sequence[float]) -> float | None:
    return statistics.fmean(values) if values else None


def screen_view(
    sim: SimulatorBackend, pooled: Sequence[Pooled]
) -> dict[str, dict[str, dict[str, float | int | None]]]:
    """Per ``region@strength``, for the queried and the passed-over children: how many,
    their mean predicted fitness, the mean of prediction less their cell's bar (filled
    cells only), the share headed for an empty cell, and their mean novelty."""
    groups: dict[str, dict[str, list[Pooled]]] = {}
    for row in pooled:
        if row.predicted is None:
            continue
        side = "queried" if row.queried else "passed"
        groups.setdefault(where(sim, row.text), {}).setdefault(side, []).append(row)
    view: dict[str, dict[str, dict[str, float | int | None]]] = {}
    for key, sides in groups.items():
        for side, rows in sides.items():
            filled = [r for r in rows if r.bar is not None]
            view.setdefault(key, {})[side] = {
                "children": len(rows),
                "predicted": _mean([r.predicted for r in rows if r.predicted is not None]),
                "over_bar": _mean(
                    [
                        r.predicted - r.bar
                        for r in filled
                        if r.predicted is not None and r.bar is not None
                    ]
                ),
                "empty_cell": (len(rows) - len(filled)) / len(rows),
                "novelty": _mean([r.novelty for r in rows if r.novelty is not None]),
            }
    return view


def main(argv: Sequence[str] | None = None) -> dict[str, object]:
    """Run ``search_efficiency.py`` with ``argv`` (less ``--trace-json PATH``, where the
    trace goes), tracing its pools; prints the trace and returns it."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], add_help=False)
    parser.add_argument("--trace-json", type=Path, default=None, help="write the trace here")
    own, rest = parser.parse_known_args(argv)
    args = search_efficiency.parse_args(rest)
    if not str(args.target).startswith("sim:"):
        raise SystemExit("pool_trace.py: --target must be sim:FILE (one simulator region file)")
    if "," in args.selections:
        raise SystemExit("pool_trace.py: --selections must name one selection (map-elites)")
    sim = SimulatorBackend(Path(str(args.target).removeprefix("sim:")))
    with traced_pools() as pooled:
        search_efficiency.main(rest)
    counts = tally(sim, pooled)
    rows = []
    for key in sorted(counts):
        total, queried = counts[key]["all"]
        ops = Counter({op: n for op, (n, _) in counts[key].items() if op != "all"})
        rows.append([
            key, total, queried, f"{queried / total:.3f}",
            ", ".join(f"{op} {n}/{counts[key][op][1]}" for op, n in ops.most_common()),
        ])  # fmt: skip
    print("\npool trace: children pooled and queried, by the question's region @ strength\n")
    header = ["region @ strength", "pooled", "queried", "share", "by operator (pooled/queried)"]
    print(table(header, rows))
    view = screen_view(sim, pooled)
    rows = []
    for key in sorted(view):
        for side in ("queried", "passed"):
            if side in view[key]:
                got = view[key][side]
                rows.append([key, side, got["children"]] + [
                    "-" if got[f] is None else f"{got[f]:.3f}"
                    for f in ("predicted", "over_bar", "empty_cell", "novelty")
                ])  # fmt: skip
    print(
        "\nthe screen's view: mean prediction, prediction less the cell's bar (filled "
        "cells), share for an empty cell, novelty\n"
    )
    print(
        table(
            [
                "region @ strength",
                "children",
                "how many",
                "predicted",
                "over bar",
                "empty cell",
                "novelty",
            ],
            rows,
        )
    )
    figures: dict[str, object] = {"args": vars(args), "pools": counts, "screen": view}
    write_json(own.trace_json, figures)
    return figures


if __name__ == "__main__":
    main()
