"""The scheduler: ask/tell bookkeeping, emitters paid per query, the surrogate's pool."""

from __future__ import annotations

import asyncio
import dataclasses
import random
from collections.abc import Callable
from typing import cast

import pytest
from search_doubles import HashEmbedder, gender_seeds, groups_of, keyword_fitness, told

from probegen.corpora import Corpora, load_corpora
from probegen.decision.form import decision_body
from probegen.embeddings import Embedder
from probegen.index import EmbeddingIndex
from probegen.mutation import MutationContext, load_mutators
from probegen.probe import Framing, Probe
from probegen.search.archive import DescriptorSpace, MapElitesArchive
from probegen.search.bandit import OperatorBandit
from probegen.search.baselines import selection_parts
from probegen.search.emitters import DEFAULT_EMITTERS, build_emitters
from probegen.search.scheduler import Candidate, Evaluated, Reward, Scheduler
from probegen.search.surrogate import FitnessSurrogate
from probegen.search.words import content_words

OPERATORS = ("reframe", "groupset", "topic_shift", "persona", "decision", "crossover")


@pytest.fixture(scope="module")
def corpora() -> Corpora:
    return load_corpora()


def scheduler(
    corpora: Corpora,
    *,
    seed: int = 0,
    emitters: tuple[str, ...] | None = DEFAULT_EMITTERS,
    surrogate: bool = False,
    pool_factor: int = 1,
    selection: str = "map-elites",
    measured_as: Callable[[Probe], str | None] | None = None,
    reward: Reward = "gain",
) -> Scheduler:
    space = DescriptorSpace()
    mutators = load_mutators(OPERATORS, helper_available=False)
    parts = selection_parts(
        selection,  # type: ignore[arg-type]
        space,
        list(mutators),
        seed=seed,
        per_cell=3,
        population=8,
        novelty_weight=0.3,
    )
    built = (
        build_emitters(emitters, mutators, bandit=parts.bandit, seed=seed, novelty_weight=0.3)
        if emitters
        else None
    )
    return Scheduler(
        parts.archive,
        space,
        EmbeddingIndex(cast(Embedder, HashEmbedder()), threshold=0.98),
        parts.bandit,
        mutators,
        MutationContext(corpora=corpora, attribute="gender", rng=random.Random(seed)),
        emitters=built,
        emitter_bandit=(
            OperatorBandit([e.name for e in built], rng=random.Random(seed + 101))
            if built
            else None
        ),
        surrogate=FitnessSurrogate() if surrogate else None,
        pool_factor=pool_factor,
        cost=lambda probe: 4 * len(probe.variants()),
        measured_as=measured_as,
        reward=reward,
    )


def seeded(s: Scheduler, corpora: Corpora, n: int = 12) -> list[Candidate]:
    """Seed ``s`` with ``n`` gender seeds and tell them (every third scores 0.5)."""
    seeds = s.seed(gender_seeds(corpora)[:n])
    fitness = {c.probe.id: 0.5 if i % 3 == 0 else 0.0 for i, c in enumerate(seeds)}
    s.tell(told(seeds, corpora, lambda p: fitness[p.id]))
    return seeds


def test_tell_refuses_what_ask_did_not_propose(corpora: Corpora) -> None:
    s = scheduler(corpora)
    seeds = s.seed(gender_seeds(corpora)[:4])
    results = told(seeds, corpora, lambda p: 0.0)
    stranger = Candidate(gender_seeds(corpora)[5], "reframe", 0.0, "improve")
    foreign = Evaluated(stranger, results[0].score, groups_of(stranger.probe, corpora))
    with pytest.raises(ValueError, match="not proposed by ask"):
        s.tell([*results, foreign])
    assert len(s.archive) == 0  # a refused tell changes nothing
    s.tell(results)
    assert len(s.archive) == 4
    with pytest.raises(ValueError, match="told already"):
        s.tell(results[:1])  # told twice
    asked = asyncio.run(s.ask(2, 1))
    twice = told(asked[:1], corpora, lambda p: 0.0)
    with pytest.raises(ValueError, match="once"):
        s.tell([*twice, *twice])  # the same result twice in one tell
    s.tell(twice)


