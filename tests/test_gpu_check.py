"""``benchmarks/gpu_check.py``: one line and exit 0 where there is no CUDA device; its
checks still run end to end when pointed at the CPU (so the script does not rot on
machines without a GPU, which is where the tests run)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "gpu_check.py"


def has_cuda() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


def test_without_cuda_it_says_so_in_one_line_and_exits_0() -> None:
    if has_cuda():
        pytest.skip("this machine has a CUDA device: the script runs its checks")
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick"], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "no CUDA device: nothing to check\n"


@pytest.mark.slow
def test_every_check_runs_with_the_cpu_standing_in_for_the_gpu(tmp_path: Path) -> None:
    out = tmp_path / "gpu.json"
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--accelerator", "cpu", "--vectors", "2000",
         "--templates", "16", "--embed-batch", "8", "--generations", "1", "--max-tokens", "4",
         "--json", str(out)],
        capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
    checks = json.loads(out.read_text())["checks"]
    assert [c["problem"] for c in checks] == [None, None, None, None]
    assert checks[0]["agreement"] == "200/200 identical decisions"
    # The second embedding check ran with bfloat16 weights on the "GPU" side only.
    assert [checks[i]["accelerator"]["dtype"] for i in (1, 2)] == ["float32", "bfloat16"]
    assert checks[2]["cpu"]["dtype"] == "float32"
    assert "| check |" in result.stdout
