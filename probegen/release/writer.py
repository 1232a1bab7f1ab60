"""Writing a release directory ``releases/NAME/X.Y.Z/``, all or nothing.

Every file is derived from the items and written into a hidden staging directory
beside the target (:mod:`probegen.release.staging`); ``MANIFEST.json`` comes last (it
checksums the others), and only then is the directory renamed into place. A failure
anywhere leaves no trace, a process killed mid-write leaves a staging directory that the
next write of the same NAME removes, and a published version is never touched again:
building an existing NAME/X.Y.Z is refused.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from probegen.corpora import Corpora
from probegen.errors import ConfigError, UsageError
from probegen.release.card import CardContext, render_card
from probegen.release.changelog import diff_items, render_changelog
from probegen.release.inspect_export import write_inspect
from probegen.release.model import (
    CAB_FIELDS,
    CAB_FILE,
    MANIFEST_FILE,
    PROBES_FILE,
    ReleaseItem,
    parse_version,
    read_items,
    write_items,
)
from probegen.release.staging import new_staging_dir, remove_stale
from probegen.release.verify import manifest_files

__all__ = [
    "PARQUET_FILE",
    "RELEASES_ENV",
    "WrittenRelease",
    "check_new_release",
    "fitness_of",
    "published_versions",
    "releases_root",
    "write_release",
]

RELEASES_ENV = "PROBEGEN_RELEASES_DIR"
PARQUET_FILE = "data/train-00000-of-00001.parquet"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*\Z")


def releases_root(releases_dir: Path | None) -> Path:
    """The releases directory: the flag, else ``$PROBEGEN_RELEASES_DIR``, else ./releases."""
    return releases_dir or Path(os.environ.get(RELEASES_ENV, "releases"))


def published_versions(root: Path, name: str) -> list[tuple[tuple[int, int, int], Path]]:
    """The versions of ``name`` under ``root``, oldest first (hidden temp dirs ignored)."""
    found = []
    for path in (root / name).glob("*"):
        version = parse_version(path.name)
        if version is not None and (path / PROBES_FILE).is_file():
            found.append((version, path))
    return sorted(found)


def check_new_release(root: Path, name: str, version: str) -> Path:
    """Validate a new release's name and version; return its (absent) directory.

    Raises:
        UsageError: If the name is not a plain directory name, or the version exists
            (published versions are immutable).
        ConfigError: If ``version`` is not X.Y.Z or not newer than the latest version
            of ``name``.
    """
    if not _NAME.match(name):
        raise UsageError(
            f"release name '{name}': use letters, digits, '.', '_' and '-' only",
            fix="e.g. gender-bias",
        )
    wanted = parse_version(version)
    if wanted is None:
        raise ConfigError(
            "version",
            "not X.Y.Z (SemVer: three numbers, no leading zeros)",
            value=version,
            fix="e.g. `version` 0.1.0",
        )
    target = root / name / version
    existing = published_versions(root, name)
    if target.exists():
        raise UsageError(
            f"release {name}@{version} already exists at {target}: published versions "
            "are immutable",
            fix="build a new version number",
        )
    if existing and wanted <= existing[-1][0]:
        latest = existing[-1][1].name
        raise ConfigError(
            "version",
            f"not newer than the latest version {name}@{latest}",
            value=version,
            fix="choose a version above " + latest,
        )
    return target


def fitness_of(item: ReleaseItem) -> float | None:
    """The best fitness a probe reached on any model it was found on (None if never)."""
    return max((f.fitness for f in item.found_on), default=None)


def _write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")


def _write_parquet(path: Path, items: Sequence[ReleaseItem]) -> None:
    columns: dict[str, Any] = {name: [i.cab[name] for i in items] for name in CAB_FIELDS}
    columns["id"] = [i.id for i in items]
    columns["fitness"] = pa.array([fitness_of(i) for i in items], type=pa.float64())
    schema = pa.schema(
        [(name, pa.string()) for name in (*CAB_FIELDS, "id")] + [("fitness", pa.float64())]
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table(columns, schema=schema), path)


def _counts(items: Sequence[ReleaseItem]) -> dict[str, Any]:
    return {
        "probes": len(items),
        "variants": sum(len(i.probe.variants()) for i in items),
        "by_attribute": dict(sorted(Counter(i.cab["attribute"] for i in items).items())),
        "by_framing": dict(sorted(Counter(i.cab["expl_impl"] for i in items).items())),
        "unverified": sum(1 for i in items if i.verified is False),
    }


@dataclass(frozen=True)
class WrittenRelease:
    """What :func:`write_release` produced.

    Attributes:
        path: The release directory.
        manifest: The contents of its ``MANIFEST.json``.
        previous: The version the changelog compares with, if any.
    """

    path: Path
    manifest: dict[str, Any]
    previous: str | None = None


def write_release(
    root: Path,
    items: Sequence[ReleaseItem],
    context: CardContext,
    corpora: Corpora,
    *,
    source: Mapping[str, Any],
    image_files: Mapping[str, Path] | None = None,
) -> WrittenRelease:
    """Write ``root/NAME/X.Y.Z/`` (name and version from ``context``), all or nothing.

    Args:
        root: The releases directory.
        items: The probes, in release order.
        context: Name, version, verification and provenance for the card.
        corpora: For labels and groups.
        source: Recorded in the manifest: ``{"runs": [...]}`` or ``{"import": file}``.
        image_files: ``{release-relative path: file to copy}`` for the items' images.

    Raises:
        UsageError: As :func:`check_new_release`.
    """
    name, version = context.name, context.version
    target = check_new_release(root, name, version)
    existing = published_versions(root, name)
    previous = existing[-1][1] if existing else None
    try:
        old_items = read_items(previous / PROBES_FILE) if previous else []
    except ValueError:  # pydantic's ValidationError is a ValueError
        raise UsageError(
            f"release {name}@{previous.name if previous else '?'}: {PROBES_FILE} is unreadable,"
            " so the changelog cannot compare with it",
            fix=f"run probegen release verify {name}@{previous.name if previous else '?'}",
        ) from None
    remove_stale(root / name)
    tmp = new_staging_dir(root / name, version)
    try:
        _write_json(tmp / CAB_FILE, [{f: i.cab[f] for f in CAB_FIELDS} for i in items])
        write_items(tmp / PROBES_FILE, list(items))
        _write_parquet(tmp / PARQUET_FILE, items)
        (tmp / "README.md").write_text(render_card(items, context, corpora), encoding="utf-8")
        write_inspect(tmp, items, corpora, name, version)
        changelog = render_changelog(
            name,
            version,
            previous.name if previous else None,
            diff_items(old_items, items),
            context.notes,
            context.created_at,
        )
        (tmp / "CHANGELOG.md").write_text(changelog, encoding="utf-8")
        for relative, source_file in (image_files or {}).items():
            (tmp / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source_file, tmp / relative)
        from probegen import __version__

        manifest = {
            "name": name,
            "version": version,
            "created_at": context.created_at,
            "probegen_version": __version__,
            "verified": context.verified,
            "source": dict(source),
            "previous_version": previous.name if previous else None,
            "notes": context.notes,
            "counts": _counts(items),
            "files": manifest_files(tmp),
        }
        _write_json(tmp / MANIFEST_FILE, manifest)
        if target.exists():  # someone published this version while we were writing
            check_new_release(root, name, version)
        os.rename(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return WrittenRelease(target, manifest, previous.name if previous else None)
