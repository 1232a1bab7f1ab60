"""The surrogate: Gaussian-process fit, expected improvement, batch screening, Spearman."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from scipy import stats

from probegen.search.surrogate import (
    FitnessSurrogate,
    OperatorResiduals,
    ScreenWeights,
    expected_improvement,
    inverse_document_frequency,
    rank_correlation,
    select_batch,
    word_similarity,
)


def circle(angles: list[float]) -> np.ndarray:
    """Unit vectors on a circle: nearby angles are similar questions."""
    return np.array([[math.cos(a), math.sin(a)] for a in angles])


def test_prior_before_any_data() -> None:
    surrogate = FitnessSurrogate(prior_sd=0.1)
    mean, sd = surrogate.predict(circle([0.0, 1.0]))
    assert mean.tolist() == [0.0, 0.0]
    assert sd == pytest.approx([0.1, 0.1])


def test_fits_a_smooth_function_and_is_unsure_away_from_data() -> None:
    train = [i * 0.2 for i in range(8)]  # angles 0 .. 1.4
    surrogate = FitnessSurrogate()
    surrogate.observe(circle(train), [0.5 + 0.4 * math.sin(3 * a) for a in train])
    mean, sd = surrogate.predict(circle([0.3, 0.9, math.pi]))
    assert mean[0] == pytest.approx(0.5 + 0.4 * math.sin(0.9), abs=0.1)
    assert mean[1] == pytest.approx(0.5 + 0.4 * math.sin(2.7), abs=0.1)
    assert sd[2] > 3 * max(sd[0], sd[1])  # pi is far from every training point
    assert surrogate.hyperparameters["lengthscale"] > 0


def test_every_probe_at_zero_leaves_it_curious() -> None:
    """Before any positive probe the model still ranks unexplored directions higher."""
    surrogate = FitnessSurrogate()
    surrogate.observe(circle([0.0, 0.1, 0.2]), [0.0, 0.0, 0.0])
    _, sd = surrogate.predict(circle([0.05, 2.5]))
    assert sd[1] > sd[0]


def test_word_similarity_is_the_cosine_of_binary_bags() -> None:
    got = word_similarity([{"nanny", "hire"}, set()], [{"nanny"}, {"nanny", "hire"}, {"loan"}])
    assert got[0].tolist() == pytest.approx([1 / math.sqrt(2), 1.0, 0.0])
    assert got[1].tolist() == [0.0, 0.0, 0.0]  # no words: like nothing


def test_rare_shared_words_count_more_than_common_ones() -> None:
    scored = [{"advice", "nanny"}, {"advice", "loan"}, {"advice", "lease"}, {"advice", "visa"}]
    idf = inverse_document_frequency(scored)
    assert idf("advice") == pytest.approx(1.0)  # in every question
    assert idf("nanny") > idf("advice")
    assert idf("unseen") > idf("nanny")
    weighted = word_similarity([{"advice", "nanny"}], [{"nanny", "hire"}, {"advice", "loan"}], idf)
    assert weighted[0, 0] > weighted[0, 1]  # sharing "nanny" beats sharing "advice"
    plain = word_similarity([{"advice", "nanny"}], [{"nanny", "hire"}, {"advice", "loan"}])
    assert plain[0, 0] == pytest.approx(plain[0, 1])


def words_and_scores() -> tuple[np.ndarray, list[set[str]], list[float]]:
    """Twelve questions of six shapes (pairs share an embedding); only the one word
    "nanny", in questions of three different shapes, goes with a high score."""
    shapes = circle([i * 0.9 for i in range(6)])
    vectors = np.repeat(shapes, 2, axis=0)
    words = [
        {"nanny", "hire"} if i % 2 == 0 and i < 6 else {"loan", "topic" + str(i)} for i in range(12)
    ]
    scores = [0.8 if "nanny" in w else 0.0 for w in words]
    return vectors, words, scores


def test_a_word_term_learns_what_a_shared_word_predicts() -> None:
    vectors, words, scores = words_and_scores()
    query, query_words = circle([4.5 + 0.45]), [{"nanny", "park"}]  # a shape seen only at 0
    plain = FitnessSurrogate()
    plain.observe(vectors, scores)
    mixed = FitnessSurrogate(word_shares=(0.0, 0.25, 0.5))
    mixed.observe(vectors, scores, words)
    assert mixed.hyperparameters["word_share"] > 0  # the words explain the scores better
    assert mixed.predict(query, query_words)[0][0] > plain.predict(query)[0][0] + 0.1
    # Only the word share 0 on offer: exactly the embedding's model.
    alone = FitnessSurrogate(word_shares=(0.0,))
    alone.observe(vectors, scores)
    assert alone.predict(query)[0] == pytest.approx(plain.predict(query)[0])


def test_a_word_term_needs_the_words() -> None:
    vectors, words, scores = words_and_scores()
    mixed = FitnessSurrogate(word_shares=(0.0, 0.5))
    assert mixed.reads_words
    assert not FitnessSurrogate().reads_words
    with pytest.raises(ValueError, match="one set of words per vector"):
        mixed.observe(vectors, scores)
    mixed.observe(vectors, scores, words)
    with pytest.raises(ValueError, match="one set of words per vector"):
        mixed.predict(vectors[:2], words[:1])
    with pytest.raises(ValueError, match="word_shares"):
        FitnessSurrogate(word_shares=(1.0,))


def test_expected_improvement_matches_the_closed_form() -> None:
    mean, sd, bar = np.array([0.3, 0.3, 0.9]), np.array([0.1, 0.0, 0.1]), np.array([0.3] * 3)
    got = expected_improvement(mean, sd, bar)
    assert got[0] == pytest.approx(0.1 * stats.norm.pdf(0))
    assert got[1] == pytest.approx(0.0, abs=1e-9)
    assert got[2] == pytest.approx(0.6, abs=1e-6)


def batch(**overrides: object) -> list[int]:
    surrogate = FitnessSurrogate()
    surrogate.observe(circle([0.0, 0.05, 1.5, 1.55]), [0.8, 0.8, 0.0, 0.0])
    pool = circle([0.02, 0.021, 0.8, 1.52])  # two near-copies of a strong idea, a middle, a weak
    arguments: dict[str, object] = {
        "n": 2,
        "cells": [("a",), ("a",), ("b",), ("c",)],
        "bars": {("a",): 0.0},
        "novelty": [0.0, 0.0, 0.0, 0.0],
        "costs": [1, 1, 1, 1],
    }
    arguments.update(overrides)
    return select_batch(surrogate, pool, **arguments).chosen  # type: ignore[arg-type]


def test_the_batch_is_spread_not_spent_on_copies() -> None:
    """Once a candidate is picked its cell's bar rises to its prediction (and its
    neighbours' uncertainty shrinks): its near-twin in the same cell is not worth a query."""
    chosen = batch()
    assert chosen[0] in (0, 1)
    assert set(chosen) != {0, 1}  # the second pick learns nothing new from the first's twin


