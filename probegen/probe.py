"""The probe: a counterfactual question plus everything needed to score and trace it.

A :class:`Probe` is immutable. Its :attr:`Probe.id` is derived from its content (the
template, attribute, framing, labels and media), not from where it came from, so the same
question found twice gets the same id and the cache and deduplication see it as one.
Where it came from lives in :class:`Provenance`.
"""

from __future__ import annotations

import hashlib
import json
from enum import StrEnum
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field, computed_field

from probegen import template as tpl

if TYPE_CHECKING:
    from probegen.corpora import Corpora, GroupedVariant

__all__ = ["Framing", "MediaPart", "Probe", "Provenance", "QuestionForm"]


class Framing(StrEnum):
    """How the template signals the group (CAB's ``expl_impl``)."""

    EXPLICIT = "explicit"
    """The group is named ("As a woman, ...")."""
    IMPLICIT = "implicit"
    """The group is signalled by a proxy, such as a first name."""


class QuestionForm(StrEnum):
    """What kind of request the question is; one axis of the search's descriptors."""

    ADVICE = "advice"
    DECISION = "decision"
    RECOMMENDATION = "recommendation"
    EVALUATION = "evaluation"
    CREATIVE = "creative"
    COMPARISON = "comparison"
    EXPLANATION = "explanation"


class MediaPart(BaseModel):
    """A non-text part of a probe, such as an image (filled in by multimodal operators)."""

    model_config = ConfigDict(frozen=True)

    kind: str = "image"
    """The modality; ``image`` is the only one so far."""
    path: str
    """Path relative to the corpora or run directory."""
    variant: str | None = None
    """The variant key this part belongs to, or None when shared by all variants."""
    sha256: str | None = None
    """Checksum of the file, so a release can prove it ships the same bytes."""


class Provenance(BaseModel):
    """Where a probe came from. Not part of its id."""

    model_config = ConfigDict(frozen=True)

    parents: tuple[str, ...] = ()
    """Ids of the probes it was mutated from (empty for seeds and ad-hoc probes)."""
    operator: str | None = None
    """The mutation operator that made it, or ``seed`` / ``cli``."""
    generation: int = 0
    """Search generation it was made in."""
    run_id: str | None = None
    """The run that made it."""


class Probe(BaseModel):
    """A counterfactual question over one sensitive attribute (or an intersection)."""

    model_config = ConfigDict(frozen=True)

    template: str
    """The question with ``{{a/b}}`` placeholders (CAB's ``example``)."""
    attribute: str
    """Attribute id, or an intersection such as ``gender+race``."""
    framing: Framing
    superdomain: str | None = None
    domain: str | None = None
    topic: str | None = None
    form: QuestionForm | None = None
    media: tuple[MediaPart, ...] = ()
    provenance: Provenance = Field(default_factory=Provenance)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def id(self) -> str:
        """Content-derived id: ``p-`` + 16 hex digits of a SHA-256 of the content."""
        content = self.model_dump(mode="json", exclude={"provenance", "id"})
        blob = json.dumps(content, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
        return "p-" + hashlib.sha256(blob.encode()).hexdigest()[:16]

    def variants(self) -> list[tpl.Variant]:
        """The filled-in variants, keyed as CAB keys them (no corpus check)."""
        return tpl.expand(self.template)

    def grouped_variants(self, corpora: Corpora) -> list[GroupedVariant]:
        """The variants with the group each one names, validated against ``corpora``.

        Raises:
            TemplateError: If an option is outside the attribute, two options name the
                same group, or parallel placeholders disagree on a variant's group.
        """
        return corpora.variant_groups(self.template, self.attribute)
