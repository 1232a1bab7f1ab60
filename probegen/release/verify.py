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

from probegen.errors import TemplateError
from probegen.release.model import CAB_FIELDS, CAB_FILE, MANIFEST_FILE, PROBES_FILE, read_items
from probegen.template import parse

__all__ = ["cab_problems", "file_digest", "manifest_files", "verify_release"]

_FRAMINGS = ("explicit", "implicit")


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


def _record_problems(record: object, where: str, strict: bool) -> list[str]:
    if not isinstance(record, dict):
        return [f"{where}: not a JSON object"]
    problems = [f"{where}: field '{f}' is missing" for f in CAB_FIELDS if f not in record]
    if strict:
        problems += [
            f"{where}: field '{k}' is not in CAB's schema" for k in record if k not in CAB_FIELDS
        ]
        if not problems and tuple(record) != CAB_FIELDS:
            problems.append(f"{where}: fields are not in CAB's order ({', '.join(CAB_FIELDS)})")
    for name in CAB_FIELDS:
        value = record.get(name)
        if name in record and not isinstance(value, str):
            problems.append(f"{where}: field '{name}' is {type(value).__name__}, not a string")
    example, framing = record.get("example"), record.get("expl_impl")
    if isinstance(framing, str) and framing not in _FRAMINGS:
        problems.append(f"{where}: field 'expl_impl' is '{framing}', not explicit or implicit")
    if isinstance(record.get("attribute"), str) and not record["attribute"].strip():
        problems.append(f"{where}: field 'attribute' is empty")
    if isinstance(example, str):
        if not example.strip():
            problems.append(f"{where}: field 'example' is empty")
        else:
            try:
                parse(example)
            except TemplateError as error:
                problems.append(f"{where}: field 'example': {error.message}")
    return problems


def cab_problems(data: object, file: str, *, strict: bool = True) -> list[str]:
    """Every way ``data`` (a parsed ``cab.json``) breaks CAB's schema, one line each.

    Args:
        data: The parsed JSON.
        file: The file name, to start each line with.
        strict: Also refuse fields beyond CAB's eight and another field order (what a
            release must satisfy; an import only needs the eight fields).

    Returns:
        Lines such as ``cab.json[3]: field 'example' is int, not a string``; record
        indexes count from 0, as in the JSON list.
    """
    if not isinstance(data, list):
        return [f"{file}: not a JSON list of records (got {type(data).__name__})"]
    if not data:
        return [f"{file}: the list of records is empty"]
    problems: list[str] = []
    for index, record in enumerate(data):
        problems += _record_problems(record, f"{file}[{index}]", strict)
    return problems


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
