"""Secrets: nothing probegen is given (keys, URL credentials, query-string keys, and the
forms a server echoes back) is written to the store, the run files or the terminal; a
run whose URL had credentials resumes; a URL that is not http(s) with a host is refused
at once (issue 12, items 1-3 and the URL part of 14)."""

from __future__ import annotations

import base64
import json
import os
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from servers import HOST, ServerProcess, free_port

from probegen.cli.app import console, main
from probegen.evolve.config import EvolveConfig
from probegen.evolve.outputs import write_outputs
from probegen.redaction import (
    REDACTED,
    mask_url,
    redact,
    redact_text,
    register_secret,
    register_url_secrets,
)
from probegen.store import Store

CANARY = "CANARY"
TEMPLATE = "Should I hire {{James/Emily}} as our new nurse?"


def probegen(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, **(env or {})}
    for name in ("OPENAI_BASE_URL", "ANTHROPIC_BASE_URL"):
        if env is None or name not in env:
            environment.pop(name, None)
    return subprocess.run(
        [sys.executable, "-m", "probegen", *args],
        capture_output=True,
        text=True,
        env=environment,
        timeout=300,
    )


def assert_one_line_error(result: subprocess.CompletedProcess[str], *fragments: str) -> None:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def everything_written(run_dir: Path) -> bytes:
    """Every file under ``run_dir`` (the SQLite files included) and the database's text."""
    blobs = [path.read_bytes() for path in sorted(run_dir.rglob("*")) if path.is_file()]
    database = run_dir / "probegen.sqlite"
    if database.exists():
        with sqlite3.connect(database) as db:
            blobs.append("\n".join(db.iterdump()).encode())
    return b"\n".join(blobs)


def assert_absent(haystack: bytes | str, *secrets: str) -> None:
    data = haystack.encode() if isinstance(haystack, str) else haystack
    for secret in secrets:
        assert secret.encode() not in data, f"{secret!r} was written"


def basic(user: str, password: str) -> str:
    return base64.b64encode(f"{user}:{password}".encode()).decode()


@pytest.fixture(scope="module")
def sim_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``http://127.0.0.1:PORT`` of the simulator's OpenAI-compatible server."""
    port = free_port()
    argv = [sys.executable, "-m", "probegen.models.sim_server", "--port", str(port)]
    log = tmp_path_factory.mktemp("sim_server") / "sim_server.log"
    server = ServerProcess("sim_server", argv, f"http://{HOST}:{port}", "/health", log)
    server.start(timeout_s=60)
    try:
        yield f"{HOST}:{port}"
    finally:
        server.stop()


