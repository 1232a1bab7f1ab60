"""Reading benchmarks in CAB's schema (the original ``cab.json``, or any file like it).

Imported records keep their labels exactly as given: another benchmark's taxonomy is not
ours, and rewriting it would break the round trip (build, then import, gives the same
records). Only what a probe needs to be asked is checked: the eight string fields, a
template that parses, and (when importing a release) an attribute the corpora define,
since ``eval`` cannot pair a variant with a group of an attribute it does not know.
"""

from __future__ import annotations

from pathlib import Path

from probegen.cab import IMPORT_OPERATOR, cab_seeds, probe_from_cab, read_cab_records
from probegen.corpora import Corpora
from probegen.errors import UsageError
from probegen.release.model import ReleaseItem

# The CAB format itself (reading, checking, seeding a run) lives in probegen.cab, below
# the search; re-exported here for callers of the release API.
__all__ = ["IMPORT_OPERATOR", "cab_seeds", "import_cab", "read_cab_records"]


def import_cab(path: Path, corpora: Corpora | None = None) -> list[ReleaseItem]:
    """Turn a file in CAB's schema into release items, one per record, in file order.

    Each record becomes a :class:`~probegen.probe.Probe` (template from ``example``,
    framing from ``expl_impl``, labels as given; empty labels become None) with
    provenance operator ``import``; the record itself is kept as the item's ``cab``.
    An evolve run's ``seeds_file`` can be such a file, to use the probes as seeds.

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
    return [
        ReleaseItem(probe=probe_from_cab(record), cab=record, source={"import": path.name})
        for record in records
    ]


def _check_attributes(records: list[dict[str, str]], path: Path, corpora: Corpora) -> None:
    for index, record in enumerate(records):
        try:
            corpora.spec(record["attribute"].strip())
        except UsageError:
            raise UsageError(
                f"{path.name}[{index}]: field 'attribute' is '{record['attribute']}', which "
                f"the corpora do not define (allowed: {', '.join(corpora.attributes)}, or "
                "several joined by '+', e.g. gender+race)",
                fix="correct the record, or use `corpora` that define it",
            ) from None
