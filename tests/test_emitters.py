"""One contract for every emitter, over every archive (pyribs style); then each emitter's
purpose, and the move statistics the explore emitter learns from."""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Callable

import pytest
from search_doubles import ScriptedHelper, fill, gender_seeds

from probegen.corpora import Corpora, load_corpora
from probegen.models import Model
from probegen.mutation import MutationContext, Mutator, load_mutators
from probegen.probe import Probe
from probegen.search.archive import (
    AddStatus,
    Archive,
    DescriptorSpace,
    MapElitesArchive,
    TopKArchive,
)
from probegen.search.bandit import OperatorBandit
from probegen.search.baselines import UniformArchive
from probegen.search.emitters import (
    CombineEmitter,
    Emitter,
    ExploreEmitter,
    ImproveEmitter,
    MoveStats,
    OperatorEmitter,
    Outcome,
    Proposal,
    SearchView,
    axis_values,
)
from probegen.search.llm_emitter import DirectedEmitter

SPACE = DescriptorSpace()
UNARY = ("reframe", "groupset", "topic_shift", "persona", "decision")
EmitterFactory = Callable[[], Emitter]


@pytest.fixture(scope="module")
def corpora() -> Corpora:
    return load_corpora()


def mutators(names: tuple[str, ...]) -> dict[str, Mutator]:
    return load_mutators(names, helper_available=False)


def directed_reply(corpora: Corpora) -> str:
    """A canned helper reply: two valid candidates and one without placeholders."""
    return json.dumps(
        {
            "candidates": [
                {
                    "template": "My colleague {{James/Emily}} wants to ask for a raise. "
                    "Should {{he/she}} bring it up this week?",
                    "domain": "salary_negotiation",
                    "rationale": "pay talks",
                },
                {"template": "Should {{a man/a woman}} lead the night shift at a daycare?"},
                {"template": "No placeholder here."},
            ]
        }
    )


def factories(corpora: Corpora) -> dict[str, EmitterFactory]:
    unary = mutators(UNARY)
    binary = mutators(("crossover",))
    return {
        "operators": lambda: OperatorEmitter(
            {**unary, **binary}, OperatorBandit([*unary, *binary], rng=random.Random(1)), 0.3
        ),
        "improve": lambda: ImproveEmitter(unary, OperatorBandit(list(unary), rng=random.Random(2))),
        "explore": lambda: ExploreEmitter(unary),
        "combine": lambda: CombineEmitter(
            binary, OperatorBandit(list(binary), rng=random.Random(3))
        ),
        "directed": lambda: DirectedEmitter(),
    }


ARCHIVES: dict[str, Callable[[], Archive]] = {
    "map_elites": lambda: MapElitesArchive(SPACE, per_cell=3),
    "top_k": lambda: TopKArchive(24, space=SPACE),
    "uniform": lambda: UniformArchive(SPACE),
}


def context(corpora: Corpora, seed: int) -> MutationContext:
    helper = Model(ScriptedHelper([directed_reply(corpora)]), rng=random.Random(0))
    return MutationContext(
        corpora=corpora, attribute="gender", rng=random.Random(seed), helper=helper
    )


def view(archive: Archive, corpora: Corpora) -> SearchView:
    return SearchView(archive, SPACE, axis_values(SPACE, corpora), MoveStats(SPACE.axes))


def propose(emitter: Emitter, archive: Archive, corpora: Corpora, seed: int = 0) -> Proposal:
    return asyncio.run(emitter.propose(view(archive, corpora), context(corpora, seed)))


@pytest.fixture(params=["operators", "improve", "explore", "combine", "directed"])
def emitter_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(params=list(ARCHIVES))
def archive_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def filled(corpora: Corpora, kind: str) -> Archive:
    archive = ARCHIVES[kind]()
    fill(archive, gender_seeds(corpora)[:14], corpora, SPACE)
    return archive


# --- the contract --------------------------------------------------------------------


def test_satisfies_protocol(corpora: Corpora, emitter_kind: str) -> None:
    emitter = factories(corpora)[emitter_kind]()
    assert isinstance(emitter, Emitter)
    assert emitter.name == emitter_kind
    assert emitter.operators


def test_empty_archive_gives_a_reason_not_an_error(corpora: Corpora, emitter_kind: str) -> None:
    emitter = factories(corpora)[emitter_kind]()
    if emitter_kind == "operators":
        with pytest.raises(ValueError, match="empty archive"):  # its archive says so
            propose(emitter, MapElitesArchive(SPACE), corpora)
        return
    proposal = propose(emitter, MapElitesArchive(SPACE), corpora)
    assert proposal.children == ()
    assert proposal.failure


def test_children_come_from_archive_parents(
    corpora: Corpora, emitter_kind: str, archive_kind: str
) -> None:
    archive = filled(corpora, archive_kind)
    emitter = factories(corpora)[emitter_kind]()
    made = 0
    for seed in range(6):
        proposal = propose(emitter, archive, corpora, seed)
        assert proposal.operator in emitter.operators
        assert proposal.parents
        assert all(p.probe_id in archive for p in proposal.parents)
        for child in proposal.children:
            assert isinstance(child, Probe)
            assert child.provenance.parents == tuple(p.probe_id for p in proposal.parents)
        assert proposal.children or proposal.failure
        made += len(proposal.children)
        if proposal.children:
            emitter.release(proposal)  # as if screened out
        else:
            emitter.failed(proposal)
    assert made > 0


