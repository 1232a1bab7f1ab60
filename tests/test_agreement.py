"""Agreement statistics against values worked out by hand and published examples."""

from __future__ import annotations

import pytest

from probegen.review import cohens_kappa, krippendorff_alpha_nominal


def test_kappa_on_the_textbook_2x2_table() -> None:
    # Wikipedia "Cohen's kappa": 50 grant proposals; yes/yes 20, yes/no 5, no/yes 10,
    # no/no 15. p_o = 35/50 = 0.7; p_e = 0.5 * 0.6 + 0.5 * 0.4 = 0.5; kappa = 0.4.
    a = ["yes"] * 25 + ["no"] * 25
    b = ["yes"] * 20 + ["no"] * 5 + ["yes"] * 10 + ["no"] * 15
    assert cohens_kappa(a, b) == pytest.approx(0.4)


def test_kappa_counts_only_items_both_labelled() -> None:
    # Over items 1-3: p_o = 2/3, p_e = (2/3)(1) + (1/3)(0) = 2/3, so kappa = 0.
    assert cohens_kappa(["a", "a", "b", None], ["a", "a", "a", "b"]) == pytest.approx(0.0)
    # Complete disagreement on two categories: p_o = 0, p_e = 0.5, kappa = -1.
    assert cohens_kappa(["a", "b"], ["b", "a"]) == pytest.approx(-1.0)


def test_kappa_edge_cases_are_numbers_not_nan() -> None:
    assert cohens_kappa(["a", "b", "a"], ["a", "b", "a"]) == 1.0
    assert cohens_kappa(["accept"] * 4, ["accept"] * 4) == 1.0  # p_e = 1: defined as 1
    with pytest.raises(ValueError, match="both"):
        cohens_kappa(["a", None], [None, "b"])
    with pytest.raises(ValueError, match="length"):
        cohens_kappa(["a"], ["a", "b"])


def test_alpha_on_krippendorffs_published_example_with_missing_data() -> None:
    # Krippendorff (2011), "Computing Krippendorff's alpha-reliability", section C:
    # 4 observers, 12 units, values 1-5, gaps; n = 40 pairable values, off-diagonal
    # coincidences 8, sum of n_c n_k (c != k) 1216: alpha = 1 - 39 * 8 / 1216 = 0.743.
    n = None
    observers = {
        "A": [1, 2, 3, 3, 2, 1, 4, 1, 2, n, n, n],
        "B": [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, n, 3],
        "C": [n, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, n],
        "D": [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, n],
    }
    units = {
        unit: {o: values[unit] for o, values in observers.items() if values[unit] is not None}
        for unit in range(12)
    }
    assert krippendorff_alpha_nominal(units) == pytest.approx(113 / 152)  # 0.7434


def test_alpha_by_hand_and_units_with_one_label_are_ignored() -> None:
    # Values x, x | x, y: o_xx = 2, o_xy = o_yx = 1; n_x = 3, n_y = 1, n = 4.
    # alpha = 1 - (n - 1) * 2 / (n_x n_y + n_y n_x) = 1 - 3 * 2 / 6 = 0.
    units = {1: {"a": "x", "b": "x"}, 2: {"a": "x", "b": "y"}, 3: {"a": "y"}}
    assert krippendorff_alpha_nominal(units) == pytest.approx(0.0)


def test_alpha_edge_cases() -> None:
    assert krippendorff_alpha_nominal({1: {"a": "x", "b": "x"}, 2: {"a": "y", "b": "y"}}) == 1.0
    # One value throughout: D_e = 0, defined as 1.0 rather than NaN.
    assert krippendorff_alpha_nominal({1: {"a": "x", "b": "x", "c": "x"}}) == 1.0
    with pytest.raises(ValueError, match="two or more"):
        krippendorff_alpha_nominal({1: {"a": "x"}, 2: {}})
