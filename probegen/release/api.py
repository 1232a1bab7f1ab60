"""``probegen.build_release(...)``: a versioned release from reviewed runs, as a library
call.

``probegen release build`` is a thin layer over :func:`build_release`: it opens the run
store of ``run_dir`` (never creating one), draws the reviewed elites of the runs, drops
near-duplicates across runs, and publishes ``releases_dir/NAME/X.Y.Z/``; nothing is
written when anything is wrong. :func:`probegen.release.build.build_release` is the same
build over a store the caller has opened.

Errors name the arguments (a :class:`~probegen.errors.ConfigError` carries the field),
never CLI flags.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import cast

from probegen.corpora import load_corpora
from probegen.embedding_cache import EmbeddingCache
from probegen.embeddings import DEFAULT_EMBEDDER, Embedder, TextEmbedder, is_text_embedder
from probegen.errors import ConfigError
from probegen.release.build import DEDUP_THRESHOLD, BuildResult
from probegen.release.build import build_release as build_from_store
from probegen.release.model import parse_version
from probegen.release.writer import RELEASES_ENV, releases_root
from probegen.run_dir import default_run_dir, writable_dir
from probegen.store import STORE_FILENAME, Store

__all__ = ["BuildResult", "build_release"]


def build_release(
    name: str,
    runs: str | Sequence[str],
    *,
    version: str,
    min_reviews: int = 2,
    notes: str | None = None,
    allow_unverified: bool = False,
    dedup_threshold: float = DEDUP_THRESHOLD,
    embedder: str | TextEmbedder | Callable[[], TextEmbedder] = DEFAULT_EMBEDDER,
    run_dir: str | Path | None = None,
    releases_dir: str | Path | None = None,
    corpora_dir: str | Path | None = None,
) -> BuildResult:
    """Build and publish ``releases_dir/name/version/`` from the runs' reviewed elites.

    Example::

        import probegen

        built = probegen.build_release("gender-bias", [run_id], version="1.0.0")
        print(built.release.path, len(built.items), "probes")

    Args:
        name: The release's name, e.g. ``gender-bias``.
        runs: The evolve run(s) to draw elites from.
        version: ``X.Y.Z``, newer than every published version of ``name``.
        min_reviews: Accepts a probe needs (more accepts than rejects, too).
        notes: Free text for the changelog and the card.
        allow_unverified: A draft instead: every elite that is a finding, reviewed or not.
        dedup_threshold: Cosine at which probes of two runs are duplicates, in (0, 1].
        embedder: The embedding model of that deduplication: a name, an
            :class:`~probegen.embeddings.TextEmbedder` (such as
            :class:`~probegen.embeddings.Embedder`), or a function that makes one (called
            only when two runs are given).
        run_dir: The run directory holding the runs (default ``$PROBEGEN_RUN_DIR`` or
            ``./runs``).
        releases_dir: Where releases live (default ``$PROBEGEN_RELEASES_DIR`` or
            ``./releases``).
        corpora_dir: The corpora (default ``$PROBEGEN_CORPORA`` or the shipped ones).

    Returns:
        The release written, its items, and every elite left out with the reason.

    Raises:
        ConfigError: A bad argument, a run that is missing or has no elites, or no probe
            that qualifies (names the field); nothing is written then.
        UsageError: The name is not a plain name, or the version exists or is not newer.
    """
    run_ids = [runs] if isinstance(runs, str) else list(runs)
    if parse_version(version) is None:
        raise ConfigError(
            "version",
            "not X.Y.Z (SemVer: three numbers, no leading zeros)",
            value=version,
            fix="e.g. `version` 0.1.0",
        )
    if not 0.0 < dedup_threshold <= 1.0:
        raise ConfigError("dedup_threshold", "must be in (0, 1]", value=dedup_threshold)
    source = "releases_dir" if releases_dir else f"${RELEASES_ENV}"
    if not releases_dir and not os.environ.get(RELEASES_ENV):
        source = "releases directory"
    root = writable_dir(releases_root(Path(releases_dir) if releases_dir else None), source)
    corpora = load_corpora(Path(corpora_dir) if corpora_dir else None)
    where = default_run_dir(Path(run_dir) if run_dir else None)
    path = where / STORE_FILENAME
    if not path.is_file():
        raise ConfigError(
            "run_dir", f"no run store at {path}", fix="pass the run directory of evolve runs"
        )
    with Store(path) as store:
        return build_from_store(
            store,
            run_ids,
            name=name,
            version=version,
            releases_dir=root,
            corpora=corpora,
            min_reviews=min_reviews,
            notes=notes,
            allow_unverified=allow_unverified,
            embedder=_embedder_factory(embedder, where),
            dedup_threshold=dedup_threshold,
            media_roots=[where],
        )


def _embedder_factory(
    embedder: str | TextEmbedder | Callable[[], TextEmbedder], run_dir: Path
) -> Callable[[], TextEmbedder]:
    """What makes the embedder, only once there is work for it; one named by a string
    reuses the run directory's embedding cache (the runs embedded these templates)."""
    if isinstance(embedder, str):
        name = embedder
        return lambda: Embedder(name, cache=EmbeddingCache.in_run_dir(run_dir))
    if is_text_embedder(embedder):
        made = cast(TextEmbedder, embedder)
        return lambda: made
    return cast(Callable[[], TextEmbedder], embedder)
