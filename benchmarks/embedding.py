"""Embedding throughput of templates, side by side in one run: today's encoder call, other
batch sizes, bfloat16 weights, ONNX Runtime (fp32 and dynamic int8, when ``onnx`` is
installed), and the embedding cache cold, warm and half-warm.

Every case embeds the same ``--templates`` masked templates (the shipped seeds expanded
with topics and openers, as in ``index_scale.py``), in an order that alternates between
cases over ``--rounds`` rounds, so that load from other work on the machine falls on all
of them alike. Each case reports templates per second and, against today's vectors, the
lowest cosine and how many duplicate decisions (pairs at cosine >= 0.98) differ.

The cache cases time :meth:`probegen.embeddings.Embedder.encode` with an
:class:`~probegen.embedding_cache.EmbeddingCache` in a fresh file: ``cold`` (nothing
cached: embed and write), ``warm`` (all cached: a resumed run, or the same seeds and
mutations in a later run of the run directory) and ``half`` (half of the texts seen).

Examples::

    python benchmarks/embedding.py
    python benchmarks/embedding.py --templates 300 --rounds 1 --json /tmp/emb.json
    python benchmarks/embedding.py --quick
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np
from _common import print_machine, table, write_json
from index_scale import make_templates

from probegen.embedding_cache import EmbeddingCache
from probegen.embeddings import Embedder, native_bfloat16
from probegen.template import mask

THRESHOLD = 0.98


def _onnx_cases(embedder: Embedder, folder: Path) -> dict[str, Callable[[list[str]], Any]]:
    """ONNX Runtime on the same weights (exported here), fp32 and dynamic int8."""
    try:
        import onnx  # noqa: F401  # torch's exporter needs it
        import onnxruntime as ort
        import torch
        from onnxruntime.quantization import QuantType, quantize_dynamic
    except ImportError:
        print("onnx / onnxruntime not installed: ONNX cases skipped")
        return {}
    encoder = embedder._load()  # a benchmark may look inside
    bert = encoder[0].auto_model
    tokenizer = encoder.tokenizer

    class Pooled(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.bert = bert

        def forward(self, input_ids: Any, attention_mask: Any) -> Any:
            hidden = self.bert(input_ids=input_ids, attention_mask=attention_mask)
            weights = attention_mask.unsqueeze(-1).to(hidden.last_hidden_state.dtype)
            mean = (hidden.last_hidden_state * weights).sum(1) / weights.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(mean, dim=-1)

    fp32 = folder / "minilm.onnx"
    sample = tokenizer(["a sample input", "another"], return_tensors="pt", padding=True)
    axes = {"input_ids": {0: "b", 1: "s"}, "attention_mask": {0: "b", 1: "s"}}
    torch.onnx.export(
        Pooled().eval(),
        (sample["input_ids"], sample["attention_mask"]),
        str(fp32),
        input_names=["input_ids", "attention_mask"],
        output_names=["embedding"],
        dynamic_axes={**axes, "embedding": {0: "b"}},
        opset_version=17,
        dynamo=False,
    )
    int8 = folder / "minilm-int8.onnx"
    quantize_dynamic(str(fp32), str(int8), weight_type=QuantType.QInt8, per_channel=True)

    def session_runner(path: Path) -> Callable[[list[str]], Any]:
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

        def run(texts: list[str]) -> Any:
            order = np.argsort([len(t) for t in texts])  # as sentence-transformers does
            out = np.zeros((len(texts), 384), dtype=np.float32)
            for start in range(0, len(texts), 64):
                rows = order[start : start + 64]
                batch = tokenizer(
                    [texts[i] for i in rows], padding=True, truncation=True, return_tensors="np"
                )
                out[rows] = session.run(
                    None,
                    {
                        "input_ids": batch["input_ids"].astype(np.int64),
                        "attention_mask": batch["attention_mask"].astype(np.int64),
                    },
                )[0]
            return out

        return run

    return {"onnx fp32": session_runner(fp32), "onnx int8": session_runner(int8)}


def _decisions(vectors: Any) -> Any:
    similarity = vectors @ vectors.T
    np.fill_diagonal(similarity, 0.0)
    return similarity >= THRESHOLD


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--templates", type=int, default=600)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-onnx", action="store_true", help="skip the ONNX cases")
    parser.add_argument("--quick", action="store_true", help="40 templates, 1 round, no ONNX")
    parser.add_argument("--json", type=Path, default=None, help="write the figures here")
    args = parser.parse_args(argv)
    if args.quick:
        args.templates, args.rounds, args.no_onnx = 40, 1, True
    info = print_machine()

    texts = [mask(t, "[GROUP]") for t in make_templates(args.templates)]
    plain = Embedder()
    plain.encode(["load the model"])
    reference = plain.encode(texts)
    bf16 = Embedder(dtype="bfloat16")
    bf16.encode(["load the model"])
    folder = Path(tempfile.mkdtemp(prefix="probegen-embedding-"))

    def cached(seen: float) -> Callable[[list[str]], Any]:
        def run(batch: list[str]) -> Any:
            cache = EmbeddingCache(folder / f"cache-{time.monotonic_ns()}.sqlite")
            warmed = batch[: int(len(batch) * seen)]
            if warmed:  # an earlier run embedded these; not timed
                cache.put_many(plain.cache_key, warmed, reference[: len(warmed)])
            embedder = Embedder(cache=cache)
            embedder._encoder = plain._load()  # the model loaded once
            started = time.perf_counter()
            vectors = embedder.encode(batch)
            run.seconds = time.perf_counter() - started  # type: ignore[attr-defined]
            return vectors

        return run

    cases: dict[str, Callable[[list[str]], Any]] = {
        "today (batch 64)": lambda batch: plain.encode(batch),
        "batch 256": lambda batch: plain.encode(batch, batch_size=256),
        "batch 16": lambda batch: plain.encode(batch, batch_size=16),
        # The product's bfloat16 path (evolve --embedding-dtype bfloat16); fast only on
        # CPUs with native bf16 (AVX512_BF16, AMX) and on GPUs, emulated elsewhere.
        "bf16 weights (batch 64)": lambda batch: bf16.encode(batch),
        "bf16 weights (batch 32)": lambda batch: bf16.encode(batch, batch_size=32),
        "cache cold": cached(0.0),
        "cache half-warm": cached(0.5),
        "cache warm": cached(1.0),
    }
    if not args.no_onnx:
        cases.update(_onnx_cases(plain, folder))

    seconds: dict[str, list[float]] = {name: [] for name in cases}
    vectors: dict[str, Any] = {}
    for round_number in range(args.rounds):
        names = list(cases) if round_number % 2 == 0 else list(reversed(cases))
        for name in names:
            started = time.perf_counter()
            vectors[name] = cases[name](texts)
            elapsed = time.perf_counter() - started
            # The cache cases time only encode (the cache file's setup is not the work).
            seconds[name].append(getattr(cases[name], "seconds", elapsed))

    base_rate = len(texts) / statistics.median(seconds["today (batch 64)"])
    base_decisions = _decisions(reference)
    rows, results = [], []
    for name in cases:
        rate = len(texts) / statistics.median(seconds[name])
        cosine = float((vectors[name] * reference).sum(axis=1).min())
        flips = int((_decisions(vectors[name]) != base_decisions).sum() // 2)
        rows.append([name, f"{rate:.0f}", f"{rate / base_rate:.2f}x", f"{cosine:.6f}", flips])
        results.append(
            {
                "case": name,
                "templates_per_s": rate,
                "speedup": rate / base_rate,
                "seconds": seconds[name],
                "min_cosine_to_today": cosine,
                "dedup_decisions_changed": flips,
            }
        )
    pairs = int(base_decisions.sum() // 2)
    # What --embedding-dtype auto would pick on this machine.
    native = native_bfloat16("cpu")
    print(f"{len(texts)} masked templates, {args.rounds} rounds (median), {pairs} dup pairs; "
          f"native bfloat16 (auto picks it): {native}")  # fmt: skip
    print(table(["case", "templates/s", "vs today", "min cosine", "dedup flips"], rows))
    report = {
        "machine": info,
        "templates": len(texts),
        "rounds": args.rounds,
        "duplicate_pairs": pairs,
        "native_bfloat16": native,
        "cases": results,
    }
    if args.json:
        write_json(args.json, report)
    return report


if __name__ == "__main__":
    main()
