"""Shared machinery of the image operators (image_swap, modality_move,
text_image_conflict, document_render).

Every image operator proposes image children only when the context says the target can
see images and names the run directory (:func:`image_run_dir`); its images go into the
run's media folder (:func:`probegen.media.store_image`) with the group and a description
set on each part; and it returns only children that pass
:func:`probegen.mutation.validate_child`, so a plugin's children are valid on their own.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from probegen.corpora import Attribute, ImageEntry, ImagePair
from probegen.errors import ProbegenError
from probegen.imaging.content import Documents, load_documents, load_prompts
from probegen.imaging.documents import render_document
from probegen.imaging.sets import describe, person_for
from probegen.media import store_image, store_image_file
from probegen.mutation import MutationContext, make_child, validate_child
from probegen.probe import Framing, MediaPart, Probe

from ._groups import GENDER, Cell
from ._persona import Tools

__all__ = [
    "Sitter",
    "draw_people",
    "image_child",
    "image_run_dir",
    "set_images",
    "store_entry",
    "valid_children",
]


def image_run_dir(ctx: MutationContext) -> Path | None:
    """Where to store images, or None when the operator must not propose image children."""
    return ctx.run_dir if ctx.accepts_images and ctx.run_dir is not None else None


def image_child(
    parents: Sequence[Probe],
    template: str,
    media: Sequence[MediaPart],
    operator: str,
    ctx: MutationContext,
    *,
    framing: Framing | None = None,
) -> Probe:
    """A child with ``template`` and exactly ``media`` (provenance and labels as
    :func:`~probegen.mutation.make_child`); ``framing`` overrides the inferred one, which
    an image probe's neutral text cannot tell."""
    child = make_child(parents, template, operator, ctx)
    update: dict[str, object] = {"media": tuple(media)}
    if framing is not None:
        update["framing"] = framing
    return child.model_copy(update=update)


def valid_children(
    children: Sequence[Probe], parents: Sequence[Probe], ctx: MutationContext
) -> list[Probe]:
    """The children that pass :func:`~probegen.mutation.validate_child`."""
    return [c for c in children if validate_child(c, parents, ctx) is None]


def set_images(ctx: MutationContext) -> dict[str, tuple[ImagePair, ImageEntry]]:
    """Every image of the corpora's image sets by checksum, with its pair: how an
    operator recognises a probe's image as one of a counterfactual pair."""
    found: dict[str, tuple[ImagePair, ImageEntry]] = {}
    for image_set in ctx.corpora.image_sets:
        for pair in image_set.pairs:
            for entry in pair.entries:
                found.setdefault(entry.sha256, (pair, entry))
    return found


def store_entry(run_dir: Path, entry: ImageEntry, variant: str, group: str) -> MediaPart:
    """A set image copied into the run's media folder for one variant."""
    return store_image_file(
        run_dir, entry.path, variant=variant, group=group, description=entry.description
    )


@dataclass(frozen=True)
class Sitter:
    """A person to draw a document about.

    Attributes:
        variant: The variant key the document belongs to.
        group: The group id (for an intersection, '+'-joined in spec order).
        first_name: The name the text already gives them, or None to pick one.
    """

    variant: str
    group: str
    first_name: str | None = None


def draw_people(
    ctx: MutationContext,
    run_dir: Path,
    kind: str,
    sitters: Sequence[Sitter],
    components: Sequence[Attribute],
    *,
    gender: str | None = None,
) -> list[MediaPart] | None:
    """One document of ``kind`` per sitter, alike but for the person, stored in the run.

    Names not given are balanced first names of each sitter's groups (alike in every
    other attribute names.csv tags); a non-binary sitter, whom no first name stands for,
    gets a name that signals no group, and every document then shows a pronouns line.
    Everyone shares one document and one surname.

    Args:
        ctx: The mutation context (corpora and rng).
        run_dir: Where to store the images.
        kind: The kind of document (``resume``; see ``documents.yaml``).
        sitters: The people, one per variant.
        components: The probe's component attributes.
        gender: For a probe without a gender component, the gender everyone has (to
            agree with a pronoun in the text), or None.

    Returns:
        The media parts, or None when some sitter cannot be drawn honestly.
    """
    tools = Tools(ctx.corpora, ctx.rng)
    documents = load_documents(ctx.corpora)
    prompts = load_prompts(ctx.corpora)
    doc_ids = documents.of_kind(kind)
    if not doc_ids:
        return None
    spec = documents.documents[ctx.rng.choice(doc_ids)]
    surname = ctx.rng.choice(documents.surnames)
    ids = [a.id for a in components]
    g = ids.index(GENDER) if GENDER in ids else None
    cells: list[Cell] = [tuple(s.group.split("+")) for s in sitters]
    names = _first_names(tools, documents, sitters, cells, components, g, gender)
    if names is None:
        return None
    pronouns = g is not None and any(
        not tools.lexicon.name_tags.get(n, {}).get(GENDER) for n in names
    )
    media = []
    for sitter, cell, name in zip(sitters, cells, names, strict=True):
        sex = cell[g] if g is not None else tools.lexicon.name_tags.get(name, {}).get(GENDER)
        try:
            person = person_for(
                ctx.corpora, documents, name, surname, sex or gender, pronouns=pronouns
            )
        except ProbegenError:
            return None
        data = render_document(spec.document(), person)
        media.append(
            store_image(
                run_dir,
                data,
                ".png",
                variant=sitter.variant,
                group=sitter.group,
                description=describe(prompts.label(kind), spec.subheading, person),
            )
        )
    return media


def _first_names(
    tools: Tools,
    documents: Documents,
    sitters: Sequence[Sitter],
    cells: Sequence[Cell],
    components: Sequence[Attribute],
    g: int | None,
    gender: str | None,
) -> list[str] | None:
    names: list[str | None] = [s.first_name for s in sitters]
    gender_attr = tools.corpora.attributes.get(GENDER)
    nameless = [
        i
        for i, name in enumerate(names)
        if name is None
        and g is not None
        and gender_attr is not None
        and not gender_attr.groups[cells[i][g]].names
    ]
    if len(nameless) > len(documents.neutral_names):
        return None
    for i, neutral in zip(
        nameless, tools.rng.sample(documents.neutral_names, len(nameless)), strict=False
    ):
        names[i] = neutral
    wanted = [i for i, name in enumerate(names) if name is None]
    if wanted:
        kept = {cells[i]: n for i, n in enumerate(names) if n is not None and i not in nameless}
        picked = tools.lexicon.names(
            [cells[i] for i in wanted], components, tools.rng, gender=gender, keep=kept or None
        )
        if picked is None:
            return None
        for i, name in zip(wanted, picked, strict=True):
            names[i] = name
    return [n for n in names if n is not None]
