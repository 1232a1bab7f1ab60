"""Seed probes built from the image sets, for vision targets.

Generation 0 of a search against a target that can see images should already hold
image probes, or the search would have to stumble on them through the operators. For
every image pair that serves the run's attribute (see
:meth:`probegen.corpora.ImagePair.serves`) and every seed question of its kind in
``corpora/images/prompts.yaml``, one :attr:`~probegen.probe.Modality.IMAGE` probe: the
neutral question, and one image per group of the pair.

Images are copied into the run directory's media folder (content-addressed), so a run
stays self-contained and the runner and the review app read them from there.
"""

from __future__ import annotations

from pathlib import Path

from probegen.corpora import Corpora
from probegen.corpora.images import pairs_for
from probegen.imaging.content import load_prompts
from probegen.media import store_image_file
from probegen.probe import Framing, Probe, Provenance

__all__ = ["image_seeds"]


def image_seeds(corpora: Corpora, attribute: str, run_dir: Path) -> list[Probe]:
    """Image seed probes for ``attribute``, their images copied into ``run_dir``.

    The groups depicted are the variants (keyed by group id); the framing is implicit,
    since the images show the person rather than name the group.

    Returns:
        The probes, in image-set then seed order; empty when no pair serves the attribute.

    Raises:
        UsageError: If ``attribute`` is unknown.
        CorpusError: If ``prompts.yaml`` is invalid.
    """
    spec = corpora.spec(attribute)
    components = [a.id for a in corpora.components(spec)]
    pairs = pairs_for(corpora.image_sets, components)
    if not pairs:
        return []
    prompts = load_prompts(corpora)
    probes = []
    for pair in pairs:
        questions = [seed for seed in prompts.seeds if seed.kind == pair.kind]
        if not questions:
            continue
        media = tuple(
            store_image_file(
                run_dir, entry.path, variant=group, group=group, description=entry.description
            )
            for group, entry in pair.by_group(components).items()
        )
        for seed in questions:
            probes.append(
                Probe(
                    template=seed.template,
                    attribute=spec,
                    framing=Framing.IMPLICIT,
                    superdomain=seed.superdomain,
                    domain=seed.domain,
                    topic=seed.topic,
                    form=seed.form,
                    media=media,
                    provenance=Provenance(operator="seed"),
                )
            )
    return probes
