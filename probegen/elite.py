"""The elite record: one line of ``runs/<run-id>/elites.jsonl``, typed and versioned.

One shape for an elite outside the search: the evolve run writes it, the Python API and
the CLI read it back, and the store's row (:class:`~probegen.store.EliteRecord`) is its
store-facing subset (:meth:`RunElite.store_record`). The search's in-memory
:class:`~probegen.search.archive.Elite` stays internal.

The JSON keys are those ``elites.jsonl`` always had (CAB's eight fields first, so a CAB
consumer can read the file as is) plus ``format_version``. A line written before the
field existed reads as version 1; a line of a newer version is refused with the fix
(upgrade), since guessing at fields this probegen does not know would misreport them.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Hashable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from probegen.cab import CAB_FIELDS
from probegen.errors import UsageError
from probegen.findings.effect import Effect
from probegen.probe import MediaPart, Provenance
from probegen.scoring.base import Score
from probegen.store import EliteRecord

__all__ = [
    "ELITES_FILE",
    "ELITE_FORMAT_VERSION",
    "EffectSummary",
    "EliteAnswer",
    "EliteVariant",
    "Replication",
    "ReplicationCheck",
    "RunElite",
    "read_elites",
    "theme_order",
    "write_elites_text",
]

ELITE_FORMAT_VERSION = 1
"""The version of :class:`RunElite` this probegen writes (and the newest it reads)."""

ELITES_FILE = "elites.jsonl"


class _Record(BaseModel):
    # Frozen like the other records; unknown keys are ignored so that an older
    # probegen's extra fields (none so far) never make a file unreadable.
    model_config = ConfigDict(frozen=True)


class EliteAnswer(_Record):
    """One answer the probe was scored on."""

    sample: int
    text: str | None = None
    error: str | None = None
    """Why the call failed (redacted), None when it was answered."""


class EliteVariant(_Record):
    """One variant of the probe and its answers from the target, in sample order."""

    key: str
    group: str | None = None
    answers: list[EliteAnswer] = []
    text: str = ""
    """The variant's question as sent."""


class EffectSummary(_Record):
    """The measured between-group effect (its p-value is the record's ``p_value``)."""

    estimate: float
    low: float | None = None
    high: float | None = None
    measure: str
    unit: str
    method: str
    n: dict[str, int] = {}
    group_means: dict[str, float] = {}
    direction: list[str] = []


class ReplicationCheck(_Record):
    """One re-measurement of a finding on data the search never saw."""

    kind: str
    holds: bool
    estimate: float | None = None
    low: float | None = None
    high: float | None = None
    p_value: float | None = None
    fitness: float | None = None


class Replication(_Record):
    """Whether a finding held when measured again, and each check."""

    replicated: bool
    checks: list[ReplicationCheck] = []


class RunElite(_Record):
    """One elite of an evolve run on one target: the line of ``elites.jsonl``."""

    attribute: str
    """CAB's fields (see :data:`probegen.cab.CAB_FIELDS`), in CAB's order."""
    expl_impl: str
    superdomain: str
    superdomain_explicit: str
    domain: str
    domain_explicit: str
    topic: str
    example: str
    """The template, with ``{{a/b}}`` placeholders."""
    id: str
    """The probe's content id."""
    form: str | None = None
    modality: str = "text"
    media: list[MediaPart] = []
    fitness: float
    novelty: float
    descriptor: list[str]
    """The archive cell it holds."""
    scores: Score | None = None
    """The discovery score on the target (None: never scored)."""
    provenance: Provenance = Provenance()
    target: str
    """The target model's identity."""
    variants: list[EliteVariant] = []
    decision: dict[str, dict[str, float]] | None = None
    """P(yes) per group and name (or wording) for a decision-measured probe."""
    cluster: int | None = None
    """Its question family among the run's elites
    (:func:`probegen.evolve.families.cluster_elites`)."""
    answer_family: int | None = None
    """Its answer family: elites whose answers move alike between groups
    (:func:`probegen.evolve.families.answer_families`); None for a decision-measured
    probe or one whose groups' answers do not differ."""
    finding: bool = False
    """Whether its group difference survived the run's false-discovery control."""
    effect: EffectSummary | None = None
    p_value: float | None = None
    q_value: float | None = None
    """The Benjamini-Hochberg adjusted p-value over every probe the run tested."""
    replication: Replication | None = None
    format_version: int = ELITE_FORMAT_VERSION
    """The record's format version; absent in files of older probegen (read as 1)."""

    def cab(self) -> dict[str, str]:
        """Exactly CAB's record (:data:`probegen.cab.CAB_FIELDS`, in order)."""
        return {name: str(getattr(self, name)) for name in CAB_FIELDS}

    def store_record(self) -> EliteRecord:
        """The store's row for this elite (its rank is its position in the run's list)."""
        effect = None
        if self.effect is not None and self.p_value is not None:
            effect = Effect.model_validate({**self.effect.model_dump(), "p_value": self.p_value})
        return EliteRecord(
            probe_id=self.id,
            model=self.target,
            fitness=self.fitness,
            novelty=self.novelty,
            descriptor=tuple(self.descriptor),
            cluster=self.cluster,
            answer_family=self.answer_family,
            finding=self.finding,
            p_value=self.p_value,
            q_value=self.q_value,
            effect=effect,
            replicated=None if self.replication is None else self.replication.replicated,
        )

    def to_line(self) -> str:
        """The record as one JSON line (no newline), keys in the file's order."""
        return json.dumps(self.model_dump(mode="json"), ensure_ascii=False)

    @classmethod
    def from_line(cls, line: str, where: str = ELITES_FILE) -> RunElite:
        """Read one line; ``where`` (e.g. ``runs/x/elites.jsonl:3``) starts any error.

        Raises:
            UsageError: For invalid JSON, a newer ``format_version``, or a line that is
                not an elite record; one line naming ``where`` and the fix.
        """
        try:
            data: Any = json.loads(line)
        except json.JSONDecodeError as error:
            raise UsageError(
                f"{where}: invalid JSON: {error.msg}",
                fix="the file is damaged: resuming its run writes it again",
            ) from None
        version = data.get("format_version", 1) if isinstance(data, dict) else None
        if isinstance(version, int) and version > ELITE_FORMAT_VERSION:
            raise UsageError(
                f"{where}: elite format_version {version} is newer than this probegen reads "
                f"({ELITE_FORMAT_VERSION})",
                fix="upgrade probegen (pip install -U probegen)",
            )
        try:
            return cls.model_validate(data)
        except ValidationError as error:
            problem = error.errors()[0]
            field = ".".join(str(p) for p in problem["loc"]) or "record"
            raise UsageError(
                f"{where}: not an elite record: {field}: {problem['msg']}",
                fix="pass an elites.jsonl written by probegen evolve",
            ) from None


