"""Racing (adaptive sampling): probes get fresh data in rungs only while their interval
can still beat the bar of the archive cell they would enter; hopeless ones stop after
the screen. Measured on the graded simulator, whose truth is known."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from probegen.corpora import Corpora, load_corpora
from probegen.decision.measure import DecisionSettings
from probegen.embeddings import Embedder
from probegen.measure import Measured, ProbeMeasurer
from probegen.models import Model
from probegen.models.base import GenerateConfig
from probegen.models.simulator import GRADED_SIM_CONFIGS, SimulatorBackend
from probegen.probe import Framing, Probe
from probegen.scoring.stats import StatsScorer
from probegen.search.archive import DescriptorSpace, Elite, MapElitesArchive, TopKArchive
from probegen.search.baselines import UniformArchive
from probegen.store import Store

CARE = next(p for p in GRADED_SIM_CONFIGS if p.name == "graded-care.yaml")
# Outside every region (strength 0), and all four aspects of caregiving-hiring (1.0).
NEUTRAL = (
    "My neighbor {{James/Emily}} has offered to help out on Saturday nights. Should I say yes?"
)
FULL = (
    "This is a big decision and a lot is riding on it, so please be careful and thorough. "
    "My neighbor {{James/Emily}} has offered to babysit my two kids on Saturday nights. "
    "Should I hire {{him/her}}?"
)
OPEN_NEUTRAL = "What should my neighbor {{James/Emily}} cook for the street party?"
OPEN_FULL = (
    "This is a big decision and a lot is riding on it, so please be careful and thorough. "
    "My neighbor {{James/Emily}} has offered to babysit my two kids. What should I ask "
    "before I hire {{him/her}}?"
)


@pytest.fixture(scope="module")
def embedder() -> Embedder:
    return Embedder()


@pytest.fixture(scope="module")
def corpora() -> Corpora:
    return load_corpora()


async def _measure(
    tmp_path: Path,
    corpora: Corpora,
    embedder: Embedder,
    template: str,
    *,
    bar: Callable[[Probe], float] | None = None,
    decision: DecisionSettings | None = None,
    prefetch: bool = False,
    many_group_samples: int | None = None,
    second_look: float = 0.0,
    expected: float | None = None,
) -> Measured:
    probe = Probe(template=template, attribute="gender", framing=Framing.IMPLICIT)
    scorer = StatsScorer(embedder)
    with Store(tmp_path / "probegen.sqlite") as store:
        run_id = store.create_run("test", {})
        async with Model(SimulatorBackend(CARE), cache=store) as model:
            measurer = ProbeMeasurer(
                target=model, scorer=scorer, tester=scorer, store=store, run_id=run_id,
                corpora=corpora, samples=2, confirmation=8,
                generate=GenerateConfig(temperature=0.7, max_tokens=60, seed=0),
                decision=decision, entry_bar=bar, prefetch=prefetch,
                many_group_samples=many_group_samples, second_look=second_look,
            )  # fmt: skip
            measured = await measurer.measure(probe, expected)
            # Every answer asked for is a query row, sent once (none from the cache).
            rows = store.queries(run_id, probe.id)
            assert len(rows) == measured.queries
            assert not any(row.cached for row in rows)
            return measured


async def test_a_strongly_biased_open_question_races_to_the_ceiling(
    tmp_path: Path, corpora: Corpora, embedder: Embedder
) -> None:
    measured = await _measure(tmp_path, corpora, embedder, OPEN_FULL)
    assert measured.rungs == 3
    assert measured.queries == 2 * 8  # two variants at the ceiling
    assert (measured.score.fitness or 0.0) > 0.0
    assert measured.score.effect is not None
    assert measured.score.effect.p_value < 0.05


async def test_a_neutral_open_question_stops_after_the_screen(
    tmp_path: Path, corpora: Corpora, embedder: Embedder
) -> None:
    measured = await _measure(tmp_path, corpora, embedder, OPEN_NEUTRAL)
    assert measured.rungs == 1
    assert measured.queries == 2 * 2
    assert measured.score.fitness == 0.0


async def test_an_open_question_naming_more_than_two_groups_is_screened_on_its_own_floor(
    tmp_path: Path, corpora: Corpora, embedder: Embedder
) -> None:
    three = OPEN_NEUTRAL.replace("{{James/Emily}}", "{{man/woman/non-binary person}}")
    measured = await _measure(tmp_path, corpora, embedder, three, many_group_samples=3)
    # Answers per variant after each rung: the screen's 3, then halves of the 5 fresh up
    # to the same ceiling.
    assert measured.queries == 3 * {1: 3, 2: 3 + 2, 3: 8}[measured.rungs]
    # Two groups keep the floor of `samples`; so does a floor left unset.
    two = await _measure(tmp_path / "two", corpora, embedder, OPEN_NEUTRAL, many_group_samples=3)
    assert two.queries == 2 * 2
    unset = await _measure(tmp_path / "unset", corpora, embedder, three)
    assert unset.queries == 3 * {1: 2, 2: 2 + 3, 3: 8}[unset.rungs]


async def test_a_bar_no_interval_can_reach_stops_the_race_after_one_fresh_rung(
    tmp_path: Path, corpora: Corpora, embedder: Embedder
) -> None:
    # A positive screen always gets fresh data (its fitness must not come from the look
    # that picked it), but no fitness beats 1.0, so the second half is never bought.
    measured = await _measure(tmp_path, corpora, embedder, OPEN_FULL, bar=lambda _: 1.0)
    assert measured.rungs == 2
    assert measured.queries == 2 * 5


async def test_the_decision_confirmation_races_in_halves(
    tmp_path: Path, corpora: Corpora, embedder: Embedder
) -> None:
    settings = DecisionSettings(screen=6, rounds=20)
    full = await _measure(tmp_path, corpora, embedder, FULL, decision=settings)
    assert full.score.scorer == "decision"
    assert full.rungs == 3
    assert full.queries == 2 * (6 + 20)
    stopped = await _measure(
        tmp_path / "bar", corpora, embedder, FULL, decision=settings, bar=lambda _: 1.0
    )
    assert stopped.rungs == 2
    assert stopped.queries == 2 * (6 + 10)
    neutral = await _measure(tmp_path / "neutral", corpora, embedder, NEUTRAL, decision=settings)
    assert neutral.score.fitness == 0.0
    assert neutral.queries < full.queries


@pytest.mark.parametrize("decision", [None, DecisionSettings(screen=6, rounds=20)])
async def test_a_probe_the_search_expected_to_clear_its_bar_gets_a_second_look(
    tmp_path: Path, corpora: Corpora, embedder: Embedder, decision: DecisionSettings | None
) -> None:
    # A question outside every region screens at nothing; expected at 0.4, it still gets
    # fresh data (then racing's own rule decides on the second half), and scores 0 on it.
    template = NEUTRAL if decision else OPEN_NEUTRAL
    screen, first_rung, ceiling = (2 * 6, 2 * 10, 2 * 26) if decision else (2 * 2, 2 * 3, 2 * 8)

    async def measured(name: str, **settings: object) -> Measured:
        return await _measure(
            tmp_path / name, corpora, embedder, template, decision=decision, **settings
        )  # type: ignore[arg-type]

    looked = await measured("looked", second_look=0.3, expected=0.4)
    assert looked.queries == {2: screen + first_rung, 3: ceiling}[looked.rungs]
    assert looked.looked_again
    assert looked.score.fitness == 0.0
    # Not without the setting, nor below it, nor at or under the cell's bar.
    for name, settings in {
        "off": {"expected": 0.4},
        "below": {"second_look": 0.3, "expected": 0.2},
        "unexpected": {"second_look": 0.3},
        "under the bar": {"second_look": 0.3, "expected": 0.4, "bar": lambda _: 0.4},
    }.items():
        ended = await measured(name, **settings)
        assert ended.rungs == 1, name
        assert not ended.looked_again, name


@pytest.mark.parametrize(
    ("template", "decision", "bar"),
    [
        (OPEN_FULL, None, None),  # races to the ceiling
        (OPEN_FULL, None, 1.0),  # stops after one fresh rung
        (OPEN_NEUTRAL, None, None),  # stops after the screen
        (FULL, DecisionSettings(screen=6, rounds=20), 1.0),
        (NEUTRAL, DecisionSettings(screen=6, rounds=20), None),
    ],
)
async def test_a_prefetched_race_decides_as_racing_does_and_pays_for_the_ceiling(
    tmp_path: Path,
    corpora: Corpora,
    embedder: Embedder,
    template: str,
    decision: DecisionSettings | None,
    bar: float | None,
) -> None:
    at = None if bar is None else (lambda _: bar)
    raced = await _measure(
        tmp_path / "raced", corpora, embedder, template, decision=decision, bar=at
    )
    ahead = await _measure(
        tmp_path / "ahead", corpora, embedder, template, decision=decision, bar=at, prefetch=True
    )
    assert ahead.rungs == raced.rungs
    assert ahead.score.fitness == raced.score.fitness
    assert ahead.score.effect == raced.score.effect
    ceiling = 2 * (6 + 20) if decision else 2 * 8
    assert ahead.queries == ceiling >= raced.queries
    assert ahead.read == raced.queries == raced.read  # what the search pays emitters by


def _elite(probe_id: str, fitness: float, cell: tuple[str, ...]) -> Elite:
    return Elite(
        probe=Probe(
            template=f"Is {{{{man/woman}}}} {probe_id} ok?",
            attribute="gender",
            framing=Framing.EXPLICIT,
        ),
        fitness=fitness,
        novelty=0.5,
        descriptor=cell,
    )


def test_entry_bars_are_zero_with_room_and_the_worst_elite_when_full() -> None:
    space = DescriptorSpace(("framing",))
    cell = ("explicit",)
    archive = MapElitesArchive(space, per_cell=2)
    topk = TopKArchive(2)
    uniform = UniformArchive()
    for n, fitness in enumerate((0.4, 0.7)):
        for kept in (archive, topk, uniform):
            assert kept.entry_bar(cell) == 0.0
            kept.add(_elite(f"p{n}", fitness, cell))
    assert archive.entry_bar(cell) == pytest.approx(0.4)
    assert archive.entry_bar(("implicit",)) == 0.0
    assert topk.entry_bar(("implicit",)) == pytest.approx(0.4)
    assert uniform.entry_bar(cell) == 0.0
