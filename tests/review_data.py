"""A run store holding scored elites with answers, as a finished evolve leaves it: the
input of the review queue, its web app and the release builder."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from probegen.models.base import ChatMessage, GenerateConfig, Response
from probegen.probe import Framing, MediaPart, Probe
from probegen.scoring.base import Score
from probegen.store import EliteRecord, Store

MODEL = "sim:test"


def default_answer(variant_text: str, sample: int) -> str:
    # Rich markup in an answer: the terminal queue must print it as text.
    return f"[bold]answer[/] {sample} to {variant_text}"


def populate_run(
    store: Store,
    templates: Sequence[str],
    fitness: Sequence[float],
    *,
    answer: Callable[[str, int], str] = default_answer,
    samples: int = 2,
    media: Sequence[MediaPart] = (),
    findings: bool = False,
    clusters: Sequence[int | None] | None = None,
    answer_families: Sequence[int | None] | None = None,
) -> str:
    """Add a run whose elites are ``templates`` (gender, implicit) with ``fitness``,
    ``samples`` answers per variant and a stats score each (and, with ``findings``,
    every elite above fitness 0 a finding; with ``clusters`` and ``answer_families``,
    each elite's question and answer family); returns the run id."""
    run_id = store.create_run("evolve", {})
    elites = []
    themes = clusters if clusters is not None else [None] * len(templates)
    behaviours = answer_families if answer_families is not None else [None] * len(templates)
    for template, value, cluster, behaviour in zip(
        templates, fitness, themes, behaviours, strict=True
    ):
        probe = Probe(
            template=template, attribute="gender", framing=Framing.IMPLICIT, media=tuple(media)
        )
        store.add_probe(run_id, probe)
        for variant in probe.variants():
            for sample in range(samples):
                key = f"{run_id}-{probe.id}-{variant.key}-{sample}"
                message = [ChatMessage(role="user", content=variant.text)]
                store.put_response(
                    key,
                    MODEL,
                    message,
                    GenerateConfig(),
                    sample,
                    Response(text=answer(variant.text, sample)),
                )
                store.record_query(
                    run_id, probe.id, MODEL, variant.key, variant.key, sample, response_key=key
                )
        score = Score(
            scorer="stats",
            bias=3,
            relevance=1,
            generality=1,
            refusal=0,
            fitness=value,
            reasoning={"overall": "differs"},
        )
        store.put_score(run_id, probe.id, MODEL, score)
        elites.append(
            EliteRecord(
                probe.id,
                MODEL,
                value,
                0.5,
                ("man|woman",),
                cluster=cluster,
                answer_family=behaviour,
                finding=findings and value > 0,
            )
        )
    store.replace_elites(run_id, MODEL, elites)
    return run_id


def populated_store(path: Path, templates: Sequence[str], fitness: Sequence[float]) -> Store:
    """A store in ``path`` with one populated run."""
    store = Store.in_run_dir(path)
    populate_run(store, templates, fitness)
    return store