def test_value_is_per_query_unless_per_probe() -> None:
    assert batch(n=1)[0] in (0, 1)
    bars = {("a",): 0.0, ("b",): 0.0, ("c",): 0.0}
    costly = {"n": 1, "costs": [40, 40, 1, 1], "bars": bars}
    # Per query (the default), the strong idea is not worth 40 times the queries...
    assert batch(**costly)[0] in (2, 3)
    # ...per probe, what it costs does not count against it.
    assert batch(**costly, weights=ScreenWeights(per_query=False))[0] in (0, 1)


def test_an_empty_cell_and_novelty_earn_their_bonus() -> None:
    surrogate = FitnessSurrogate()
    pool = circle([0.0, 0.0])  # the same prediction for both
    filled = select_batch(
        surrogate, pool, n=1, cells=[("a",), ("b",)], bars={("a",): 0.0},
        novelty=[0.0, 0.0], costs=[1, 1],
    )  # fmt: skip
    assert filled.chosen == [1]  # cell b is empty
    novel = select_batch(
        surrogate, pool, n=1, cells=[("a",), ("a",)], bars={("a",): 0.0},
        novelty=[0.1, 0.6], costs=[1, 1], weights=ScreenWeights(empty_cell=0.0, novelty=0.1),
    )  # fmt: skip
    assert novel.chosen == [1]


