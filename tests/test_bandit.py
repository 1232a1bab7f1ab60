"""The operator bandit: converges, keeps exploring, adapts, resumes."""

from __future__ import annotations

import json
import random
from collections import Counter
from collections.abc import Mapping

import pytest

from probegen.search import OperatorBandit

ARMS = ["paraphrase", "swap_names", "change_domain"]


def run(
    bandit: OperatorBandit, means: Mapping[str, float], steps: int, rewards: random.Random
) -> list[str]:
    """Pull ``steps`` times; rewards are Bernoulli with the given means."""
    chosen = []
    for _ in range(steps):
        name = bandit.choose()
        bandit.update(name, 1.0 if rewards.random() < means[name] else 0.0)
        chosen.append(name)
    return chosen


def test_converges_to_the_best_arm_and_keeps_exploring() -> None:
    bandit = OperatorBandit(ARMS, rng=random.Random(0))
    means = {"paraphrase": 0.2, "swap_names": 0.7, "change_domain": 0.4}
    chosen = run(bandit, means, 1500, random.Random(1))
    late = Counter(chosen[-500:])
    assert late.most_common(1)[0][0] == "swap_names"
    assert late["swap_names"] > 0.5 * 500
    stats = bandit.stats()
    assert all(stats[name]["pulls"] >= 10 for name in ARMS)  # never starved
    assert stats["swap_names"]["mean_reward"] == pytest.approx(0.7, abs=0.05)
    assert sum(s["pulls"] for s in stats.values()) == 1500


def test_adapts_when_the_best_arm_changes() -> None:
    bandit = OperatorBandit(ARMS, rng=random.Random(0))
    rewards = random.Random(2)
    run(bandit, {"paraphrase": 0.8, "swap_names": 0.2, "change_domain": 0.3}, 800, rewards)
    after = run(bandit, {"paraphrase": 0.1, "swap_names": 0.9, "change_domain": 0.3}, 600, rewards)
    assert Counter(after[-300:]).most_common(1)[0][0] == "swap_names"


def test_first_batch_covers_every_arm() -> None:
    bandit = OperatorBandit(ARMS, rng=random.Random(5))
    batch = bandit.choose_many(7)
    counts = Counter(batch)
    assert set(counts) == set(ARMS)
    assert max(counts.values()) - min(counts.values()) <= 1  # pending pulls spread a batch


def test_batches_spread_over_good_arms() -> None:
    totals: Counter[str] = Counter()
    for seed in range(5):
        bandit = OperatorBandit(ARMS, rng=random.Random(seed))
        means = {"paraphrase": 0.6, "swap_names": 0.6, "change_domain": 0.0}
        run(bandit, means, 300, random.Random(seed + 3))
        batch = Counter(bandit.choose_many(10))
        assert batch["paraphrase"] >= 2
        assert batch["swap_names"] >= 2
        totals.update(batch)
    assert totals["change_domain"] < 0.2 * 50


def test_deterministic_under_a_seeded_rng() -> None:
    means = {"paraphrase": 0.5, "swap_names": 0.5, "change_domain": 0.5}
    first = run(OperatorBandit(ARMS, rng=random.Random(9)), means, 300, random.Random(4))
    again = run(OperatorBandit(ARMS, rng=random.Random(9)), means, 300, random.Random(4))
    assert first == again


def test_state_round_trips_for_resume() -> None:
    rng = random.Random(6)
    bandit = OperatorBandit(ARMS, rng=rng, exploration=0.3, decay=0.95)
    means = {"paraphrase": 0.3, "swap_names": 0.6, "change_domain": 0.1}
    run(bandit, means, 200, random.Random(7))
    saved = json.loads(json.dumps(bandit.to_dict()))
    resumed_rng = random.Random()
    resumed_rng.setstate(rng.getstate())
    resumed = OperatorBandit.from_dict(saved, rng=resumed_rng)
    assert resumed.to_dict() == bandit.to_dict()
    assert resumed.stats() == bandit.stats()
    assert run(resumed, means, 100, random.Random(8)) == run(bandit, means, 100, random.Random(8))


def test_reward_scale_does_not_matter() -> None:
    means = {"paraphrase": 0.2, "swap_names": 0.7, "change_domain": 0.4}
    small = OperatorBandit(ARMS, rng=random.Random(0))
    large = OperatorBandit(ARMS, rng=random.Random(0))
    rewards_small, rewards_large = random.Random(1), random.Random(1)
    for _ in range(400):
        a, b = small.choose(), large.choose()
        assert a == b
        hit = rewards_small.random() < means[a]
        rewards_large.random()
        small.update(a, 1.0 if hit else 0.0)
        large.update(b, 100.0 if hit else 0.0)


def test_stats_shape() -> None:
    bandit = OperatorBandit(ARMS, rng=random.Random(0))
    bandit.update("paraphrase", 0.5)
    bandit.update("paraphrase", 0.0)
    stats = bandit.stats()
    assert stats["paraphrase"]["pulls"] == 2
    assert stats["paraphrase"]["successes"] == 1
    assert stats["paraphrase"]["mean_reward"] == pytest.approx(0.25)
    assert stats["swap_names"] == {
        "pulls": 0,
        "mean_reward": 0.0,
        "successes": 0,
        "discounted_mean": 0.0,
    }


def test_release_clears_a_pending_pull_without_counting_it() -> None:
    """A pull whose children were never queried (screened out) is released: it weighs on
    its arm while pending, and afterwards leaves no trace, nothing decayed."""
    bandit = OperatorBandit(ARMS, rng=random.Random(0))
    for name in ARMS:
        bandit.update(name, 0.5)
    before = bandit.scores()
    state = bandit.to_dict()
    name = bandit.choose()
    assert bandit.scores()[name] < before[name]  # the pending pull is a virtual loss
    bandit.release(name)
    assert bandit.scores() == before
    assert bandit.to_dict() == state
    bandit.release(name)  # nothing pending: a no-op
    assert bandit.to_dict() == state
    with pytest.raises(ValueError, match="unknown operator"):
        bandit.release("nope")


def test_validation() -> None:
    rng = random.Random(0)
    with pytest.raises(ValueError, match="at least one"):
        OperatorBandit([], rng=rng)
    with pytest.raises(ValueError, match="repeat"):
        OperatorBandit(["a", "a"], rng=rng)
    with pytest.raises(ValueError, match="decay"):
        OperatorBandit(ARMS, rng=rng, decay=0.0)
    with pytest.raises(ValueError, match="exploration"):
        OperatorBandit(ARMS, rng=rng, exploration=-1.0)
    bandit = OperatorBandit(ARMS, rng=rng)
    with pytest.raises(ValueError, match="unknown operator 'nope'"):
        bandit.update("nope", 1.0)
    with pytest.raises(ValueError, match="not finite"):
        bandit.update("paraphrase", float("inf"))
    with pytest.raises(ValueError, match="format"):
        OperatorBandit.from_dict({"format": 99}, rng=rng)
    with pytest.raises(ValueError, match="incomplete"):
        OperatorBandit.from_dict({"format": 1, "names": ARMS}, rng=rng)
