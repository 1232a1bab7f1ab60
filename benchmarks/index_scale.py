"""Index scale: time and peak memory to embed, deduplicate and cluster many templates,
and to deduplicate a million vectors with faiss flat, faiss HNSW and numpy.

Every case runs in its own subprocess, so its peak resident memory
(``getrusage(RUSAGE_SELF).ru_maxrss``) is its own; the baseline (interpreter, torch,
faiss and MiniLM loaded, before any work) is reported beside it.

**Templates** (``--templates 10000,100000``): templates made by expanding the shipped
seeds combinatorially (seed x taxonomy topic x opening phrase, deterministic shuffle),
put through the search's own :class:`~probegen.index.EmbeddingIndex`: MiniLM embedding of
the masked templates (one encoder call), deduplication with ``add_unique`` in batches of
1,000 (as the search adds whole generations; threshold 0.98), then k-means with
k = sqrt(n) (as ``summary.md`` clusters the archive). ``--embed-sample M`` embeds only M
templates and extrapolates the embedding time linearly (the vectors for the rest are the
sample's, perturbed, so deduplication and clustering still run at full size).

**Vectors** (``--vectors 1000000``): random unit 384-d vectors, 5% of them planted
near-copies (cosine ~0.99) of others; each vector's nearest other vector is found and
flagged at cosine >= 0.98. ``flat`` (exact faiss ``IndexFlatIP``) and ``numpy`` (exact,
blockwise matrix products) are timed on a random subsample of ``--queries`` (10,000) queries
against all vectors and extrapolated linearly to all of them (the work is linear in the
number of queries): all-pairs on 1M x 1M takes hours on 2 cores. ``hnsw`` (faiss
``IndexHNSWFlat``, M=32, efConstruction=40, efSearch=64) is built on all vectors and
queried with all of them. Recall is the share of planted copies among the queries that
were flagged.

Examples::

    python benchmarks/index_scale.py                                  # everything
    python benchmarks/index_scale.py --templates 10000 --vectors 0
    python benchmarks/index_scale.py --quick
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import resource
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import print_machine, table, write_json

DIMENSION = 384
THRESHOLD = 0.98
OPENERS = (
    "",
    "Quick question:",
    "I need some advice.",
    "Please be honest:",
    "Asking for a friend:",
    "My colleague asked me this:",
    "Be practical:",
    "In a few sentences,",
    "This is a bit urgent.",
    "I have been thinking about this for weeks.",
)


def peak_mb() -> float:
    """Peak resident memory of this process so far, in MB (Linux reports KB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def current_mb() -> float:
    """Resident memory now, in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def make_templates(n: int, seed: int = 0) -> list[str]:
    """``n`` distinct templates: seed x topic x opener, shuffled deterministically."""
    from probegen.corpora import load_corpora

    corpora = load_corpora()
    topics = [t for _, domain in corpora.taxonomy.domains() for t in domain.topics]
    combos = len(corpora.seeds) * len(topics) * len(OPENERS)
    if n > combos:
        raise SystemExit(f"at most {combos} templates can be made, not {n}")
    rng = random.Random(seed)
    picked = rng.sample(range(combos), n)
    templates = []
    for i in picked:
        s, rest = divmod(i, len(topics) * len(OPENERS))
        t, o = divmod(rest, len(OPENERS))
        opener = OPENERS[o]
        text = f"{opener} {corpora.seeds[s].template} (This is about {topics[t]}.)"
        templates.append(text.strip())
    return templates


def case_templates(n: int, embed_sample: int | None, batch: int) -> dict[str, Any]:
    """Embed + dedup + cluster ``n`` templates with the search's index."""
    import numpy as np

    from probegen.embeddings import Embedder
    from probegen.index import EmbeddingIndex
    from probegen.template import mask

    templates = make_templates(n)
    embedder = Embedder()
    embedder.encode(["warm up the encoder"])
    baseline = current_mb()
    index = EmbeddingIndex(embedder, threshold=THRESHOLD, device="cpu")
    figures: dict[str, Any] = {"case": f"templates {n}", "baseline_mb": baseline}
    started = time.perf_counter()
    if embed_sample is None or embed_sample >= n:
        index.embed(templates)
        figures["embed_s"] = time.perf_counter() - started
        figures["embedded"] = n
    else:
        sample = index.embed(templates[:embed_sample])
        took = time.perf_counter() - started
        figures["embed_s"] = took * n / embed_sample
        figures["embedded"] = embed_sample
        figures["embed_extrapolated"] = True
        # The rest get a sample vector, perturbed: distinct, and as clustered as real ones.
        rng = np.random.default_rng(0)
        for i, template in enumerate(templates[embed_sample:]):
            vector = sample[i % embed_sample] + rng.normal(0, 0.05, DIMENSION)
            index._cache[mask(template, "[GROUP]")] = (vector / np.linalg.norm(vector)).astype(
                np.float32
            )
    figures["embed_per_s"] = n / figures["embed_s"]
    keys = [f"t{i}" for i in range(n)]
    started = time.perf_counter()
    duplicates = 0
    for start in range(0, n, batch):
        chunk = zip(keys[start : start + batch], templates[start : start + batch], strict=True)
        checks = index.add_unique(list(chunk))
        duplicates += sum(c.is_duplicate for c in checks)
    figures["dedup_s"] = time.perf_counter() - started
    figures["duplicates"] = duplicates
    k = max(1, round(math.sqrt(len(index))))
    started = time.perf_counter()
    index.kmeans(k, seed=0)
    figures["cluster_s"] = time.perf_counter() - started
    figures["clusters"] = k
    figures["peak_mb"] = peak_mb()
    return figures


def planted_vectors(n: int, seed: int = 0) -> tuple[Any, Any]:
    """``n`` unit vectors whose last 5% are near-copies of random earlier ones; returns
    ``(vectors, is_copy)``."""
    import numpy as np

    rng = np.random.default_rng(seed)
    data = rng.standard_normal((n, DIMENSION), dtype=np.float32)
    copies = n // 20
    originals = rng.integers(0, n - copies, copies)
    noise = rng.standard_normal((copies, DIMENSION), dtype=np.float32)
    noise /= np.linalg.norm(noise, axis=1, keepdims=True)
    data /= np.linalg.norm(data, axis=1, keepdims=True)
    data[n - copies :] = data[originals] + 0.12 * noise
    data /= np.linalg.norm(data, axis=1, keepdims=True)
    is_copy = np.zeros(n, dtype=bool)
    is_copy[n - copies :] = True
    return data, is_copy


def build_hnsw(data: Any) -> Any:
    """faiss ``IndexHNSWFlat`` (M=32, efConstruction=40) over ``data``, inner product."""
    import faiss

    index = faiss.IndexHNSWFlat(DIMENSION, 32, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = 40
    index.add(data)
    return index


def case_vectors(method: str, n: int, queries: int) -> dict[str, Any]:
    """Nearest other vector for each query vector, flagged at ``THRESHOLD``."""
    import faiss
    import numpy as np

    data, is_copy = planted_vectors(n)
    baseline = current_mb()
    rng = np.random.default_rng(1)
    figures: dict[str, Any] = {"case": f"vectors {n} {method}", "baseline_mb": baseline}
    if method == "hnsw":
        query_ids = np.arange(n)
    else:
        query_ids = np.sort(rng.choice(n, min(queries, n), replace=False))
    started = time.perf_counter()
    index: Any
    if method == "flat":
        index = faiss.IndexFlatIP(DIMENSION)
        index.add(data)
        figures["build_s"] = time.perf_counter() - started
        started = time.perf_counter()
        sims, ids = index.search(data[query_ids], 2)
    elif method == "hnsw":
        index = build_hnsw(data)
        figures["build_s"] = time.perf_counter() - started
        index.hnsw.efSearch = 64
        started = time.perf_counter()
        sims, ids = index.search(data[query_ids], 2)
    elif method == "numpy":
        figures["build_s"] = 0.0
        started = time.perf_counter()
        sims = np.empty((len(query_ids), 2), dtype=np.float32)
        ids = np.empty((len(query_ids), 2), dtype=np.int64)
        block = 128  # 128 x 1M float32 = 512 MB per product
        for start in range(0, len(query_ids), block):
            product = data[query_ids[start : start + block]] @ data.T
            top = np.argpartition(-product, 1, axis=1)[:, :2]
            values = np.take_along_axis(product, top, axis=1)
            order = np.argsort(-values, axis=1)
            sims[start : start + block] = np.take_along_axis(values, order, axis=1)
            ids[start : start + block] = np.take_along_axis(top, order, axis=1)
    else:
        raise SystemExit(f"unknown method {method}")
    searched = time.perf_counter() - started
    figures["search_s"] = searched
    figures["queries"] = len(query_ids)
    figures["search_all_s"] = searched * n / len(query_ids)
    figures["extrapolated"] = len(query_ids) < n
    figures.update(flag_nearest(sims, ids, query_ids, is_copy))
    figures["peak_mb"] = peak_mb()
    return figures


def flag_nearest(sims: Any, ids: Any, query_ids: Any, is_copy: Any) -> dict[str, Any]:
    """Flag each query whose nearest *other* vector is at cosine >= ``THRESHOLD`` (the
    query itself is skipped wherever it was returned); recall of the planted copies."""
    import numpy as np

    own = ids == query_ids[:, None]
    nearest = np.where(own[:, 0], sims[:, 1], sims[:, 0])
    flagged = nearest >= THRESHOLD
    copies = is_copy[query_ids]
    recall = float(flagged[copies].mean()) if copies.any() else float("nan")
    return {"planted_recall": recall, "flagged": int(flagged.sum())}


def case_hnsw_sweep(n: int, queries: int, ef_values: list[int]) -> dict[str, Any]:
    """HNSW built once on ``n`` vectors, then searched on a ``queries`` subsample at each
    efSearch: how recall of the planted copies trades against search time."""
    import numpy as np

    data, is_copy = planted_vectors(n)
    baseline = current_mb()
    query_ids = np.sort(np.random.default_rng(1).choice(n, min(queries, n), replace=False))
    figures: dict[str, Any] = {"case": f"hnsw-sweep {n}", "baseline_mb": baseline}
    started = time.perf_counter()
    index = build_hnsw(data)
    figures["build_s"] = time.perf_counter() - started
    figures["queries"] = len(query_ids)
    sweep = []
    for ef in ef_values:
        index.hnsw.efSearch = ef
        started = time.perf_counter()
        sims, ids = index.search(data[query_ids], 2)
        searched = time.perf_counter() - started
        point = {"ef_search": ef, "search_s": searched}
        point["search_all_s"] = searched * n / len(query_ids)
        sweep.append(point | flag_nearest(sims, ids, query_ids, is_copy))
    figures["sweep"] = sweep
    figures["peak_mb"] = peak_mb()
    return figures


def run_case(args: list[str]) -> dict[str, Any]:
    """One case in this process (``--child`` and ``--quick``), with the machine's load
    average before and after (other processes skew timings on 2 cores)."""
    kind, *rest = args
    load_before = os.getloadavg()[0]
    if kind == "templates":
        sample = None if rest[1] == "none" else int(rest[1])
        figures = case_templates(int(rest[0]), sample, int(rest[2]))
    elif kind == "hnsw-sweep":
        figures = case_hnsw_sweep(int(rest[0]), int(rest[1]), [int(x) for x in rest[2].split(",")])
    else:
        figures = case_vectors(rest[0], int(rest[1]), int(rest[2]))
    figures["load_1min"] = [round(load_before, 2), round(os.getloadavg()[0], 2)]
    return figures


def run_child(args: list[str], in_process: bool = False) -> dict[str, Any]:
    """One case in a fresh interpreter; its last stdout line is its JSON figures."""
    figures: dict[str, Any]
    if in_process:
        figures = run_case(args)
        print(json.dumps(figures), flush=True)
        return figures
    result = subprocess.run(
        [sys.executable, __file__, "--child", *args], capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(f"case {args} failed:\n{result.stderr[-3000:]}")
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    print(json.dumps(figures), flush=True)
    return figures


def main(argv: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """Run every case (each in a subprocess) and print the tables."""
    parser = argparse.ArgumentParser(description="index scale: embed, dedup, cluster")
    parser.add_argument("--templates", default="10000,100000", help="template counts")
    parser.add_argument("--embed-sample", type=int, default=None, help="embed only M, extrapolate")
    parser.add_argument("--vectors", type=int, default=1_000_000, help="0 to skip")
    parser.add_argument("--methods", default="flat,hnsw,numpy")
    parser.add_argument("--queries", type=int, default=10_000, help="flat/numpy subsample")
    parser.add_argument(
        "--ef-sweep", default="", help="efSearch values for an HNSW recall/time sweep"
    )
    parser.add_argument("--batch", type=int, default=1000, help="add_unique batch size")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--quick", action="store_true", help="a tiny smoke run, in-process")
    parser.add_argument("--child", nargs="+", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        figures = run_case(args.child)
        print(json.dumps(figures))
        return [figures]
    if args.quick:
        args.templates, args.vectors, args.queries, args.batch = "100", 2000, 200, 50
        args.ef_sweep = "16,64"
    info = print_machine()
    results = []
    for n in (int(x) for x in args.templates.split(",") if x):
        sample = "none" if args.embed_sample is None else str(args.embed_sample)
        results.append(run_child(["templates", str(n), sample, str(args.batch)], args.quick))
    if args.vectors:
        for method in (m for m in args.methods.split(",") if m):
            case = ["vectors", method, str(args.vectors), str(args.queries)]
            results.append(run_child(case, args.quick))
        if args.ef_sweep:
            case = ["hnsw-sweep", str(args.vectors), str(args.queries), args.ef_sweep]
            results.append(run_child(case, args.quick))
    template_rows = [
        [
            r["case"].split()[1],
            f"{r['embed_s']:.1f}" + (" (extrapolated)" if r.get("embed_extrapolated") else ""),
            f"{r['embed_per_s']:.0f}",
            f"{r['dedup_s']:.1f}",
            r["duplicates"],
            f"{r['cluster_s']:.1f} (k={r['clusters']})",
            f"{r['peak_mb']:.0f} (baseline {r['baseline_mb']:.0f})",
            "{} -> {}".format(*r["load_1min"]),
        ]
        for r in results
        if r["case"].startswith("templates")
    ]
    vector_rows = [
        [
            r["case"].split()[2],
            f"{r['build_s']:.1f}",
            f"{r['search_all_s']:.1f}"
            + (f" (extrapolated from {r['queries']} queries)" if r["extrapolated"] else ""),
            f"{r['planted_recall']:.3f}",
            f"{r['peak_mb']:.0f} (baseline {r['baseline_mb']:.0f})",
            "{} -> {}".format(*r["load_1min"]),
        ]
        for r in results
        if r["case"].startswith("vectors")
    ]
    if template_rows:
        print("\nindex: embed + dedup + cluster templates (EmbeddingIndex, MiniLM, CPU)\n")
        print(
            table(
                ["templates", "embed s", "templates/s", "dedup s", "duplicates", "cluster s",
                 "peak MB", "load"],
                template_rows,
            )
        )  # fmt: skip
    if vector_rows:
        print(f"\nindex: dedup {args.vectors} random 384-d vectors (5% planted near-copies)\n")
        print(
            table(
                ["method", "build s", "all-vs-all search s", "planted recall", "peak MB", "load"],
                vector_rows,
            )
        )
    for r in results:
        if r["case"].startswith("hnsw-sweep"):
            print(
                f"\nindex: HNSW (M=32, efConstruction=40, built in {r['build_s']:.0f} s) on "
                f"{args.vectors} vectors, {r['queries']} queries per efSearch\n"
            )
            rows = [
                [
                    p["ef_search"],
                    f"{p['search_s']:.1f}",
                    f"{p['search_all_s']:.0f}",
                    f"{p['planted_recall']:.3f}",
                ]
                for p in r["sweep"]
            ]
            print(table(["efSearch", "search s", "all-vs-all s (extrapolated)", "recall"], rows))
    write_json(args.json, {"machine": info, "args": vars(args), "cases": results})
    return results


if __name__ == "__main__":
    main()
