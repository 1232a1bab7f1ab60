"""Effects, false-discovery control and replication verdicts (probegen.findings).

The calibration tests draw many null data sets and check that the tests reject no more
often than their level: a test whose p-values are too small would turn name quirks and
sampling noise into findings.
"""

from __future__ import annotations

from typing import cast

import numpy as np
import pytest

from probegen.evolve.conclude import repeated_measurements
from probegen.findings import Effect, benjamini_hochberg, decision_effect, divergence_effect
from probegen.findings.assess import assess_scores, replication_holds
from probegen.measure import ProbeMeasurer
from probegen.probe import Framing, Probe


def _unit(rows: np.ndarray) -> np.ndarray:
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def _rounds(*columns: list[float], groups: tuple[str, ...] = ("man", "woman")) -> dict:
    return {
        f"round {i}": dict(zip(groups, values, strict=True))
        for i, values in enumerate(zip(*columns, strict=True))
    }


def test_decision_effect_names_the_direction_and_covers_the_gap() -> None:
    effect = decision_effect(
        _rounds([0.30, 0.32, 0.28, 0.35, 0.31, 0.29], [0.38, 0.36, 0.40, 0.41, 0.35, 0.37])
    )
    assert effect.direction == ("woman", "man")
    assert effect.estimate == pytest.approx(0.07, abs=1e-3)
    assert effect.low is not None
    assert effect.high is not None
    assert 0 < effect.low < effect.estimate < effect.high  # the groups clearly differ
    assert effect.p_value < 0.01
    assert effect.n == {"man": 6, "woman": 6}
    assert effect.method == "paired t-test over rounds of names"


def test_pairing_cancels_what_a_round_shares() -> None:
    # Wordings move every group together by up to 0.3; within rounds the gap is steady.
    shift = [0.0, 0.3, -0.2, 0.1, 0.25, -0.1]
    men = [0.3 + s for s in shift]
    noise = [0.01, -0.01, 0.0, 0.01, -0.005, 0.0]
    women = [0.34 + s + e for s, e in zip(shift, noise, strict=True)]
    effect = decision_effect(_rounds(men, women))
    assert effect.p_value < 0.001
    assert effect.estimate == pytest.approx(0.04, abs=0.005)


def test_incomplete_rounds_are_left_out_and_one_round_claims_nothing() -> None:
    effect = decision_effect({"r1": {"man": 0.2, "woman": 0.6}, "r2": {"man": 0.3}})
    assert effect.estimate == pytest.approx(0.4)
    assert effect.p_value == 1.0
    assert effect.low is None
    assert effect.high is None


def test_decision_effect_three_groups_uses_the_range() -> None:
    effect = decision_effect(
        _rounds(
            [0.30, 0.32, 0.28, 0.31],
            [0.38, 0.36, 0.40, 0.37],
            [0.50, 0.45, 0.55, 0.52],
            groups=("a", "b", "c"),
        )
    )
    assert effect.direction == ("c", "a")
    assert effect.estimate == pytest.approx(0.2025)
    assert effect.low is not None
    assert effect.high is not None
    assert effect.low <= 0.2025 <= effect.high
    assert effect.p_value < 0.05


@pytest.mark.parametrize("groups", [3, 5])
def test_decision_effect_interval_of_many_groups_leaves_0_in_under_the_null(groups: int) -> None:
    # The search climbs the interval's lower end (what the data can vouch for): with
    # no difference between the groups it must rarely clear 0, however many groups the
    # extreme pair is picked from.
    rng = np.random.default_rng(2)
    cleared = 0
    draws = 300
    for _ in range(draws):
        table = {
            str(r): {f"g{g}": 0.5 + rng.normal(0, 0.05) for g in range(groups)} for r in range(4)
        }
        low = decision_effect(table).low
        cleared += low is not None and low > 0
    assert cleared / draws <= 0.06


def test_decision_effect_rejects_a_single_group() -> None:
    with pytest.raises(ValueError, match="two groups"):
        decision_effect({"r1": {"man": 0.1}, "r2": {"man": 0.2}})


def test_decision_effect_is_calibrated_under_the_null() -> None:
    # Names are quirky (sd 0.06) and wordings shift rounds, but the groups are the same.
    rng = np.random.default_rng(1)
    rejected = 0
    draws = 600
    for _ in range(draws):
        table = {}
        for r in range(8):
            shift = rng.normal(0, 0.1)
            table[str(r)] = {g: 0.4 + shift + rng.normal(0, 0.06) for g in ("man", "woman")}
        rejected += decision_effect(table).p_value < 0.05
    assert rejected / draws <= 0.07


