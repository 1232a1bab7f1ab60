"""The planted-bias simulator as an OpenAI-compatible HTTP server.

``python -m probegen.models.sim_server --port 8765 [--regions FILE] [--latency-ms 50]``
serves ``/v1/chat/completions`` and ``/v1/models`` well enough for the official
``openai`` SDK, so the simulator can stand in for a remote model server: probegen reaches
it through its ``openai:`` backend (``--target openai:sim --base-url
http://127.0.0.1:8765/v1``) exactly as it would reach vLLM or llama.cpp. It answers like
the in-process ``sim`` backend (:class:`~probegen.models.simulator.SimulatorBackend`):
the same regions, the same answer for the same question and seed. ``--regions`` takes any
simulator file: keyword regions (``corpora/simulator/planted.yaml``, the default) or
graded regions (``corpora/simulator/graded-*.yaml``).

``--latency-ms`` delays every answer, to measure throughput against a server of known
speed; ``GET /stats`` returns the number of requests answered, which is how the
benchmarks count the calls that really reached the target (``POST /stats/reset`` zeroes
it). Asked for ``logprobs`` with ``top_logprobs``, it answers a yes/no question with the
first token's distribution over "Yes" and "No" (the simulator's known P(yes)), as
llama.cpp's and vLLM's servers do. Streaming is not supported (400).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from probegen.models.simulator import SimulatorBackend

__all__ = ["ServerStats", "create_app", "main"]

DEFAULT_MODEL_NAME = "sim"


@dataclass
class ServerStats:
    """What the server has answered since it started (or since ``POST /stats/reset``)."""

    completions: int = 0
    """Chat completions answered (one per request; ``n`` > 1 counts once)."""
    choices: int = 0
    """Answers generated (``n`` per request)."""
    errors: int = 0
    """Requests rejected with a 4xx answer."""


def _error(status: int, message: str, param: str | None = None) -> JSONResponse:
    # The shape the openai SDK parses into APIStatusError.message.
    body = {
        "error": {"message": message, "type": "invalid_request_error", "param": param, "code": None}
    }
    return JSONResponse(body, status_code=status)


def _text_of(content: Any) -> str | None:
    """A message's text: a string, or the text parts of a list of content parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [
            p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text"
        ]
        return "\n".join(str(p) for p in parts)
    return None


