"""Checking a release: checksums against ``MANIFEST.json`` and ``cab.json`` against CAB's
schema.

A benchmark is only comparable across papers if everyone runs the same bytes, so
``release verify`` recomputes every checksum, and since a CAB consumer reads exactly
eight string fields, it also checks the schema a consumer relies on, including that
every ``example`` is a template that parses.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from probegen.cab import cab_problems
from probegen.release.model import CAB_FILE, MANIFEST_FILE, PROBES_FILE, read_items

__all__ = ["cab_problems", "file_digest", "manifest_files", "verify_release"]


def file_digest(path: Path) -> str:
    """The SHA-256 of a file, hex."""
    digest = hashlib.sha256()
    with path.open("rb") as data:
        for block in iter(lambda: data.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def manifest_files(root: Path) -> dict[str, dict[str, Any]]:
    """``{relative path: {"sha256", "size"}}`` for every file under ``root`` except the
    manifest itself, sorted by path (POSIX separators)."""
    files = {}
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        relative = path.relative_to(root).as_posix()
        if relative != MANIFEST_FILE:
            files[relative] = {"sha256": file_digest(path), "size": path.stat().st_size}
    return files


def _manifest_problems(root: Path) -> tuple[list[str], dict[str, Any]]:
    path = root / MANIFEST_FILE
    if not path.is_file():
        return [f"{MANIFEST_FILE}: missing"], {}
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
        listed: dict[str, Any] = manifest["files"]
        assert isinstance(listed, dict)
    except (ValueError, KeyError, TypeError, AssertionError):
        return [f"{MANIFEST_FILE}: not a probegen manifest (no 'files' object)"], {}
    problems = []
    actual = manifest_files(root)
    for name, expected in sorted(listed.items()):
        found = actual.get(name)
        if found is None:
            problems.append(f"{name}: missing (listed in {MANIFEST_FILE})")
        elif found != {"sha256": expected.get("sha256"), "size": expected.get("size")}:
            problems.append(f"{name}: changed (sha256 or size differs from {MANIFEST_FILE})")
    problems += [
        f"{name}: extra file (not in {MANIFEST_FILE})" for name in actual if name not in listed
    ]
    return problems, manifest


def _items_problems(root: Path, records: object) -> list[str]:
    if not (root / PROBES_FILE).is_file():
        return [f"{PROBES_FILE}: missing"]
    try:
        items = read_items(root / PROBES_FILE)
    except (ValidationError, ValueError) as error:
        first = str(error).splitlines()[0]
        return [f"{PROBES_FILE}: unreadable: {first}"]
    if not isinstance(records, list):
        return []
    if len(items) != len(records):
        return [f"{PROBES_FILE}: {len(items)} items but {CAB_FILE} has {len(records)} records"]
    return [
        f"{CAB_FILE}[{i}]: differs from line {i + 1} of {PROBES_FILE}"
        for i, (item, record) in enumerate(zip(items, records, strict=True))
        if item.cab != record
    ]


def verify_release(root: Path) -> list[str]:
    """Every problem with the release in ``root``, one line each; empty when it is intact."""
    problems, _ = _manifest_problems(root)
    cab_path = root / CAB_FILE
    records: object = None
    if cab_path.is_file():
        try:
            records = json.loads(cab_path.read_text(encoding="utf-8"))
        except ValueError as error:
            problems.append(f"{CAB_FILE}: invalid JSON: {error}")
        else:
            problems += cab_problems(records, CAB_FILE)
    elif f"{CAB_FILE}: missing" not in " ".join(problems):
        problems.append(f"{CAB_FILE}: missing")
    problems += _items_problems(root, records)
    return problems