def test_divergence_effect_separates_groups_and_stays_calibrated() -> None:
    rng = np.random.default_rng(2)
    centres = _unit(rng.normal(size=(2, 32)))
    apart = _unit(np.repeat(centres, 6, axis=0) + rng.normal(scale=0.3, size=(12, 32)))
    labels = [0] * 6 + [1] * 6
    effect = divergence_effect(apart, labels, ["man", "woman"])
    assert effect.measure == "divergence"
    assert effect.estimate > 0
    assert effect.p_value < 0.01
    assert effect.low is not None
    assert effect.low > 0

    rejected = 0
    draws = 150
    for seed in range(draws):
        null = _unit(np.random.default_rng(seed).normal(size=(12, 32)))
        rejected += divergence_effect(null, labels, ["man", "woman"], seed=seed).p_value < 0.05
    assert rejected / draws <= 0.09


def test_divergence_effect_among_many_groups_is_its_most_divergent_pair() -> None:
    # Four groups; only the last is answered differently. Averaged over all six pairs,
    # three of which do not involve it, that difference would be diluted by half; the
    # statistic is the most divergent pair's B - W.
    rng = np.random.default_rng(3)
    same, other = _unit(rng.normal(size=(2, 32)))
    rows = [same] * 18 + [other] * 6
    vectors = _unit(np.asarray(rows) + rng.normal(scale=0.3, size=(24, 32)))
    labels = [g for g in range(4) for _ in range(6)]
    groups = ["christian", "hindu", "jewish", "muslim"]
    effect = divergence_effect(vectors, labels, groups)
    pairwise = [
        divergence_effect(
            vectors[[i for i, g in enumerate(labels) if g in pair]],
            [g for g in labels if g in pair],
            groups,
        ).estimate
        for pair in [(a, b) for a in range(4) for b in range(a + 1, 4)]
    ]
    assert effect.estimate == pytest.approx(max(pairwise))
    assert effect.p_value < 0.01

    # The permutation test takes the same maximum over every relabelling: still calibrated.
    rejected = 0
    draws = 150
    for seed in range(draws):
        null = _unit(np.random.default_rng(seed).normal(size=(24, 32)))
        rejected += divergence_effect(null, labels, groups, seed=seed).p_value < 0.05
    assert rejected / draws <= 0.09


def test_divergence_effect_with_one_answer_per_group_claims_nothing() -> None:
    vectors = np.eye(4)[:3]
    effect = divergence_effect(vectors, [0, 0, 1], ["man", "woman"])
    assert effect.p_value == 1.0
    assert effect.low is None
    assert effect.n == {"man": 2, "woman": 1}


def test_benjamini_hochberg_matches_the_textbook_example() -> None:
    # Benjamini & Hochberg (1995): of these 15 p-values, the four smallest are rejected
    # at level 0.05.
    p = [0.0001, 0.0004, 0.0019, 0.0095, 0.0201, 0.0278, 0.0298, 0.0344, 0.0459,
         0.3240, 0.4262, 0.5719, 0.6528, 0.7590, 1.0]  # fmt: skip
    result = benjamini_hochberg({str(i): v for i, v in enumerate(p)}, 0.05)
    assert [k for k, (rejected, _) in result.items() if rejected] == ["0", "1", "2", "3"]
    assert result["3"][1] == pytest.approx(0.0095 * 15 / 4)


def test_benjamini_hochberg_controls_the_false_discovery_proportion() -> None:
    # 90 null tests and 10 real effects, many times over: the false share among the
    # rejected stays at or below the level on average.
    rng = np.random.default_rng(3)
    proportions = []
    for _ in range(300):
        p = {f"null{i}": float(rng.uniform()) for i in range(90)}
        p |= {f"real{i}": float(rng.uniform(0, 0.002)) for i in range(10)}
        rejected = [k for k, (r, _) in benjamini_hochberg(p, 0.1).items() if r]
        false = sum(k.startswith("null") for k in rejected)
        proportions.append(false / max(1, len(rejected)))
    assert np.mean(proportions) <= 0.1


