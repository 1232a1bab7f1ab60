"""Embeddings kept on disk across runs, keyed by the embedder and the text's hash.

Embedding is the one machine-bound step of a search that scales with its size: MiniLM on
two CPU cores embeds about 60-100 templates a second, at this CPU's arithmetic peak
(about 1 GFLOP per 45-token template), so no runtime or batch size makes a cold
embedding several times faster here (``benchmarks/embedding.py`` measured ONNX Runtime
and dynamic int8; RESULTS.md section 3). What can be avoided is embedding a text twice:
a resumed run re-embeds its archive, every run of a run directory embeds the same seeds
and many of the same mutations, and the ``stats`` scorer embeds the same answers again
when a conclusion re-scores them. This cache returns the exact vectors computed the
first time, so deduplication decides exactly as it would without it.

The cache is its own SQLite file beside the run store (``embeddings.sqlite`` in the run
directory), not a table in it: vectors are bulky, the file can be deleted at any time to
reclaim space without touching any run's record, and its writes never wait on the
store's. A cache that cannot be opened or written is switched off with a warning: it
speeds a run up and must never stop one.
"""

from __future__ import annotations

import hashlib
import logging
import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt

__all__ = ["CACHE_FILE", "EmbeddingCache"]

CACHE_FILE = "embeddings.sqlite"
_log = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS embeddings (
    embedder  TEXT NOT NULL,   -- which model made the vector (name and version)
    text_hash TEXT NOT NULL,   -- SHA-256 of the exact text embedded
    vector    BLOB NOT NULL,   -- float32, little-endian, unit length
    PRIMARY KEY (embedder, text_hash)
) WITHOUT ROWID;
"""
# SQLite's default limit on bound parameters is 32766; stay well below it.
_CHUNK = 500


def _hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class EmbeddingCache:
    """Vectors by (embedder, text) in one SQLite file; safe to share between threads.

    Args:
        path: The cache file; created (with its folder) on first use.
    """

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._connection: sqlite3.Connection | None = None
        self._disabled = False
        self.hits = 0
        self.misses = 0

    @classmethod
    def in_run_dir(cls, run_dir: Path | str) -> EmbeddingCache:
        """The cache of a run directory (``RUN_DIR/embeddings.sqlite``)."""
        return cls(Path(run_dir) / CACHE_FILE)

    def _connect(self) -> sqlite3.Connection | None:
        if self._connection is None and not self._disabled:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                connection = sqlite3.connect(self.path, check_same_thread=False)
                connection.execute("PRAGMA journal_mode=WAL")
                connection.execute("PRAGMA synchronous=NORMAL")  # a lost write is recomputed
                connection.executescript(_SCHEMA)
                self._connection = connection
            except (OSError, sqlite3.Error) as error:
                self._switch_off(error)
        return self._connection

    def _switch_off(self, error: Exception) -> None:
        _log.warning("embedding cache %s is off (%s); embedding without it", self.path, error)
        self._disabled = True
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def get_many(self, embedder: str, texts: Sequence[str]) -> list[npt.NDArray[np.float32] | None]:
        """The cached vector of each text (None where there is none), in order."""
        hashes = [_hash(text) for text in texts]
        found: dict[str, npt.NDArray[np.float32]] = {}
        with self._lock:
            connection = self._connect()
            if connection is not None:
                try:
                    for start in range(0, len(hashes), _CHUNK):
                        chunk = hashes[start : start + _CHUNK]
                        marks = ",".join("?" * len(chunk))
                        rows = connection.execute(
                            "SELECT text_hash, vector FROM embeddings "
                            f"WHERE embedder = ? AND text_hash IN ({marks})",
                            (embedder, *chunk),
                        )
                        for text_hash, blob in rows:
                            found[text_hash] = np.frombuffer(blob, dtype="<f4").copy()
                except sqlite3.Error as error:
                    self._switch_off(error)
        vectors = [found.get(text_hash) for text_hash in hashes]
        hit_count = sum(vector is not None for vector in vectors)
        self.hits += hit_count
        self.misses += len(vectors) - hit_count
        return vectors

    def put_many(
        self, embedder: str, texts: Sequence[str], vectors: npt.NDArray[np.float32]
    ) -> None:
        """Keep ``vectors[i]`` as the embedding of ``texts[i]``, in one transaction."""
        rows = [
            (embedder, _hash(text), np.asarray(vector, dtype="<f4").tobytes())
            for text, vector in zip(texts, vectors, strict=True)
        ]
        with self._lock:
            connection = self._connect()
            if connection is None or not rows:
                return
            try:
                with connection:
                    connection.executemany(
                        "INSERT OR IGNORE INTO embeddings VALUES (?, ?, ?)", rows
                    )
            except sqlite3.Error as error:
                self._switch_off(error)

    def __len__(self) -> int:
        with self._lock:
            connection = self._connect()
            if connection is None:
                return 0
            return int(connection.execute("SELECT COUNT(*) FROM embeddings").fetchone()[0])

    def close(self) -> None:
        """Close the file (the cache reopens it if used again)."""
        with self._lock:
            if self._connection is not None:
                self._connection.close()
                self._connection = None
