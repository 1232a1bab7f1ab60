"""Batch: a search through a provider batch API against the same search by calls.

Starts the simulator server (which serves the OpenAI Batch endpoints), then runs the
same ``probegen.evolve`` three times on ``openai:gpt-4o-mini`` (priced, so the saving
shows), each in a fresh run directory: by calls, with ``batch=True``, and with
``batch=True, prefetch=True`` (each probe's whole race asked for at once: one batch per
generation). It reports the target calls, how many batches carried them (the calls a
generation or racing rung makes together go as one), what the answers cost at list and
at batch price (summed from the response cache), and whether the searches kept the same
elites (they must while the generations, not the budget, end them: a batch answer is
the answer the call gets, and a prefetched race reads its answers as racing would have
asked for them; a prefetching search spends more of a budget per probe). The server's
batches end after ``--delay-s``; a real provider's take minutes to hours, so wall time
here says nothing about a real run, while the number of batches, which is the number
of round trips, does.

Examples::

    python benchmarks/batch.py                      # budget 400, 3 generations
    python benchmarks/batch.py --budget 1000 --generations 6 --json results/batch.json
    python benchmarks/batch.py --quick
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import http_json, print_machine, sim_server, table, write_json

import probegen
from probegen.store import Store

TARGET = "openai:gpt-4o-mini"


WAYS = ("calls", "batch", "batch-prefetch")


def run(base_url: str, run_dir: Path, way: str, args: argparse.Namespace) -> dict[str, Any]:
    """One search (a way of :data:`WAYS`); its calls, batches, cost and elites."""
    before = len(http_json(f"{base_url}/batch/log")["batches"])  # type: ignore[arg-type]
    started = time.perf_counter()
    options: dict[str, Any] = {}
    if way != "calls":
        options = {"batch": True, "batch_poll_s": 0.05, "prefetch": way == "batch-prefetch"}
    result = probegen.evolve(
        target=TARGET, attr="gender", run_dir=run_dir, budget=args.budget,
        generations=args.generations, population=args.population, judge="stats",
        replicate=False, seed=args.seed, **options,
    )  # fmt: skip
    seconds = time.perf_counter() - started
    log: list[dict[str, Any]] = http_json(f"{base_url}/batch/log")["batches"]  # type: ignore[assignment]
    batches = log[before:]
    with Store.in_run_dir(run_dir) as store:
        [row] = store.select("SELECT sum(cost_usd), count(*) FROM responses")
    return {
        "way": way,
        "status": result.status,
        "calls": result.calls_sent,
        "batches": len(batches),
        "largest_batch": max((len(b["custom_ids"]) for b in batches), default=0),
        "cost_usd": row[0],
        "answers": row[1],
        "seconds": seconds,
        "elites": [e.probe_id for e in result.elites],
    }


def main(argv: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """Run the benchmark and print its table; returns every run's figures."""
    parser = argparse.ArgumentParser(description="evolve by batch and by calls")
    parser.add_argument("--budget", type=int, default=400)
    parser.add_argument("--generations", type=int, default=3)
    parser.add_argument("--population", type=int, default=6)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--delay-s", type=float, default=0.05, help="server's batch time")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--quick", action="store_true", help="a tiny smoke run")
    args = parser.parse_args(argv)
    if args.quick:
        args.budget, args.generations, args.population = 60, 1, 3
    info = print_machine()
    with sim_server() as base_url, tempfile.TemporaryDirectory() as tmp:
        http_json(f"{base_url}/batch/settings", method="POST",
                  body={"delay_s": args.delay_s, "item_s": 0.0, "fail_share": 0.0})  # fmt: skip
        os.environ["OPENAI_BASE_URL"] = f"{base_url}/v1"
        runs = [run(base_url, Path(tmp) / way, way, args) for way in WAYS]
    calls = runs[0]
    same = {r["way"]: r["elites"] == calls["elites"] for r in runs[1:]}
    rows = [
        [r["way"], r["status"], r["calls"], r["batches"] or "-", r["largest_batch"] or "-",
         f"{r['cost_usd']:.5f}", f"{r['seconds']:.1f}"]
        for r in runs
    ]  # fmt: skip
    print(f"\nbatch: evolve on {TARGET} (simulator), budget {args.budget}, "
          f"{args.generations} generations, population {args.population}\n")  # fmt: skip
    print(table(["way", "status", "target calls", "batches", "largest batch",
                 "answers' cost USD", "wall s"], rows))  # fmt: skip
    for r in runs[1:]:
        saved = 1 - r["cost_usd"] / calls["cost_usd"] if calls["cost_usd"] else float("nan")
        print(f"{r['way']}: saving {saved:.0%}; calls per batch "
              f"{r['calls'] / max(1, r['batches']):.1f}; same elites as by calls: "
              f"{same[r['way']]}")  # fmt: skip
    write_json(args.json, {"machine": info, "args": vars(args), "runs": runs, "same_elites": same})
    return runs


if __name__ == "__main__":
    main()