def test_tell_pays_emitters_per_query(corpora: Corpora) -> None:
    s = scheduler(corpora)
    seeded(s, corpora)
    asked = asyncio.run(s.ask(8, 1))
    assert asked
    cheap = told(asked, corpora, lambda p: 0.0, queries=10)
    s.tell(cheap)
    stats = s.emitter_stats
    for name in {c.emitter for c in asked}:
        spent = sum(r.queries for r in cheap if r.candidate.emitter == name)
        assert stats[name].queries == spent
        # A child scoring 0 gains the archive nothing, wherever it lands.
        assert s.emitter_bandit.stats()[name]["mean_reward"] == 0.0
    assert sum(st.evaluated for n, st in stats.items() if n != "seed") == len(asked)


def rewards_paid(s: Scheduler, results: list[Evaluated]) -> tuple[list[float], list[str]]:
    """What ``s.tell(results)`` paid the emitter bandit per child, and each child's status."""
    outcomes: list[float] = []
    original = s.emitter_bandit.update

    def record(name: str, reward: float) -> None:
        outcomes.append(reward)
        original(name, reward)

    s.emitter_bandit.update = record  # type: ignore[method-assign]
    statuses = s.tell(results)
    return outcomes, [st.name for st in statuses]


def test_gain_pays_what_the_archive_gained_and_bonus_pays_any_new_cell(
    corpora: Corpora,
) -> None:
    """A question copied into an empty cell at fitness 0 earns nothing by default; the
    old bonus rule paid it 0.5, as much as a child that doubled its parent's fitness."""
    paid: dict[str, list[float]] = {}
    for rule in ("gain", "bonus"):
        s = scheduler(corpora, reward=rule)  # type: ignore[arg-type]
        seeded(s, corpora)
        asked = asyncio.run(s.ask(6, 1))
        fitness = {c.probe.id: 0.0 if i % 2 else 0.4 for i, c in enumerate(asked)}
        results = told(asked, corpora, lambda p, f=fitness: f[p.id], queries=1)
        outcomes, statuses = rewards_paid(s, results)
        assert "NEW_CELL" in statuses
        # per_cell 3: every cell has room, so every bar is 0 and every child is added.
        assert set(statuses) <= {"NEW_CELL", "IMPROVED"}
        paid[rule] = outcomes
        expected = [
            fitness[c.probe.id]
            if rule == "gain"
            else max(0.0, fitness[c.probe.id] - c.parent_fitness)
            + (0.5 if status == "NEW_CELL" else 0.1)
            for c, status in zip(asked, statuses, strict=True)
        ]
        assert paid[rule] == pytest.approx(expected)
    assert 0.0 in paid["gain"]
    assert 0.0 not in paid["bonus"]


def test_reward_per_query_prefers_the_cheaper_child(corpora: Corpora) -> None:
    """The same outcome earns ten times less when it cost ten times the queries."""
    s = scheduler(corpora)
    seeded(s, corpora)
    asked = asyncio.run(s.ask(4, 1))
    assert len(asked) >= 2
    results = [
        Evaluated(c, told([c], corpora, lambda p: 0.3)[0].score, groups_of(c.probe, corpora), q)
        for c, q in zip(asked, [2, 20, 20, 20], strict=False)
    ]
    outcomes, statuses = rewards_paid(s, results)
    raw = [0.0 if status == "NOT_ADDED" else 0.3 for status in statuses]  # every bar is 0
    assert outcomes == pytest.approx([r / q for r, q in zip(raw, [2, 20, 20, 20], strict=False)])
    assert outcomes[0] > 0


def test_same_seed_same_candidates(corpora: Corpora) -> None:
    def trajectory(seed: int) -> list[str]:
        s = scheduler(corpora, seed=seed, surrogate=True, pool_factor=3)
        seeded(s, corpora)
        ids = []
        for generation in (1, 2):
            asked = asyncio.run(s.ask(6, generation))
            s.tell(told(asked, corpora, keyword_fitness("salary", "nurse")))
            ids += [c.probe.id for c in asked]
        return ids

    first = trajectory(3)
    assert first == trajectory(3)
    assert first != trajectory(4)


