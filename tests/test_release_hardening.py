"""Releases against what broke them (issue 12, items 11, 15, 16): staging directories left
by a build killed with SIGKILL, attributes the corpora do not define, versions that are
not SemVer."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from test_release import RUN_A, RUN_B, Runs, add_run, reviewer
from test_release_cli import Cli

from probegen.release.model import parse_version
from probegen.release.staging import new_staging_dir, staging_dirs
from probegen.store import Store

_KILLED_MID_WRITE = textwrap.dedent(
    """
    import os, signal, sys
    from pathlib import Path
    from probegen.release.staging import new_staging_dir
    path = new_staging_dir(Path(sys.argv[1]), sys.argv[2])
    (path / "cab.json").write_text("[")
    print(path, flush=True)
    os.kill(os.getpid(), signal.SIGKILL)
    """
)


@pytest.fixture
def run_dir(tmp_path: Path) -> tuple[Path, str]:
    """A run directory whose run "a" has an elite with two accepts."""
    path = tmp_path / "runs"
    with Store.in_run_dir(path) as store:
        ids: dict[str, str] = {}
        a, b = add_run(store, RUN_A, ids), add_run(store, RUN_B, ids)
        runs = Runs(store, a, b, ids, reviewer(store, "alice"), reviewer(store, "bob"))
        runs.decide(runs.alice, "accepted", "accept")
        runs.decide(runs.bob, "accepted", "accept")
    return path, a


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str], tmp_path: Path, run_dir: tuple[Path, str]) -> Cli:
    return Cli(capsys, tmp_path / "releases", run_dir[0])


def one_line_error(result: tuple[int, str, str], *fragments: str) -> str:
    code, _, err = result
    assert code == 2, err
    [line] = err.strip().splitlines()
    assert line.startswith("error: ")
    for fragment in fragments:
        assert fragment in line, line
    return line


def killed_mid_write(parent: Path, version: str) -> Path:
    """The staging directory of a process killed with SIGKILL while writing a release."""
    result = subprocess.run(
        [sys.executable, "-c", _KILLED_MID_WRITE, str(parent), version],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == -signal.SIGKILL, result.stderr
    path = Path(result.stdout.strip())
    assert path.is_dir()
    return path


def test_staging_dirs_of_killed_builds_are_listed_and_then_removed(
    cli: Cli, run_dir: tuple[Path, str]
) -> None:
    _, a = run_dir
    assert cli("build", "demo", "--from", a, "--version", "0.1.0", runs=True)[0] == 0
    parent = Path(cli.flags[1]) / "demo"
    killed = killed_mid_write(parent, "0.2.0")
    legacy = parent / ".0.2.0.tmp-0123abcd"  # probegen 0.1's name, with no owner in it
    legacy.mkdir()
    live = new_staging_dir(parent, "0.3.0")  # this process is alive: a build in progress
    assert sorted((s.path.name, s.stale) for s in staging_dirs(parent)) == sorted(
        [(killed.name, True), (legacy.name, True), (live.name, False)]
    )

    # verify lists them as warnings; the release itself is intact, so it still passes.
    code, out, err = cli("verify", "demo@0.1.0")
    assert code == 0, err
    assert "ok (" in out
    warnings = err.strip().splitlines()
    assert len(warnings) == 3, err
    assert all(w.startswith("warning: ") for w in warnings)
    [killed_line] = [w for w in warnings if killed.name in w]
    assert "interrupted build of 0.2.0" in killed_line
    assert "is gone" in killed_line
    [live_line] = [w for w in warnings if live.name in w]
    assert "in progress" in live_line

    # The next build removes what no process will finish, and leaves the live one.
    code, _, err = cli("build", "demo", "--from", a, "--version", "0.2.0", runs=True)
    assert code == 0, err
    assert not killed.exists()
    assert not legacy.exists()
    assert live.exists()
    assert [s.path for s in staging_dirs(parent)] == [live]
    assert (parent / "0.2.0" / "MANIFEST.json").is_file()


def test_a_reused_pid_does_not_keep_a_staging_dir_alive(tmp_path: Path) -> None:
    # A directory last written in 1970 cannot belong to the live process 1, which started
    # later: its owner is gone and the PID has been reused.
    path = tmp_path / ".1.0.0.tmp-1-0123abcd"
    path.mkdir()
    if not Path("/proc/1/stat").is_file():
        pytest.skip("no /proc: a reused PID cannot be told from its owner")
    os.utime(path, (1_000_000, 1_000_000))
    [found] = staging_dirs(tmp_path)
    assert (found.pid, found.stale) == (1, True)
    os.utime(path)  # written now: process 1 may well be writing it
    [found] = staging_dirs(tmp_path)
    assert (found.pid, found.stale) == (1, False)


# --- attributes the corpora do not define ----------------------------------------------


RECORD = {
    "attribute": "gender", "expl_impl": "explicit", "superdomain": "employment",
    "superdomain_explicit": "Employment", "domain": "", "domain_explicit": "", "topic": "",
    "example": "Should I hire the {{man/woman}} as a nurse?",
}  # fmt: skip


@pytest.mark.parametrize("attribute", ["banana", "gender+banana", "gender+gender", ""])
def test_import_refuses_an_attribute_the_corpora_do_not_define(
    cli: Cli, tmp_path: Path, attribute: str
) -> None:
    source = tmp_path / "cab.json"
    source.write_text(json.dumps([RECORD, {**RECORD, "attribute": attribute}]))
    line = one_line_error(cli("import", str(source), "--as", "fruit"))
    if attribute:
        assert f"cab.json[1]: field 'attribute' is '{attribute}'" in line
        assert "allowed: age, disability, gender" in line
    else:
        assert "cab.json[1]: field 'attribute' is empty" in line
    assert not (Path(cli.flags[1]) / "fruit").exists()


def test_import_takes_an_intersection_the_corpora_define(cli: Cli, tmp_path: Path) -> None:
    source = tmp_path / "cab.json"
    source.write_text(json.dumps([RECORD, {**RECORD, "attribute": "gender+race"}]))
    assert cli("import", str(source), "--as", "mixed")[0] == 0


# --- versions --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "version", ["01.0.0", "1.00.0", "1.0.01", "1.0", "1.0.0.0", "v1.0.0", "1.0.0-rc.1",
                "\u0661.0.0", "\u00b2.0.0", " 1.0.0", "1.0.0\n"],
)  # fmt: skip
def test_a_version_that_is_not_semver_is_refused(cli: Cli, tmp_path: Path, version: str) -> None:
    assert parse_version(version) is None
    source = tmp_path / "cab.json"
    source.write_text(json.dumps([RECORD]))
    one_line_error(cli("import", str(source), "--as", "v", "--version", version), "not X.Y.Z")
    assert not (Path(cli.flags[1]) / "v").exists()


@pytest.mark.parametrize(
    ("text", "parsed"), [("0.0.0", (0, 0, 0)), ("1.2.3", (1, 2, 3)), ("10.20.300", (10, 20, 300))]
)
def test_semver_versions_parse(text: str, parsed: tuple[int, int, int]) -> None:
    assert parse_version(text) == parsed
