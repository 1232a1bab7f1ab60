"""Runs that end but fail (issue 12, items 9 and 10): when nothing could be scored,
``evolve`` and ``eval`` write their outputs, store the run as ``failed`` with a
``run_failed`` event saying why, print one error line and exit 1; ``--timeout`` reaches
the target, judge and helper of an evolve run and is stored with it."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from test_eval import make_release

from probegen.cli import main
from probegen.models.openai_backend import OpenAIBackend
from probegen.store import Store


class _Refuses(BaseHTTPRequestHandler):
    """Answers every request with HTTP 400: a call that fails at once, without retries."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        body = json.dumps({"error": {"message": "model not served here"}}).encode()
        self.send_response(400)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def refusing_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """``http://127.0.0.1:PORT/v1`` of a server that refuses every chat completion."""
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Refuses)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    finally:
        server.shutdown()
        server.server_close()


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exit_info:
        main(list(args))
    out, err = capsys.readouterr()
    return int(exit_info.value.code or 0), out, err


def the_run(run_dir: Path) -> tuple[str, str, list[dict[str, Any]]]:
    with Store.in_run_dir(run_dir) as store:
        [run] = store.list_runs()
        return run.id, run.status, store.events(run.id, "run_failed")


def error_line(err: str) -> str:
    lines = [line for line in err.strip().splitlines() if line.startswith("error: ")]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


def test_an_evolve_whose_every_call_fails_is_a_failed_run(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, refusing_server: str
) -> None:
    run_dir = tmp_path / "runs"
    code, _, err = run_cli(
        capsys, "evolve", "--target", "openai:simmodel", "--base-url", refusing_server,
        "--attr", "gender", "--generations", "1", "--population", "2", "--samples", "1",
        "--run-dir", str(run_dir),
    )  # fmt: skip
    assert code == 1, err
    line = error_line(err)
    run_id, status, events = the_run(run_dir)
    assert f"run {run_id} failed" in line
    assert "unscorable" in line
    assert "target call(s) failed" in line
    assert status == "failed"
    [event] = events
    assert "unscorable" in event["data"]["reason"]
    # The outputs are still written, so the failures can be inspected.
    assert (run_dir / run_id / "elites.jsonl").read_text() == ""
    assert (run_dir / run_id / "summary.md").is_file()


def test_an_eval_where_no_item_can_be_scored_is_a_failed_run(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    refusing_server: str,
) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", refusing_server)
    release = make_release(tmp_path / "release", "sim", 2)
    run_dir = tmp_path / "runs"
    code, _, err = run_cli(
        capsys, "eval", str(release), "--target", "openai:simmodel", "--samples", "1",
        "--bootstrap", "0", "--run-dir", str(run_dir),
    )  # fmt: skip
    assert code == 1, err
    run_id, status, events = the_run(run_dir)
    assert f"run {run_id} failed" in error_line(err)
    assert status == "failed"
    [event] = events
    assert "no item could be scored" in event["data"]["reason"]
    assert (run_dir / run_id / "results.jsonl").is_file()


def test_an_ask_whose_calls_fail_says_why_in_the_store(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, refusing_server: str
) -> None:
    run_dir = tmp_path / "runs"
    code, _, err = run_cli(
        capsys, "ask", "openai:simmodel", "--base-url", refusing_server, "--attr", "gender",
        "--samples", "1", "Is {{he/she}} ok?", "--run-dir", str(run_dir),
    )  # fmt: skip
    assert code == 1, err
    _, status, events = the_run(run_dir)
    assert status == "failed"
    assert events[0]["data"]["reason"] == "2 call(s) failed after retries"


def test_evolve_timeout_reaches_target_judge_and_helper_and_is_stored(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    refusing_server: str,
) -> None:
    timeouts: list[float | None] = []
    build = OpenAIBackend.__init__

    def spy(self: OpenAIBackend, model: str, **options: Any) -> None:
        timeouts.append(options.get("timeout_s"))
        build(self, model, **options)

    monkeypatch.setattr(OpenAIBackend, "__init__", spy)
    run_dir = tmp_path / "runs"
    code, _, err = run_cli(
        capsys, "evolve", "--target", "openai:simmodel", "--base-url", refusing_server,
        "--judge", "judge:openai:simmodel", "--judge-base-url", refusing_server,
        "--mutator-model", "openai:simmodel", "--mutator-base-url", refusing_server,
        "--attr", "gender", "--generations", "0", "--population", "1", "--samples", "1",
        "--timeout", "7", "--run-dir", str(run_dir),
    )  # fmt: skip
    assert code == 1, err  # the server refuses everything; only the wiring matters here
    assert set(timeouts) == {7.0}
    assert len(timeouts) >= 3  # target, helper, judge (validated once, then built for use)
    run_id, _, _ = the_run(run_dir)
    config = json.loads((run_dir / run_id / "config.json").read_text())
    assert config["timeout_s"] == 7.0
    with Store.in_run_dir(run_dir) as store:
        stored = store.get_run(run_id)
    assert stored is not None
    assert stored.config["evolve"]["timeout_s"] == 7.0


def test_evolve_timeout_must_be_positive(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, _, err = run_cli(
        capsys, "evolve", "--target", "sim", "--attr", "gender", "--timeout", "0",
        "--run-dir", str(tmp_path / "runs"),
    )  # fmt: skip
    assert code == 2
    assert "--timeout" in error_line(err)
    assert not (tmp_path / "runs").exists()