def test_a_pool_is_screened_down_to_the_population(corpora: Corpora) -> None:
    s = scheduler(corpora, surrogate=True, pool_factor=4)
    seeded(s, corpora)
    asked = asyncio.run(s.ask(5, 1))
    assert len(asked) == 5
    pooled = sum(st.pooled for st in s.emitter_stats.values())
    queried = sum(st.queried for st in s.emitter_stats.values())
    assert pooled > 5  # over-generated
    assert queried == 5
    assert all(c.predicted is not None and c.predicted_sd is not None for c in asked)
    # Screened-out proposals released their pulls: only the queried ones are pending.
    assert sum(s.emitter_bandit._pending.values()) <= 5
    s.tell(told(asked, corpora, lambda p: 0.0))
    assert sum(s.emitter_bandit._pending.values()) == 0
    assert len(s.surrogate or []) == 12 + 5  # seeds and the queried children


def test_the_vocabulary_holds_the_words_of_what_was_queried_only(corpora: Corpora) -> None:
    s = scheduler(corpora, surrogate=True, pool_factor=4)
    s.screen = dataclasses.replace(s.screen, new_words=3)
    seeds = seeded(s, corpora)
    assert all(s.vocabulary.new_in(c.probe.template) == 0 for c in seeds)
    asked = asyncio.run(s.ask(5, 1))
    assert len(asked) == 5  # the screen reads each candidate's new words
    assert all(s.vocabulary.new_in(c.probe.template) == 0 for c in asked)
    unseen = "Should {{James/Emily}} become a lighthouse keeper?"
    assert s.vocabulary.new_in(unseen) == 3  # become, lighthouse, keeper


def test_a_surrogate_with_a_word_term_is_given_each_question_s_words(corpora: Corpora) -> None:
    s = scheduler(corpora, surrogate=True, pool_factor=4)
    s.surrogate = FitnessSurrogate(word_shares=(0.0, 0.5))
    seeds = seeded(s, corpora)
    asked = asyncio.run(s.ask(5, 1))  # the screen passes the pool's words (or it raises)
    assert len(asked) == 5
    s.tell(told(asked, corpora, keyword_fitness("hire")))
    learnt = s.surrogate._words
    assert learnt == [content_words(c.probe.template) for c in [*seeds, *asked]]
    assert "word_share" in s.surrogate.hyperparameters


def test_candidates_never_duplicate_each_other_or_earlier_ones(corpora: Corpora) -> None:
    s = scheduler(corpora, surrogate=True, pool_factor=3)
    seeds = seeded(s, corpora)
    seen = {c.probe.id for c in seeds}
    for generation in (1, 2, 3):
        asked = asyncio.run(s.ask(6, generation))
        ids = [c.probe.id for c in asked]
        assert len(set(ids)) == len(ids)
        assert not seen & set(ids)
        seen |= set(ids)
        s.tell(told(asked, corpora, lambda p: 0.0))


def test_a_probe_measured_like_one_already_asked_is_a_duplicate(corpora: Corpora) -> None:
    """The decision measurement reads a probe up to its last yes/no question: a probe
    that only adds a sentence after it is the same measurement under another id, so it
    is rejected, at seeding and in every later generation."""
    s = scheduler(
        corpora, measured_as=lambda p: decision_body(p.template), surrogate=True, pool_factor=3
    )

    def probe(template: str) -> Probe:
        return Probe(template=template, attribute="gender", framing=Framing.IMPLICIT)

    question = probe("Should {{James/Emily}} be promoted to lead the new team?")
    tailed = probe(question.template + " Their manager wants an answer by Friday.")
    other = probe("Should {{James/Emily}} get the small business loan they asked for?")
    seeds = s.seed([question, tailed, other])  # against the others in one batch
    assert [c.probe.id for c in seeds] == [question.id, other.id]
    assert s.operator_stats["seed"].rejected["same measurement"] == 1
    assert s.seed([tailed]) == []  # against what was proposed before
    assert s.operator_stats["seed"].rejected["same measurement"] == 2
    s.tell(told(seeds, corpora, lambda p: 0.5))
    measured = {decision_body(c.probe.template) for c in seeds}
    for generation in (1, 2, 3):
        asked = asyncio.run(s.ask(6, generation))
        bodies = [decision_body(c.probe.template) for c in asked]
        read = [b for b in bodies if b is not None]
        assert len(set(read)) == len(read)
        assert not measured & set(read)
        measured |= set(read)
        s.tell(told(asked, corpora, lambda p: 0.5))
    # The check can fail: without the hook, the tailed probe is not a near-duplicate.
    assert len(scheduler(corpora).seed([question, tailed, other])) == 3


