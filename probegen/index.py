"""A nearest-neighbour index over probe templates: deduplication, novelty and clusters.

Templates are embedded with their placeholders masked (:func:`probegen.template.mask`).
A counterfactual name swap ("John" vs "Carlos" in the same sentence) scores cosine ~0.92
unmasked, which sits right on any sensible duplicate threshold: unmasked embeddings would
either merge distinct questions or keep trivial swaps as "new". Masked, two probes that
differ only in which groups they name embed identically.

The index is a faiss ``IndexFlatIP`` over unit vectors, so inner product is cosine
similarity. Flat search is exact and fast enough for the archive sizes a search reaches
(2000 x 2000 in ~17 ms on CPU); on a host with faiss GPU support it moves to the GPU.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple

import faiss
import numpy as np

from probegen.embeddings import TextEmbedder, Vectors
from probegen.template import mask

__all__ = ["DEFAULT_THRESHOLD", "DuplicateCheck", "EmbeddingIndex"]

DEFAULT_THRESHOLD = 0.92
_MASK_TOKEN = "[GROUP]"
# Float rounding: the cosine of a vector with an exact copy of itself reads 0.9999999 or
# 1.0000001 by the kernel and the weights' precision (bfloat16 weights: 0.99999988), so a
# threshold of 1.0 must still catch exact copies.
_ROUNDING = 1e-6
_log = logging.getLogger(__name__)


class DuplicateCheck(NamedTuple):
    """The answer of a duplicate check (a plain tuple, so it also unpacks as one).

    Attributes:
        is_duplicate: Whether the nearest neighbour reaches the threshold.
        key: Key of the nearest neighbour, or None when there is none.
        similarity: Cosine similarity to that neighbour (0.0 when there is none).
    """

    is_duplicate: bool
    key: str | None
    similarity: float


def _gpu_count() -> int:
    # faiss-cpu builds may lack the symbol altogether; treat that as "no GPU".
    counter = getattr(faiss, "get_num_gpus", None)
    return int(counter()) if counter is not None else 0


class EmbeddingIndex:
    """Cosine nearest-neighbour index over masked templates, keyed by probe id.

    Args:
        embedder: Encodes texts into unit float32 vectors.
        threshold: Cosine similarity at or above which two templates are duplicates.
        device: ``cpu`` to stay on the CPU; ``cuda``, ``cuda:N`` or ``gpu`` to ask for a
            GPU; None (default) to use GPU 0 when faiss has GPU support. A GPU request
            on a host without faiss GPU support falls back to the CPU with a warning,
            since the embedder's device is often passed through unchanged.

    Raises:
        ValueError: If ``threshold`` is outside (0, 1] or ``device`` is unrecognised.
    """

    def __init__(
        self,
        embedder: TextEmbedder,
        *,
        threshold: float = DEFAULT_THRESHOLD,
        device: str | None = None,
    ) -> None:
        if not 0.0 < threshold <= 1.0:
            raise ValueError(
                f"duplicate threshold {threshold!r} is outside (0, 1]: pass a cosine "
                f"similarity such as {DEFAULT_THRESHOLD}"
            )
        self.embedder = embedder
        self.threshold = float(threshold)
        self._gpu = self._pick_gpu(device)
        self._gpu_resources: Any = None
        self._index: Any = None  # built on first add: the dimension comes from the model
        self._keys: list[str] = []
        self._position: dict[str, int] = {}
        self._keys_by_masked: dict[str, list[str]] = {}
        self._cache: dict[str, Vectors] = {}
        self._rows: list[Vectors] = []
        self._matrix: Vectors | None = None

    @staticmethod
    def _pick_gpu(device: str | None) -> int | None:
        wanted: int | None
        if device is None:
            wanted = 0
        elif device == "cpu":
            return None
        elif device in ("cuda", "gpu"):
            wanted = 0
        elif device.startswith("cuda:") and device[5:].isdigit():
            wanted = int(device[5:])
        else:
            raise ValueError(
                f"index device {device!r} is not recognised: use 'cpu', 'cuda', 'cuda:N' "
                "or leave it unset"
            )
        available = _gpu_count()
        if wanted < available:
            return wanted
        if device is not None:
            _log.warning(
                "faiss has no GPU %d here (install faiss-gpu-cu12 for GPU search); using the CPU",
                wanted,
            )
        return None

    @property
    def backend(self) -> str:
        """Where search runs: ``cpu`` or ``gpu:N``."""
        return "cpu" if self._gpu is None else f"gpu:{self._gpu}"

    def __len__(self) -> int:
        return len(self._keys)

    def __contains__(self, key: object) -> bool:
        return key in self._position

    def keys(self) -> list[str]:
        """Keys in the order they were added."""
        return list(self._keys)

    # --- embedding ---------------------------------------------------------------------

    def embed(self, templates: Sequence[str]) -> Vectors:
        """Unit vectors of the masked ``templates``, one row each, cached per mask.

        Raises:
            TemplateError: If a template is malformed.
        """
        masked = [mask(template, _MASK_TOKEN) for template in templates]
        missing = list(dict.fromkeys(text for text in masked if text not in self._cache))
        if missing:
            # One encoder call per batch: callers hand over whole generations.
            for text, vector in zip(missing, self.embedder.encode(missing), strict=True):
                self._cache[text] = vector
        if not masked:
            return np.zeros((0, self._dimension()), dtype=np.float32)
        return np.stack([self._cache[text] for text in masked]).astype(np.float32, copy=False)

    def _dimension(self) -> int:
        if self._cache:
            return int(next(iter(self._cache.values())).shape[0])
        return self.embedder.dimension

    def _ensure_index(self, dimension: int) -> Any:
        if self._index is None:
            index: Any = faiss.IndexFlatIP(dimension)
            if self._gpu is not None:
                self._gpu_resources = faiss.StandardGpuResources()
                index = faiss.index_cpu_to_gpu(self._gpu_resources, self._gpu, index)
            self._index = index
        return self._index

    # --- adding ------------------------------------------------------------------------

    def add(self, key: str, template: str) -> None:
        """Add one template under ``key`` (a no-op when ``key`` is already present)."""
        self.add_many([(key, template)])

    def add_many(self, items: Iterable[tuple[str, str]]) -> None:
        """Add ``(key, template)`` pairs, embedding them in one batch.

        Keys are probe ids, which derive from the content, so a key already present
        names the same template and is skipped.
        """
        fresh: dict[str, str] = {}
        for key, template in items:
            if key not in self._position and key not in fresh:
                fresh[key] = template
        if not fresh:
            return
        vectors = self.embed(list(fresh.values()))
        self._ensure_index(vectors.shape[1]).add(vectors)
        for (key, template), vector in zip(fresh.items(), vectors, strict=True):
            masked = mask(template, _MASK_TOKEN)
            self._position[key] = len(self._keys)
            self._keys.append(key)
            self._keys_by_masked.setdefault(masked, []).append(key)
            self._rows.append(vector)
        self._matrix = None

    def add_unique(self, items: Sequence[tuple[str, str]]) -> list[DuplicateCheck]:
        """Add the pairs that duplicate neither the index nor an earlier pair of the batch.

        Returns:
            One check per pair, in order: ``is_duplicate`` False means it was added; True
            names what it duplicates (an indexed key or an earlier key of the batch).
        """
        if not items:
            return []
        vectors = self.embed([template for _, template in items])
        against_index = self._search(vectors, 1)
        # Pairwise cosine within the batch catches two children that duplicate each other.
        within = vectors @ vectors.T
        checks: list[DuplicateCheck] = []
        accepted: list[int] = []
        for i, (key, _) in enumerate(items):
            best_key, best_sim = against_index[i][0] if against_index[i] else (None, 0.0)
            if key in self._position:
                best_key, best_sim = key, 1.0
            for j in accepted:
                other = items[j][0]
                sim = 1.0 if other == key else min(float(within[i, j]), 1.0)
                if sim > best_sim:
                    best_key, best_sim = other, sim
            duplicate = best_key is not None and self.reaches_threshold(best_sim)
            checks.append(DuplicateCheck(duplicate, best_key, best_sim))
            if not duplicate:
                accepted.append(i)
        self.add_many([items[i] for i in accepted])
        return checks

    # --- queries -----------------------------------------------------------------------

    def _search(self, vectors: Vectors, k: int) -> list[list[tuple[str, float]]]:
        if self._index is None or not self._keys or k <= 0 or len(vectors) == 0:
            return [[] for _ in range(len(vectors))]
        sims, ids = self._index.search(vectors, min(k, len(self._keys)))
        # Clip float error (unit vectors give 1.0000006) so similarities read as cosines.
        return [
            [
                (self._keys[i], min(float(s), 1.0))
                for s, i in zip(row_s, row_i, strict=True)
                if i >= 0
            ]
            for row_s, row_i in zip(sims, ids, strict=True)
        ]

    def nearest(self, template: str, k: int = 5) -> list[tuple[str, float]]:
        """The ``k`` nearest indexed templates as ``(key, cosine similarity)``, nearest first."""
        return self.nearest_many([template], k)[0]

    def nearest_many(self, templates: Sequence[str], k: int = 5) -> list[list[tuple[str, float]]]:
        """:meth:`nearest` for a batch (one embedding call, one search)."""
        return self._search(self.embed(templates), k)

    def reaches_threshold(self, similarity: float) -> bool:
        """Whether a cosine ``similarity`` makes two templates duplicates (at or above
        the threshold, up to float rounding)."""
        return similarity >= self.threshold - _ROUNDING

    def is_duplicate(self, template: str) -> DuplicateCheck:
        """Whether ``template`` duplicates an indexed one: ``(flag, nearest key, similarity)``."""
        return self.is_duplicate_many([template])[0]

    def is_duplicate_many(self, templates: Sequence[str]) -> list[DuplicateCheck]:
        """:meth:`is_duplicate` for a batch, against the index only (see :meth:`add_unique`)."""
        checks = []
        for hits in self.nearest_many(templates, 1):
            if not hits:
                checks.append(DuplicateCheck(False, None, 0.0))
            else:
                key, sim = hits[0]
                checks.append(DuplicateCheck(self.reaches_threshold(sim), key, sim))
        return checks

    def novelty(self, template: str, k: int = 5, *, key: str | None = None) -> float:
        """Mean cosine distance from ``template`` to its ``k`` nearest indexed neighbours.

        The template's own entry is left out: the one under ``key`` when given, else one
        entry with the identical masked template. Similarities are clipped to [0, 1], so
        novelty lies in [0, 1]; it is 1.0 when there are no neighbours.
        """
        return self.novelty_many([template], k, keys=None if key is None else [key])[0]

    def novelty_many(
        self, templates: Sequence[str], k: int = 5, *, keys: Sequence[str | None] | None = None
    ) -> list[float]:
        """:meth:`novelty` for a batch; ``keys`` (if given) pairs each template with its key."""
        if k < 1:
            raise ValueError(f"novelty needs k >= 1 neighbours, got {k}")
        if keys is not None and len(keys) != len(templates):
            raise ValueError("novelty_many: give one key (or None) per template")
        own = keys if keys is not None else [None] * len(templates)
        results = self._search(self.embed(templates), k + 1)
        scores: list[float] = []
        for template, key, hits in zip(templates, own, results, strict=True):
            excluded = key
            if excluded is None:
                same = self._keys_by_masked.get(mask(template, _MASK_TOKEN))
                excluded = same[0] if same else None
            neighbours = [sim for hit_key, sim in hits if hit_key != excluded][:k]
            if not neighbours:
                scores.append(1.0)
                continue
            clipped = np.clip(np.asarray(neighbours, dtype=np.float64), 0.0, 1.0)
            scores.append(float(np.mean(1.0 - clipped)))
        return scores

    def vectors(self) -> Vectors:
        """The indexed vectors, one row per key in :meth:`keys` order."""
        if self._matrix is None:
            self._matrix = (
                np.stack(self._rows)
                if self._rows
                else np.zeros((0, self._dimension()), dtype=np.float32)
            )
        return self._matrix

    def kmeans(
        self, n_clusters: int, seed: int = 0, *, niter: int = 20, nredo: int = 5
    ) -> dict[str, int]:
        """Cluster the indexed templates with k-means; returns ``{key: cluster}``.

        ``n_clusters`` is clipped to the number of keys. The best of ``nredo`` seeded
        restarts is kept, since one random start on a small archive often settles in a
        poor split. Cluster ids are renumbered in
        order of first appearance along :meth:`keys`, so equal inputs and seed give equal
        labels whatever ids faiss happens to assign.

        Raises:
            ValueError: If ``n_clusters`` < 1.
        """
        if n_clusters < 1:
            raise ValueError(f"kmeans needs n_clusters >= 1, got {n_clusters}")
        if not self._keys:
            return {}
        data = self.vectors()
        k = min(n_clusters, len(self._keys))
        if k == 1:
            return dict.fromkeys(self._keys, 0)
        # min_points_per_centroid=1 silences faiss's "please provide at least 39k points"
        # warning: archives are small and we cluster them anyway.
        model = faiss.Kmeans(
            data.shape[1],
            k,
            niter=niter,
            nredo=nredo,
            seed=seed,
            verbose=False,
            spherical=True,
            min_points_per_centroid=1,
            gpu=self._gpu is not None,
        )
        model.train(data)
        _, assigned = model.index.search(data, 1)
        renumber: dict[int, int] = {}
        labels: dict[str, int] = {}
        for key, raw in zip(self._keys, assigned[:, 0].tolist(), strict=True):
            labels[key] = renumber.setdefault(int(raw), len(renumber))
        return labels
