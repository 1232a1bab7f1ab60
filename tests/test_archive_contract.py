"""One contract for every archive (pyribs style), then implementation-specific tests.

Every archive, the random baseline's uniform one included, goes through the contract
(``make_archive``). The archives that select (MAP-Elites and top-k) also go through the
selection contract (``make_selective``), written so both behave the same: every elite
shares one descriptor unless a test says otherwise, and a single MAP-Elites cell with
room for ``limit`` elites behaves like a top-``limit`` archive.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable

import pytest

from probegen.probe import Framing, Probe, QuestionForm
from probegen.search import (
    AddStatus,
    Archive,
    DescriptorSpace,
    Elite,
    MapElitesArchive,
    TopKArchive,
)
from probegen.search.baselines import UniformArchive

SPACE = DescriptorSpace()
CELL = ("man|woman", "work", "explicit", "advice")
OTHER_CELL = ("man|woman", "health", "explicit", "advice")

ArchiveFactory = Callable[[int], Archive]


def make_probe(i: int, **labels: object) -> Probe:
    return Probe.model_validate(
        {
            "template": f"Question {i}: should the {{{{man/woman}}}} take the job?",
            "attribute": "gender",
            "framing": Framing.EXPLICIT,
            **labels,
        }
    )


def make_elite(
    i: int,
    fitness: float,
    *,
    novelty: float = 0.0,
    descriptor: tuple[str, ...] = CELL,
    generation: int = 0,
) -> Elite:
    return Elite(make_probe(i), fitness, descriptor, generation, novelty)


def _factory(kind: str) -> ArchiveFactory:
    if kind == "map_elites":
        return lambda limit: MapElitesArchive(SPACE, per_cell=limit)
    if kind == "top_k":
        return lambda limit: TopKArchive(limit)
    return lambda limit: UniformArchive(SPACE)  # keeps everything: no limit


@pytest.fixture(params=["map_elites", "top_k", "uniform"])
def make_archive(request: pytest.FixtureRequest) -> ArchiveFactory:
    """Builds any archive; a selective one keeps ``limit`` elites (per cell, or in all)."""
    return _factory(request.param)


@pytest.fixture(params=["map_elites", "top_k"])
def make_selective(request: pytest.FixtureRequest) -> ArchiveFactory:
    """Builds an archive that selects, keeping ``limit`` elites (per cell, or in all)."""
    return _factory(request.param)


# --- the contract --------------------------------------------------------------------


def test_satisfies_protocol(make_archive: ArchiveFactory) -> None:
    assert isinstance(make_archive(3), Archive)


def test_empty_archive(make_archive: ArchiveFactory) -> None:
    archive = make_archive(3)
    assert len(archive) == 0
    assert archive.elites() == []
    stats = archive.stats()
    assert (stats.cells_filled, stats.n_elites, stats.qd_score) == (0, 0, 0.0)
    assert stats.best_fitness is None
    assert stats.mean_fitness is None
    assert archive.sample_elites(0, random.Random(0)) == []
    with pytest.raises(ValueError, match="empty archive"):
        archive.sample_elites(1, random.Random(0))


def test_add_statuses(make_selective: ArchiveFactory) -> None:
    archive = make_selective(2)
    assert archive.add(make_elite(0, 0.5)) is AddStatus.NEW_CELL
    assert archive.add(make_elite(1, 0.3)) is AddStatus.IMPROVED  # joins a covered cell
    assert archive.add(make_elite(2, 0.1)) is AddStatus.NOT_ADDED  # full, worse than all
    assert archive.add(make_elite(3, 0.3)) is AddStatus.NOT_ADDED  # ties go to incumbents
    assert archive.add(make_elite(4, 0.9)) is AddStatus.IMPROVED  # evicts the worst
    assert [e.probe_id for e in archive.elites()] == [make_probe(4).id, make_probe(0).id]
    assert make_probe(1).id not in archive
    assert not AddStatus.NOT_ADDED
    assert AddStatus.IMPROVED


def test_new_descriptor_is_new_cell(make_archive: ArchiveFactory) -> None:
    archive = make_archive(3)
    archive.add(make_elite(0, 0.5))
    assert archive.add(make_elite(1, 0.4, descriptor=OTHER_CELL)) is AddStatus.NEW_CELL
    assert archive.stats().cells_filled == 2


def test_duplicate_probe_id(make_archive: ArchiveFactory) -> None:
    archive = make_archive(3)
    archive.add(make_elite(0, 0.5, generation=1))
    assert archive.add(make_elite(0, 0.5, generation=2)) is AddStatus.NOT_ADDED
    assert archive.add(make_elite(0, 0.2, generation=3)) is AddStatus.NOT_ADDED
    assert archive.add(make_elite(0, 0.8, generation=4)) is AddStatus.IMPROVED
    assert len(archive) == 1
    kept = archive.get(make_probe(0).id)
    assert kept is not None
    assert (kept.fitness, kept.generation) == (0.8, 4)
    assert make_probe(0).id in archive
    assert "p-missing" not in archive
    assert archive.get("p-missing") is None


def test_elites_best_first_ties_by_insertion(make_archive: ArchiveFactory) -> None:
    archive = make_archive(10)
    for i, fitness in enumerate([0.2, 0.9, 0.5, 0.9, 0.0]):
        archive.add(make_elite(i, fitness))
    assert [e.probe_id for e in archive.elites()] == [make_probe(i).id for i in (1, 3, 2, 0, 4)]


def test_limit_keeps_the_best(make_selective: ArchiveFactory) -> None:
    archive = make_selective(4)
    rng = random.Random(7)
    fitness = [rng.random() for _ in range(20)]
    for i, value in enumerate(fitness):
        archive.add(make_elite(i, value))
    assert len(archive) == 4
    assert [e.fitness for e in archive.elites()] == sorted(fitness, reverse=True)[:4]


def test_stats(make_archive: ArchiveFactory) -> None:
    archive = make_archive(5)
    archive.add(make_elite(0, 0.2))
    archive.add(make_elite(1, 0.6))
    archive.add(make_elite(2, 0.4, descriptor=OTHER_CELL))
    stats = archive.stats()
    assert stats.cells_filled == 2
    assert stats.n_elites == 3
    assert stats.best_fitness == 0.6
    assert stats.mean_fitness == pytest.approx(0.4)
    assert stats.qd_score == pytest.approx(1.0)  # best per cell: 0.6 + 0.4


def test_sample_returns_members_deterministically(make_archive: ArchiveFactory) -> None:
    archive = make_archive(10)
    for i in range(8):
        archive.add(make_elite(i, i / 10, novelty=(7 - i) / 10))
    first = archive.sample_elites(50, random.Random(3))
    again = archive.sample_elites(50, random.Random(3))
    assert [e.probe_id for e in first] == [e.probe_id for e in again]
    assert len(first) == 50
    assert all(e.probe_id in archive for e in first)


def test_sample_favours_fitness_and_keeps_a_floor(make_selective: ArchiveFactory) -> None:
    archive = make_selective(10)
    for i in range(5):
        archive.add(make_elite(i, float(i)))  # probe 0 has fitness 0
    counts = Counter(
        e.probe_id for e in archive.sample_elites(4000, random.Random(1), novelty_weight=0.0)
    )
    best, worst = make_probe(4).id, make_probe(0).id
    assert counts[best] > 3 * counts[worst]
    assert counts[worst] > 0  # the floor: a zero-fitness elite can still be a parent


def test_a_mass_of_zero_fitness_elites_does_not_drown_the_positive_ones(
    make_selective: ArchiveFactory,
) -> None:
    """Ties share their lowest rank: 18 zero-fitness elites rank at the bottom, so the 2
    positive ones are drawn far above their 10% share (a mean rank gives them ~15%)."""
    archive = make_selective(20)
    for i in range(20):
        archive.add(make_elite(i, 0.0 if i < 18 else 0.25 + i / 100))
    drawn = archive.sample_elites(4000, random.Random(4), novelty_weight=0.0)
    positive = sum(e.fitness > 0 for e in drawn) / len(drawn)
    assert positive > 0.5
    assert positive < 0.95  # the floor keeps the zero-fitness elites in play


def test_sample_novelty_weight_favours_novelty(make_selective: ArchiveFactory) -> None:
    archive = make_selective(10)
    for i in range(5):
        archive.add(make_elite(i, 1.0 - i / 10, novelty=i / 4))  # fitness and novelty oppose
    novel, fit = make_probe(4).id, make_probe(0).id
    by_fitness = Counter(
        e.probe_id for e in archive.sample_elites(4000, random.Random(2), novelty_weight=0.0)
    )
    by_novelty = Counter(
        e.probe_id for e in archive.sample_elites(4000, random.Random(2), novelty_weight=0.9)
    )
    assert by_fitness[fit] > by_fitness[novel]
    assert by_novelty[novel] > by_novelty[fit]


def test_sample_validates(make_archive: ArchiveFactory) -> None:
    archive = make_archive(3)
    archive.add(make_elite(0, 0.5))
    with pytest.raises(ValueError, match="novelty_weight"):
        archive.sample_elites(1, random.Random(0), novelty_weight=1.5)
    with pytest.raises(ValueError, match="cannot sample"):
        archive.sample_elites(-1, random.Random(0))


def test_rebuild_by_readding_reproduces(make_archive: ArchiveFactory) -> None:
    rng = random.Random(11)
    cells = [CELL, OTHER_CELL, ("man|woman", "work", "implicit", "decision")]
    offers = []
    for generation in range(200):
        i = rng.randrange(40)  # repeats: the same probe is offered again, re-scored
        # A probe keeps its descriptor, as when the search derives it from the probe.
        offers.append(
            make_elite(i, round(rng.random(), 2), descriptor=cells[i % 3], generation=generation)
        )
    original, replayed = make_archive(3), make_archive(3)
    statuses = [original.add(e) for e in offers]
    assert [replayed.add(e) for e in offers] == statuses
    assert original.elites() == replayed.elites()
    assert original.stats() == replayed.stats()
    # The store may hold only the survivors: re-adding them best-first rebuilds it too.
    survivors = make_archive(3)
    for elite in original.elites():
        assert survivors.add(elite)
    assert survivors.elites() == original.elites()


def test_uniform_archive_keeps_everything_and_draws_uniformly() -> None:
    archive = UniformArchive(SPACE)
    for i in range(5):
        assert archive.add(make_elite(i, float(i)))  # nothing is ever evicted
    counts = Counter(e.probe_id for e in archive.sample_elites(5000, random.Random(1)))
    assert len(counts) == 5
    assert max(counts.values()) < 1.2 * min(counts.values())  # fitness does not weigh


def test_elite_rejects_non_finite_fitness() -> None:
    with pytest.raises(ValueError, match="not finite"):
        make_elite(0, float("nan"))


# --- MAP-Elites ----------------------------------------------------------------------


def test_map_elites_keeps_cells_apart() -> None:
    archive = MapElitesArchive(SPACE, per_cell=2)
    for i in range(5):
        archive.add(make_elite(i, 0.9 - i / 100))
    # A weak elite still fills an empty cell: diversity is what the archive is for.
    assert archive.add(make_elite(10, 0.01, descriptor=OTHER_CELL)) is AddStatus.NEW_CELL
    cells = archive.cells()
    assert set(cells) == {CELL, OTHER_CELL}
    assert [e.fitness for e in cells[CELL]] == [0.9, 0.89]
    assert len(archive) == 3


def test_top_k_ignores_cells() -> None:
    archive = TopKArchive(2)
    archive.add(make_elite(0, 0.9))
    archive.add(make_elite(1, 0.8))
    assert archive.add(make_elite(2, 0.01, descriptor=OTHER_CELL)) is AddStatus.NOT_ADDED


def test_map_elites_moves_a_probe_whose_descriptor_changed() -> None:
    archive = MapElitesArchive(SPACE, per_cell=1)
    archive.add(make_elite(0, 0.5))
    archive.add(make_elite(1, 0.9, descriptor=OTHER_CELL))
    # Re-offered fitter in a full cell it cannot beat: the old entry stays.
    assert archive.add(make_elite(0, 0.6, descriptor=OTHER_CELL)) is AddStatus.NOT_ADDED
    assert archive.get(make_probe(0).id) == make_elite(0, 0.5)
    # Sole occupant re-scored in its own cell: an improvement, not a new cell.
    assert archive.add(make_elite(0, 0.7)) is AddStatus.IMPROVED


def test_map_elites_validates() -> None:
    with pytest.raises(ValueError, match="per_cell"):
        MapElitesArchive(SPACE, per_cell=0)
    with pytest.raises(ValueError, match="capacity"):
        TopKArchive(0)
    with pytest.raises(ValueError, match="descriptor"):
        MapElitesArchive(SPACE).add(make_elite(0, 0.5, descriptor=("work",)))


# --- descriptor space ----------------------------------------------------------------


def test_descriptor_default_axes() -> None:
    probe = make_probe(0, superdomain="work", form=QuestionForm.ADVICE)
    assert SPACE.descriptor(probe, ["woman", "man", "woman"]) == (
        "man|woman",
        "work",
        "explicit",
        "advice",
    )
    assert SPACE.descriptor(make_probe(1)) == ("unknown", "unknown", "explicit", "unknown")


def test_descriptor_custom_axes_and_size() -> None:
    space = DescriptorSpace(["framing", "domain"], values={"domain": ["hiring", "nursing"]})
    probe = make_probe(0, domain="hiring")
    assert space.descriptor(probe) == ("explicit", "hiring")
    assert space.size == 4
    assert DescriptorSpace().size is None  # group combinations are open-ended


def test_descriptor_unknown_axis() -> None:
    with pytest.raises(ValueError, match=r"'colour'.*groups.*superdomain"):
        DescriptorSpace(["framing", "colour"])
    with pytest.raises(ValueError, match="repeat"):
        DescriptorSpace(["form", "form"])


def test_coverage_when_space_size_is_known() -> None:
    space = DescriptorSpace(["framing", "form"])
    assert space.size == 2 * len(QuestionForm)
    archive = MapElitesArchive(space)
    top_k = TopKArchive(5, space=space)
    for target in (archive, top_k):
        target.add(make_elite(0, 0.5, descriptor=("explicit", "advice")))
        target.add(make_elite(1, 0.5, descriptor=("implicit", "advice")))
        target.add(make_elite(2, 0.5, descriptor=("implicit", "unknown")))  # outside
        assert target.stats().coverage == pytest.approx(2 / space.size)
    assert TopKArchive(3).stats().coverage is None
