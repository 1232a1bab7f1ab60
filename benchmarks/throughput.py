"""Throughput: variant queries per second through probegen vs the raw openai SDK.

A simulator server (``python -m probegen.models.sim_server --latency-ms 50``) stands in
for a remote OpenAI-compatible model server that takes a fixed time per request. For
each concurrency, the same requests (the shipped seed probes' variants x samples, one
chat completion each) are sent two ways:

- **probegen**: :func:`probegen.runner.query_probe` for every probe at once, through the
  ``openai:`` backend with ``--base-url`` and the :class:`~probegen.models.Model` wrapper
  at ``max_concurrency`` = the concurrency, with a fresh run store each time (so the
  response cache never answers: every request reaches the server, and every answer is
  written to the store as in a real run);
- **raw**: ``openai.AsyncOpenAI`` with an ``asyncio.Semaphore`` of the same size, the same
  messages, seeds and parameters, nothing stored: the SDK as documented, on its default
  HTTP client (httpx);
- **raw-aiohttp**: the same on the SDK's aiohttp client (``DefaultAioHttpClient``);
- **probegen-aiohttp**: probegen with ``PROBEGEN_HTTP_CLIENT=aiohttp`` (``probegen`` runs on
  the SDK's default, httpx). Each probegen way is compared with the raw SDK on the same
  client (probegen's own cost), and probegen on aiohttp with the SDK as documented.

The server's request counter checks that every request really reached it. Each case is
repeated (``--repeats``), alternating raw and probegen; the table gives the median and
the range. The ideal is concurrency / latency. The client's CPU time per request (this
process: SDK, event loop and, for probegen, the store) is given too: unlike requests per
second it hardly moves when other processes load the machine. For probegen the table
also gives the store's transactions per request (the group commit's batching).

Examples::

    python benchmarks/throughput.py                          # 50 ms, concurrency 1,4,16,64
    python benchmarks/throughput.py --latency-ms 20 --concurrency 8,32 --repeats 5
    python benchmarks/throughput.py --quick
    python benchmarks/throughput.py --overhead   # probegen's own CPU per call, no network

``--overhead`` measures only probegen's side: every seed probe's variants x 6 samples
through ``query_probe`` into a scratch store, against a backend that answers at once,
and prints the CPU milliseconds per call of three rounds (the first warms up).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import http_json, print_machine, sim_server, table, write_json

from probegen.corpora import Corpora, GroupedVariant, load_corpora
from probegen.models import ChatMessage, GenerateConfig, Model, Response, Usage, resolve_model
from probegen.models.endpoint import HTTP_CLIENT_ENV
from probegen.probe import Probe
from probegen.runner import build_messages, query_probe
from probegen.store import Store

CONFIG = GenerateConfig(temperature=0.7, max_tokens=100, seed=0)
MODEL_NAME = "sim"
WAYS = ("raw", "raw-aiohttp", "probegen", "probegen-aiohttp")
RATIOS = (
    ("probegen", "raw"),
    ("probegen-aiohttp", "raw-aiohttp"),
    ("probegen-aiohttp", "raw"),
)


@contextmanager
def _environment(name: str, value: str) -> Iterator[None]:
    """``name=value`` in the environment while the block runs."""
    before = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if before is None:
            del os.environ[name]
        else:
            os.environ[name] = before


def _spread(values: Sequence[float], spec: str) -> str:
    """``median (min-max)``."""
    low, mid, high = min(values), statistics.median(values), max(values)
    return f"{mid:{spec}} ({low:{spec}}-{high:{spec}})"


@dataclass
class Case:
    """One measured batch."""

    concurrency: int
    way: str
    requests: int
    seconds: float
    reached_server: int
    cpu_seconds: float
    """CPU time of this process (user + system) during the batch."""
    transactions: int | None = None
    """Store transactions the batch committed through the group commit (probegen only)."""

    @property
    def qps(self) -> float:
        return self.requests / self.seconds

    @property
    def cpu_ms(self) -> float:
        """Client CPU milliseconds per request."""
        return 1000 * self.cpu_seconds / self.requests


def workload(corpora: Corpora, n: int) -> tuple[list[tuple[Probe, list[GroupedVariant]]], int]:
    """Seed probes with their variants, and the samples per variant that make at least
    ``n`` requests; returns ``(probes, samples)``."""
    probes = [s.to_probe() for s in corpora.seeds]
    work = [(p, p.grouped_variants(corpora)) for p in probes]
    variants = sum(len(v) for _, v in work)
    samples = max(1, -(-n // variants))
    # Trim probes so the total stays close to n (whole probes only).
    chosen: list[tuple[Probe, list[GroupedVariant]]] = []
    total = 0
    for probe, grouped in work:
        if total >= n:
            break
        chosen.append((probe, grouped))
        total += len(grouped) * samples
    return chosen, samples


async def through_probegen(
    base_url: str,
    concurrency: int,
    work: Sequence[tuple[Probe, list[GroupedVariant]]],
    samples: int,
    store_dir: Path,
) -> tuple[int, float, int]:
    """Every probe through ``query_probe``; returns ``(requests, seconds, transactions)``."""
    backend = resolve_model(
        f"openai:{MODEL_NAME}", base_url=f"{base_url}/v1", max_concurrency=concurrency
    )
    with Store.in_run_dir(store_dir) as store:
        run_id = store.create_run("benchmark", {"concurrency": concurrency})
        async with Model(backend, cache=store, max_concurrency=concurrency) as model:
            started = time.perf_counter()
            results = await asyncio.gather(
                *(
                    query_probe(p, v, model, store, run_id, samples=samples, config=CONFIG)
                    for p, v in work
                )
            )
            seconds = time.perf_counter() - started
            transactions = store.group_commit.transactions
            if model.cache_hits or model.failures or model.retries:
                raise RuntimeError(
                    f"cache hits {model.cache_hits}, failures {model.failures}, "
                    f"retries {model.retries}: not every request was one clean call"
                )
    requests = sum(len(group) for r in results for group in r.answers.values())
    return requests, seconds, transactions


async def through_raw_sdk(
    base_url: str,
    concurrency: int,
    work: Sequence[tuple[Probe, list[GroupedVariant]]],
    samples: int,
    aiohttp: bool = False,
) -> tuple[int, float]:
    """The same requests with ``AsyncOpenAI`` and a semaphore, on the SDK's default HTTP
    client or its aiohttp one; returns ``(requests, s)``."""
    from openai import AsyncOpenAI, DefaultAioHttpClient

    client = AsyncOpenAI(
        base_url=f"{base_url}/v1",
        api_key="unused",
        max_retries=0,
        timeout=60,
        http_client=DefaultAioHttpClient() if aiohttp else None,
    )
    slots = asyncio.Semaphore(concurrency)

    async def one(text: str, sample: int) -> str:
        messages = [{"role": m.role, "content": m.content} for m in build_messages(text)]
        async with slots:
            completion = await client.chat.completions.create(
                model=MODEL_NAME,
                messages=messages,  # type: ignore[arg-type]
                temperature=CONFIG.temperature,
                max_tokens=CONFIG.max_tokens,
                seed=CONFIG.for_sample(sample).seed,
            )
        return completion.choices[0].message.content or ""

    jobs = [one(v.text, i) for _, grouped in work for v in grouped for i in range(samples)]
    started = time.perf_counter()
    await asyncio.gather(*jobs)
    seconds = time.perf_counter() - started
    await client.close()
    return len(jobs), seconds


def measure(base_url: str, way: str, concurrency: int, n: int, corpora: Corpora, tmp: Path) -> Case:
    """One batch of about ``n`` requests; checks the server saw every one."""
    work, samples = workload(corpora, n)
    http_json(f"{base_url}/stats/reset", method="POST")
    cpu = time.process_time()
    transactions = None
    if way.startswith("probegen"):
        store_dir = Path(tempfile.mkdtemp(dir=tmp))  # fresh store: no cache hits
        client = "aiohttp" if way == "probegen-aiohttp" else "httpx"
        with _environment(HTTP_CLIENT_ENV, client):
            requests, seconds, transactions = asyncio.run(
                through_probegen(base_url, concurrency, work, samples, store_dir)
            )
    else:
        requests, seconds = asyncio.run(
            through_raw_sdk(base_url, concurrency, work, samples, aiohttp=way == "raw-aiohttp")
        )
    cpu = time.process_time() - cpu
    reached = int(str(http_json(f"{base_url}/stats")["completions"]))
    if reached != requests:
        raise RuntimeError(f"{way}: sent {requests} requests, the server answered {reached}")
    return Case(concurrency, way, requests, seconds, reached, cpu, transactions)


class InstantBackend:
    """A backend that answers at once: what is left of a call is probegen's own work."""

    spec = f"openai:{MODEL_NAME}"
    identity = f"openai:{MODEL_NAME}@instant"
    max_concurrency = 64

    async def generate(self, messages: Sequence[ChatMessage], config: GenerateConfig) -> Response:
        await asyncio.sleep(0)  # one turn of the loop, as an answer arriving would take
        return Response(text="An answer of a few words.", finish_reason="stop", model=MODEL_NAME,
                        usage=Usage(input_tokens=20, output_tokens=8))  # fmt: skip

    def retry_hint(self, error: BaseException) -> None:
        return None

    async def aclose(self) -> None:
        return None


