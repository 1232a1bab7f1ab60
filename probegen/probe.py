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

__all__ = ["Framing", "MediaPart", "Modality", "Probe", "Provenance", "QuestionForm"]


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


class Modality(StrEnum):
    """Where a probe's sensitive attribute is signalled: text, image or both.

    Derived from the template and the media (see :attr:`Probe.modality`), never stored.
    """

    TEXT = "text"
    """No image: the template's placeholders carry the attribute."""
    IMAGE = "image"
    """One image per variant shows the group; the text is neutral (no placeholders)."""
    SHARED_IMAGE = "shared_image"
    """One image shown with every text variant; the text carries the attribute."""
    IMAGE_AND_TEXT = "image_and_text"
    """Text variants, each with its own image showing the same group as the text."""
    CONFLICT = "conflict"
    """Text variants whose images show another group than the text names."""


class MediaPart(BaseModel):
    """A non-text part of a probe, such as an image (filled in by multimodal operators)."""

    model_config = ConfigDict(frozen=True)

    kind: str = "image"
    """The modality; ``image`` is the only one so far."""
    path: str
    """Path relative to the run directory (``media/<sha256>.png``, see
    :mod:`probegen.media`)."""
    variant: str | None = None
    """The variant key this part belongs to, or None when shared by all variants."""
    sha256: str | None = None
    """Checksum of the file, so a release can prove it ships the same bytes."""
    group: str | None = None
    """The group the image depicts (a group id of the probe's attribute), if any."""
    description: str | None = None
    """What the image shows, in words, for judges and reviewers ("a résumé for Emily
    Clark with a drawn photo of a woman")."""


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

    @property
    def modality(self) -> Modality:
        """Where the attribute is signalled, from the probe's structure alone.

        Variant-keyed images with text variants are :attr:`Modality.IMAGE_AND_TEXT` here;
        whether an image shows another group than its text names needs the corpora (the
        text's groups come from them): see :meth:`modality_in`.
        """
        if not self.media:
            return Modality.TEXT
        if not tpl.parse(self.template):
            return Modality.IMAGE
        if any(part.variant is None for part in self.media):
            return Modality.SHARED_IMAGE
        return Modality.IMAGE_AND_TEXT

    def modality_in(self, corpora: Corpora) -> Modality:
        """:attr:`modality`, with :attr:`Modality.CONFLICT` told apart: some variant's
        image depicts another group than the one its text names."""
        modality = self.modality
        if modality is not Modality.IMAGE_AND_TEXT:
            return modality
        text_groups = {v.key: v.group for v in self.grouped_variants(corpora)}
        for part in self.media:
            if part.group is not None and text_groups.get(part.variant or "") not in (
                None,
                part.group,
            ):
                return Modality.CONFLICT
        return modality

    def _image_variant_keys(self) -> list[str]:
        # A neutral text with one image per variant: the images define the variants.
        return list(dict.fromkeys(p.variant for p in self.media if p.variant is not None))

    def variants(self) -> list[tpl.Variant]:
        """The variants, keyed as CAB keys them (no corpus check).

        For an :attr:`Modality.IMAGE` probe the text is the same in every variant and
        the keys are those of its images.
        """
        if self.media and not tpl.parse(self.template):
            keys = self._image_variant_keys()
            if keys:
                return [tpl.Variant(key=key, text=self.template, options=()) for key in keys]
        return tpl.expand(self.template)

    def grouped_variants(self, corpora: Corpora) -> list[GroupedVariant]:
        """The variants with the group each one names, validated against ``corpora``.

        For an :attr:`Modality.IMAGE` probe the groups are those the images depict.

        Raises:
            TemplateError: If an option is outside the attribute, two options name the
                same group, or parallel placeholders disagree on a variant's group; for
                an image probe, if an image names no group or two images the same one.
        """
        if self.media and not tpl.parse(self.template):
            keys = self._image_variant_keys()
            if keys:
                return self._image_groups(keys, corpora)
        return corpora.variant_groups(self.template, self.attribute)

    def _image_groups(self, keys: list[str], corpora: Corpora) -> list[GroupedVariant]:
        from probegen.corpora import GroupedVariant  # the corpora import probe.py

        known = corpora.group_ids(self.attribute)
        grouped: list[GroupedVariant] = []
        for key in keys:
            group = next((p.group for p in self.media if p.variant == key and p.group), None)
            if group is None or group not in known:
                raise tpl.template_error(
                    self.template,
                    f"the image of variant '{key}' depicts no group of '{self.attribute}'",
                    f"set its group to one of: {', '.join(sorted(known))}",
                )
            grouped.append(GroupedVariant(key=key, text=self.template, options=(), group=group))
        if len({g.group for g in grouped}) < len(grouped):
            raise tpl.template_error(
                self.template, "two images depict the same group", "give each variant its own"
            )
        return grouped

    def dedup_signature(self, corpora: Corpora) -> tuple[str, ...]:
        """What two probes must share to be compared as near-duplicates.

        The masked text alone is not enough: "{{man/woman}}" -> "{{James/Emily}}" (another
        framing), adding a group, or the same neutral text with other images keeps the
        masked text but makes a different probe.

        Raises:
            TemplateError: As :meth:`grouped_variants`.
        """
        groups = sorted({v.group for v in self.grouped_variants(corpora)})
        images = sorted(p.sha256 or p.path for p in self.media)
        return (self.framing.value, self.modality.value, *groups, "|", *images)

    def media_for(self, variant_key: str) -> tuple[MediaPart, ...]:
        """The images a target sees with one variant: the shared ones and its own."""
        return tuple(p for p in self.media if p.variant is None or p.variant == variant_key)