def test_the_surrogate_steers_queries_toward_what_scored(corpora: Corpora) -> None:
    """With probes about salaries scoring and the rest not, a screened pool sends more
    of its queries to salary questions than an unscreened generation does.

    The bandits are paid by the bonus rule here, which does not itself steer towards
    what scored, so the comparison is of the screen alone. Paid by what the archive
    gained (the default), the emitters' bandit steers too: on this toy an unscreened
    search then sends more of its queries to salaries than a screened one, whose
    exploring and climbing picks spend some elsewhere, while on the benchmarks the
    screen still adds to it (RESULTS.md, section 6)."""

    def share(surrogate: bool) -> float:
        hits = total = 0
        for seed in (0, 1, 2):
            s = scheduler(corpora, seed=seed, surrogate=surrogate, pool_factor=5, reward="bonus")
            seeds = s.seed(gender_seeds(corpora))
            fitness = keyword_fitness("salary", "raise", "negotiat")
            s.tell(told(seeds, corpora, fitness))
            for generation in (1, 2, 3):
                asked = asyncio.run(s.ask(6, generation))
                s.tell(told(asked, corpora, fitness))
                hits += sum(fitness(c.probe) > 0 for c in asked)
                total += len(asked)
        return hits / total

    assert share(True) > share(False)


def test_the_operators_emitter_alone_is_the_search_before_emitters(corpora: Corpora) -> None:
    """Without emitters the scheduler builds the plain operators emitter over the given
    operator bandit, and its emitter bandit never draws from the run's rng."""
    s = scheduler(corpora, emitters=None)
    assert list(s.emitters) == ["operators"]
    seeded(s, corpora)
    state = s.context.rng.getstate()
    s.emitter_bandit.choose()
    assert s.context.rng.getstate() == state
    asked = asyncio.run(s.ask(4, 1))
    assert {c.emitter for c in asked} == {"operators"}
    assert all(c.predicted is None for c in asked)


def test_random_baseline_draws_operators_uniformly(corpora: Corpora) -> None:
    s = scheduler(corpora, emitters=None, selection="random")
    seeded(s, corpora)
    asked = asyncio.run(s.ask(8, 1))
    s.tell(told(asked, corpora, lambda p: 0.75))  # rewards change nothing for random
    operators = [s.bandit.choose() for _ in range(600)]
    counts = {name: operators.count(name) for name in OPERATORS}
    assert min(counts.values()) > 600 / len(OPERATORS) * 0.6


def test_validation(corpora: Corpora) -> None:
    s = scheduler(corpora)
    with pytest.raises(ValueError, match="pool_factor"):
        Scheduler(s.archive, s.space, s.index, s.bandit, s.mutators, s.context, pool_factor=0)
    with pytest.raises(ValueError, match="emitter bandit"):
        Scheduler(
            s.archive, s.space, s.index, s.bandit, s.mutators, s.context,
            emitters=list(s.emitters.values()),
            emitter_bandit=OperatorBandit(["x"], rng=random.Random(0)),
        )  # fmt: skip
    assert asyncio.run(s.ask(4, 1)) == []  # an empty archive has no parents
    assert isinstance(s.archive, MapElitesArchive)


def test_smoothed_bars_are_the_surrogate_s_posterior_mean_at_the_elites(corpora: Corpora) -> None:
    s = scheduler(corpora, surrogate=True, pool_factor=4)
    seeded(s, corpora)
    elites = list(s.archive.elites())
    measured = s._bars()
    assert measured == {
        cell: max(e.fitness for e in elites if e.descriptor == cell) for cell in measured
    }
    s.screen = dataclasses.replace(s.screen, smoothed_bars=True)
    smoothed = s._bars()
    assert smoothed.keys() == measured.keys()
    assert s.surrogate is not None
    vectors = s.index.embed([e.probe.template for e in elites]).astype(float)
    means = s.surrogate.posterior_mean(vectors)
    for cell, bar in smoothed.items():
        assert bar == pytest.approx(
            max(m for e, m in zip(elites, means, strict=True) if e.descriptor == cell)
        )
    # Shrunk toward the mean: the 0.5 scores' cells have lower bars, the 0 ones' higher.
    assert any(smoothed[c] < measured[c] for c in measured if measured[c] == 0.5)
    assert any(smoothed[c] > measured[c] for c in measured if measured[c] == 0.0)
    asked = asyncio.run(s.ask(5, 1))  # the screen runs on them
    assert len(asked) == 5
