"""``hf:REPO_OR_PATH``: a chat model run in-process by Hugging Face transformers.

The target is a repository id already in the Hugging Face cache, a checkpoint directory,
or a ``.gguf`` file (transformers dequantises it; needs ``gguf``). Nothing is downloaded
at run time (``local_files_only=True``): whether the weights are present is checked when
the backend is built, so a missing model fails before a run starts; loading them waits
for the first call.

Vision-language checkpoints (LLaVA and others whose ``config.json`` has a
``vision_config``) are recognised from that file when the backend is built: they are
loaded with their processor (see :mod:`probegen.models.vision`), see the images attached
to messages, and declare ``accepts_images``. Text checkpoints declare it False, so the
runner refuses image probes for them instead of silently asking without the image.

Weights go to CUDA when it is available (bfloat16, or float16 where bf16 is not
supported), else run on the CPU: fine for small models, slow for a 7B VLM such as LLaVA
1.5, for which a GPU is advised.
"""

from __future__ import annotations

import asyncio
import importlib.util
import math
import random
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from probegen.errors import ModelSpecError, ModelUnavailableError
from probegen.models.base import ChatMessage, GenerateConfig, Response, RetryHint, Usage
from probegen.models.vision import is_vision_config, load_vision_model, vision_inputs

__all__ = ["HFBackend"]

_INSTALL = "pip install 'probegen[hf]' (transformers, accelerate, gguf, torch)"


@dataclass(frozen=True)
class _Weights:
    """Where ``from_pretrained`` should look: a repo id or directory, plus a GGUF name."""

    source: str
    gguf_file: str | None
    identity: str
    vision: bool = False


class HFBackend:
    """A transformers chat model (causal LM or VLM), loaded on the first call.

    Args:
        target: A cached repo id (``HuggingFaceTB/SmolLM2-135M-Instruct``,
            ``llava-hf/llava-1.5-7b-hf``), a checkpoint directory, or a ``.gguf`` file.

    Raises:
        ModelSpecError: ``target`` is empty.
        ModelUnavailableError: transformers/torch (or gguf) is missing, or the weights
            are neither in the Hugging Face cache nor on disk.
    """

    def __init__(self, target: str) -> None:
        if not target:
            raise ModelSpecError(
                "hf: needs a repository id or a path",
                fix="write hf:REPO (in the Hugging Face cache) or hf:/path/to/checkpoint",
            )
        self._spec = f"hf:{target}"
        needed = ["transformers", "torch"]
        if target.lower().endswith(".gguf"):
            needed += ["gguf", "accelerate"]
        missing = [name for name in needed if not _installed(name)]
        if missing:
            raise ModelUnavailableError(
                f"{self._spec}: {', '.join(missing)} not installed", fix=_INSTALL
            )
        self._weights = _locate(target, self._spec)
        self._model: Any = None
        self._tokenizer: Any = None
        self._processor: Any = None  # vision checkpoints only
        self._device = "cpu"
        # torch.manual_seed is global and generate() is not reentrant: one call at a time.
        self._lock = threading.Lock()

    @property
    def spec(self) -> str:
        """``hf:REPO_OR_PATH`` as given."""
        return self._spec

    @property
    def identity(self) -> str:
        """``hf:REPO`` for cached repos, ``hf:ABSOLUTE_PATH`` for files on disk."""
        return self._weights.identity

    @property
    def max_concurrency(self) -> int:
        """1: seeding is process-global, so calls are serialised."""
        return 1

    supports_logprobs = True
    """The first token's distribution comes from one forward pass."""

    @property
    def accepts_images(self) -> bool:
        """True for vision-language checkpoints, judged from their ``config.json``."""
        return self._weights.vision

    def __repr__(self) -> str:
        return f"HFBackend({self.identity!r})"

    async def generate(self, messages: Sequence[ChatMessage], config: GenerateConfig) -> Response:
        """Generate in a worker thread so the event loop keeps serving other models."""
        return await asyncio.to_thread(self._generate_blocking, list(messages), config)

    def _generate_blocking(self, messages: list[ChatMessage], config: GenerateConfig) -> Response:
        import torch

        if not self._weights.vision and any(m.images for m in messages):
            # Never answer as if the image had been seen.
            raise ValueError(f"{self._spec}: a text model cannot see the attached images")
        with self._lock:
            model, tokenizer = self._load()
            started = time.perf_counter()
            if self._processor is not None:
                encoded = vision_inputs(self._processor, messages, self._device, model.dtype)
            else:
                encoded = tokenizer.apply_chat_template(
                    [{"role": m.role, "content": m.content} for m in messages],
                    add_generation_prompt=True,
                    return_tensors="pt",
                    return_dict=True,
                ).to(self._device)
            if config.top_logprobs is not None:
                return self._first_token(model, tokenizer, encoded, config.top_logprobs, started)
            options: dict[str, Any] = {"max_new_tokens": config.max_tokens}
            if config.temperature > 0:
                options.update(do_sample=True, temperature=config.temperature)
                if config.top_p is not None:
                    options["top_p"] = config.top_p
            else:
                options["do_sample"] = False
            if tokenizer.pad_token_id is None:
                options["pad_token_id"] = tokenizer.eos_token_id
            torch.manual_seed(config.seed if config.seed is not None else random.randrange(2**31))
            with torch.inference_mode():
                output = model.generate(**encoded, **options)
            latency = time.perf_counter() - started
            prompt_length = int(encoded["input_ids"].shape[1])
            new_tokens: list[int] = output[0, prompt_length:].tolist()
            text = tokenizer.decode(new_tokens, skip_special_tokens=True).strip()
            eos = model.generation_config.eos_token_id
        return Response(
            text=text,
            finish_reason=_finish_reason(new_tokens, eos, config.max_tokens),
            model=self.identity.removeprefix("hf:"),
            usage=Usage(input_tokens=prompt_length, output_tokens=len(new_tokens)),
            latency_s=latency,
        )

    def _first_token(
        self, model: Any, tokenizer: Any, encoded: Any, top: int, started: float
    ) -> Response:
        """One forward pass: the next token's top ``top`` alternatives (the decision
        measurement), without generating."""
        import torch

        with torch.inference_mode():
            logits = model(**encoded).logits[0, -1].float()
        logprobs = torch.log_softmax(logits, dim=-1)
        values, ids = torch.topk(logprobs, top)
        alternatives: dict[str, float] = {}
        for token_id, value in zip(ids.tolist(), values.tolist(), strict=True):
            token = tokenizer.decode([token_id])
            # Two ids can decode alike (" Yes" and "Yes" after cleanup): keep the mass.
            earlier = alternatives.get(token)
            alternatives[token] = (
                value if earlier is None else math.log(math.exp(earlier) + math.exp(value))
            )
        return Response(
            text=tokenizer.decode([ids[0].item()], skip_special_tokens=True),
            finish_reason="length",
            model=self.identity.removeprefix("hf:"),
            usage=Usage(input_tokens=int(encoded["input_ids"].shape[1]), output_tokens=1),
            latency_s=time.perf_counter() - started,
            top_logprobs=alternatives,
        )

    def _load(self) -> tuple[Any, Any]:
        if self._model is None:
            import torch
            import transformers as transformers_module

            # transformers' partial annotations fight strict typing; treat it as dynamic.
            transformers: Any = transformers_module
            # Loading a GGUF draws progress bars on stderr, which would garble the CLI.
            transformers.utils.logging.disable_progress_bar()
            options: dict[str, Any] = {"local_files_only": True}
            if torch.cuda.is_available():
                self._device = "cuda"
                options["dtype"] = (
                    torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
                )
            if self._weights.vision:
                model, processor = load_vision_model(self._spec, self._weights.source, options)
                self._processor, tokenizer = processor, processor.tokenizer
            else:
                model, tokenizer = self._load_text_model(transformers, options)
            self._model = model.to(self._device).eval()
            self._tokenizer = tokenizer
        return self._model, self._tokenizer

    def _load_text_model(self, transformers: Any, options: dict[str, Any]) -> tuple[Any, Any]:
        if self._weights.gguf_file is not None:
            options = {**options, "gguf_file": self._weights.gguf_file}
        tokenizer_options = {k: v for k, v in options.items() if k != "dtype"}
        tokenizer = transformers.AutoTokenizer.from_pretrained(
            self._weights.source, **tokenizer_options
        )
        if not getattr(tokenizer, "chat_template", None):
            raise ModelUnavailableError(
                f"{self._spec}: the tokenizer has no chat template (a base model?)",
                fix="use an instruction-tuned chat model",
            )
        model = transformers.AutoModelForCausalLM.from_pretrained(self._weights.source, **options)
        return model, tokenizer

    def retry_hint(self, error: BaseException) -> RetryHint | None:
        """None: an in-process failure does not fix itself on retry. That includes an
        answer with no text, which the Model records as failed: with the same seed a
        second attempt writes the same nothing."""
        return None

    async def aclose(self) -> None:
        """Drop the weights and, on CUDA, return the memory to the driver."""
        with self._lock:
            on_cuda = self._model is not None and self._device == "cuda"
            self._model = self._tokenizer = self._processor = None
        if on_cuda:
            import torch

            torch.cuda.empty_cache()


