"""``text_image_conflict``: the text names one group, the attached image shows another.

Vision-language models over-trust text that contradicts the image (GenderBias-VL,
SB-Bench). This operator keeps a text probe's variants and attaches to each an image of
a document about a person of *another* group of the same probe (a rotation, so every
group is still shown once): "Should I hire {{James/Emily}}? Their résumé is attached."
with Emily's résumé for James and James's for Emily. Whether answers follow the text or
the image, and whether they differ by either, is what the scorer sees.

The kind of document follows the probe's domain (``domain_kinds`` in
``corpora/images/prompts.yaml``). Images come from an image-set pair of that kind showing
all the probe's groups when there is one (``corpora/images/``), else are drawn (balanced
first names; see :func:`mutators._images.draw_people`).
"""

from __future__ import annotations

from collections.abc import Sequence

from probegen.corpora.images import pairs_for
from probegen.errors import ProbegenError
from probegen.imaging.content import load_prompts
from probegen.mutation import MutationContext
from probegen.probe import Modality, Probe

from ._groups import text_gender
from ._images import Sitter, draw_people, image_child, image_run_dir, store_entry, valid_children
from ._persona import Tools

__all__ = ["TextImageConflict"]


class TextImageConflict:
    """Attach to each text variant an image of another group (Modality.CONFLICT)."""

    name = "text_image_conflict"
    arity = 1
    needs_helper = False
    needs_images = True

    async def mutate(self, parents: Sequence[Probe], ctx: MutationContext) -> list[Probe]:
        """One conflicting child, or none when the groups cannot be shown."""
        run_dir = image_run_dir(ctx)
        parent = parents[0]
        if run_dir is None or parent.modality is not Modality.TEXT:
            return []
        try:
            variants = parent.grouped_variants(ctx.corpora)
            components = ctx.corpora.components(parent.attribute)
        except ProbegenError:
            return []
        n = len(variants)
        if n < 2:
            return []
        shift = ctx.rng.randrange(1, n)
        shown = [variants[(i + shift) % n].group for i in range(n)]
        ids = [a.id for a in components]
        prompts = load_prompts(ctx.corpora)
        kind = prompts.kind_for(parent.superdomain, parent.domain)
        groups = {v.group for v in variants}
        pairs = [
            p
            for p in pairs_for(ctx.corpora.image_sets, ids)
            if p.kind == kind and groups <= set(p.by_group(ids))
        ]
        if pairs:
            by_group = ctx.rng.choice(pairs).by_group(ids)
            media = [
                store_entry(run_dir, by_group[group], v.key, group)
                for v, group in zip(variants, shown, strict=True)
            ]
        else:
            sitters = [Sitter(v.key, group) for v, group in zip(variants, shown, strict=True)]
            drawn = draw_people(
                ctx, run_dir, kind, sitters, components, gender=text_gender(parent.template)
            )
            if drawn is None:
                return []
            media = drawn
        persona = Tools(ctx.corpora, ctx.rng).persona(parent.template, parent.attribute)
        mine = persona is not None and persona.first_person
        notes = prompts.conflict_notes_first_person if mine else prompts.conflict_notes
        note = ctx.rng.choice(notes).replace("{document}", prompts.label(kind))
        template = f"{parent.template.rstrip()} {note}"
        child = image_child(parents, template, media, self.name, ctx)
        return valid_children([child], parents, ctx)
