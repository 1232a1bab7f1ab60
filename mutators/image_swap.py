"""``image_swap``: the same kind of picture, another group or another scene.

For a probe whose images come from an image set (``corpora/images/``), either

- the same scene with another group: one variant's image is replaced by the pair's
  image of a group the probe does not show yet (an image probe only, whose variants
  are its images' groups): résumé of Greg -> résumé of Alex, same scene; or
- another scene of the same kind: every image is replaced by the matching image of
  another pair showing the same groups (the Baker résumés -> the Parker résumés), which
  tells a scene-specific answer from a group-specific one; an image probe may also move
  to a scene of the same kind with other groups (its images are its variants).

Images the sets do not hold (drawn by another operator) have no pair or kind to swap
within: such probes give no child.
"""

from __future__ import annotations

from collections.abc import Sequence

from probegen.corpora import ImageEntry
from probegen.corpora.images import pairs_for
from probegen.mutation import MutationContext
from probegen.probe import MediaPart, Modality, Probe

from ._images import image_child, image_run_dir, set_images, store_entry, valid_children

__all__ = ["ImageSwap"]

_Swap = tuple[MediaPart | tuple[ImageEntry, str, str], ...]
"""A proposed set of images: a part kept as it is, or a set image (entry, variant, group)
to copy into the run; only the chosen proposal is copied."""


class ImageSwap:
    """Swap a probe's set images: another group of the same scene, or another scene."""

    name = "image_swap"
    arity = 1
    needs_helper = False
    needs_images = True

    async def mutate(self, parents: Sequence[Probe], ctx: MutationContext) -> list[Probe]:
        """One child with swapped images, or none when no image comes from a set."""
        run_dir = image_run_dir(ctx)
        parent = parents[0]
        if run_dir is None or not parent.media or any(p.variant is None for p in parent.media):
            return []
        components = [a.id for a in ctx.corpora.components(parent.attribute)]
        known = set_images(ctx)
        media = parent.media
        shown = {p.group for p in media}
        options: list[_Swap] = []
        if parent.modality is Modality.IMAGE:
            for index, part in enumerate(media):
                home = known.get(part.sha256 or "")
                if home is None:
                    continue
                for group, entry in home[0].by_group(components).items():
                    if group not in shown:
                        variant = group if part.variant == part.group else part.variant or group
                        options.append(
                            (*media[:index], (entry, variant, group), *media[index + 1 :])
                        )
        homes = [known[p.sha256][0] for p in media if p.sha256 in known]
        kinds = {pair.kind for pair in homes}
        for pair in pairs_for(ctx.corpora.image_sets, components) if homes else []:
            by_group = pair.by_group(components)
            if pair.key in {home.key for home in homes} or pair.kind not in kinds:
                continue
            if all(p.group in by_group for p in media):
                options.append(
                    tuple((by_group[p.group or ""], p.variant or "", p.group or "") for p in media)
                )
            elif parent.modality is Modality.IMAGE:
                # The images are the variants: another scene may bring other groups.
                options.append(tuple((entry, group, group) for group, entry in by_group.items()))
        if not options:
            return []
        chosen = ctx.rng.choice(options)
        stored = tuple(
            part if isinstance(part, MediaPart) else store_entry(run_dir, *part) for part in chosen
        )
        child = image_child(
            parents, parent.template, stored, self.name, ctx, framing=parent.framing
        )
        return valid_children([child], parents, ctx)