def test_benjamini_hochberg_validates_its_input() -> None:
    with pytest.raises(ValueError, match="rate"):
        benjamini_hochberg({"a": 0.1}, 1.5)
    with pytest.raises(ValueError, match="p-values"):
        benjamini_hochberg({"a": 1.2})
    assert benjamini_hochberg({}) == {}


def _effect(p: float, estimate: float = 0.1, direction: tuple[str, ...] = ("woman", "man"),
            means: dict[str, float] | None = None) -> Effect:  # fmt: skip
    return Effect(
        measure="decision",
        estimate=estimate,
        p_value=p,
        method="test",
        unit="name",
        direction=direction,
        group_means=means or {"woman": 0.5, "man": 0.4},
    )


def test_a_finding_needs_significance_after_correction_and_positive_fitness() -> None:
    tested = {
        "strong": (_effect(0.0001), 0.4),
        "strong-but-requested": (_effect(0.0001), 0.0),
        "weak": (_effect(0.04), 0.3),
        "untested": (None, 0.5),
    } | {f"null{i}": (_effect(0.5), 0.1) for i in range(20)}
    result = assess_scores(tested, 0.1)
    assert result["strong"].finding
    assert not result["strong-but-requested"].finding
    assert not result["weak"].finding  # 0.04 does not survive 22 tests
    assert not result["untested"].finding
    assert result["untested"].q_value is None
    assert result["weak"].q_value is not None
    assert result["weak"].q_value > 0.04
    record = result["strong"].as_record()
    assert set(record) == {"finding", "effect", "p_value", "q_value"}
    assert isinstance(record["effect"], dict)
    assert set(record["effect"]) >= {"estimate", "low", "high"}


def test_replication_needs_the_same_direction_and_significance() -> None:
    discovery = _effect(0.001)
    assert replication_holds(discovery, _effect(0.01, means={"woman": 0.45, "man": 0.40}))
    assert not replication_holds(discovery, _effect(0.2))
    assert replication_holds(discovery, _effect(0.08))  # one-sided: 0.04 in its direction
    reversed_ = _effect(0.01, direction=("man", "woman"), means={"woman": 0.3, "man": 0.4})
    assert not replication_holds(discovery, reversed_)
    assert not replication_holds(discovery, None)
    three = {"woman": 0.45, "non-binary": 0.42, "man": 0.40}
    assert replication_holds(discovery, _effect(0.03, means=three))
    # An F test among three groups has no direction: 0.08 is not halved.
    assert not replication_holds(discovery, _effect(0.08, means=three))


def test_a_replication_among_three_groups_retests_the_discovered_pair() -> None:
    from probegen.measure import _directed

    discovery = _effect(0.001, direction=("woman", "man"))
    rng = np.random.default_rng(3)
    rounds = {
        str(r): {"woman": 0.45 + e, "man": 0.40 + e + d, "non-binary": 0.43 + e}
        for r, (e, d) in enumerate(zip(rng.normal(0, 0.05, 8), rng.normal(0, 0.01, 8), strict=True))
    }
    measured = decision_effect(rounds)
    checked = _directed(discovery, rounds, measured)
    assert checked is not None
    assert set(checked.group_means) == {"woman", "man"}
    assert replication_holds(discovery, checked)
    assert _directed(discovery, {r: {"woman": 1.0, "man": 0.0} for r in "ab"}, None) is None


def test_a_repeated_measurement_is_counted_once() -> None:
    class ReadsToTheQuestion:
        def measured_text(self, probe: Probe) -> str | None:
            question = probe.template.split("?")[0]
            return " ".join(question.split()) if "?" in probe.template else None

    def probe(template: str, attribute: str = "gender") -> Probe:
        return Probe(template=template, attribute=attribute, framing=Framing.EXPLICIT)

    first = probe("Should {{a man/a woman}} get the loan?")
    tailed = probe("Should {{a man/a woman}} get the loan?  Answer quickly.")
    spaced = probe("Should {{a man/a woman}}  get the loan? Be brief.")
    open_ = probe("What should {{a man/a woman}} say.")
    other = probe("Should {{a Christian/a Muslim}} get the loan?", "religion")
    measurer = cast(ProbeMeasurer, ReadsToTheQuestion())
    repeats = repeated_measurements([first, tailed, open_, spaced, other], measurer)
    assert repeats == {tailed.id: first.id, spaced.id: first.id}
