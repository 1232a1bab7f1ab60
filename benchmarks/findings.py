"""Findings you can trust, measured against ground truth.

Three experiments, each a script run that prints figures (``--json FILE`` keeps them):

- ``planted`` (default): the planted-bias simulator, several seeds, equal budgets. Every
  finding is checked against the simulator's truth: a probe truly treats groups
  differently when it lies in a planted region *and* compares a group the region
  targets with one it does not. Reported per run: findings, false findings, the
  false-discovery proportion (FDP; its mean over seeds is what ``--fdr`` promises to
  bound), recall of the reachable regions by findings and among the top-K by fitness
  (recall@K, as in RESULTS.md section 1), and the replication rate.
- ``null``: a simulator with no region at all, many seeds: every finding is false, so
  the share of runs with any finding is the family-wise error, which Benjamini-Hochberg
  bounds by the level when nothing is real.
- ``local``: the probegen command of the README's set-up command 1 (read from the
  README) as a subprocess, timed, with its findings and replication read back.

Examples::

    python benchmarks/findings.py planted --budget 1500 --seeds 0,1,2,3,4
    python benchmarks/findings.py null --seeds 0-19 --budget 600
    python benchmarks/findings.py local
    python benchmarks/findings.py planted --quick
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import resource
import shlex
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import REPO_ROOT, drawn_per_seed, mean_sd, print_machine, table, write_json

from probegen.corpora import Corpora, load_corpora
from probegen.embeddings import Embedder
from probegen.evolve.conclude import Conclusion, discovery_scores
from probegen.evolve.config import EvolveConfig
from probegen.evolve.lifecycle import make_evolution, publish_outputs
from probegen.evolve.run import GenerationReport
from probegen.index import EmbeddingIndex
from probegen.models.simulator import DEFAULT_SIM_CONFIG, SimulatorBackend
from probegen.probe import Probe
from probegen.review.queue import build_queue
from probegen.search.baselines import SELECTIONS
from probegen.store import Store

NULL_SIM = """\
attribute: gender
noise: 0.15
sentences: 2
regions: []
neutral:
  - "Think about your goals before you decide."
  - "Gather the information you need first."
  - "Talk it through with someone you trust."
  - "Weigh the practical pros and cons."
  - "Consider the timing and your budget."
  - "Choose the option that fits your priorities best."
  - "Start with the facts and list what matters most to you."
  - "Take the next small step and review how it goes."
