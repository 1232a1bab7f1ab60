"""How the scorer agrees with the reviewers: is high fitness what humans call bias?

Per run, over the items whose reviewers reached a verdict (the majority of their current
accept/reject verdicts; a tie is no verdict):

- **ROC AUC** of fitness against the human verdict: the chance that a probe reviewers
  kept has higher fitness than one they rejected (ties count half). 0.5 is a scorer that
  knows nothing, 1.0 one that ranks every kept probe above every rejected one. From the
  Mann-Whitney U statistic (scipy.stats), with a percentile bootstrap interval over items.
- **Agreement at the release threshold**: the scorer's verdict is "finding" (the
  release default); its agreement with the humans is the share of items where both say
  the same, and Cohen's kappa (statsmodels) corrects that share for chance.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats
from statsmodels.stats.inter_rater import cohens_kappa

from probegen.review.decisions import latest_decisions
from probegen.store import Store

__all__ = ["ScorerAgreement", "human_verdicts", "scorer_agreement"]


@dataclass(frozen=True)
class ScorerAgreement:
    """Scorer-human agreement on one run's reviewed items.

    Attributes:
        run_id: The run.
        items: Items with a human verdict.
        kept: Of those, kept by the reviewers (accept, edit or relabel).
        auc: ROC AUC of fitness against the verdict (None without both verdicts).
        auc_low: Lower end of its 95% bootstrap interval.
        auc_high: Upper end.
        agreement: Share of items where "finding" and the human verdict agree.
        kappa: Cohen's kappa of the same (None when it is undefined).
    """

    run_id: str
    items: int
    kept: int
    auc: float | None
    auc_low: float | None
    auc_high: float | None
    agreement: float | None
    kappa: float | None

    def to_json(self) -> dict[str, Any]:
        """JSON-ready form."""
        return dict(self.__dict__)


def human_verdicts(
    store: Store, run_ids: Sequence[str] | None = None
) -> dict[tuple[str, str], bool]:
    """Per (run, probe): True when most current verdicts keep it, False when most reject
    it; items with a tie or no verdict are left out."""
    votes: dict[tuple[str, str], list[bool]] = defaultdict(list)
    wanted = set(run_ids) if run_ids else None
    for decision in latest_decisions(store):
        if decision.verdict is None or (wanted is not None and decision.run_id not in wanted):
            continue
        votes[(decision.run_id, decision.probe_id)].append(decision.verdict == "accept")
    return {key: sum(v) > len(v) / 2 for key, v in votes.items() if sum(v) * 2 != len(v)}


def _auc(kept: np.ndarray, rejected: np.ndarray) -> float:
    u = stats.mannwhitneyu(kept, rejected, alternative="two-sided").statistic
    return float(u) / (len(kept) * len(rejected))


def scorer_agreement(
    store: Store, run_ids: Sequence[str] | None = None, *, seed: int = 0
) -> list[ScorerAgreement]:
    """Scorer-human agreement per run with reviewed elites (see the module docstring)."""
    verdicts = human_verdicts(store, run_ids)
    runs = sorted({run for run, _ in verdicts})
    report = []
    for run_id in runs:
        elites = {e.probe_id: e for e in store.elites(run_id)}
        rows = [
            (elites[pid].fitness, elites[pid].finding, kept)
            for (run, pid), kept in verdicts.items()
            if run == run_id and pid in elites
        ]
        if not rows:
            continue
        fitness = np.asarray([r[0] for r in rows], dtype=float)
        finding = np.asarray([r[1] for r in rows], dtype=bool)
        kept = np.asarray([r[2] for r in rows], dtype=bool)
        auc = low = high = None
        if kept.any() and (~kept).any():
            auc = _auc(fitness[kept], fitness[~kept])
            if kept.sum() >= 2 and (~kept).sum() >= 2:  # a bootstrap needs two of each
                boot = stats.bootstrap(
                    (fitness[kept], fitness[~kept]),
                    lambda a, b: _auc(a, b),
                    vectorized=False,
                    paired=False,
                    n_resamples=1000,
                    method="percentile",
                    rng=np.random.default_rng(seed),
                )
                low = float(boot.confidence_interval.low)
                high = float(boot.confidence_interval.high)
        table = np.array(
            [
                [np.sum(finding & kept), np.sum(finding & ~kept)],
                [np.sum(~finding & kept), np.sum(~finding & ~kept)],
            ]
        )
        agreement = float(np.mean(finding == kept))
        kappa: float | None = None
        if table.sum(axis=0).all() or table.sum(axis=1).all():
            value = float(cohens_kappa(table, return_results=False))
            kappa = value if np.isfinite(value) else None
        report.append(
            ScorerAgreement(
                run_id=run_id,
                items=len(rows),
                kept=int(kept.sum()),
                auc=auc,
                auc_low=low,
                auc_high=high,
                agreement=agreement,
                kappa=kappa,
            )
        )
    return report