def test_selection_is_deterministic() -> None:
    assert batch() == batch()
    assert batch(n=4) == batch(n=4)
    assert sorted(batch(n=4)) == [0, 1, 2, 3]


def test_rank_correlation() -> None:
    perfect = rank_correlation([0.1, 0.2, 0.3, 0.4], [0.0, 0.25, 0.5, 0.75])
    assert perfect.rho == pytest.approx(1.0)
    assert perfect.n == 4
    noisy = [0.1, 0.5, 0.2, 0.9, 0.4]
    measured = [0.0, 0.25, 0.5, 0.75, 0.0]
    expected = stats.spearmanr(noisy, measured)
    got = rank_correlation(noisy, measured)
    assert got.rho == pytest.approx(expected.statistic)
    assert got.p_value == pytest.approx(expected.pvalue)
    assert rank_correlation([0.1, 0.2, 0.3], [0.0, 0.0, 0.0]).rho is None  # all measured 0
    assert rank_correlation([0.1, 0.2], [0.0, 0.5]).rho is None  # too few
    with pytest.raises(ValueError, match="predictions"):
        rank_correlation([0.1], [0.1, 0.2])


def test_validation() -> None:
    with pytest.raises(ValueError, match="positive"):
        FitnessSurrogate(prior_sd=0)
    surrogate = FitnessSurrogate()
    with pytest.raises(ValueError, match="finite"):
        surrogate.observe(circle([0.0]), [float("nan")])
    with pytest.raises(ValueError, match="vectors"):
        surrogate.observe(circle([0.0, 1.0]), [0.5])


def test_many_points_are_capped_keeping_the_positive_ones() -> None:
    surrogate = FitnessSurrogate(max_points=20)
    angles = [i * 0.01 for i in range(60)]
    surrogate.observe(circle(angles), [0.9 if i == 3 else 0.0 for i in range(60)])
    mean, _ = surrogate.predict(circle([0.03]))
    assert mean[0] > 0.3  # the one positive, outside the 20 most recent, is still known


def exploring_picks(weights: ScreenWeights, new_words: list[int] | None = None) -> list[int]:
    """Four picks from five near-copies of the paying idea (in five cells, so each keeps
    its value) and one question far from everything measured (candidate 5)."""
    surrogate = FitnessSurrogate()
    surrogate.observe(circle([0.0, 0.05, 0.1]), [0.8, 0.8, 0.7])
    pool = circle([0.01, 0.02, 0.03, 0.04, 0.06, 2.5])
    return select_batch(
        surrogate,
        pool,
        n=4,
        cells=[(str(i),) for i in range(6)],
        bars={},
        novelty=[0.0] * 6,
        costs=[1] * 6,
        weights=weights,
        new_words=new_words,
    ).chosen


def test_every_fourth_pick_goes_where_the_model_knows_least() -> None:
    greedy = exploring_picks(ScreenWeights(explore_every=0))
    assert 5 not in greedy  # expected improvement alone never looks there
    exploring = exploring_picks(ScreenWeights())
    assert exploring[:3] == greedy[:3]
    assert exploring[3] == 5


