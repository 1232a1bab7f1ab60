"""Reading benchmarks in CAB's schema (the original ``cab.json``, or any file like it).

Imported records keep their labels exactly as given: another benchmark's taxonomy is not
ours, and rewriting it would break the round trip (build, then import, gives the same
records). Only what a probe needs to be asked is checked: the eight string fields, a
template that parses, and (when importing a release) an attribute the corpora define,
since ``eval`` cannot pair a variant with a group of an attribute it does not know.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from probegen.corpora import Corpora
from probegen.errors import ProbegenError, UsageError
from probegen.probe import Framing, Probe, Provenance
from probegen.release.model import CAB_FIELDS, ReleaseItem
from probegen.release.verify import cab_problems

__all__ = ["IMPORT_OPERATOR", "cab_seeds", "import_cab", "read_cab_records"]

IMPORT_OPERATOR = "import"
"""The provenance operator of an imported probe."""

_log = logging.getLogger(__name__)
_FIX = f"each record needs the string fields {', '.join(CAB_FIELDS)}"


def read_cab_records(path: Path) -> list[dict[str, str]]:
    """The records of a file in CAB's schema: a JSON list, or JSON Lines.

    Raises:
        UsageError: If the file is missing or unreadable, or a record breaks the schema;
            the one line names the file, the record index (from 0) and the field.
    """
    if not path.is_file():
        raise UsageError(f"{path}: no such file", fix="pass a cab.json in CAB's schema")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise UsageError(f"{path}: cannot read: {error}") from None
    data: Any
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        lines = [line for line in text.splitlines() if line.strip()]
        if text.lstrip().startswith("[") or len(lines) < 2:
            raise UsageError(
                f"{path}: invalid JSON at line {error.lineno}, column {error.colno}: {error.msg}",
                fix="a JSON list of records (or one JSON object per line)",
            ) from None
        data = []
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                data.append(json.loads(line))
            except json.JSONDecodeError as inner:
                raise UsageError(
                    f"{path}: line {number}: invalid JSON: {inner.msg}",
                    fix="one JSON object per line, or a JSON list",
                ) from None
    problems = cab_problems(data, path.name, strict=False)
    if problems:
        raise UsageError(problems[0], fix=_FIX)
    return [{name: record[name] for name in CAB_FIELDS} for record in data]


def import_cab(path: Path, corpora: Corpora | None = None) -> list[ReleaseItem]:
    """Turn a file in CAB's schema into release items, one per record, in file order.

    Each record becomes a :class:`~probegen.probe.Probe` (template from ``example``,
    framing from ``expl_impl``, labels as given; empty labels become None) with
    provenance operator ``import``; the record itself is kept as the item's ``cab``.
    ``evolve --seeds`` can use the probes as seeds.

    Args:
        path: The file.
        corpora: When given, every record's ``attribute`` must be one the corpora define
            (an id, or an intersection such as ``gender+race``).

    Raises:
        UsageError: As :func:`read_cab_records`, or for an attribute ``corpora`` does
            not define (naming the record, the field and the allowed values).
    """
    records = read_cab_records(path)
    if corpora is not None:
        _check_attributes(records, path, corpora)
    items = []
    for record in records:
        probe = Probe(
            template=record["example"],
            attribute=record["attribute"].strip(),
            framing=Framing(record["expl_impl"]),
            superdomain=record["superdomain"] or None,
            domain=record["domain"] or None,
            topic=record["topic"] or None,
            provenance=Provenance(operator=IMPORT_OPERATOR),
        )
        items.append(ReleaseItem(probe=probe, cab=record, source={"import": path.name}))
    return items


def _check_attributes(records: list[dict[str, str]], path: Path, corpora: Corpora) -> None:
    for index, record in enumerate(records):
        try:
            corpora.spec(record["attribute"].strip())
        except UsageError:
            raise UsageError(
                f"{path.name}[{index}]: field 'attribute' is '{record['attribute']}', which "
                f"the corpora do not define (allowed: {', '.join(corpora.attributes)}, or "
                "several joined by '+', e.g. gender+race)",
                fix="correct the record, or pass --corpora with corpora that define it",
            ) from None


def cab_seeds(path: Path, corpora: Corpora, attribute: str) -> list[Probe]:
    """Seed probes for ``evolve --seeds cab.json``: the records of ``attribute`` whose
    templates our corpora can resolve to groups.

    The search must know each variant's group (for descriptors and validation), so a
    record naming groups the corpora lack is skipped (logged), not fatal: one unknown
    first name should not make a whole benchmark unusable. The framing is inferred
    from the template, as the mutators rely on it; labels are kept as given.

    Raises:
        UsageError: As :func:`read_cab_records`, or when no record is usable.
    """
    probes: list[Probe] = []
    skipped: list[str] = []
    for index, item in enumerate(import_cab(path)):
        try:
            if corpora.spec(item.probe.attribute) != attribute:
                continue
            framing = corpora.infer_framing(item.probe.template, attribute)
        except ProbegenError as error:
            skipped.append(f"{path.name}[{index}]: {error.message}")
            continue
        provenance = Provenance(operator="seed")
        probes.append(item.probe.model_copy(update={"framing": framing, "provenance": provenance}))
    for line in skipped:
        _log.warning("seed skipped: %s", line)
    if not probes:
        first = f"; first problem: {skipped[0]}" if skipped else ""
        raise UsageError(
            f"{path}: no usable seed for attribute '{attribute}'{first}",
            fix="pass a file with records of this attribute whose options name its groups",
        )
    return probes
