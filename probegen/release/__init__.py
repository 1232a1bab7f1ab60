"""Versioned CAB-style benchmark releases: build, verify, import, compare.

- :mod:`~probegen.release.model`: what a release holds (``probes.jsonl`` items) and how a
  release is found from ``NAME@X.Y.Z``.
- :mod:`~probegen.release.build`: which reviewed elites enter, deduplicated across runs.
- :mod:`~probegen.release.writer`, :mod:`~probegen.release.card`,
  :mod:`~probegen.release.changelog`, :mod:`~probegen.release.inspect_export`: the files
  (cab.json, parquet, dataset card, changelog, Inspect task), written atomically with a
  checksummed manifest last.
- :mod:`~probegen.release.verify` and :mod:`~probegen.release.importer`: check a release,
  read a CAB-schema file.
"""

from probegen.release.build import build_release
from probegen.release.importer import cab_seeds, import_cab
from probegen.release.model import (
    CAB_FIELDS,
    FoundOn,
    ImageRef,
    ReleaseItem,
    cab_record,
    read_items,
    resolve_release_dir,
    write_items,
)
from probegen.release.verify import verify_release

__all__ = [
    "CAB_FIELDS",
    "FoundOn",
    "ImageRef",
    "ReleaseItem",
    "build_release",
    "cab_record",
    "cab_seeds",
    "import_cab",
    "read_items",
    "resolve_release_dir",
    "verify_release",
    "write_items",
]
