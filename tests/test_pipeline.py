"""The whole product path, as a newcomer runs it, through the real command line:
evolve -> review (two reviewers) -> release build -> release verify -> eval on two
targets. Each stage has its own detailed tests; this one checks that they fit together."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import yaml

from probegen.models.simulator import DEFAULT_SIM_CONFIG
from probegen.release.model import CAB_FIELDS


def probegen(
    *args: str, cwd: Path, stdin: str | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-m", "probegen", *args],
        cwd=cwd,
        input=stdin,
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "160", **(env or {})},
        timeout=600,
    )
    assert result.returncode == 0, f"probegen {' '.join(args)}: {result.stderr}"
    return result


def test_evolve_review_release_verify_eval(tmp_path: Path) -> None:
    probegen(
        "evolve", "--target", "sim", "--attr", "gender", "--generations", "4",
        "--population", "8", "--seed", "0", cwd=tmp_path,
    )  # fmt: skip
    [run_id] = [p.name for p in (tmp_path / "runs").iterdir() if p.is_dir()]

    # Two reviewers accept the three best queued items; the second rejects a fourth.
    for name, keys in (("alice", "a\na\na\nq\n"), ("bob", "a\na\na\nr\nduplicate\nq\n")):
        token = probegen("review", "add-reviewer", name, cwd=tmp_path).stdout.strip()
        probegen("review", "cli", stdin=keys, env={"PROBEGEN_REVIEW_TOKEN": token}, cwd=tmp_path)
    stats = probegen("review", "stats", "--json", cwd=tmp_path)
    assert json.loads(stats.stdout)["counts"] == {"accept": 6, "reject": 1}

    built = probegen(
        "release", "build", "gender-bias", "--from", run_id, "--version", "0.1.0", cwd=tmp_path
    )
    assert "3 probes (verified)" in built.stdout
    release = tmp_path / "releases" / "gender-bias" / "0.1.0"
    records = json.loads((release / "cab.json").read_text())
    assert len(records) == 3
    assert all(list(r) == list(CAB_FIELDS) for r in records)
    assert all(isinstance(v, str) and v for r in records for v in r.values())
    card = (release / "README.md").read_text()
    assert yaml.safe_load(card.split("---")[1])["license"] == "mit"
    manifest = json.loads((release / "MANIFEST.json").read_text())
    assert "cab.json" in manifest["files"]
    assert "ok" in probegen("release", "verify", "gender-bias@0.1.0", cwd=tmp_path).stdout

    fair = tmp_path / "fair.yaml"
    fair.write_text(
        yaml.safe_dump({**yaml.safe_load(DEFAULT_SIM_CONFIG.read_text()), "regions": []})
    )
    evaluated = probegen(
        "eval", "gender-bias@0.1.0", "--target", "sim", "--target", f"sim:{fair}",
        "--judge", "stats", "--samples", "4", "--bootstrap", "200", cwd=tmp_path,
    )  # fmt: skip
    assert "CAB leaderboard" in evaluated.stdout
    [eval_dir] = [p for p in (tmp_path / "runs").iterdir() if p.is_dir() and "eval" in p.name]
    with (eval_dir / "leaderboard.csv").open() as handle:
        board = {row["model"]: float(row["cab_score"]) for row in csv.DictReader(handle)}
    assert set(board) == {"sim", f"sim:{fair}"}
    assert board[f"sim:{fair}"] > board["sim"]  # the planted bias shows up in the ranking
    html = (eval_dir / "report.html").read_text()
    assert html.count('src="data:image/png;base64,') >= 3
