"""The ``compose`` operator and the reach it gives the search (``benchmarks/reach.py``).

``compose`` writes new questions from the corpora's parts (situations, entities, taxonomy
topics, closings); these tests check that its children are valid probes of the parent's
attribute, repeat under a seeded rng, end in a question the decision measurement reads
when they are decisions, and reach the simulator's stem-study region from seeds outside
it, which no other shipped operator can.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from pathlib import Path

import pytest
from test_benchmarks import load
from test_mutators import context, run

from mutators._framings import Compose as ComposeParts
from mutators._framings import load_framings
from mutators._persona import Tools
from mutators.compose import Compose
from probegen.corpora import Corpora, FormKind, load_corpora
from probegen.decision.form import decision_body
from probegen.models.simulator import SimulatorBackend
from probegen.mutation import MutationContext, load_mutators, validate_child
from probegen.probe import Probe, QuestionForm

STEM = "stem-study"


@pytest.fixture(scope="module")
def corpora() -> Corpora:
    return load_corpora()


def seeds_of(corpora: Corpora, attribute: str | None = None) -> list[Probe]:
    """The shipped seeds as probes, of ``attribute`` when given."""
    return [s.to_probe() for s in corpora.seeds if attribute in (None, s.attribute)]


def compose(parent: Probe, corpora: Corpora, seed: int) -> tuple[list[Probe], MutationContext]:
    ctx = context(corpora, parent.attribute, seed=seed)
    return run(Compose(), [parent], ctx), ctx


def children_of(seeds: list[Probe], corpora: Corpora, rounds: int) -> list[tuple[Probe, Probe]]:
    """(parent, child) for every seed, ``rounds`` rng seeds each."""
    pairs = []
    for round_ in range(rounds):
        for index, parent in enumerate(seeds):
            made, _ = compose(parent, corpora, seed=round_ * 1000 + index)
            pairs += [(parent, child) for child in made]
    return pairs


def test_compose_is_registered_as_a_text_operator() -> None:
    operators = load_mutators(helper_available=False, images_available=False)
    assert isinstance(operators["compose"], Compose)


def test_compose_children_are_valid_templates_of_the_parents_attribute(corpora: Corpora) -> None:
    seeds = seeds_of(corpora)
    failures = []
    produced = 0
    for index, parent in enumerate(seeds):
        made, ctx = compose(parent, corpora, seed=index)
        for child in made:
            produced += 1
            assert child.attribute == parent.attribute
            assert child.provenance.operator == "compose"
            reason = validate_child(child, [parent], ctx)
            if reason is not None:
                failures.append(f"{child.template}: {reason}")
    assert produced >= 0.9 * len(seeds)
    assert not failures, failures[:5]


def test_compose_is_deterministic_under_a_seeded_rng(corpora: Corpora) -> None:
    seeds = seeds_of(corpora)

    def templates() -> list[str]:
        return [c.template + "|" + c.id for _, c in children_of(seeds[::4], corpora, rounds=2)]

    first = templates()
    assert first
    assert templates() == first
    other = [c.template for _, c in children_of(seeds[::4], corpora, rounds=3)]
    assert len(set(other)) > len(set(first))  # other rng seeds compose other questions


def test_compose_writes_open_questions_and_decisions_the_measurement_reads(
    corpora: Corpora,
) -> None:
    pairs = children_of(seeds_of(corpora), corpora, rounds=3)
    forms = Counter(child.form for _, child in pairs)
    decisions = [child for _, child in pairs if child.form is QuestionForm.DECISION]
    assert len(decisions) >= 50
    assert sum(n for form, n in forms.items() if form is not QuestionForm.DECISION) >= 50
    unreadable = [c.template for c in decisions if decision_body(c.template) is None]
    assert not unreadable, unreadable[:3]
    first_person = [c for c in decisions if c.template.startswith("I'm")]
    assert first_person  # the asker's own plan, as well as decisions about someone


def test_compose_keeps_or_renews_the_persona(corpora: Corpora) -> None:
    tools = Tools(corpora, random.Random(0))

    def persona(probe: Probe) -> tuple[FormKind, tuple[str, ...], bool]:
        found = tools.persona(probe.template, probe.attribute)
        assert found is not None
        options = found.slot.options if found.kind is FormKind.NAME else ()
        return found.kind, options, found.first_person

    named = [s for s in seeds_of(corpora, "gender") if persona(s)[0] is FormKind.NAME]
    kept, renewed = Counter[bool](), Counter[tuple[FormKind, bool]]()
    for parent, child in children_of(named, corpora, rounds=4):
        same = persona(child) == persona(parent)
        kept[same] += 1
        if not same:
            kind, _, first_person = persona(child)
            renewed[kind, first_person] += 1
    # Mostly the parent's own names, told the parent's way; now and then a new persona:
    # other names or group words, about the asker or about someone they know.
    assert kept[True] > 2 * kept[False]
    assert {kind for kind, _ in renewed} == {FormKind.NAME, FormKind.SURFACE_FORM}
    assert {first for _, first in renewed} == {True, False}


def test_compose_reaches_stem_study_from_seeds_outside_it(corpora: Corpora) -> None:
    sim = SimulatorBackend()
    outside = [s for s in seeds_of(corpora, "gender") if sim.region_of(s.template) is None]
    assert len(outside) >= 10
    # Every step: one compose child of an outside seed; stem-study within 40 steps.
    steps_to_stem = None
    for step in range(40):
        parent = outside[step % len(outside)]
        made, ctx = compose(parent, corpora, seed=step)
        for child in made:
            region = sim.region_of(child.variants()[0].text)
            if region is not None and region.name == STEM:
                assert validate_child(child, [parent], ctx) is None
                steps_to_stem = step + 1
                break
        if steps_to_stem is not None:
            break
    assert steps_to_stem is not None, "compose never wrote a stem-study question"


def test_reach_benchmark_shows_stem_study_reachable_only_with_compose(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "reach.json"
    figures = load("reach").main(
        ["--quick", "--mutators", "all", "--mutators", "all,-compose", "--json", str(out)]
    )
    printed = capsys.readouterr().out
    assert "| operators | region |" in printed
    stored = json.loads(out.read_text(encoding="utf-8"))
    results = {r["mutators"]: r["summary"] for r in stored["results"]}
    assert set(results) == {"all", "all,-compose"}
    with_compose, without = results["all"][STEM], results["all,-compose"][STEM]
    # Every stem-study keyword is in text the operators can write, with compose only.
    assert len(with_compose["keywords_emittable"]) == with_compose["keywords"]
    assert len(without["keywords_emittable"]) < without["keywords"]
    assert without["runs_reached"] == 0
    assert figures["results"]


def test_framings_without_compose_parts_give_no_child(
    monkeypatch: pytest.MonkeyPatch, corpora: Corpora
) -> None:
    # A custom corpora directory's framings.yaml may have no compose section.
    bare = load_framings(corpora).model_copy(update={"compose": ComposeParts()})
    monkeypatch.setattr("mutators._persona.load_framings", lambda _: bare)
    made, _ = compose(seeds_of(corpora)[0], corpora, seed=0)
    assert made == []