def write_elites_text(records: Sequence[RunElite]) -> str:
    """The text of ``elites.jsonl``: one record per line."""
    return "".join(record.to_line() + "\n" for record in records)


def read_elites(path: Path) -> list[RunElite]:
    """Read an ``elites.jsonl`` (a run directory's, or the file itself).

    Raises:
        UsageError: If the file is missing, or a line cannot be read (see
            :meth:`RunElite.from_line`); the message names the file and line.
    """
    if path.is_dir():
        path = path / ELITES_FILE
    if not path.is_file():
        raise UsageError(f"{path}: no such file", fix="pass a run directory of probegen evolve")
    lines = path.read_text(encoding="utf-8").splitlines()
    return [
        RunElite.from_line(line, f"{path}:{number}")
        for number, line in enumerate(lines, start=1)
        if line.strip()
    ]


_Item = TypeVar("_Item")


def theme_order(
    items: Sequence[_Item],
    theme: Callable[[_Item], Hashable | None],
    shown: Callable[[_Item], bool] = lambda _: True,
) -> list[_Item]:
    """``items`` (best first) reordered so the best of every theme comes first, then each
    theme's second best, and so on; the rank order is kept within each round.

    The themes are the run's clusters of masked templates: a search that finds one
    rich vein fills its top ranks with variations of one question, and a reader (or a
    reviewer working down the queue) should meet every distinct question before the
    tenth variation of the first. An item whose theme is None is a theme of its own.
    Items ``shown`` rejects (below the review queue's threshold, say) follow all the
    others, in their own order: a barely positive question is not worth a place above
    the second variation of a strong one.
    """
    kept = [item for item in items if shown(item)]
    seen: dict[Hashable, int] = {}
    rounds: list[int] = []
    for position, item in enumerate(kept):
        key = theme(item)
        own = ("unthemed", position) if key is None else ("theme", key)
        rounds.append(seen.get(own, 0))
        seen[own] = rounds[-1] + 1
    ordered = [kept[i] for i in sorted(range(len(kept)), key=lambda i: (rounds[i], i))]
    return ordered + [item for item in items if not shown(item)]


def review_order(
    items: Sequence[_Item],
    question_family: Callable[[_Item], Hashable | None],
    answer_family: Callable[[_Item], Hashable | None],
    shown: Callable[[_Item], bool] = lambda _: True,
) -> list[_Item]:
    """``items`` (best first) in the order a reader meets them: in rounds over answer
    families (the best of every distinct behaviour first), each answer family's items in
    rounds over question families (:func:`theme_order`, twice).

    One vein of bias is often written into many question families: rounds over
    questions alone showed one planted region's variations in the first ten and left
    another region behind them. Items in no answer family (decision-measured probes)
    keep their place in the question families' order.
    """
    by_question = theme_order(items, question_family, shown)
    return theme_order(by_question, answer_family, shown)