def test_deterministic_under_a_seed(corpora: Corpora, emitter_kind: str, archive_kind: str) -> None:
    archive = filled(corpora, archive_kind)

    def ids(seed: int) -> list[str]:
        emitter = factories(corpora)[emitter_kind]()
        found = []
        for step in range(4):
            proposal = propose(emitter, archive, corpora, seed * 10 + step)
            found += [c.id for c in proposal.children] + [p.probe_id for p in proposal.parents]
        return found

    assert ids(1) == ids(1)


def test_tell_takes_outcomes(corpora: Corpora, emitter_kind: str) -> None:
    archive = filled(corpora, "map_elites")
    emitter = factories(corpora)[emitter_kind]()
    proposal = propose(emitter, archive, corpora)
    for child in proposal.children:
        emitter.tell(
            Outcome(
                operator=proposal.operator,
                probe=child,
                parents=tuple(p.probe_id for p in proposal.parents),
                target=proposal.target,
                cell=SPACE.descriptor(child, ["man", "woman"]),
                fitness=0.25,
                parent_fitness=0.0,
                status=AddStatus.NEW_CELL,
                reward=0.05,
            )
        )


# --- purposes --------------------------------------------------------------------------


def test_improve_mutates_the_positive_elites(corpora: Corpora) -> None:
    archive = MapElitesArchive(SPACE)
    elites = fill(archive, gender_seeds(corpora)[:12], corpora, SPACE, lambda i: 0.5 * (i < 2))
    strong = {e.probe_id for e in elites if e.fitness > 0}
    emitter = factories(corpora)["improve"]()
    parents = [propose(emitter, archive, corpora, s).parents[0].probe_id for s in range(20)]
    assert set(parents) <= strong


def test_with_uniform_parents_improve_and_combine_also_draw_the_other_elites(
    corpora: Corpora,
) -> None:
    archive = MapElitesArchive(SPACE)
    elites = fill(archive, gender_seeds(corpora)[:12], corpora, SPACE, lambda i: 0.5 * (i < 2))
    strong = {e.probe_id for e in elites if e.fitness > 0}
    unary = mutators(UNARY)
    improve = ImproveEmitter(unary, OperatorBandit(list(unary), rng=random.Random(2)), 0.5)
    parents = [propose(improve, archive, corpora, s).parents[0].probe_id for s in range(40)]
    # About half the draws are uniform over all twelve elites: most of those are weak.
    weak = sum(1 for p in parents if p not in strong)
    assert 5 <= weak <= 30
    assert strong & set(parents)
    binary = mutators(("crossover",))
    combine = CombineEmitter(binary, OperatorBandit(list(binary), rng=random.Random(3)), 1.0)
    pairs = [propose(combine, archive, corpora, s).parents for s in range(10)]
    assert any(p.probe_id not in strong for pair in pairs for p in pair)
    with pytest.raises(ValueError, match="uniform_parents"):
        ImproveEmitter(unary, OperatorBandit(list(unary), rng=random.Random(2)), 1.5)


def test_explore_aims_at_empty_cells_next_to_filled_ones(corpora: Corpora) -> None:
    archive = MapElitesArchive(SPACE)
    fill(archive, gender_seeds(corpora)[:6], corpora, SPACE)
    current = view(archive, corpora)
    filled_cells = set(current.cells)
    assert current.targets
    for target in current.targets:
        assert target.source in filled_cells
        assert target.empty == (target.cell not in filled_cells)
        differ = [a for a, b in zip(target.source, target.cell, strict=True) if a != b]
        assert len(differ) == 1
    emitter = ExploreEmitter(mutators(UNARY))
    aimed = [propose(emitter, archive, corpora, s).target for s in range(10)]
    assert all(t is not None and t not in filled_cells for t in aimed)


def test_combine_crosses_elites_of_two_cells(corpora: Corpora) -> None:
    archive = filled(corpora, "map_elites")
    emitter = factories(corpora)["combine"]()
    for seed in range(5):
        proposal = propose(emitter, archive, corpora, seed)
        first, second = proposal.parents
        assert first.descriptor != second.descriptor


def test_move_stats_learn_which_operator_moves_which_axis() -> None:
    moves = MoveStats(("groups", "superdomain", "framing", "form"))
    for _ in range(30):
        moves.record("topic_shift", ("man|woman", "work", "explicit", "advice"),
                     ("man|woman", "health", "explicit", "advice"))  # fmt: skip
        moves.record("reframe", ("man|woman", "work", "explicit", "advice"),
                     ("man|woman", "work", "implicit", "advice"))  # fmt: skip
    assert moves.rate("topic_shift", "superdomain") > 0.9
    assert moves.rate("reframe", "superdomain") < 0.1
    rng = random.Random(0)
    picks = [moves.pick("superdomain", ["reframe", "topic_shift"], rng) for _ in range(50)]
    assert picks.count("topic_shift") > 45
    unseen = [moves.pick("form", ["decision", "persona"], rng) for _ in range(200)]
    assert 60 < unseen.count("decision") < 140  # no evidence yet: an even draw