"""


def truly_biased(probe: Probe, sim: SimulatorBackend, corpora: Corpora) -> str | None:
    """The planted region a probe truly shows, or None: in a region, and comparing a
    group the region targets with one it does not."""
    region = sim.region_of(probe.variants()[0].text)
    if region is None:
        return None
    groups = {v.group for v in probe.grouped_variants(corpora)}
    targeted = groups & set(region.target_groups)
    return region.name if targeted and groups - targeted else None


def reachable_regions(sim: SimulatorBackend, corpora: Corpora) -> set[str]:
    """Regions with at least one keyword the corpora or seeds can write (see RESULTS.md
    on stem-study, once unreachable)."""
    text = " ".join(s.template.lower() for s in corpora.seeds)
    text += " " + (corpora.root / "framings.yaml").read_text(encoding="utf-8").lower()
    text += " " + (corpora.root / "taxonomy.yaml").read_text(encoding="utf-8").lower()
    return {
        r.name for r in sim.config.regions if any(k.lower() in text.split() for k in r.keywords)
    }


def run_one(
    sim_path: Path | None, seed: int, budget: int, k: int, work: Path, embedder: Embedder,
    corpora: Corpora, selection: str = "map-elites", independent_draws: bool = True,
) -> dict[str, object]:  # fmt: skip
    """One evolve run on a simulator, concluded (FDR + replication) and published as the
    product publishes it (the stored elites the review queue reads), checked against
    truth."""
    backend = SimulatorBackend(sim_path)
    config = EvolveConfig(
        target="sim" if sim_path is None else f"sim:{sim_path}",
        attribute="gender",
        generations=1000,
        population=8,
        budget=budget,
        seed=seed,
        selection=selection,
    )
    if independent_draws:
        config = config.model_copy(update={"generate": drawn_per_seed(config.generate, seed)})
    run_dir = work / f"run-{selection}-{seed}"
    started = time.perf_counter()
    with Store.in_run_dir(run_dir) as store:
        run_id = store.create_run("evolve", {"evolve": config.model_dump(mode="json")})
        evolution = make_evolution(
            config,
            store=store,
            run_id=run_id,
            corpora=corpora,
            target=backend,
            index=EmbeddingIndex(embedder, threshold=config.dedup_threshold),
        )

        async def go() -> tuple[list[GenerationReport], Conclusion]:
            reports = await evolution.run()
            return reports, await evolution.conclude()

        reports, conclusion = asyncio.run(go())
        searched = evolution.spend.queries
        publish_outputs(evolution, reports, conclusion, run_dir / "out", store=store,
                        corpora=corpora)  # fmt: skip
        # The review queue's first K: what a reviewer meets first (findings first).
        queue = [item.probe_id for item in build_queue(store, runs=[run_id])[:k]]
        probes = {p.id: p for p in store.probes(run_id)}
        fitness = {
            pid: score.fitness or 0.0
            for pid, score in discovery_scores(store, run_id, evolution.target.identity).items()
        }
        sent = store.select("SELECT COUNT(*) AS n FROM queries WHERE run_id = ?", (run_id,))
        concluding = int(sent[0]["n"]) - searched
    wall = time.perf_counter() - started
    truth = {pid: truly_biased(probe, backend, corpora) for pid, probe in probes.items()}
    findings = conclusion.findings
    false = [pid for pid in findings if truth.get(pid) is None]
    ranked = sorted(fitness, key=lambda pid: -fitness[pid])
    top = [pid for pid in ranked[:k] if fitness[pid] > 0]
    regions = {r.name for r in backend.config.regions}
    return {
        "selection": selection,
        "seed": seed,
        "wall_s": round(wall, 1),
        "queries": searched,
        "concluding_queries": concluding,
        "tested": conclusion.tested,
        "findings": len(findings),
        "false_findings": len(false),
        "fdp": len(false) / len(findings) if findings else 0.0,
        "regions_found": sorted({t for p in findings if (t := truth.get(p))}),
        "finding_recall": (
            len({truth[p] for p in findings if truth.get(p)}) / len(regions) if regions else None
        ),
        f"recall_at_{k}": (
            len({truth[p] for p in top if truth.get(p)}) / len(regions) if regions else None
        ),
        f"queue_recall_at_{k}": (
            len({truth[p] for p in queue if truth.get(p)}) / len(regions) if regions else None
        ),
        "queue_findings": sum(1 for p in queue if p in findings),
        "replication_rate": conclusion.replication_rate,
        "by_measure": dict(Counter(_measure(conclusion, p) for p in findings)),
        "false_by_measure": dict(Counter(_measure(conclusion, p) for p in false)),
    }


def _measure(conclusion: Conclusion, probe_id: str) -> str:
    effect = conclusion.assessments[probe_id].effect
    return effect.measure if effect else "-"


def simulate(args: argparse.Namespace, null: bool) -> list[dict[str, object]]:
    corpora = load_corpora()
    embedder = Embedder()
    results = []
    with tempfile.TemporaryDirectory(prefix="probegen-findings-") as tmp:
        work = Path(tmp)
        sim_path = None
        if null:
            sim_path = work / "null.yaml"
            sim_path.write_text(NULL_SIM, encoding="utf-8")
        for seed in args.seed_list:
            result = run_one(sim_path, seed, args.budget, args.k, work, embedder, corpora,
                             args.selection, args.independent_draws)  # fmt: skip
            print(json.dumps(result), flush=True)
            results.append(result)
    return results


def summarise(results: list[dict[str, object]], k: int) -> str:
    def column(key: str) -> list[float]:
        return [float(r[key]) for r in results if r.get(key) is not None]  # type: ignore[arg-type]

    rows = [
        ["runs", str(len(results))],
        ["probes tested", mean_sd(column("tested"))],
        ["findings", mean_sd(column("findings"))],
        ["false findings", mean_sd(column("false_findings"))],
        ["false-discovery proportion (mean over runs)", mean_sd(column("fdp"))],
        ["runs with any false finding", f"{sum(1 for r in results if r['false_findings'])}"],
        ["recall of regions by findings", mean_sd(column("finding_recall"))],
        [f"recall@{k} (top-{k} by fitness)", mean_sd(column(f"recall_at_{k}"))],
        [
            f"recall@{k} in the review queue (its first {k})",
            mean_sd(column(f"queue_recall_at_{k}")),
        ],
        [f"findings among the queue's first {k}", mean_sd(column("queue_findings"))],
        [
            "queries: search / conclusion",
            f"{mean_sd(column('queries'))} / {mean_sd(column('concluding_queries'))}",
        ],
        ["replication rate of findings", mean_sd(column("replication_rate"))],
        ["wall (s)", mean_sd(column("wall_s"))],
    ]
    return table(["figure", "mean ± sd"], rows)


def readme_main_job() -> list[str]:
    """The probegen command that ends README set-up command 1, as arguments."""
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    first = re.findall(r"```bash\n(.+?)\n```", readme, flags=re.S)[0]
    return shlex.split(first.split("&&")[-1])[1:]


def local(args: argparse.Namespace) -> dict[str, object]:
    """README set-up command 1's run, exactly, in a fresh run directory."""
    with tempfile.TemporaryDirectory(prefix="probegen-local-") as tmp:
        command = [sys.executable, "-m", "probegen", *readme_main_job(), "--run-dir", tmp,
                   *args.extra]  # fmt: skip
        started = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True, cwd=REPO_ROOT)
        wall = time.perf_counter() - started
        peak_rss_gb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024**2
        print(done.stdout[-3000:])
        runs = [p for p in Path(tmp).iterdir() if p.is_dir()]
        records = (
            [json.loads(line) for line in (runs[0] / "elites.jsonl").read_text().splitlines()]
            if runs
            else []
        )
        summary = (runs[0] / "summary.md").read_text() if runs else ""
    findings = [r for r in records if r.get("finding")]
    replicated = [r for r in findings if (r.get("replication") or {}).get("replicated")]
    head = summary.split("## Progress")[0]
    return {
        "command": " ".join(command[2:]),
        "exit": done.returncode,
        "wall_s": round(wall, 1),
        "peak_rss_gb": round(peak_rss_gb, 2),
        "findings_among_elites": len(findings),
        "replicated_among_elites": len(replicated),
        "summary_findings": head,
    }


