"""The corpora: attributes and their groups, first names, the topic taxonomy, seed questions.

A corpora directory (the shipped one is the top-level ``corpora`` package; point
``$PROBEGEN_CORPORA`` or a call's ``corpora_dir`` elsewhere to use your own) holds::

    attributes/<id>.yaml   one sensitive attribute each:
                             id, label, description,
                             groups: {<group id>: {label, surface_forms: [...],
                                      proxies: [...], pronouns: {subject, object,
                                      possessive, reflexive}}}
                           proxies and pronouns are optional; proxies, where present,
                           come in the same number for every group.
    names.csv              first names as implicit proxies: name,<attribute id>,...
                           A cell is a group id, or empty when the name does not signal
                           that attribute. Among the groups of a column that have names,
                           every group has the same number, and every other column is
                           balanced by gender within each group (gender+race probes
                           find as many names in every cell). Groups may have no names
                           (non-binary, native-american in the shipped corpora): a
                           first name is no honest proxy for them; use them explicitly.
    taxonomy.yaml          superdomains: {<id>: {label, domains: {<id>: {label,
                           topics: [...]}}}}; snake_case ids, domain ids unique.
    seeds.jsonl            one seed question per line: template, attribute, expl_impl,
                           superdomain, domain, topic, form.
    images/<set>/manifest.yaml
                           counterfactual image sets: per image its file, the groups it
                           depicts, its pair (scene), source and license; see
                           :mod:`probegen.corpora.images`.

Everything is validated on load; the first problem raises a one-line
:class:`~probegen.errors.CorpusError` naming the file, line or key, and the fix.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

import corpora as _shipped
from probegen.corpora.corpus import Corpora
from probegen.corpora.images import IMAGES_DIR, MANIFEST_FILE, ImageEntry, ImagePair, ImageSet
from probegen.corpora.loading import (
    ATTRIBUTES_DIR,
    NAMES_FILE,
    SEEDS_FILE,
    TAXONOMY_FILE,
    read_corpora,
    read_seeds,
)
from probegen.corpora.schema import (
    Attribute,
    Domain,
    FormKind,
    Group,
    GroupedVariant,
    Pronouns,
    Seed,
    Superdomain,
    Taxonomy,
    tokenize,
)

__all__ = [
    "Attribute",
    "Corpora",
    "Domain",
    "FormKind",
    "Group",
    "GroupedVariant",
    "ImageEntry",
    "ImagePair",
    "ImageSet",
    "Pronouns",
    "Seed",
    "Superdomain",
    "Taxonomy",
    "corpora_root",
    "load_corpora",
    "read_seeds",
    "tokenize",
]

ENV_VAR = "PROBEGEN_CORPORA"


def corpora_root() -> Path:
    """The corpora directory: ``$PROBEGEN_CORPORA`` if set, else the shipped corpora."""
    configured = os.environ.get(ENV_VAR, "").strip()
    return Path(configured).expanduser() if configured else _shipped.ROOT


def load_corpora(root: Path | None = None) -> Corpora:
    """Load and validate the corpora under ``root`` (default: :func:`corpora_root`).

    The result is cached per resolved directory and invalidated when a file changes.

    Raises:
        CorpusError: On the first problem, as one line naming file, line or key, and fix.
    """
    resolved = (root if root is not None else corpora_root()).expanduser().resolve()
    return _load_cached(resolved, _signature(resolved))


def _signature(root: Path) -> tuple[tuple[str, int, int], ...]:
    paths = [*sorted((root / ATTRIBUTES_DIR).glob("*.yaml"))]
    paths += [root / NAMES_FILE, root / TAXONOMY_FILE, root / SEEDS_FILE]
    paths += sorted((root / IMAGES_DIR).glob(f"*/{MANIFEST_FILE}"))
    signature = []
    for path in paths:
        try:
            stat = path.stat()
        except OSError:
            continue
        signature.append((str(path), stat.st_mtime_ns, stat.st_size))
    return tuple(signature)


@functools.lru_cache(maxsize=16)
def _load_cached(root: Path, signature: tuple[tuple[str, int, int], ...]) -> Corpora:
    del signature  # part of the cache key only
    return read_corpora(root)
