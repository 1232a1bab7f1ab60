"""The batch endpoints of the simulator server, as the official SDKs call them.

Mounted by :func:`probegen.models.sim_server.create_app`, so one local server answers
an eval with ``batch=True`` the way the providers do:

- OpenAI Batch: ``POST /v1/files`` (multipart, ``purpose=batch``), ``GET
  /v1/files/{id}`` and ``/content``, ``POST /v1/batches``, ``GET /v1/batches[/{id}]``,
  ``POST /v1/batches/{id}/cancel``; results go to an output file (answers) and an error
  file (failed and expired items), as JSONL.
- Anthropic Message Batches: ``POST /v1/messages/batches`` (``GET`` lists them), ``GET
  /v1/messages/batches/{id}``, ``GET .../results`` (JSONL), ``POST .../cancel``; and the
  synchronous ``POST /v1/messages``, so a batch answer can be compared with a call.

Every item is answered by the simulator exactly as the same request sent on its own
(:func:`~probegen.models.sim_server.answer_chat` for chat completions). A batch is worked
off in the background after ``delay_s``, ``item_s`` per item, so a test can kill its
client mid-batch; results come back shuffled, as the providers promise no order. Faults
for the failure paths: ``fail_share`` fails that share of the items a batch answers
(rounded up, so a positive share always fails one; the ids with the lowest seeded hash,
so the same batch fails the same ids in every run, whatever order its items came in)
and ``expire_after`` lets a batch answer that many items and then expire. ``GET
/batch/log`` lists every batch with the custom ids it was given (what a test checks
"submitted once" against); ``POST /batch/settings`` changes the settings of later
batches.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import random
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime
from typing import Any, Literal

from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from probegen.models.simulator import SimulatorBackend

__all__ = ["BatchServer", "BatchSettings", "answer_messages"]

ChatAnswerer = Callable[[object], tuple[int, dict[str, Any]]]
"""A chat completions body -> (HTTP status, JSON body)."""

_ANTHROPIC_ID = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
_EXPIRED_MESSAGE = "This request could not be executed before the completion window expired."
_WINDOW_S = 24 * 3600
_MB = "/v1/messages/batches"


@dataclass
class BatchSettings:
    """How the server works off the batches created after these settings."""

    delay_s: float = 0.0
    """Seconds before a batch starts answering."""
    item_s: float = 0.0
    """Seconds per answered item."""
    fail_share: float = 0.0
    """Share of the items a batch answers that fail (HTTP 500 inside the batch)."""
    expire_after: int | None = None
    """A batch answers this many items, then expires (the rest: ``expired``)."""
    seed: int = 0
    """Seeds the failure choice and the result order."""


@dataclass
class _Outcome:
    custom_id: str
    kind: Literal["succeeded", "errored", "expired", "canceled"]
    status: int = 200
    payload: dict[str, Any] = field(default_factory=dict)


@dataclass
class _Batch:
    id: str
    api: Literal["openai", "anthropic"]
    items: list[tuple[str, dict[str, Any]]]
    settings: BatchSettings
    order: int
    status: str
    created_at: float = field(default_factory=time.time)
    metadata: dict[str, Any] | None = None
    input_file_id: str | None = None
    outcomes: list[_Outcome] = field(default_factory=list)
    cancel: bool = False
    ended_at: float | None = None
    output_file_id: str | None = None
    error_file_id: str | None = None
    errors: list[dict[str, Any]] | None = None


def _iso(stamp: float | None) -> str | None:
    return None if stamp is None else datetime.fromtimestamp(stamp, UTC).isoformat()


def _openai_error(status: int, message: str) -> JSONResponse:
    body = {"error": {"message": message, "type": "invalid_request_error", "param": None}}
    return JSONResponse(body, status_code=status)


def _anthropic_error(status: int, message: str) -> JSONResponse:
    body = {"type": "error", "error": {"type": "invalid_request_error", "message": message}}
    return JSONResponse(body, status_code=status)


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(
            str(b.get("text", ""))
            for b in content
            if isinstance(b, dict) and b.get("type") == "text"
        )
    return ""


def answer_messages(
    sim: SimulatorBackend, params: object, model_name: str
) -> tuple[int, dict[str, Any]]:
    """The simulator's answer to one Messages API request: (HTTP status, JSON body).

    ``seed`` (sent by probegen to a custom endpoint) picks the sample, as for chat
    completions."""
    if not isinstance(params, dict):
        return 400, {"type": "error", "error": {"type": "invalid_request_error",
                                                "message": "params must be an object"}}  # fmt: skip
    messages = params.get("messages")
    if (
        not isinstance(messages, list)
        or not messages
        or not isinstance(params.get("max_tokens"), int)
    ):
        message = "'messages' must be a non-empty list and 'max_tokens' an integer"
        return 400, {
            "type": "error",
            "error": {"type": "invalid_request_error", "message": message},
        }
    seed = params.get("seed")
    users = [
        _text(m.get("content")) for m in messages if isinstance(m, dict) and m.get("role") == "user"
    ]
    question = users[-1] if users else ""
    answer = sim.answer(question, seed if isinstance(seed, int) else None)
    return 200, {
        "id": f"msg_{uuid.uuid4().hex[:24]}",
        "type": "message",
        "role": "assistant",
        "model": str(params.get("model") or model_name),
        "content": [{"type": "text", "text": answer}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": len(question.split()), "output_tokens": len(answer.split())},
    }


class BatchServer:
    """The batch endpoints' state: uploaded files, batches and the settings.

    Args:
        sim: The simulator (answers Messages API requests).
        answer_chat: Answers a chat completions body (the synchronous endpoint's logic).
        model_name: The model named in answers when a request names none.
        settings: Settings of the batches to come.
    """

    def __init__(
        self,
        sim: SimulatorBackend,
        answer_chat: ChatAnswerer,
        model_name: str,
        settings: BatchSettings | None = None,
    ) -> None:
        self.sim = sim
        self.answer_chat = answer_chat
        self.model_name = model_name
        self.settings = settings or BatchSettings()
        self.files: dict[str, tuple[str, str, bytes]] = {}  # id -> (name, purpose, data)
        self.batches: dict[str, _Batch] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def routes(self) -> list[Route]:
        """The routes to mount on the server's app."""
        return [
            Route("/v1/files", self.create_file, methods=["POST"]),
            Route("/v1/files/{file_id}", self.get_file, methods=["GET"]),
            Route("/v1/files/{file_id}/content", self.file_content, methods=["GET"]),
            Route("/v1/batches", self.create_openai, methods=["POST"]),
            Route("/v1/batches", self.list_openai, methods=["GET"]),
            Route("/v1/batches/{batch_id}", self.get_openai, methods=["GET"]),
            Route("/v1/batches/{batch_id}/cancel", self.cancel_openai, methods=["POST"]),
            Route("/v1/messages", self.messages, methods=["POST"]),
            Route("/v1/messages/batches", self.create_anthropic, methods=["POST"]),
            Route("/v1/messages/batches", self.list_anthropic, methods=["GET"]),
            Route("/v1/messages/batches/{batch_id}", self.get_anthropic, methods=["GET"]),
            Route(f"{_MB}/{{batch_id}}/results", self.anthropic_results, methods=["GET"]),
            Route(f"{_MB}/{{batch_id}}/cancel", self.cancel_anthropic, methods=["POST"]),
            Route("/batch/log", self.log, methods=["GET"]),
            Route("/batch/settings", self.update_settings, methods=["POST"]),
        ]  # fmt: skip

    # -- working off a batch ---------------------------------------------------------

    def _start(self, batch: _Batch) -> None:
        self.batches[batch.id] = batch
        task = asyncio.get_running_loop().create_task(self._work(batch))
        self._tasks.add(task)  # the loop keeps only weak references to its tasks
        task.add_done_callback(self._tasks.discard)

    @staticmethod
    def _failing(batch: _Batch) -> set[str]:
        """The custom ids that fail: an exact share of the items answered, chosen by hash.

        A per-id threshold would fail a share only on average, and none at all when the
        few ids it picks fall among the expired ones; ranking the answered ids by a seeded
        hash fails exactly ``ceil(fail_share * answered)`` of them, independent of order.
        """
        settings = batch.settings
        answered = [custom_id for custom_id, _body in batch.items]
        if settings.expire_after is not None:
            answered = answered[: settings.expire_after]
        count = math.ceil(settings.fail_share * len(answered) - 1e-9)

        def rank(custom_id: str) -> bytes:
            return hashlib.sha256(f"{settings.seed}\0{custom_id}".encode()).digest()

        return set(sorted(answered, key=rank)[:count])

    async def _work(self, batch: _Batch) -> None:
        settings = batch.settings
        if settings.delay_s:
            await asyncio.sleep(settings.delay_s)
        batch.status = "in_progress"
        ended = "completed"
        failing = self._failing(batch)
        for index, (custom_id, body) in enumerate(batch.items):
            if batch.cancel:
                ended = "cancelled"
                batch.outcomes.append(_Outcome(custom_id, "canceled"))
                continue
            if settings.expire_after is not None and index >= settings.expire_after:
                ended = "expired"
                batch.outcomes.append(_Outcome(custom_id, "expired"))
                continue
            if custom_id in failing:
                message = "injected item failure"
                payload: dict[str, Any] = {"error": {"message": message, "type": "server_error"}}
                if batch.api == "anthropic":
                    payload = {"type": "error", "error": {"type": "api_error", "message": message}}
                batch.outcomes.append(_Outcome(custom_id, "errored", 500, payload))
            else:
                answer = self.answer_chat if batch.api == "openai" else self._answer_messages
                status, payload = answer(body)
                kind: Literal["succeeded", "errored"] = "succeeded" if status == 200 else "errored"
                batch.outcomes.append(_Outcome(custom_id, kind, status, payload))
            if settings.item_s:
                await asyncio.sleep(settings.item_s)
        # The providers promise no order: results arrive shuffled.
        random.Random(settings.seed + batch.order).shuffle(batch.outcomes)
        if batch.api == "openai":
            self._write_openai_files(batch)
        batch.status = ended if batch.api == "openai" else "ended"
        batch.ended_at = time.time()

    def _answer_messages(self, params: object) -> tuple[int, dict[str, Any]]:
        return answer_messages(self.sim, params, self.model_name)

    # -- OpenAI ---------------------------------------------------------------------

    def _add_file(self, name: str, purpose: str, data: bytes) -> dict[str, Any]:
        file_id = f"file-{uuid.uuid4().hex[:24]}"
        self.files[file_id] = (name, purpose, data)
        return self._file_object(file_id)

    def _file_object(self, file_id: str) -> dict[str, Any]:
        name, purpose, data = self.files[file_id]
        return {
            "id": file_id, "object": "file", "bytes": len(data), "created_at": int(time.time()),
            "filename": name, "purpose": purpose, "status": "processed",
        }  # fmt: skip

    async def create_file(self, request: Request) -> JSONResponse:
        form = await request.form()
        upload, purpose = form.get("file"), form.get("purpose")
        if not isinstance(upload, UploadFile) or not isinstance(purpose, str):
            return _openai_error(400, "a multipart 'file' and a 'purpose' are required")
        data = await upload.read()
        return JSONResponse(self._add_file(upload.filename or "upload.jsonl", purpose, data))

    async def get_file(self, request: Request) -> JSONResponse:
        file_id = request.path_params["file_id"]
        if file_id not in self.files:
            return _openai_error(404, f"no file {file_id}")
        return JSONResponse(self._file_object(file_id))

    async def file_content(self, request: Request) -> Response:
        file_id = request.path_params["file_id"]
        if file_id not in self.files:
            return _openai_error(404, f"no file {file_id}")
        return Response(self.files[file_id][2], media_type="application/octet-stream")

    async def create_openai(self, request: Request) -> JSONResponse:
        body = await request.json()
        file_id = body.get("input_file_id")
        if body.get("completion_window") != "24h":
            return _openai_error(400, "completion_window must be '24h'")
        if body.get("endpoint") != "/v1/chat/completions":
            return _openai_error(400, "this server batches /v1/chat/completions only")
        if file_id not in self.files or self.files[file_id][1] != "batch":
            return _openai_error(400, f"no batch file {file_id}")
        items, errors = self._parse_input(self.files[file_id][2])
        batch = _Batch(
            id=f"batch_{uuid.uuid4().hex[:24]}", api="openai", items=items,
            settings=BatchSettings(**asdict(self.settings)), order=len(self.batches),
            status="validating", metadata=body.get("metadata"), input_file_id=file_id,
        )  # fmt: skip
        if errors:
            # As the real service: a file that does not validate fails the whole batch.
            batch.status, batch.errors, batch.ended_at = "failed", errors, time.time()
            self.batches[batch.id] = batch
        else:
            self._start(batch)
        return JSONResponse(self._openai_object(batch))

    @staticmethod
    def _parse_input(data: bytes) -> tuple[list[tuple[str, dict[str, Any]]], list[dict[str, Any]]]:
        items: list[tuple[str, dict[str, Any]]] = []
        errors: list[dict[str, Any]] = []
        seen: set[str] = set()
        for line_no, line in enumerate(data.decode().splitlines(), start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                errors.append({"code": "invalid_json_line", "message": "not JSON", "line": line_no})
                continue
            custom_id, body = row.get("custom_id"), row.get("body")
            if not isinstance(custom_id, str) or not isinstance(body, dict):
                message = "each line needs a custom_id and a body"
                errors.append({"code": "invalid_request", "message": message, "line": line_no})
            elif row.get("url") != "/v1/chat/completions" or row.get("method") != "POST":
                message = "url must be /v1/chat/completions, method POST"
                errors.append({"code": "invalid_url", "message": message, "line": line_no})
            elif custom_id in seen:
                message = f"duplicate custom_id {custom_id}"
                errors.append({"code": "duplicate_custom_id", "message": message, "line": line_no})
            else:
                seen.add(custom_id)
                items.append((custom_id, body))
        return items, [{**e, "param": None} for e in errors]

    def _write_openai_files(self, batch: _Batch) -> None:
        output: list[str] = []
        failed: list[str] = []
        for outcome in batch.outcomes:
            line: dict[str, Any] = {
                "id": f"batch_req_{uuid.uuid4().hex[:16]}",
                "custom_id": outcome.custom_id,
                "response": None,
                "error": None,
            }
            if outcome.kind in ("succeeded", "errored"):
                line["response"] = {
                    "status_code": outcome.status,
                    "request_id": uuid.uuid4().hex,
                    "body": outcome.payload,
                }
            elif outcome.kind == "expired":
                line["error"] = {"code": "batch_expired", "message": _EXPIRED_MESSAGE}
            else:
                line["error"] = {"code": "batch_cancelled", "message": "The batch was cancelled."}
            (output if outcome.kind == "succeeded" else failed).append(json.dumps(line))
        if output:
            name = f"{batch.id}_output.jsonl"
            data = ("\n".join(output) + "\n").encode()
            batch.output_file_id = self._add_file(name, "batch_output", data)["id"]
        if failed:
            data = ("\n".join(failed) + "\n").encode()
            batch.error_file_id = self._add_file(f"{batch.id}_error.jsonl", "batch_output", data)[
                "id"
            ]

    def _openai_object(self, batch: _Batch) -> dict[str, Any]:
        counts = {
            "total": len(batch.items),
            "completed": sum(o.kind == "succeeded" for o in batch.outcomes),
            "failed": sum(o.kind != "succeeded" for o in batch.outcomes),
        }
        end_field = {"completed": "completed_at", "expired": "expired_at", "failed": "failed_at",
                     "cancelled": "cancelled_at"}.get(batch.status)  # fmt: skip
        stamps: dict[str, int | None] = {
            name: None for name in ("completed_at", "expired_at", "failed_at", "cancelled_at")
        }
        if end_field and batch.ended_at is not None:
            stamps[end_field] = int(batch.ended_at)
        return {
            "id": batch.id, "object": "batch", "endpoint": "/v1/chat/completions",
            "errors": None if batch.errors is None else {"object": "list", "data": batch.errors},
            "input_file_id": batch.input_file_id, "completion_window": "24h",
            "status": batch.status, "output_file_id": batch.output_file_id,
            "error_file_id": batch.error_file_id, "created_at": int(batch.created_at),
            "in_progress_at": None, "expires_at": int(batch.created_at) + _WINDOW_S,
            "finalizing_at": None, "cancelling_at": None, **stamps,
            "request_counts": counts, "metadata": batch.metadata,
        }  # fmt: skip

    def _find(self, request: Request, api: str) -> _Batch | None:
        batch = self.batches.get(request.path_params["batch_id"])
        return batch if batch is not None and batch.api == api else None

    async def get_openai(self, request: Request) -> JSONResponse:
        batch = self._find(request, "openai")
        if batch is None:
            return _openai_error(404, "no such batch")
        return JSONResponse(self._openai_object(batch))

    async def list_openai(self, request: Request) -> JSONResponse:
        found = [b for b in reversed(self.batches.values()) if b.api == "openai"]
        data = [self._openai_object(b) for b in found]
        return JSONResponse({"object": "list", "data": data, "has_more": False,
                             "first_id": data[0]["id"] if data else None,
                             "last_id": data[-1]["id"] if data else None})  # fmt: skip

    async def cancel_openai(self, request: Request) -> JSONResponse:
        batch = self._find(request, "openai")
        if batch is None:
            return _openai_error(404, "no such batch")
        if batch.ended_at is None:
            batch.cancel, batch.status = True, "cancelling"
        return JSONResponse(self._openai_object(batch))

    # -- Anthropic ------------------------------------------------------------------

    async def messages(self, request: Request) -> JSONResponse:
        status, payload = self._answer_messages(await request.json())
        return JSONResponse(payload, status_code=status)

    async def create_anthropic(self, request: Request) -> JSONResponse:
        body = await request.json()
        requests = body.get("requests") if isinstance(body, dict) else None
        if not isinstance(requests, list) or not requests:
            return _anthropic_error(400, "'requests' must be a non-empty list")
        items: list[tuple[str, dict[str, Any]]] = []
        for entry in requests:
            custom_id = entry.get("custom_id") if isinstance(entry, dict) else None
            if not isinstance(custom_id, str) or not _ANTHROPIC_ID.match(custom_id):
                return _anthropic_error(
                    400, f"custom_id {custom_id!r} must match [a-zA-Z0-9_-]{{1,64}}"
                )
            if any(custom_id == seen for seen, _ in items):
                return _anthropic_error(400, f"duplicate custom_id {custom_id}")
            items.append((custom_id, entry.get("params") or {}))
        batch = _Batch(
            id=f"msgbatch_{uuid.uuid4().hex[:24]}", api="anthropic", items=items,
            settings=BatchSettings(**asdict(self.settings)), order=len(self.batches),
            status="in_progress",
        )  # fmt: skip
        self._start(batch)
        return JSONResponse(self._anthropic_object(batch, request))

    def _anthropic_object(self, batch: _Batch, request: Request) -> dict[str, Any]:
        kinds = [o.kind for o in batch.outcomes]
        ended = batch.ended_at is not None
        status = "ended" if ended else ("canceling" if batch.cancel else "in_progress")
        results_url = f"{request.base_url}v1/messages/batches/{batch.id}/results"
        return {
            "id": batch.id, "type": "message_batch",
            "processing_status": status,
            "request_counts": {
                "processing": len(batch.items) - len(kinds),
                "succeeded": kinds.count("succeeded"), "errored": kinds.count("errored"),
                "canceled": kinds.count("canceled"), "expired": kinds.count("expired"),
            },
            "created_at": _iso(batch.created_at), "expires_at": _iso(batch.created_at + _WINDOW_S),
            "ended_at": _iso(batch.ended_at), "archived_at": None, "cancel_initiated_at": None,
            "results_url": results_url if ended else None,
        }  # fmt: skip

    async def list_anthropic(self, request: Request) -> JSONResponse:
        """Newest first, in one page (``has_more`` false)."""
        found = [b for b in reversed(self.batches.values()) if b.api == "anthropic"]
        data = [self._anthropic_object(b, request) for b in found]
        return JSONResponse({"data": data, "has_more": False,
                             "first_id": data[0]["id"] if data else None,
                             "last_id": data[-1]["id"] if data else None})  # fmt: skip

    async def get_anthropic(self, request: Request) -> JSONResponse:
        batch = self._find(request, "anthropic")
        if batch is None:
            return _anthropic_error(404, "no such batch")
        return JSONResponse(self._anthropic_object(batch, request))

    async def anthropic_results(self, request: Request) -> Response:
        batch = self._find(request, "anthropic")
        if batch is None:
            return _anthropic_error(404, "no such batch")
        if batch.ended_at is None:
            return _anthropic_error(400, "the batch is still processing")
        lines = []
        for outcome in batch.outcomes:
            result: dict[str, Any] = {"type": outcome.kind}
            if outcome.kind == "succeeded":
                result["message"] = outcome.payload
            elif outcome.kind == "errored":
                result["error"] = outcome.payload
            lines.append(json.dumps({"custom_id": outcome.custom_id, "result": result}))
        return Response("\n".join(lines) + "\n", media_type="application/binary")

    async def cancel_anthropic(self, request: Request) -> JSONResponse:
        batch = self._find(request, "anthropic")
        if batch is None:
            return _anthropic_error(404, "no such batch")
        batch.cancel = batch.ended_at is None
        return JSONResponse(self._anthropic_object(batch, request))

    # -- control --------------------------------------------------------------------

    async def log(self, _: Request) -> JSONResponse:
        """Every batch in creation order, with the custom ids it was given and those that
        failed or expired."""
        return JSONResponse(
            {
                "batches": [
                    {
                        "id": b.id,
                        "api": b.api,
                        "status": b.status,
                        "custom_ids": [custom_id for custom_id, _ in b.items],
                        "failed": sorted(o.custom_id for o in b.outcomes if o.kind == "errored"),
                        "expired": sorted(o.custom_id for o in b.outcomes if o.kind == "expired"),
                    }
                    for b in self.batches.values()
                ]
            }
        )

    async def update_settings(self, request: Request) -> JSONResponse:
        """Change the settings of the batches created from now on."""
        body = await request.json()
        known = {f.name for f in fields(BatchSettings)}
        if not isinstance(body, dict) or set(body) - known:
            return _openai_error(400, f"settings are {', '.join(sorted(known))}")
        self.settings = BatchSettings(**{**asdict(self.settings), **body})
        return JSONResponse(asdict(self.settings))
