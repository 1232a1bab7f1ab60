"""What the ``stats`` scorer's sentence reading costs to embed, and whether its vectors
depend on their companions: the batched encoder call, one text a pass, and
:meth:`probegen.embeddings.Embedder.encode_alone` (fixed-shape passes), side by side.

The scorer embeds a probe's distinct answer sentences in one call, a few dozen at a time
(``--calls``: the sentences a call holds). The sentences here are the shipped answer
pools of the simulators and the seed questions, masked, split as the scorer splits them.
Each case embeds all of them in calls of each size, in an order that alternates between
cases over ``--rounds`` rounds (load from other work falls on all alike), with no cache.
It reports sentences per second and, per case, how many sentences' vectors differ bit
for bit when the same sentences are embedded in other calls (other companions, other
positions): a scorer whose vectors move with their companions scores a probe by what the
run embedded before it.

Examples::

    python benchmarks/sentence_embedding.py
    python benchmarks/sentence_embedding.py --calls 8,32,128 --rounds 3 --json /tmp/s.json
    python benchmarks/sentence_embedding.py --quick
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np
import yaml
from _common import REPO_ROOT, print_machine, table, write_json

from probegen.embeddings import Embedder
from probegen.scoring.stats import split_sentences
from probegen.template import mask


def answer_sentences() -> list[str]:
    """Distinct sentences of the simulators' answer pools and of the seed questions."""
    texts: list[str] = []
    for path in sorted((REPO_ROOT / "corpora" / "simulator").rglob("*.yaml")):
        config = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        texts += config.get("neutral", [])
        for region in config.get("regions", []):
            texts += region.get("target_answers", [])
    for line in (REPO_ROOT / "corpora" / "seeds.jsonl").read_text(encoding="utf-8").splitlines():
        if line.strip():
            texts.append(mask(json.loads(line)["template"], "X"))
    return list(dict.fromkeys(s for text in texts for s in split_sentences(text)))


def _in_calls(
    encode: Callable[[list[str]], Any], sentences: list[str], size: int, seed: int
) -> dict[str, Any]:
    """Every sentence embedded once, in shuffled calls of ``size``: its vector by text."""
    order = list(sentences)
    random.Random(seed).shuffle(order)
    vectors: dict[str, Any] = {}
    for start in range(0, len(order), size):
        call = order[start : start + size]
        vectors.update(zip(call, encode(call), strict=True))
    return vectors


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", default="8,32,128", help="sentences per call, comma-separated")
    parser.add_argument("--sentences", type=int, default=384, help="at most this many")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="48 sentences, calls of 16, 1 round")
    parser.add_argument("--json", type=Path, default=None, help="write the figures here")
    args = parser.parse_args(argv)
    if args.quick:
        args.sentences, args.calls, args.rounds = 48, "16", 1
    sizes = [int(size) for size in args.calls.split(",")]
    info = print_machine()

    sentences = answer_sentences()[: args.sentences]
    embedder = Embedder()
    embedder.encode(["load the model"])
    cases: dict[str, Callable[[list[str]], Any]] = {
        "batched (encode, batch 64)": lambda call: embedder.encode(call),
        "one a pass (encode, batch 1)": lambda call: embedder.encode(call, batch_size=1),
        "fixed shapes (encode_alone)": embedder.encode_alone,
    }
    seconds: dict[tuple[str, int], list[float]] = {(n, s): [] for n in cases for s in sizes}
    first: dict[tuple[str, int], dict[str, Any]] = {}
    for round_number in range(args.rounds):
        names = list(cases) if round_number % 2 == 0 else list(reversed(cases))
        for name in names:
            for size in sizes:
                started = time.perf_counter()
                got = _in_calls(cases[name], sentences, size, seed=round_number)
                seconds[(name, size)].append(time.perf_counter() - started)
                first.setdefault((name, size), got)

    rows, results = [], []
    for name in cases:
        # The same sentences in other companions: calls of another size, shuffled apart.
        other = _in_calls(cases[name], sentences, max(sizes) + 5, seed=1000)
        for size in sizes:
            moved = sum(
                1 for s in sentences if not np.array_equal(first[(name, size)][s], other[s])
            )
            rate = len(sentences) / statistics.median(seconds[(name, size)])
            base = len(sentences) / statistics.median(seconds[("batched (encode, batch 64)", size)])
            rows.append([name, size, f"{rate:.0f}", f"{rate / base:.2f}x", moved])
            results.append(
                {
                    "case": name,
                    "call_size": size,
                    "sentences_per_s": rate,
                    "vs_batched": rate / base,
                    "seconds": seconds[(name, size)],
                    "vectors_moved_by_companions": moved,
                }
            )
    words = statistics.fmean(len(s.split()) for s in sentences)
    print(f"{len(sentences)} distinct sentences ({words:.1f} words on average), "
          f"{args.rounds} rounds (median)")  # fmt: skip
    print(table(["case", "per call", "sentences/s", "vs batched", "moved"], rows))
    report = {
        "machine": info,
        "sentences": len(sentences),
        "mean_words": words,
        "rounds": args.rounds,
        "cases": results,
    }
    if args.json:
        write_json(args.json, report)
    return report


if __name__ == "__main__":
    main()