def _finish_reason(new_tokens: list[int], eos: int | list[int] | None, max_tokens: int) -> str:
    eos_ids = set(eos) if isinstance(eos, list) else {eos}
    if new_tokens and new_tokens[-1] in eos_ids:
        return "stop"
    return "length" if len(new_tokens) >= max_tokens else "stop"


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def _locate(target: str, spec: str) -> _Weights:
    """Check, without loading anything, that the weights are here."""
    path = Path(target).expanduser()
    if target.lower().endswith(".gguf"):
        if path.is_file():
            resolved = path.resolve()
            return _Weights(str(resolved.parent), resolved.name, f"hf:{resolved}")
    elif path.is_dir():
        if not (path / "config.json").is_file():
            raise ModelUnavailableError(
                f"{spec}: {path} has no config.json, so it is not a transformers checkpoint",
                fix="pass the checkpoint directory (the one holding config.json)",
            )
        vision = is_vision_config(path / "config.json")
        return _Weights(str(path.resolve()), None, f"hf:{path.resolve()}", vision)
    elif not _looks_like_path(target):
        config_file = _cached_config(target)
        if config_file is not None:
            return _Weights(target, None, f"hf:{target}", is_vision_config(config_file))
    fix = (
        "check the path, or pass hf:REPO for a model in the Hugging Face cache"
        if _looks_like_path(target)
        else f"on a networked machine run `hf download {target}` and copy that Hugging Face "
        "cache into HF_HOME here, or pass hf:/path/to/checkpoint"
    )
    raise ModelUnavailableError(
        f"{spec}: weights not found in the Hugging Face cache or on disk "
        "(probegen never downloads them)",
        fix=fix,
    )


def _looks_like_path(target: str) -> bool:
    return target.startswith(("/", ".", "~")) or target.lower().endswith(".gguf")


def _cached_config(repo_id: str) -> Path | None:
    """The cached ``config.json`` of ``repo_id`` (HF_HOME / HF_HUB_CACHE), or None."""
    from huggingface_hub import try_to_load_from_cache

    try:
        found = try_to_load_from_cache(repo_id, "config.json")
    except ValueError:  # not a valid repo id (HFValidationError)
        return None
    return Path(found) if isinstance(found, str) else None
