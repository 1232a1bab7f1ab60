"""Families among a run's elites, so a reader meets each distinct finding before the
tenth variation of the first.

Two kinds, used together by the order elites are shown and queued in
(:func:`probegen.elite.review_order`):

- **question families** (:func:`cluster_elites`): elites whose masked templates are
  alike. A question and its framings, letters and group swaps are one family.
- **answer families** (:func:`answer_families`): elites whose answers move the same way
  between groups (:func:`probegen.scoring.stats.answer_direction`), however their
  questions are worded. A search that finds one vein of bias writes it into many
  question families ("should I hire him as a nurse", "my nanny is a man"); ordered by
  question family alone, the first ten shown were mostly one region's variations and a
  second region waited behind them (RESULTS.md, section 6).

Both are greedy and deterministic: fittest first, an elite joins the first (fittest)
family head within the family's cosine threshold of its own vector, or heads a new one.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from probegen.corpora import Corpora
from probegen.embeddings import TextEmbedder, Vectors
from probegen.index import EmbeddingIndex
from probegen.runner import REPLICATION_SAMPLE_OFFSET
from probegen.scoring.stats import answer_direction
from probegen.search.archive import Elite
from probegen.store import Store

__all__ = [
    "ANSWER_FAMILY_SIMILARITY",
    "FAMILY_SIMILARITY",
    "answer_families",
    "cluster_elites",
]

FAMILY_SIMILARITY = 0.7
"""Cosine between masked templates at which an elite belongs to a fitter one's family."""

ANSWER_FAMILY_SIMILARITY = 0.5
"""Cosine between answer directions at which an elite joins a fitter one's answer
family. On the planted simulator, directions of probes in one region sit at 0.72-0.96
and those of different regions at -0.01-0.08; unrelated directions in 384 dimensions
are near 0."""

DECISION_SCORER = "decision"
"""A decision-measured probe's answers are one token (yes or no): no direction to read."""


def _greedy(vectors: Vectors, threshold: float) -> list[int]:
    """Each row's family: the first earlier head within ``threshold``, or its own."""
    heads: list[int] = []
    family: list[int] = []
    for position in range(len(vectors)):
        near = np.flatnonzero(vectors[heads] @ vectors[position] >= threshold)
        if near.size:
            family.append(int(near[0]))
        else:
            family.append(len(heads))
            heads.append(position)
    return family


def cluster_elites(elites: Sequence[Elite], index: EmbeddingIndex) -> dict[str, int]:
    """Question families: elites whose masked templates are within cosine
    :data:`FAMILY_SIMILARITY` of a fitter family head's. Families are numbered in order
    of their heads' fitness. ``index`` embeds the templates (the run's own index has
    them cached).

    k-means with about sqrt(n) clusters, used before, split a question with many
    variations into several clusters by their framings, and a second question then
    waited behind the first one's variations (RESULTS.md, section 6)."""
    ranked = sorted(elites, key=lambda e: -e.fitness)  # stable: ties keep archive order
    if not ranked:
        return {}
    vectors = index.embed([e.probe.template for e in ranked])
    families = _greedy(vectors, FAMILY_SIMILARITY)
    return {e.probe.id: f for e, f in zip(ranked, families, strict=True)}


def answer_families(
    elites: Sequence[Elite],
    *,
    store: Store,
    run_id: str,
    target: str,
    corpora: Corpora,
    embedder: TextEmbedder,
) -> dict[str, int]:
    """Answer families: elites whose answers on ``target`` move between groups in
    directions within cosine :data:`ANSWER_FAMILY_SIMILARITY` of a fitter head's.

    Elites measured by the decision measurement (a one-token answer), with answers from
    fewer than two groups, or with no difference at all are in no answer family (absent
    from the result): the order falls back to their question families.

    Returns:
        Probe id to family number, numbered in order of their heads' fitness.
    """
    ranked = sorted(elites, key=lambda e: -e.fitness)
    directions: list[tuple[str, Vectors]] = []
    for elite in ranked:
        probe = elite.probe
        scorers = {s.scorer for _, model, s in store.scores(run_id, probe.id) if model == target}
        if not scorers or DECISION_SCORER in scorers:
            continue
        answers: dict[str, list[str]] = {}
        for query in store.queries(run_id, probe.id):
            # The answers it was scored on, as the queue shows them: not its replication.
            scored_on = query.model == target and query.sample_index < REPLICATION_SAMPLE_OFFSET
            if scored_on and query.text is not None:
                answers.setdefault(query.variant_key, []).append(query.text)
        variants = probe.grouped_variants(corpora)
        direction = answer_direction(
            embedder,
            variants,
            [answers.get(v.key, []) for v in variants],
            probe.attribute,
        )
        if direction is not None:
            directions.append((probe.id, direction))
    if not directions:
        return {}
    vectors = np.stack([vector for _, vector in directions])
    families = _greedy(vectors, ANSWER_FAMILY_SIMILARITY)
    return {probe_id: f for (probe_id, _), f in zip(directions, families, strict=True)}
