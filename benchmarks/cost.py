"""Cost: a second identical ``probegen evolve`` run sends no target calls.

Starts the simulator server, then runs the same ``probegen evolve --target openai:sim
--base-url ...`` command twice with the same ``--run-dir`` (so the same run store and
response cache), seed and configuration. The server's request counter says how many
calls reached the target in each run; the CLI's own "Target calls sent: N, answered
from cache: M" line is shown beside it.

Examples::

    python benchmarks/cost.py                       # budget 400, 3 identical runs
    python benchmarks/cost.py --budget 1000 --runs 2
    python benchmarks/cost.py --quick               # in-process, tiny
"""

from __future__ import annotations

import argparse
import contextlib
import io
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import http_json, print_machine, sim_server, table, write_json

CALLS_LINE = re.compile(r"Target calls sent: (\d+), answered from cache: (\d+)")


def evolve(argv: list[str], in_process: bool) -> str:
    """Run ``probegen evolve ARGV``; returns its output (raises if it failed)."""
    if not in_process:
        result = subprocess.run(
            [sys.executable, "-m", "probegen", "evolve", *argv],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(f"probegen evolve failed:\n{result.stderr[-3000:]}")
        return result.stdout
    from probegen.cli.app import main

    # The CLI's rich console writes to whatever sys.stdout is at the time; redirecting it
    # (rather than setting console.file) leaves the console as it was afterwards.
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer), contextlib.suppress(SystemExit):
        main(["evolve", *argv])
    return buffer.getvalue()


def main(argv: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """Run the benchmark and print its table; returns one row per run."""
    parser = argparse.ArgumentParser(description="a repeated evolve run sends 0 target calls")
    parser.add_argument("--budget", type=int, default=400)
    parser.add_argument("--runs", type=int, default=3, help="identical runs (>= 2)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--quick", action="store_true", help="a tiny smoke run, in-process")
    args = parser.parse_args(argv)
    generations, population = 50, 8
    if args.quick:
        args.budget, args.runs, generations, population = 16, 2, 1, 3
    info = print_machine()
    rows: list[dict[str, Any]] = []
    with sim_server() as base_url, tempfile.TemporaryDirectory() as run_dir:
        command = [
            "--target", "openai:sim", "--base-url", f"{base_url}/v1", "--attr", "gender",
            "--run-dir", run_dir, "--seed", str(args.seed), "--budget", str(args.budget),
            "--generations", str(generations), "--population", str(population),
            "--top", "0",
        ]  # fmt: skip
        for run in range(1, args.runs + 1):
            http_json(f"{base_url}/stats/reset", method="POST")
            started = time.perf_counter()
            output = evolve(command, in_process=args.quick)
            wall = time.perf_counter() - started
            reached = int(str(http_json(f"{base_url}/stats")["completions"]))
            match = CALLS_LINE.search(" ".join(output.split()))
            row = {
                "run": run,
                "calls_at_server": reached,
                "sent_by_probegen": int(match.group(1)) if match else None,
                "cache_hits": int(match.group(2)) if match else None,
                "wall_s": wall,
            }
            rows.append(row)
            print(row, flush=True)
    print(
        f"\ncost: `probegen evolve --target openai:sim --attr gender --budget {args.budget} "
        f"--seed {args.seed}` run {args.runs} times on one run store\n"
    )
    print(
        table(
            ["run", "calls reaching the server", "sent (CLI)", "from cache (CLI)", "wall s"],
            [
                [r["run"], r["calls_at_server"], r["sent_by_probegen"], r["cache_hits"],
                 f"{r['wall_s']:.1f}"]
                for r in rows
            ],
        )
    )  # fmt: skip
    write_json(args.json, {"machine": info, "args": vars(args), "runs": rows})
    return rows


if __name__ == "__main__":
    main()
