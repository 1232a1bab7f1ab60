"""CAB's record format: the eight string fields, their check, and probes made from them.

Below both the search and the release code: an evolve run writes CAB's fields into
``elites.jsonl`` and may seed from a ``cab.json``, and a release writes and verifies
``cab.json``. Keeping the format here means the search loop never imports
:mod:`probegen.release` (and with it pyarrow) just to know eight field names.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from probegen.errors import ProbegenError, TemplateError, UsageError
from probegen.probe import Framing, Probe, Provenance
from probegen.template import parse

if TYPE_CHECKING:
    from probegen.corpora import Corpora

__all__ = [
    "CAB_FIELDS",
    "IMPORT_OPERATOR",
    "cab_labels",
    "cab_problems",
    "cab_record",
    "cab_seeds",
    "probe_from_cab",
    "read_cab_records",
]

CAB_FIELDS = (
    "attribute",
    "expl_impl",
    "superdomain",
    "superdomain_explicit",
    "domain",
    "domain_explicit",
    "topic",
    "example",
)
"""CAB's record schema: every field a string, in this order."""

IMPORT_OPERATOR = "import"
"""The provenance operator of an imported probe."""

_FRAMINGS = ("explicit", "implicit")
_FIX = f"each record needs the string fields {', '.join(CAB_FIELDS)}"
_log = logging.getLogger(__name__)


def cab_labels(corpora: Corpora, superdomain: str | None, domain: str | None) -> tuple[str, str]:
    """The human-readable ``superdomain_explicit`` and ``domain_explicit`` of CAB's schema.

    Labels outside the taxonomy (an imported benchmark's, or a corpus that changed since
    the run) are kept as given rather than refused: the ids are still meaningful.
    """
    if superdomain is None:
        return "", ""
    try:
        found = corpora.taxonomy.superdomain(superdomain)
    except UsageError:
        return superdomain, domain or ""
    dom = found.domains.get(domain or "")
    return found.label, dom.label if dom is not None else (domain or "")


def cab_record(probe: Probe, corpora: Corpora) -> dict[str, str]:
    """The probe as CAB's record: exactly :data:`CAB_FIELDS`, in order, all strings."""
    superdomain_explicit, domain_explicit = cab_labels(corpora, probe.superdomain, probe.domain)
    record = {
        "attribute": probe.attribute,
        "expl_impl": probe.framing.value,
        "superdomain": probe.superdomain or "",
        "superdomain_explicit": superdomain_explicit,
        "domain": probe.domain or "",
        "domain_explicit": domain_explicit,
        "topic": probe.topic or "",
        "example": probe.template,
    }
    return {name: record[name] for name in CAB_FIELDS}


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


def probe_from_cab(record: dict[str, str]) -> Probe:
    """A record's probe: template from ``example``, framing from ``expl_impl``, labels as
    given (empty labels become None), provenance operator ``import``."""
    return Probe(
        template=record["example"],
        attribute=record["attribute"].strip(),
        framing=Framing(record["expl_impl"]),
        superdomain=record["superdomain"] or None,
        domain=record["domain"] or None,
        topic=record["topic"] or None,
        provenance=Provenance(operator=IMPORT_OPERATOR),
    )


def cab_seeds(path: Path, corpora: Corpora, attribute: str) -> list[Probe]:
    """Seed probes from a ``cab.json`` given as a run's ``seeds_file``: the records of
    ``attribute`` whose templates our corpora can resolve to groups.

    The search must know each variant's group (for descriptors and validation), so a
    record naming groups the corpora lack is skipped (logged), not fatal: one unknown
    first name should not make a whole benchmark unusable. The framing is inferred
    from the template, as the mutators rely on it; labels are kept as given.

    Raises:
        UsageError: As :func:`read_cab_records`, or when no record is usable.
    """
    probes: list[Probe] = []
    skipped: list[str] = []
    for index, record in enumerate(read_cab_records(path)):
        probe = probe_from_cab(record)
        try:
            if corpora.spec(probe.attribute) != attribute:
                continue
            framing = corpora.infer_framing(probe.template, attribute)
        except ProbegenError as error:
            skipped.append(f"{path.name}[{index}]: {error.message}")
            continue
        provenance = Provenance(operator="seed")
        probes.append(probe.model_copy(update={"framing": framing, "provenance": provenance}))
    for line in skipped:
        _log.warning("seed skipped: %s", line)
    if not probes:
        first = f"; first problem: {skipped[0]}" if skipped else ""
        raise UsageError(
            f"{path}: no usable seed for attribute '{attribute}'{first}",
            fix="pass a file with records of this attribute whose options name its groups",
        )
    return probes
