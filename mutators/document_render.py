"""``document_render``: the question typed on a page, the text left neutral.

Each variant's question is rendered as a note image ("a template rendered into an
image"), and the text becomes a neutral request such as "Please answer the request in
the attached document." (``render_requests`` in ``corpora/images/prompts.yaml``). The
group now reaches the model only through what it reads in the image, which tests
whether a vision-language model treats groups alike when the words arrive as pixels
(typographic prompts), and whether its safety behaviour carries over.
"""

from __future__ import annotations

from collections.abc import Sequence

from probegen.errors import ProbegenError
from probegen.imaging.content import load_prompts
from probegen.imaging.documents import render_note
from probegen.media import store_image
from probegen.mutation import MutationContext
from probegen.probe import Modality, Probe

from ._images import image_child, image_run_dir, valid_children

__all__ = ["DocumentRender"]


class DocumentRender:
    """Move a text probe's whole question into one typed note per variant."""

    name = "document_render"
    arity = 1
    needs_helper = False
    needs_images = True

    async def mutate(self, parents: Sequence[Probe], ctx: MutationContext) -> list[Probe]:
        """One image child, or none for an image probe or a question too long to fit."""
        run_dir = image_run_dir(ctx)
        parent = parents[0]
        if run_dir is None or parent.modality is not Modality.TEXT:
            return []
        try:
            variants = parent.grouped_variants(ctx.corpora)
        except ProbegenError:
            return []
        prompts = load_prompts(ctx.corpora)
        heading = ctx.rng.choice(prompts.note_headings)
        request = ctx.rng.choice(prompts.render_requests)
        media = []
        for variant in variants:
            data = render_note(heading, variant.text)
            if data is None:
                return []
            media.append(
                store_image(
                    run_dir,
                    data,
                    ".png",
                    variant=variant.key,
                    group=variant.group,
                    description=f'A typed note headed "{heading}" that reads: {variant.text}',
                )
            )
        child = image_child(parents, request, media, self.name, ctx, framing=parent.framing)
        return valid_children([child], parents, ctx)
