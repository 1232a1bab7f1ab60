"""Inter-rater agreement: Cohen's kappa per pair of reviewers, Krippendorff's alpha over
all of them.

What is compared: each reviewer's current verdict on each item, ``accept`` or
``reject``. An edit or relabel keeps the probe (with a fix), so it counts as ``accept``;
a skip is no verdict and is left out.

Degenerate cases return numbers, never NaN: when chance agreement is total (every label
from both raters is one and the same category), kappa is 1.0, since the raters agree
perfectly and there is no disagreement to measure; likewise alpha is 1.0 when the
pairable values show no variation at all. With no pairable data there is nothing to
measure, and the functions raise ValueError (the report shows None).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import combinations, permutations
from typing import Any

from probegen.review.decisions import Decision, ItemKey, latest_decisions
from probegen.store import Store

__all__ = [
    "AgreementReport",
    "PairAgreement",
    "agreement_report",
    "cohens_kappa",
    "krippendorff_alpha_nominal",
]


def cohens_kappa(a: Sequence[str | None], b: Sequence[str | None]) -> float:
    """Cohen's kappa between two raters, over the items both labelled.

    Args:
        a: Rater A's label per item (None where A did not label it).
        b: Rater B's label for the same items, in the same order.

    Returns:
        ``(p_o - p_e) / (1 - p_e)``; 1.0 when ``p_e`` is 1 (both used one category only).

    Raises:
        ValueError: If the sequences differ in length or share no labelled item.
    """
    if len(a) != len(b):
        raise ValueError(f"rater sequences differ in length ({len(a)} vs {len(b)})")
    pairs = [(x, y) for x, y in zip(a, b, strict=True) if x is not None and y is not None]
    if not pairs:
        raise ValueError("no item is labelled by both raters")
    n = len(pairs)
    observed = sum(1 for x, y in pairs if x == y) / n
    count_a = Counter(x for x, _ in pairs)
    count_b = Counter(y for _, y in pairs)
    expected = sum(count_a[c] * count_b[c] for c in count_a) / (n * n)
    if expected >= 1.0:
        return 1.0  # one shared category: observed is 1 too, i.e. perfect agreement
    return (observed - expected) / (1.0 - expected)


def krippendorff_alpha_nominal(units: Mapping[Any, Mapping[Any, Hashable]]) -> float:
    """Krippendorff's alpha for nominal labels, with missing data.

    Args:
        units: ``{unit: {rater: label}}``; a rater missing from a unit did not label
            it. Units with fewer than two labels are not pairable and are ignored.

    Returns:
        ``1 - D_o / D_e`` from the coincidence matrix; 1.0 when ``D_e`` is 0 (no
        variation in the pairable values).

    Raises:
        ValueError: If no unit has two or more labels.
    """
    coincidence: defaultdict[tuple[Hashable, Hashable], float] = defaultdict(float)
    for labels in units.values():
        values = list(labels.values())
        m = len(values)
        if m < 2:
            continue
        # Each ordered pair of values from different raters adds 1/(m-1), so every
        # pairable value contributes exactly 1 to the matrix's total n.
        for x, y in permutations(values, 2):
            coincidence[(x, y)] += 1.0 / (m - 1)
    if not coincidence:
        raise ValueError("no unit is labelled by two or more raters")
    totals: defaultdict[Hashable, float] = defaultdict(float)
    for (x, _), weight in coincidence.items():
        totals[x] += weight
    n = sum(totals.values())
    disagreeing = sum(w for (x, y), w in coincidence.items() if x != y)
    expected = sum(totals[x] * totals[y] for x, y in permutations(totals, 2))
    if expected == 0:
        return 1.0  # a single value throughout: nothing varies, nothing disagrees
    return 1.0 - (n - 1) * disagreeing / expected


@dataclass(frozen=True)
class PairAgreement:
    """Cohen's kappa for one pair of reviewers.

    Attributes:
        a: One reviewer's name.
        b: The other's.
        n: Items both gave a verdict on.
        kappa: Cohen's kappa over those items.
    """

    a: str
    b: str
    n: int
    kappa: float


@dataclass(frozen=True)
class AgreementReport:
    """Agreement over the current verdicts in the store.

    Attributes:
        pairs: Kappa for each pair of reviewers with at least one item in common.
        alpha: Krippendorff's alpha over all reviewers, or None when no item has two
            verdicts.
        items: Items with at least one verdict.
        pairable_items: Items with two or more verdicts (what alpha is computed on).
        counts: Current decisions by action (skips included).
    """

    pairs: tuple[PairAgreement, ...]
    alpha: float | None
    items: int
    pairable_items: int
    counts: dict[str, int] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (for JSON output and the web app)."""
        return {
            "pairs": [{"a": p.a, "b": p.b, "n": p.n, "kappa": p.kappa} for p in self.pairs],
            "alpha": self.alpha,
            "items": self.items,
            "pairable_items": self.pairable_items,
            "counts": dict(self.counts),
        }


def agreement_report(
    store: Store,
    run_ids: Sequence[str] | None = None,
    counted: Callable[[Decision], bool] | None = None,
) -> AgreementReport:
    """Kappa per reviewer pair, alpha overall and decision counts.

    Args:
        store: The run store.
        run_ids: Only these runs' items (default: all).
        counted: Only the current decisions this admits (a release passes the rule it
            counts decisions by); default: all.
    """
    wanted = set(run_ids) if run_ids else None
    decisions = [
        d
        for d in latest_decisions(store)
        if (wanted is None or d.run_id in wanted) and (counted is None or counted(d))
    ]
    counts = Counter(d.action for d in decisions)
    units: dict[ItemKey, dict[str, str]] = defaultdict(dict)
    for d in decisions:
        if d.verdict is not None:
            units[d.key][d.reviewer] = d.verdict
    reviewers = sorted({name for labels in units.values() for name in labels})
    pairs = []
    for a, b in combinations(reviewers, 2):
        shared = [labels for labels in units.values() if a in labels and b in labels]
        if shared:
            kappa = cohens_kappa([u[a] for u in shared], [u[b] for u in shared])
            pairs.append(PairAgreement(a=a, b=b, n=len(shared), kappa=kappa))
    pairable = sum(1 for labels in units.values() if len(labels) >= 2)
    return AgreementReport(
        pairs=tuple(pairs),
        alpha=krippendorff_alpha_nominal(units) if pairable else None,
        items=len(units),
        pairable_items=pairable,
        counts={action: counts[action] for action in sorted(counts)},
    )
