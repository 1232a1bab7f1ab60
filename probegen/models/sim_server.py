"""The planted-bias simulator as an OpenAI-compatible HTTP server.

:func:`create_app` serves ``/v1/chat/completions`` and ``/v1/models`` well enough for
the official ``openai`` SDK, so the simulator can stand in for a remote model server:
probegen reaches it through its ``openai:`` backend (a target ``openai:sim`` with the
server's ``base_url``) exactly as it would reach vLLM or llama.cpp. It answers like the
in-process ``sim`` backend (:class:`~probegen.models.simulator.SimulatorBackend`): the
same regions, the same answer for the same question and seed, from any simulator file
(keyword or graded regions). ``python -m probegen.models.sim_server`` runs it (the
command line is :mod:`probegen.cli.sim_server`).

A latency can delay every answer, to measure throughput against a server of known
speed; ``GET /stats`` returns the number of requests answered, which is how the
benchmarks count the calls that really reached the target (``POST /stats/reset`` zeroes
it). Asked for ``logprobs`` with ``top_logprobs``, it answers a yes/no question with the
first token's distribution over "Yes" and "No" (the simulator's known P(yes)), as
llama.cpp's and vLLM's servers do. Streaming is not supported (400).

It also serves the OpenAI Batch and Anthropic Message Batches endpoints (and the
Anthropic ``/v1/messages`` call), answering each item as the same call would be
(:mod:`probegen.models.batch_server`; ``POST /batch/settings`` sets how it works
batches off, and ``GET /batch/log`` lists what each batch was given).
"""

from __future__ import annotations

import asyncio
import json
import math
import time
import uuid
from dataclasses import dataclass
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from probegen.models.batch_server import BatchServer, BatchSettings
from probegen.models.simulator import SimulatorBackend

__all__ = ["DEFAULT_MODEL_NAME", "ServerStats", "answer_chat", "create_app"]

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
    return JSONResponse(_error_body(message, param), status_code=status)


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


def _error_body(message: str, param: str | None = None) -> dict[str, Any]:
    # The shape the openai SDK parses into APIStatusError.message.
    return {
        "error": {"message": message, "type": "invalid_request_error", "param": param, "code": None}
    }


def answer_chat(
    sim: SimulatorBackend, body: object, model_name: str = DEFAULT_MODEL_NAME
) -> tuple[int, dict[str, Any]]:
    """The simulator's answer to one ``/v1/chat/completions`` request body: the HTTP
    status and the JSON body (a chat completion, or an error for a bad request). Shared
    by the synchronous endpoint and the batch endpoints, so a batch item is answered
    exactly as the same request sent on its own."""
    if not isinstance(body, dict):
        return 400, _error_body("the request body must be a JSON object")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return 400, _error_body("'messages' must be a non-empty list", "messages")
    if body.get("stream"):
        return 400, _error_body("streaming is not supported by the simulator server", "stream")
    texts = [
        _text_of(m.get("content"))
        for m in messages
        if isinstance(m, dict) and m.get("role") == "user"
    ]
    question = next((t for t in reversed(texts) if t is not None), "")
    seed = body.get("seed")
    if seed is not None and not isinstance(seed, int):
        return 400, _error_body("'seed' must be an integer", "seed")
    n = body.get("n") or 1
    if not isinstance(n, int) or n < 1:
        return 400, _error_body("'n' must be a positive integer", "n")
    top = body.get("top_logprobs")
    if body.get("logprobs") and top is not None:
        if not isinstance(top, int) or not 0 <= top <= 20:
            return 400, _error_body("'top_logprobs' must be an integer in 0..20", "top_logprobs")
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
    prompt_tokens = len(question.split())
    completion_tokens = sum(len(a.split()) for a in answers)
    return 200, {
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


def create_app(
    sim: SimulatorBackend,
    *,
    latency_s: float = 0.0,
    model_name: str = DEFAULT_MODEL_NAME,
    batch: BatchSettings | None = None,
) -> Starlette:
    """The server's ASGI app.

    Args:
        sim: The simulator that writes the answers.
        latency_s: Delay before each answer (``asyncio.sleep``, so requests overlap).
        model_name: The model id ``/v1/models`` lists (requests may name any model).
        batch: Settings of the batch endpoints (:mod:`probegen.models.batch_server`).
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
        if latency_s:
            await asyncio.sleep(latency_s)
        status, payload = answer_chat(sim, body, model_name)
        if status != 200:
            stats.errors += 1
        else:
            stats.completions += 1
            stats.choices += len(payload["choices"])
        return JSONResponse(payload, status_code=status)

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
            *BatchServer(
                sim, lambda body: answer_chat(sim, body, model_name), model_name, batch
            ).routes(),
        ]
    )


if __name__ == "__main__":
    # The command line lives with the other commands; this keeps `python -m` working.
    from probegen.cli.sim_server import main

    main()