def test_with_new_words_an_exploring_pick_goes_first_to_words_never_queried() -> None:
    # Candidate 4, a near-copy the model is sure of, brings two new words; 5 brings one.
    counts = [0, 0, 0, 0, 2, 1]
    by_uncertainty = exploring_picks(ScreenWeights(), counts)
    assert by_uncertainty[3] == 5  # new_words off: the counts are not read
    words = exploring_picks(ScreenWeights(new_words=3), counts)
    assert words[:3] == by_uncertainty[:3]  # only the exploring pick changes
    assert words[3] == 4
    # Counted up to 1, both bring new words, and the model's uncertainty decides.
    assert exploring_picks(ScreenWeights(new_words=1), counts)[3] == 5
    with pytest.raises(ValueError, match="new words"):
        exploring_picks(ScreenWeights(new_words=1), [1])


def test_with_climb_every_4_the_second_of_every_four_picks_climbs_from_the_fittest_parent() -> None:
    """Expected improvement over each cell's incumbent prefers copying a strong probe
    into new cells; the climbing pick tries to beat it in its own cell instead."""
    surrogate = FitnessSurrogate()
    surrogate.observe(circle([0.0, 1.0]), [0.6, 0.3])
    # Copies of the 0.6 probe into new cells (0-2), then children that stay in their
    # parent's cell: two of the 0.6 parent's (3, 4), one of the 0.3 parent's (5).
    pool = circle([0.01, 0.02, 0.03, 0.2, 0.25, 1.01])
    arguments: dict[str, object] = {
        "n": 4,
        "cells": [("n1",), ("n2",), ("n3",), ("best",), ("best",), ("other",)],
        "bars": {("best",): 0.6, ("other",): 0.3},
        "novelty": [0.0] * 6,
        "costs": [1] * 6,
        "weights": ScreenWeights(explore_every=0, climb_every=4),
    }
    greedy = select_batch(surrogate, pool, **arguments).chosen  # type: ignore[arg-type]
    assert set(greedy[:3]) == {0, 1, 2}  # the copies win on expected improvement
    climbing = [0.0, 0.0, 0.0, 0.6, 0.6, 0.3]
    climbed = select_batch(surrogate, pool, climbing=climbing, **arguments).chosen  # type: ignore[arg-type]
    assert climbed[0] == greedy[0]
    mean, sd = surrogate.predict(pool[3:5])
    assert climbed[1] == 3 + int(np.argmax(mean + sd))  # the fittest parent's likeliest child
    # Nothing to climb from: the picks are the greedy ones.
    flat = select_batch(surrogate, pool, climbing=[0.0] * 6, **arguments).chosen  # type: ignore[arg-type]
    assert flat == greedy
    with pytest.raises(ValueError, match="climbing"):
        select_batch(surrogate, pool, climbing=[0.0], **arguments)  # type: ignore[arg-type]


def test_a_climbing_pick_due_with_an_exploring_one_climbs() -> None:
    """With climb_every 8 the climbing slot is the fourth, an exploring one's too: the
    climb comes first, or a population of 8 would never climb."""
    surrogate = FitnessSurrogate()
    surrogate.observe(circle([0.0, 1.0]), [0.6, 0.3])
    pool = circle([0.01, 0.02, 0.03, 0.2, 0.25, 1.01, 2.5, 2.6])
    climbing = [0.0, 0.0, 0.0, 0.6, 0.6, 0.0, 0.0, 0.0]
    chosen = select_batch(
        surrogate, pool, n=4, cells=[(str(i),) for i in range(3)] + [("best",)] * 2
        + [(str(i),) for i in range(5, 8)], bars={("best",): 0.6}, novelty=[0.0] * 8,
        costs=[1] * 8, weights=ScreenWeights(climb_every=8), climbing=climbing,
    ).chosen  # fmt: skip
    assert chosen[3] in (3, 4)  # the fourth pick climbs from the 0.6 parent


