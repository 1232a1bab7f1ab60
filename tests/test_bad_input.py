"""Bad input to the commands that create runs or releases: one line, exit 2, and nothing
half-written: no run directory, no run left ``running`` (issue 12, items 13, 14, 16).

Commands run in this process through :func:`probegen.cli.main`, exactly what the console
script calls, to keep the suite fast.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from test_eval import make_release

from probegen.cli import main
from probegen.corpora import load_corpora
from probegen.release.model import PROBES_FILE
from probegen.store import STORE_FILENAME, Store

TINY = ("--generations", "0", "--population", "2", "--samples", "2")


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exit_info:
        main(list(args))
    out, err = capsys.readouterr()
    return int(exit_info.value.code or 0), out, err


def one_line_error(result: tuple[int, str, str], *fragments: str) -> str:
    code, _, err = result
    assert code == 2, err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: "), lines[0]
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


def assert_nothing_left(run_dir: Path) -> None:
    """No run directory, and no run row left ``running`` (which is what a killed run
    looks like, and what ``--resume`` offers to continue)."""
    if (run_dir / STORE_FILENAME).exists():
        with Store.in_run_dir(run_dir) as store:
            assert [r.status for r in store.list_runs() if r.status == "running"] == []
    if run_dir.is_dir():
        assert [p for p in run_dir.iterdir() if p.is_dir()] == []


def shipped_seed(attribute: str = "gender") -> dict[str, object]:
    lines = (load_corpora().root / "seeds.jsonl").read_text().splitlines()
    return next(d for d in map(json.loads, lines) if d["attribute"] == attribute)


def seed_files(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    """The bad ``--seeds`` files, with a fragment each error line must contain."""

    def write(name: str, content: str | bytes) -> Path:
        path = tmp_path / name
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
        return path

    seed = shipped_seed()
    bad_template = {**seed, "template": "Is {{he/she ok?"}
    directory = tmp_path / "seeds-dir.jsonl"
    directory.mkdir()
    return {
        "empty": (write("empty.jsonl", ""), "no seed questions"),
        "binary": (write("binary.jsonl", b"\x89PNG\r\n\x1a\n\x00\xff\xfe"), "not UTF-8"),
        "malformed-jsonl": (write("broken.jsonl", '{"template": "x",\n'), "invalid JSON"),
        "wrong-schema": (write("schema.jsonl", json.dumps({"question": "hi"}) + "\n"), ":1"),
        "wrong-types": (write("types.jsonl", json.dumps({**seed, "template": 3}) + "\n"), ":1"),
        "directory": (directory, "--seeds"),
        "dict-cab-json": (write("cab.json", json.dumps({"attribute": "gender"})), "JSON list"),
        "template-error": (write("tpl.jsonl", json.dumps(bad_template) + "\n"), "template"),
        "other-attribute": (
            write("race.jsonl", json.dumps(shipped_seed("race")) + "\n"),
            "race only",
        ),
    }


SEED_CASES = [
    "empty", "binary", "malformed-jsonl", "wrong-schema", "wrong-types", "directory",
    "dict-cab-json", "template-error", "other-attribute",
]  # fmt: skip


@pytest.mark.parametrize("case", SEED_CASES)
def test_a_bad_seeds_file_leaves_no_run_behind(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, case: str
) -> None:
    path, fragment = seed_files(tmp_path)[case]
    run_dir = tmp_path / "runs"
    result = run_cli(
        capsys, "evolve", "--target", "sim", "--attr", "gender", *TINY,
        "--seeds", str(path), "--run-dir", str(run_dir),
    )  # fmt: skip
    one_line_error(result, fragment)
    assert_nothing_left(run_dir)


def test_a_missing_embedder_leaves_no_run_behind(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    run_dir = tmp_path / "runs"
    result = run_cli(
        capsys, "evolve", "--target", "sim", "--attr", "gender", *TINY,
        "--embedder", "/nonexistent", "--run-dir", str(run_dir),
    )  # fmt: skip
    one_line_error(result, "/nonexistent")
    assert_nothing_left(run_dir)


def test_eval_of_a_release_with_an_unknown_attribute_leaves_no_run_behind(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    release = make_release(tmp_path / "release", "sim", 2)
    lines = (release / PROBES_FILE).read_text().splitlines()
    item = json.loads(lines[1])
    item["probe"]["attribute"] = "banana"
    (release / PROBES_FILE).write_text("\n".join([lines[0], json.dumps(item)]) + "\n")
    run_dir = tmp_path / "runs"
    result = run_cli(capsys, "eval", str(release), "--target", "sim", "--run-dir", str(run_dir))
    one_line_error(result, "line 2", "'banana'", "gender")
    assert_nothing_left(run_dir)


@pytest.mark.parametrize(
    ("descriptors", "fragment"),
    [("bogus", "unknown axis 'bogus'"), ("groups,groups", "repeated"), (",", "no axis")],
)
def test_bad_descriptors_are_one_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, descriptors: str, fragment: str
) -> None:
    run_dir = tmp_path / "runs"
    result = run_cli(
        capsys, "evolve", "--target", "sim", "--attr", "gender", *TINY,
        "--descriptors", descriptors, "--run-dir", str(run_dir),
    )  # fmt: skip
    one_line_error(result, "--descriptors", fragment)
    assert not run_dir.exists()


# --- run and release directories that cannot be written ----------------------------------


def commands(tmp_path: Path) -> dict[str, list[str]]:
    """One invocation per command that writes a run, without --run-dir."""
    release = make_release(tmp_path / "release", "sim", 1)
    return {
        "evolve": ["evolve", "--target", "sim", "--attr", "gender", *TINY],
        "ask": ["ask", "sim", "--attr", "gender", "--samples", "1", "Is {{he/she}} ok?"],
        "eval": ["eval", str(release), "--target", "sim", "--bootstrap", "0"],
    }


@pytest.mark.parametrize("command", ["evolve", "ask", "eval"])
def test_a_run_dir_env_pointing_at_a_file_is_one_line(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    command: str,
) -> None:
    file = tmp_path / "not-a-dir"
    file.write_text("x")
    monkeypatch.setenv("PROBEGEN_RUN_DIR", str(file))
    one_line_error(run_cli(capsys, *commands(tmp_path)[command]), "$PROBEGEN_RUN_DIR", "a file")
    assert file.read_text() == "x"


@pytest.mark.parametrize("command", ["evolve", "ask", "eval"])
def test_a_run_dir_under_a_file_is_one_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, command: str
) -> None:
    file = tmp_path / "not-a-dir"
    file.write_text("x")
    run_dir = file / "runs"
    result = run_cli(capsys, *commands(tmp_path)[command], "--run-dir", str(run_dir))
    one_line_error(result, "--run-dir", str(file))


@pytest.mark.parametrize("command", ["evolve", "ask", "eval"])
def test_a_read_only_run_dir_is_one_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, command: str
) -> None:
    run_dir = tmp_path / "runs"
    run_dir.mkdir()
    run_dir.chmod(0o555)
    try:
        if os.access(run_dir, os.W_OK):
            pytest.skip("running as root: permissions do not stop writes")
        result = run_cli(capsys, *commands(tmp_path)[command], "--run-dir", str(run_dir))
        one_line_error(result, "--run-dir", "not writable")
    finally:
        run_dir.chmod(0o755)
    assert list(run_dir.iterdir()) == []


def cab_file(tmp_path: Path, attribute: str = "gender") -> Path:
    record = {
        "attribute": attribute, "expl_impl": "explicit", "superdomain": "employment",
        "superdomain_explicit": "Employment", "domain": "", "domain_explicit": "",
        "topic": "", "example": "Should I hire the {{man/woman}} as a nurse?",
    }  # fmt: skip
    path = tmp_path / "cab.json"
    path.write_text(json.dumps([record]))
    return path


def test_a_releases_dir_env_pointing_at_a_file_is_one_line(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    file = tmp_path / "not-a-dir"
    file.write_text("x")
    monkeypatch.setenv("PROBEGEN_RELEASES_DIR", str(file))
    result = run_cli(capsys, "release", "import", str(cab_file(tmp_path)), "--as", "demo")
    one_line_error(result, "$PROBEGEN_RELEASES_DIR", "a file")
    result = run_cli(
        capsys, "release", "build", "demo", "--from", "x", "--version", "1.0.0",
        "--run-dir", str(tmp_path / "runs"),
    )  # fmt: skip
    one_line_error(result, "$PROBEGEN_RELEASES_DIR", "a file")


def test_a_read_only_releases_dir_is_one_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    releases = tmp_path / "releases"
    releases.mkdir()
    releases.chmod(0o555)
    try:
        if os.access(releases, os.W_OK):
            pytest.skip("running as root: permissions do not stop writes")
        result = run_cli(
            capsys, "release", "import", str(cab_file(tmp_path)), "--as", "demo",
            "--releases-dir", str(releases),
        )  # fmt: skip
        one_line_error(result, "--releases-dir", "not writable")
    finally:
        releases.chmod(0o755)


def test_a_file_in_the_way_of_a_release_is_one_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # Not checked up front (it is inside the releases dir): the OS's error, as one line.
    releases = tmp_path / "releases"
    releases.mkdir()
    (releases / "demo").write_text("x")
    result = run_cli(
        capsys, "release", "import", str(cab_file(tmp_path)), "--as", "demo",
        "--releases-dir", str(releases),
    )  # fmt: skip
    one_line_error(result, str(releases / "demo"))


# --- a resume replays its run: run-defining flags are refused -----------------------------


@pytest.fixture
def finished_run(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> tuple[Path, str]:
    run_dir = tmp_path / "runs"
    code, _, err = run_cli(
        capsys, "evolve", "--target", "sim", "--attr", "gender", *TINY, "--run-dir", str(run_dir)
    )
    assert code == 0, err
    with Store.in_run_dir(run_dir) as store:
        [run] = store.list_runs()
    return run_dir, run.id


@pytest.mark.parametrize(
    ("flags", "named"),
    [
        (["--target", "sim"], ["--target"]),
        (["--attr", "race", "--generations", "3"], ["--attr", "--generations"]),
        (["--seed", "1", "--judge", "stats", "--samples", "2"], ["--seed", "--judge", "--samples"]),
        (["--budget", "10", "--embedder", "minilm"], ["--budget", "--embedder"]),
        (["--descriptors", "groups", "--images", "off"], ["--descriptors", "--images"]),
    ],
)
def test_resume_refuses_the_flags_it_would_ignore(
    capsys: pytest.CaptureFixture[str],
    finished_run: tuple[Path, str],
    flags: list[str],
    named: list[str],
) -> None:
    run_dir, run_id = finished_run
    result = run_cli(capsys, "evolve", "--resume", run_id, "--run-dir", str(run_dir), *flags)
    line = one_line_error(result, f"--resume {run_id}", *named)
    assert "--run-dir" in line  # the fix lists what a resume does take


def test_resume_takes_the_flags_that_do_not_define_the_run(
    capsys: pytest.CaptureFixture[str], finished_run: tuple[Path, str]
) -> None:
    run_dir, run_id = finished_run
    code, _, err = run_cli(
        capsys, "evolve", "--resume", run_id, "--run-dir", str(run_dir),
        "--top", "1", "--timeout", "30",
    )  # fmt: skip
    assert code == 0, err
    with Store.in_run_dir(run_dir) as store:
        run = store.get_run(run_id)
    assert run is not None
    assert run.status == "finished"


@pytest.mark.parametrize("char", ["\u202e", "\u200b"])
def test_an_invisible_character_in_a_template_is_one_line_and_sends_nothing(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, char: str
) -> None:
    run_dir = tmp_path / "runs"
    result = run_cli(
        capsys, "ask", "sim", "--attr", "gender", f"Is {{{{he/sh{char}e}}}} ok?",
        "--run-dir", str(run_dir),
    )  # fmt: skip
    line = one_line_error(result, f"U+{ord(char):04X}")
    assert char not in line
    assert not run_dir.exists()
