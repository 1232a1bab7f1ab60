"""What a release holds: the types behind ``probes.jsonl`` and the loader every consumer
(``release show``, ``release diff``, ``eval``, the Inspect export) goes through.

A release directory ``releases/NAME/X.Y.Z/`` holds ``cab.json`` (CAB's 8 string fields,
for consumers that know nothing of probegen), ``probes.jsonl`` (one :class:`ReleaseItem`
per line: the full record), the Hugging Face layout, ``MANIFEST.json`` and
``CHANGELOG.md``. ``probes.jsonl`` is the source of truth for probegen itself; the
other files are derived from it when the release is built.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from probegen.cab import CAB_FIELDS, cab_labels, cab_record
from probegen.errors import UsageError
from probegen.findings.effect import Effect
from probegen.probe import Probe

__all__ = [
    "CAB_FIELDS",
    "CAB_FILE",
    "MANIFEST_FILE",
    "PROBES_FILE",
    "FoundOn",
    "ImageRef",
    "ReleaseItem",
    "cab_labels",
    "cab_record",
    "parse_version",
    "read_items",
    "resolve_release_dir",
    "write_items",
]

PROBES_FILE = "probes.jsonl"
CAB_FILE = "cab.json"
MANIFEST_FILE = "MANIFEST.json"


class FoundOn(BaseModel):
    """How a probe scored on one model it was found on (one run's elite)."""

    model_config = ConfigDict(frozen=True)

    run_id: str
    model: str
    fitness: float
    bias: int | None = None
    relevance: int | None = None
    generality: int | None = None
    refusal: int | None = None
    scorer: str | None = None
    finding: bool | None = None
    """Whether its group difference survived the run's false-discovery control (None:
    found before probegen tested findings)."""
    effect: Effect | None = None
    """The between-group effect measured on this model, with its 95% interval."""
    q_value: float | None = None
    replicated: bool | None = None
    """Whether the finding held when measured again on unseen data."""


class ImageRef(BaseModel):
    """An image shipped under the release's ``images/`` directory."""

    model_config = ConfigDict(frozen=True)

    path: str
    """Relative to the release directory, e.g. ``images/ab12….png``."""
    sha256: str
    variant: str | None = None
    """The variant key it belongs to, or None when shared by every variant."""


class ReleaseItem(BaseModel):
    """One line of ``probes.jsonl``: a verified probe and everything known about it.

    ``probe`` carries the labels as released (a reviewer's relabel applied); ``cab`` is
    exactly the record written to ``cab.json``.
    """

    model_config = ConfigDict(frozen=True)

    probe: Probe
    cab: dict[str, str]
    found_on: tuple[FoundOn, ...] = ()
    reviews: tuple[dict[str, object], ...] = ()
    """Every review decision on the probe (reviewer name, action, reason, note, time)."""
    images: tuple[ImageRef, ...] = ()
    source: dict[str, str] = Field(default_factory=dict)
    """Where it came from: ``{"run_id": ...}`` or ``{"import": "<file name>"}``.

    A built release adds ``probe_id`` (the elite in that run; differs from ``probe.id``
    when a relabel or edit was applied) and, for an edit, ``revision_id``: what ``release
    diff`` follows to tell an edited probe from a removed and an added one."""
    verified: bool | None = None
    """True when it passed human review (enough accepts), False in a draft built with
    ``allow_unverified`` without that, None when unknown (an imported benchmark)."""

    @property
    def id(self) -> str:
        """The probe's content id."""
        return self.probe.id


def write_items(path: Path, items: list[ReleaseItem]) -> None:
    """Write ``probes.jsonl`` (one item per line, sorted keys, UTF-8)."""
    with path.open("w", encoding="utf-8") as out:
        for item in items:
            out.write(json.dumps(item.model_dump(mode="json"), ensure_ascii=False, sort_keys=True))
            out.write("\n")


def read_items(path: Path) -> list[ReleaseItem]:
    """Read ``probes.jsonl`` back (raises pydantic's ValidationError on a bad line)."""
    with path.open(encoding="utf-8") as lines:
        return [ReleaseItem.model_validate_json(line) for line in lines if line.strip()]


def resolve_release_dir(spec: str | Path, releases_dir: Path | None = None) -> Path:
    """Find a release directory from what a user typed.

    ``spec`` may be a directory holding ``probes.jsonl``, ``NAME@X.Y.Z`` or ``NAME/X.Y.Z``
    under ``releases_dir`` (default ``$PROBEGEN_RELEASES_DIR`` or ``./releases``), or a
    bare ``NAME`` for its newest version.

    Raises:
        UsageError: If nothing matches; the message names ``spec`` and the fix.
    """
    path = Path(spec)
    if (path / PROBES_FILE).is_file():
        return path
    root = releases_dir or Path(os.environ.get("PROBEGEN_RELEASES_DIR", "releases"))
    name, _, version = str(spec).replace("@", "/").partition("/")
    if version:
        candidate = root / name / version
        if (candidate / PROBES_FILE).is_file():
            return candidate
        raise UsageError(
            f"release {spec}: no {PROBES_FILE} in {candidate}",
            fix="see `probegen release list`",
        )
    versions = [
        d for d in (root / name).glob("*") if (d / PROBES_FILE).is_file() and _semver(d.name)
    ]
    if not versions:
        raise UsageError(
            f"release {spec}: no such release directory or name under {root}",
            fix="pass a release directory or NAME@X.Y.Z (see `probegen release list`)",
        )
    return max(versions, key=lambda d: _semver(d.name) or (0, 0, 0))


def parse_version(text: str) -> tuple[int, int, int] | None:
    """``"1.2.3"`` -> ``(1, 2, 3)``; None for anything that is not X.Y.Z."""
    return _semver(text)


# SemVer 2.0's version core (semver.org): three numbers, ASCII digits, no leading zeros
# ("01.0.0" and "1.0.0" would be two directories for one version). Pre-release and
# build suffixes are not used for releases.
_SEMVER_CORE = re.compile(r"(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)")


def _semver(text: str) -> tuple[int, int, int] | None:
    match = _SEMVER_CORE.fullmatch(text)
    if match is None:
        return None
    return int(match[1]), int(match[2]), int(match[3])
