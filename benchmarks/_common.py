"""Helpers shared by the benchmark scripts: the machine, a simulator server, tables."""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from probegen.models.base import GenerateConfig

REPO_ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
NUMERIC_PACKAGES = (
    "numpy", "scipy", "scikit-learn", "statsmodels", "torch", "transformers",
    "sentence-transformers", "faiss-cpu", "faiss-gpu",
)  # fmt: skip
"""The packages whose versions a benchmark records: a run's floats come from them, and
the same commit on a venv resolved on another day need not reproduce a stored run seed
for seed (``benchmarks/RESULTS.md`` section 6, "A second look")."""


def machine() -> dict[str, object]:
    """Where and when a benchmark ran: CPU, cores, memory, load, date, commit (and
    whether tracked files had uncommitted changes), and the numeric packages' versions."""
    model = platform.processor() or "unknown"
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
        for line in lscpu.splitlines():
            if line.startswith("Model name:"):
                model = line.split(":", 1)[1].strip()
    except OSError:
        pass
    memory_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    commit, changed = _git("rev-parse", "--short", "HEAD"), _git("status", "--porcelain")
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": model,
        "cores": os.cpu_count(),
        "memory_gb": round(memory_gb, 1),
        "load_1_5_15": [round(x, 2) for x in os.getloadavg()],
        "python": platform.python_version(),
        "commit": commit or "unknown",
        # Tracked files changed but not committed: the commit alone does not say what ran.
        "uncommitted": any(not line.startswith("??") for line in changed.splitlines()),
        "packages": _versions(),
    }


def _git(*args: str) -> str:
    try:
        return subprocess.run(
            ["git", *args], capture_output=True, text=True, check=False, cwd=REPO_ROOT
        ).stdout.strip()
    except OSError:
        return ""


def _versions() -> dict[str, str]:
    found = {}
    for name in NUMERIC_PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return found


def print_machine() -> dict[str, object]:
    """Print :func:`machine` as one line and return it."""
    info = machine()
    print(
        f"machine: {info['cpu']}, {info['cores']} cores, {info['memory_gb']} GB; "
        f"load {info['load_1_5_15']}; {info['date']}; python {info['python']}; "
        f"commit {info['commit']}"
    )
    return info


def mean_sd(values: Sequence[float]) -> str:
    """``mean ± sd`` (or just the value for one run)."""
    if not values:
        return "n/a"
    if len(values) == 1:
        return _figure(values[0])
    return f"{_figure(statistics.fmean(values))} ± {statistics.stdev(values):.2g}"


def _figure(value: float) -> str:
    # Three significant digits, but never scientific notation for counts like 1498.
    return f"{value:.0f}" if abs(value) >= 1000 else f"{value:.3g}"


def table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A Markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


DRAW_STRIDE = 1000
"""Base seeds of two runs this far apart never share a sample seed (a probe reads at
most a few dozen samples a variant)."""


def drawn_per_seed(generate: GenerateConfig, seed: int) -> GenerateConfig:
    """``generate`` with its base seed moved by the run seed: the simulators draw each
    answer from the question and its sample seed alone, so with one base seed a question
    asked in two runs gets the same answers in both, and an unlucky draw of a shared
    seed question repeats in every run that asks it (benchmark seeds would be search paths
    over one draw of the noise, not independent replicates)."""
    return generate.model_copy(update={"seed": (generate.seed or 0) + DRAW_STRIDE * seed})


def write_json(path: Path | None, data: object) -> None:
    """Write ``data`` as JSON to ``path`` (nothing when None)."""
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(data, indent=2, default=str) + "\n", encoding="utf-8")


def free_port() -> int:
    """A TCP port that was free a moment ago."""
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def http_json(
    url: str, method: str = "GET", body: dict[str, object] | None = None
) -> dict[str, object]:
    """GET or POST ``url`` (with ``body`` as JSON, if any) and parse the JSON answer."""
    data = None if body is None else json.dumps(body).encode()
    headers = {} if body is None else {"Content-Type": "application/json"}
    request = urllib.request.Request(url, data, headers, method=method)
    with urllib.request.urlopen(request, timeout=10) as reply:
        answer: dict[str, object] = json.load(reply)
        return answer


@contextmanager
def sim_server(latency_ms: float = 0.0, regions: Path | None = None) -> Iterator[str]:
    """Run ``python -m probegen.models.sim_server`` on a free port; yields its base URL
    (without ``/v1``) and stops it afterwards."""
    port = free_port()
    argv = [
        sys.executable, "-m", "probegen.models.sim_server", "--port", str(port),
        "--latency-ms", str(latency_ms),
    ]  # fmt: skip
    if regions is not None:
        argv += ["--regions", str(regions)]
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base_url = f"http://{HOST}:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                error = process.stderr.read().decode() if process.stderr else ""
                raise RuntimeError(f"sim server exited: {error[-2000:]}")
            try:
                http_json(f"{base_url}/health")
                break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                if time.monotonic() > deadline:
                    raise RuntimeError("sim server did not start within 60 s") from None
                time.sleep(0.1)
        yield base_url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