def overhead(corpora: Corpora, samples: int = 6, rounds: int = 4) -> list[float]:
    """CPU ms per call of ``rounds`` rounds through ``query_probe`` (instant backend)."""
    work = [(p, p.grouped_variants(corpora)) for p in (s.to_probe() for s in corpora.seeds)]

    async def one_round(store_dir: Path) -> int:
        with Store.in_run_dir(store_dir) as store:
            run_id = store.create_run("benchmark", {})
            async with Model(InstantBackend(), cache=store, max_concurrency=64) as model:
                results = await asyncio.gather(
                    *(query_probe(p, v, model, store, run_id, samples=samples, config=CONFIG)
                      for p, v in work)
                )  # fmt: skip
        return sum(len(group) for r in results for group in r.answers.values())

    per_call = []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(rounds):
            cpu = time.process_time()
            calls = asyncio.run(one_round(Path(tmp) / str(i)))
            per_call.append(1000 * (time.process_time() - cpu) / calls)
            print(f"round {i}: {calls} calls, {per_call[-1]:.3f} CPU ms per call", flush=True)
    return per_call[1:]


def main(argv: Sequence[str] | None = None) -> list[Case]:
    """Run the benchmark and print its table; returns every measured batch."""
    parser = argparse.ArgumentParser(description="probegen vs raw openai SDK throughput")
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--concurrency", default="1,4,16,64")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--seconds", type=float, default=4.0, help="ideal duration of one batch at the latency"
    )
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--quick", action="store_true", help="a tiny smoke run")
    parser.add_argument(
        "--overhead", action="store_true", help="probegen's own CPU per call, no network"
    )
    args = parser.parse_args(argv)
    if args.overhead:
        print_machine()
        rounds = overhead(load_corpora(), rounds=2 if args.quick else 4)
        print(f"probegen's CPU per call: {statistics.median(rounds):.3f} ms (median)")
        return []
    if args.quick:
        args.latency_ms, args.concurrency, args.repeats, args.seconds = 2.0, "1,4", 1, 0.01
    info = print_machine()
    corpora = load_corpora()
    levels = [int(c) for c in args.concurrency.split(",")]
    cases: list[Case] = []
    with sim_server(args.latency_ms) as base_url, tempfile.TemporaryDirectory() as tmp:
        # Warm up both paths (imports, connection pools) outside the measurements.
        for way in WAYS:
            measure(base_url, way, 4, 8, corpora, Path(tmp))
        for concurrency in levels:
            ideal_qps = concurrency * 1000 / args.latency_ms
            n = max(8, int(ideal_qps * args.seconds))
            for _ in range(args.repeats):
                for way in WAYS:
                    case = measure(base_url, way, concurrency, n, corpora, Path(tmp))
                    cases.append(case)
                    print(
                        f"c={concurrency:3d} {way:11s} {case.requests:5d} requests "
                        f"{case.seconds:6.2f} s {case.qps:8.1f} q/s "
                        f"{case.cpu_ms:5.2f} CPU ms/request",
                        flush=True,
                    )
    rows = []
    for concurrency in levels:
        by_way = {w: [c for c in cases if (c.concurrency, c.way) == (concurrency, w)] for w in WAYS}
        ours = by_way["probegen"] + by_way["probegen-aiohttp"]
        row: list[object] = [concurrency, f"{concurrency * 1000 / args.latency_ms:g}"]
        row += [_spread([c.qps for c in by_way[w]], ".1f") for w in WAYS]
        # Repeats alternate the ways, so each ratio pairs the cases of one repeat.
        for mine, base in RATIOS:
            pairs = zip(by_way[mine], by_way[base], strict=True)
            row.append(_spread([o.qps / b.qps for o, b in pairs], ".2f"))
        row += [f"{statistics.median(c.cpu_ms for c in by_way[w]):.2f}" for w in WAYS]
        transactions = sum(c.transactions or 0 for c in ours)
        row.append(f"{transactions / sum(c.requests for c in ours):.2f}")
        rows.append(row)
    print(
        f"\nthroughput: sim server at {args.latency_ms:g} ms per request, "
        f"{args.repeats} repeats (median (min-max))\n"
    )
    headers = ["concurrency", "ideal q/s"] + [f"{w} q/s" for w in WAYS]
    headers += [f"{mine} / {base}" for mine, base in RATIOS]
    headers += [f"{w} CPU ms/req" for w in WAYS] + ["batched txns/req"]
    print(table(headers, rows))
    write_json(
        args.json,
        {
            "machine": info,
            "args": vars(args),
            "cases": [asdict(c) | {"qps": c.qps, "cpu_ms": c.cpu_ms} for c in cases],
        },
    )
    return cases


if __name__ == "__main__":
    main()