class _EchoHandler(BaseHTTPRequestHandler):
    """Refuses every call with a 401 whose body quotes the request's credentials, as
    some gateways do: the Authorization header, what its Basic token decodes to, and
    the path with its query string."""

    def do_GET(self) -> None:
        self._refuse()

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self._refuse()

    def _refuse(self) -> None:
        auth = self.headers.get("Authorization", "")
        scheme, _, token = auth.partition(" ")
        decoded = base64.b64decode(token).decode() if scheme.lower() == "basic" else ""
        message = f"denied: authorization={auth} basic={decoded} path={self.path}"
        body = json.dumps({"error": {"message": message, "type": "auth", "code": None}})
        self.send_response(401)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body.encode())

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def echo_server() -> Iterator[str]:
    """``127.0.0.1:PORT`` of a server that echoes the credentials it got in a 401."""
    server = ThreadingHTTPServer((HOST, 0), _EchoHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"{HOST}:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


# -- the CANARY run of the issue, and its resume ---------------------------------------


EVOLVE = ("evolve", "--target", "openai:simmodel", "--attr", "gender")
SMALL = ("--generations", "0", "--population", "2")


def test_credentials_in_the_url_are_written_nowhere_and_the_run_resumes(
    sim_server: str, tmp_path: Path
) -> None:
    run_dir = tmp_path / "runs"
    url = f"http://user:sk-{CANARY}@{sim_server}/v1"
    env = {"OPENAI_API_KEY": "sk-test"}
    started = probegen(*EVOLVE, "--base-url", url, *SMALL, "--run-dir", str(run_dir), env=env)
    assert started.returncode == 0, started.stderr
    with Store.in_run_dir(run_dir) as store:
        [run] = store.list_runs()
        assert any(q.status == "ok" for q in store.queries(run.id))  # the URL worked
        assert run.config["evolve"]["target_base_url"] == f"http://{REDACTED}@{sim_server}/v1"
    secrets = (CANARY, basic("user", f"sk-{CANARY}"), "sk-test")
    assert_absent(everything_written(run_dir), *secrets)
    assert_absent(started.stdout + started.stderr, *secrets)

    # Without the URL the run cannot reach its server: one line naming the flag.
    refused = probegen("evolve", "--resume", run.id, "--run-dir", str(run_dir), env=env)
    assert_one_line_error(refused, "--base-url", run.id)

    # Another server is not the run's URL (the secrets, never stored, cannot be compared).
    other = url.replace("/v1", "/v2").replace(CANARY, "OTHER")
    moved = probegen("evolve", "--resume", run.id, "--base-url", other, "--run-dir", str(run_dir))
    assert_one_line_error(moved, "--base-url", "not the URL the run was started with")
    assert_absent(moved.stderr, "OTHER")

    resumed = probegen(
        "evolve", "--resume", run.id, "--base-url", url, "--run-dir", str(run_dir), env=env
    )
    assert resumed.returncode == 0, resumed.stderr
    assert_absent(everything_written(run_dir), *secrets)
    assert_absent(resumed.stdout + resumed.stderr, *secrets)
    with Store.in_run_dir(run_dir) as store:
        assert [r.id for r in store.list_runs()] == [run.id]  # resumed, not a new run
        resumed_run = store.get_run(run.id)
    assert resumed_run is not None
    assert resumed_run.config == run.config  # still redacted
    config = json.loads((run_dir / run.id / "config.json").read_text())
    assert config["target_base_url"] == f"http://{REDACTED}@{sim_server}/v1"


def test_a_query_string_key_is_written_nowhere(sim_server: str, tmp_path: Path) -> None:
    run_dir = tmp_path / "runs"
    url = f"http://{sim_server}/v1?api-key=qs-{CANARY}"
    result = probegen(
        *EVOLVE, "--base-url", url, *SMALL, "--run-dir", str(run_dir), "--judge", "stats"
    )
    assert_absent(everything_written(run_dir), CANARY)
    assert_absent(result.stdout + result.stderr, CANARY)
    with Store.in_run_dir(run_dir) as store:
        [run] = store.list_runs()
    assert run.config["evolve"]["target_base_url"] == f"http://{sim_server}/v1?api-key={REDACTED}"


# -- secrets a server echoes back ------------------------------------------------------


@pytest.mark.parametrize(
    ("user", "password", "key"),
    [
        ("alice", "correct horse battery", "opensesame"),  # no key shape at all
        ("bob", "Zq9", "k3y"),  # short: masked where they stand alone
    ],
)
def test_secrets_echoed_by_a_server_are_stored_and_printed_nowhere(
    echo_server: str, tmp_path: Path, user: str, password: str, key: str
) -> None:
    quoted = password.replace(" ", "%20")
    url = f"http://{user}:{quoted}@{echo_server}/v1?sig=s1gn4ture"
    env = {"OPENAI_API_KEY": key}
    secrets = (password, quoted, basic(user, password), "s1gn4ture", key)
    run_dir = tmp_path / "runs"
    asked = probegen(
        "ask", "openai:echo", "--base-url", url, "--attr", "gender", "--samples", "1",
        "--run-dir", str(run_dir), TEMPLATE, env=env,
    )  # fmt: skip
    assert asked.returncode == 1, asked.stderr  # every call failed, and was recorded
    with Store.in_run_dir(run_dir) as store:
        [run] = store.list_runs()
        errors = [q.error or "" for q in store.queries(run.id)]
        events = json.dumps(store.events(run.id))
    assert errors
    assert all("denied" in error and REDACTED in error for error in errors)
    assert "denied" in events
    texts: list[str | bytes] = [*errors, events, asked.stdout + asked.stderr]
    for text in [*texts, everything_written(run_dir)]:
        assert_absent(text, *secrets)

    pinged = probegen("models", "ping", "openai:echo", "--base-url", url, env=env)
    assert_one_line_error(pinged, "denied", REDACTED)
    assert_absent(pinged.stdout + pinged.stderr, *secrets)


# -- URLs are checked before anything runs ---------------------------------------------


def in_process(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    env: dict[str, str],
    *argv: str,
) -> subprocess.CompletedProcess[str]:
    """``probegen ARGV`` run in this process (refusals need no server and no subprocess)."""
    for name in ("OPENAI_BASE_URL", "ANTHROPIC_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        main(list(argv))
    out, err = capsys.readouterr()
    return subprocess.CompletedProcess(list(argv), int(exit_info.value.code or 0), out, err)


@pytest.mark.parametrize(
    ("args", "env", "named"),
    [
        (("--base-url", "notaurl"), {}, "--base-url"),
        (("--base-url", "::::"), {}, "--base-url"),
        (("--base-url", "ftp://127.0.0.1/v1"), {}, "--base-url"),
        (("--base-url", "http://"), {}, "--base-url"),
        (("--base-url", "http://127.0.0.1:notaport/v1"), {}, "--base-url"),
        ((), {"OPENAI_BASE_URL": "::::"}, "OPENAI_BASE_URL"),
        ((), {"OPENAI_BASE_URL": "notaurl"}, "OPENAI_BASE_URL"),
        (("--judge", "judge:openai:j", "--judge-base-url", "::::"), {}, "--judge-base-url"),
        (
            ("--mutator-model", "openai:m", "--mutator-base-url", "notaurl"),
            {},
            "--mutator-base-url",
        ),
    ],
)
def test_a_url_that_is_not_http_with_a_host_is_one_line_exit_2(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    args: tuple[str, ...],
    env: dict[str, str],
    named: str,
) -> None:
    run_dir = tmp_path / "runs"
    result = in_process(capsys, monkeypatch, env, *EVOLVE, *SMALL, *args, "--run-dir", str(run_dir))
    assert_one_line_error(result, named, "http(s) URL with a host")
    assert not run_dir.exists()  # no run row, no run directory


def test_anthropic_base_url_and_the_other_commands_check_urls_too(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    run_dir = tmp_path / "runs"
    env = {"ANTHROPIC_BASE_URL": "::::"}
    ask = ("ask", "anthropic:m", "--attr", "gender", "--run-dir", str(run_dir), TEMPLATE)
    assert_one_line_error(in_process(capsys, monkeypatch, env, *ask), "ANTHROPIC_BASE_URL")
    assert not run_dir.exists()
    ping = ("models", "ping", "openai:m", "--base-url")
    assert_one_line_error(in_process(capsys, monkeypatch, {}, *ping, "::::"), "--base-url")
    # A password in a URL that is refused is not printed either.
    refused = in_process(capsys, monkeypatch, {}, *ping, "user:hunter2@host/v1")
    assert_one_line_error(refused, "--base-url")
    assert_absent(refused.stderr, "hunter2")


def test_a_presets_file_has_its_urls_checked_and_its_credentials_hidden(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    presets = tmp_path / "presets.toml"
    presets.write_text(
        '[presets.gw]\nspec = "openai:m"\nbase_url = "https://eve:Pr3setPass@gw.example/v1"\n'
    )
    env = {"PROBEGEN_PRESETS": str(presets)}
    monkeypatch.setattr(console, "width", 400)  # no folded cells: a URL stays on one line
    listed = in_process(capsys, monkeypatch, env, "models", "list")
    assert listed.returncode == 0, listed.stderr
    assert "gw.example" in listed.stdout
    assert_absent(listed.stdout, "Pr3setPass", "eve:")
    presets.write_text('[presets.gw]\nspec = "openai:m"\nbase_url = "gw.example/v1"\n')
    bad = in_process(capsys, monkeypatch, env, "models", "ping", "gw")
    assert_one_line_error(bad, "presets.gw.base_url", "http(s) URL with a host")


# -- the redaction itself --------------------------------------------------------------


def test_registered_secrets_are_masked_by_value_whatever_their_shape() -> None:
    register_url_secrets("https://carol:pa%24%24word-7@gw.example/v1?api-key=AzureKey123&v=2")
    register_secret("Xy7")
    text = (
        "401: auth=Basic " + basic("carol", "pa$$word-7") + " for carol:pa$$word-7, "
        "key AzureKey123, pw pa%24%24word-7, short Xy7 but not Xy7z or aXy7"
    )
    masked = redact_text(text)
    for secret in ("pa$$word-7", "pa%24%24word-7", "AzureKey123", basic("carol", "pa$$word-7")):
        assert secret not in masked
    assert "short [redacted] but not Xy7z or aXy7" in masked


def test_blank_and_one_or_two_character_values_are_never_registered() -> None:
    register_secret("")
    register_secret("   ")
    register_secret(None)
    register_secret("ab")
    register_url_secrets("http://@host/v1?flag&empty=&v=2")
    text = "a plain sentence, with spaces: step 2 of ab"
    assert redact_text(text) == text
    assert redact_text("http://host/v1?v=2") == f"http://host/v1?v={REDACTED}"


def test_urls_keep_their_server_and_lose_credentials_and_query_values() -> None:
    assert (
        mask_url("see https://u:p@h.example:8443/v1?api-key=x&v=2#frag now")
        == f"see https://{REDACTED}@h.example:8443/v1?api-key={REDACTED}&v={REDACTED}"
        f"#{REDACTED} now"
    )
    assert redact({"base_url": "http://h/v1?token=abc"}) == {
        "base_url": f"http://h/v1?token={REDACTED}"
    }


def test_kept_data_keeps_ordinary_words_that_equal_a_short_secret(tmp_path: Path) -> None:
    # User "user", password "test": common words in a template or a system prompt, which
    # a resume replays; only the URL loses them there. Logs and errors mask them anyway.
    register_url_secrets("http://user:test@gw.example/v1")
    prompt = "Help the user test https://docs.example/page?id=7 first."
    config = {"system": prompt, "base_url": "http://user:test@gw.example/v1?k=LongValue77"}
    with Store.in_run_dir(tmp_path) as store:
        run = store.get_run(store.create_run("evolve", config))
    assert run is not None
    assert run.config == {
        "system": prompt,
        "base_url": f"http://{REDACTED}@gw.example/v1?k={REDACTED}",
    }
    assert redact_text("401 for user:test") == f"401 for {REDACTED}"
    assert redact_text("login user test failed") == f"login {REDACTED} {REDACTED} failed"


def test_the_store_and_the_run_files_redact_what_they_write(tmp_path: Path) -> None:
    url = "https://dave:Secr3tPass@gw.example/v1?api-key=QueryKey99"
    register_url_secrets(url)
    config = EvolveConfig(target="openai:m", attribute="gender", target_base_url=url)
    with Store.in_run_dir(tmp_path) as store:
        run_id = store.create_run("evolve", {"evolve": config.model_dump(mode="json")})
        store.log_event(run_id, "failure", {"cause": "echo Secr3tPass"})
        store.record_query(
            run_id, "p1", "m", "a", None, 0, response_key=None, error="bad QueryKey99"
        )
        write_outputs(
            tmp_path / run_id,
            config=config,
            run_id=run_id,
            store=store,
            corpora=None,  # type: ignore[arg-type]  # no elites: the corpora are not read
            target="openai:m",
            elites=[],
            reports=[],
            operator_stats={},
        )
        assert store.queries(run_id)[0].error == f"bad {REDACTED}"
    assert_absent(everything_written(tmp_path), "Secr3tPass", "QueryKey99")