def main(argv: list[str] | None = None) -> list[dict[str, object]]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("experiment", choices=("planted", "null", "local"), nargs="?",
                        default="planted")  # fmt: skip
    parser.add_argument("--budget", type=int, default=1500, help="target queries per run")
    parser.add_argument("--seeds", default="0,1,2,3,4", help="e.g. 0,1,2 or 0-19")
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--selection", default="map-elites", choices=SELECTIONS,
                        help="the search, or a baseline at the same budget")  # fmt: skip
    parser.add_argument(
        "--independent-draws",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="each run seed samples the simulator from its own base seed (the default since "
        "2026-12-07); --no-independent-draws samples every run from evolve's seed 0, as "
        "results stored before then did, so a question asked in two runs is answered alike",
    )
    parser.add_argument("--quick", action="store_true", help="a smoke run")
    parser.add_argument("--json", type=Path)
    parser.add_argument("extra", nargs="*", help="local: extra evolve flags")
    args = parser.parse_args(argv)
    if args.quick:
        args.budget, args.seeds = 120, "0"
    if "-" in args.seeds:
        low, high = args.seeds.split("-")
        args.seed_list = list(range(int(low), int(high) + 1))
    else:
        args.seed_list = [int(s) for s in args.seeds.split(",")]
    machine = print_machine()
    if args.experiment == "local":
        result = local(args)
        print(json.dumps({k: v for k, v in result.items() if k != "summary_findings"}, indent=1))
        print(result["summary_findings"])
        if args.json:
            write_json(args.json, {"machine": machine, "local": result})
        return [result]
    results = simulate(args, null=args.experiment == "null")
    print(summarise(results, args.k))
    if args.json:
        write_json(
            args.json,
            {"machine": machine, "experiment": args.experiment, "budget": args.budget,
             "selection": args.selection, "sim": str(DEFAULT_SIM_CONFIG),
             "independent_draws": args.independent_draws, "runs": results},
        )  # fmt: skip
    return results


if __name__ == "__main__":
    main()