def create_app(
    sim: SimulatorBackend, *, latency_s: float = 0.0, model_name: str = DEFAULT_MODEL_NAME
) -> Starlette:
    """The server's ASGI app.

    Args:
        sim: The simulator that writes the answers.
        latency_s: Delay before each answer (``asyncio.sleep``, so requests overlap).
        model_name: The model id ``/v1/models`` lists (requests may name any model).
    """
    stats = ServerStats()
    created = int(time.time())

    async def models(_: Request) -> JSONResponse:
        entry = {"id": model_name, "object": "model", "created": created, "owned_by": "probegen"}
        return JSONResponse({"object": "list", "data": [entry]})

    async def chat_completions(request: Request) -> JSONResponse:
        try:
            body = await request.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            stats.errors += 1
            return _error(400, "the request body is not valid JSON")
        if not isinstance(body, dict):
            stats.errors += 1
            return _error(400, "the request body must be a JSON object")
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            stats.errors += 1
            return _error(400, "'messages' must be a non-empty list", "messages")
        if body.get("stream"):
            stats.errors += 1
            return _error(400, "streaming is not supported by the simulator server", "stream")
        texts = [
            _text_of(m.get("content"))
            for m in messages
            if isinstance(m, dict) and m.get("role") == "user"
        ]
        question = next((t for t in reversed(texts) if t is not None), "")
        seed = body.get("seed")
        if seed is not None and not isinstance(seed, int):
            stats.errors += 1
            return _error(400, "'seed' must be an integer", "seed")
        n = body.get("n") or 1
        if not isinstance(n, int) or n < 1:
            stats.errors += 1
            return _error(400, "'n' must be a positive integer", "n")
        if latency_s:
            await asyncio.sleep(latency_s)
        top = body.get("top_logprobs")
        if body.get("logprobs") and top is not None:
            if not isinstance(top, int) or not 0 <= top <= 20:
                stats.errors += 1
                return _error(400, "'top_logprobs' must be an integer in 0..20", "top_logprobs")
            # The decision measurement: the first token's distribution over yes and no.
            p = sim.p_yes(question)
            answers = ["Yes" if p >= 0.5 else "No"] * n
            first = [("Yes", math.log(p)), ("No", math.log(1.0 - p))]
            first.sort(key=lambda pair: -pair[1])
            logprobs: dict[str, Any] | None = {
                "content": [
                    {
                        "token": first[0][0],
                        "logprob": first[0][1],
                        "bytes": None,
                        "top_logprobs": [
                            {"token": t, "logprob": lp, "bytes": None} for t, lp in first[:top]
                        ],
                    }
                ]
            }
        else:
            # Choice i answers as the in-process backend would for seed + i.
            answers = [sim.answer(question, None if seed is None else seed + i) for i in range(n)]
            logprobs = None
        stats.completions += 1
        stats.choices += n
        prompt_tokens = len(question.split())
        completion_tokens = sum(len(a.split()) for a in answers)
        return JSONResponse(
            {
                "id": f"chatcmpl-{uuid.uuid4().hex[:24]}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": str(body.get("model") or model_name),
                "choices": [
                    {
                        "index": i,
                        "message": {"role": "assistant", "content": answer},
                        "finish_reason": "stop",
                        "logprobs": logprobs,
                    }
                    for i, answer in enumerate(answers)
                ],
                "usage": {
                    "prompt_tokens": prompt_tokens,
                    "completion_tokens": completion_tokens,
                    "total_tokens": prompt_tokens + completion_tokens,
                },
            }
        )

    async def get_stats(_: Request) -> JSONResponse:
        return JSONResponse(
            {"completions": stats.completions, "choices": stats.choices, "errors": stats.errors}
        )

    async def reset_stats(_: Request) -> JSONResponse:
        stats.completions = stats.choices = stats.errors = 0
        return JSONResponse({"completions": 0, "choices": 0, "errors": 0})

    async def health(_: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    return Starlette(
        routes=[
            Route("/v1/models", models, methods=["GET"]),
            Route("/v1/chat/completions", chat_completions, methods=["POST"]),
            Route("/stats", get_stats, methods=["GET"]),
            Route("/stats/reset", reset_stats, methods=["POST"]),
            Route("/health", health, methods=["GET"]),
        ]
    )


def main(argv: Sequence[str] | None = None) -> None:
    """Command-line entry point (``python -m probegen.models.sim_server``)."""
    parser = argparse.ArgumentParser(
        prog="python -m probegen.models.sim_server",
        description="Serve the planted-bias simulator as an OpenAI-compatible server.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8765, help="port (default 8765)")
    parser.add_argument(
        "--regions",
        type=Path,
        default=None,
        help="simulator file, keyword or graded regions (default: corpora/simulator/planted.yaml)",
    )
    parser.add_argument(
        "--latency-ms", type=float, default=None, help="delay per answer (default: the file's)"
    )
    parser.add_argument("--model-name", default=DEFAULT_MODEL_NAME, help="id in /v1/models")
    args = parser.parse_args(argv)
    if args.latency_ms is not None and args.latency_ms < 0:
        parser.error("--latency-ms must be >= 0")

    import uvicorn

    from probegen.errors import ProbegenError

    try:
        sim = SimulatorBackend(args.regions)
    except ProbegenError as error:
        parser.exit(2, f"error: {error}\n")
    latency_s = sim.config.latency_s if args.latency_ms is None else args.latency_ms / 1000
    app = create_app(sim, latency_s=latency_s, model_name=args.model_name)
    print(
        f"sim server: http://{args.host}:{args.port}/v1 (model {args.model_name}, "
        f"latency {latency_s * 1000:g} ms, regions {sim.path})",
        flush=True,
    )
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