def test_an_operator_offset_starts_at_zero_and_learns_from_its_children() -> None:
    residuals = OperatorResiduals(prior_sd=0.1)
    assert residuals.estimate("persona") == (0.0, pytest.approx(0.1))
    for _ in range(20):
        residuals.observe("decision", measured=0.5, predicted=0.2)  # beats its predictions
        residuals.observe("persona", measured=0.0, predicted=0.1)  # falls short of them
    residuals.observe("decision", measured=0.2, predicted=0.2)
    up, up_sd = residuals.estimate("decision")
    down, down_sd = residuals.estimate("persona")
    assert 0.2 < up < 0.3
    assert -0.1 < down < -0.05
    assert up_sd < 0.1
    assert down_sd < 0.1
    assert residuals.estimate("reframe") == (0.0, pytest.approx(0.1))  # nothing seen yet
    assert set(residuals.as_dict()) == {"decision", "persona"}
    with pytest.raises(ValueError, match="prior_sd"):
        OperatorResiduals(prior_sd=0.0)


def test_an_operator_offset_moves_the_ranking_not_the_reported_prediction() -> None:
    """Two children the embedding model cannot tell apart: the one whose operator's
    children beat their predictions is queried first, and the prediction the selection
    reports (which residuals are later taken of) stays the model's own."""
    surrogate = FitnessSurrogate()
    surrogate.observe(circle([0.0, 1.5]), [0.4, 0.0])
    pool = circle([0.01, 0.01])
    common: dict[str, object] = {
        "n": 1, "cells": [("a",), ("a",)], "bars": {("a",): 0.4},
        "novelty": [0.0, 0.0], "costs": [1, 1],
    }  # fmt: skip
    plain = select_batch(surrogate, pool, **common)  # type: ignore[arg-type]
    assert plain.chosen == [0]  # pool order breaks the tie
    shifted = select_batch(
        surrogate,
        pool,
        offsets=[(-0.05, 0.02), (0.1, 0.02)],
        **common,  # type: ignore[arg-type]
    )
    assert shifted.chosen == [1]
    assert shifted.mean == plain.mean
    assert shifted.sd == plain.sd
    with pytest.raises(ValueError, match="offset"):
        select_batch(surrogate, pool, offsets=[(0.0, 0.1)], **common)  # type: ignore[arg-type]


def test_local_best_is_the_best_fitness_observed_within_the_radius() -> None:
    surrogate = FitnessSurrogate()
    assert surrogate.local_best(circle([0.0]), 0.9).tolist() == [0.0]  # nothing observed
    surrogate.observe(circle([0.0, 0.1, 2.0]), [0.2, 0.7, 0.9])
    # cos(0.05) and cos(0.15) are above 0.98; the point at angle 2 is far from both.
    assert surrogate.local_best(circle([0.05, 1.0]), 0.98).tolist() == [0.7, 0.0]


def test_with_local_competition_a_copy_of_a_strong_probe_must_beat_it() -> None:
    """Against its empty cell's bar alone, a near-copy of a strong probe expects to gain
    all of that probe's fitness and wins the pick; against the best measured near it,
    it expects little, and a question on an unmeasured topic wins."""
    surrogate = FitnessSurrogate()
    surrogate.observe(circle([0.0, 0.05, 1.5, 1.55]), [0.8, 0.8, 0.0, 0.0])
    pool = circle([0.02, 3.0])  # a copy of the strong idea (empty cell), an unmeasured topic
    arguments: dict[str, object] = {
        "n": 1, "cells": [("b",), ("c",)], "bars": {("a",): 0.8},
        "novelty": [0.0, 0.0], "costs": [1, 1],
    }  # fmt: skip
    assert select_batch(surrogate, pool, **arguments).chosen == [0]  # type: ignore[arg-type]
    local = ScreenWeights(local_radius=0.99)
    chosen = select_batch(surrogate, pool, weights=local, **arguments).chosen  # type: ignore[arg-type]
    assert chosen == [1]


def test_local_competition_rises_with_each_pick_of_the_batch() -> None:
    """Kriging believer, locally: once a candidate is picked, its near-twin in another
    empty cell must beat the pick's prediction, so the second pick goes elsewhere."""
    surrogate = FitnessSurrogate()
    surrogate.observe(circle([1.0, 1.5, 2.0]), [0.6, 0.0, 0.0])
    # Twins next to a 0.6 probe but outside its radius, each in its own empty cell.
    pool = circle([1.06, 1.061, 3.0])

    def chosen(radius: float) -> list[int]:
        weights = ScreenWeights(local_radius=radius, explore_every=0, empty_cell=0.0, novelty=0.0)
        return select_batch(
            surrogate, pool, n=2, cells=[("a",), ("b",), ("c",)], bars={},
            novelty=[0.0] * 3, costs=[1] * 3, weights=weights,
        ).chosen  # fmt: skip

    assert sorted(chosen(0.0)) == [0, 1]  # cells alone: both twins
    first, second = chosen(0.999)
    assert first in (0, 1)
    assert second == 2  # its twin would have to beat the first pick


def test_smoothed_fitness_shrinks_a_lucky_score_toward_its_neighbours() -> None:
    """One of five near-identical questions measured high (a lucky draw): its smoothed
    fitness sits between that score and its neighbours', and the local bar read from
    the smoothed scores is lower than the measured one."""
    surrogate = FitnessSurrogate()
    assert surrogate.smoothed().tolist() == []
    surrogate.observe(circle([0.0, 0.01, 0.02, 0.03, 0.04, 2.0]), [0.3, 0.3, 0.8, 0.3, 0.3, 0.0])
    smoothed = surrogate.smoothed()
    assert len(smoothed) == 6
    assert 0.3 < smoothed[2] < 0.8
    near = circle([0.021])
    assert surrogate.local_best(near, 0.99).tolist() == [0.8]
    assert surrogate.local_best(near, 0.99, smoothed=True)[0] == pytest.approx(smoothed[2])
    mean, _ = surrogate.predict(circle([0.02]))
    assert surrogate.posterior_mean(circle([0.02]))[0] == pytest.approx(mean[0])
    surrogate.observe(circle([0.025]), [0.8])  # a new observation refits the smoothing
    assert surrogate.smoothed()[2] > smoothed[2]


def test_with_smoothed_bars_a_child_of_a_lucky_parent_expects_to_improve() -> None:
    """A family of questions measured 0.3, one of them luckily 0.8, and a child of the
    lucky one in its cell and family. Against the lucky score the child, predicted
    near its family, expects nothing; against the smoothed score its expected
    improvement is what its uncertainty gives at its own prediction's level."""
    surrogate = FitnessSurrogate()
    surrogate.observe(circle([0.0, 0.01, 0.02, 0.03, 0.04, 2.0]), [0.3, 0.3, 0.8, 0.3, 0.3, 0.0])
    child = circle([0.02])
    weights = ScreenWeights(local_radius=0.99, explore_every=0, empty_cell=0.0, novelty=0.0)

    def acquisition(bars: dict[tuple[str, ...], float], screen: ScreenWeights) -> float:
        return select_batch(
            surrogate, child, n=1, cells=[("a",)], bars=bars, novelty=[0.0], costs=[1],
            weights=screen,
        ).acquisition[0]  # fmt: skip

    assert acquisition({("a",): 0.8}, weights) < 1e-3
    smoothed = dataclasses.replace(weights, smoothed_bars=True)
    _, sd = surrogate.predict(child)
    got = acquisition({("a",): float(surrogate.smoothed()[2])}, smoothed)
    assert got == pytest.approx(float(sd[0]) * stats.norm.pdf(0.0), rel=1e-3)
    # The local bar alone is smoothed too: the cell's measured bar still holds it down.
    assert acquisition({("a",): 0.8}, smoothed) < 1e-3
