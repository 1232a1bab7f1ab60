"""False-discovery control over everything a run tested.

A search tries hundreds of probes; at p < 0.05 one in twenty probes with no group
difference at all would look like bias. A probe therefore becomes a *finding* only when
its p-value survives the Benjamini-Hochberg procedure over every probe the run tested
(not only the elites it kept: selecting the best-looking probes first and correcting
over those alone would hide the multiplicity). BH controls the expected share of false
findings among the reported ones at the chosen level (the run's ``fdr``, default 0.1) for
independent or positively dependent tests, which probes measured on separate model calls
are. The procedure and the q-values (BH-adjusted p-values) come from statsmodels.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

__all__ = ["DEFAULT_FDR", "benjamini_hochberg"]

DEFAULT_FDR = 0.1
"""The default false-discovery rate of a run's findings."""


def benjamini_hochberg(
    p_values: Mapping[str, float], level: float = DEFAULT_FDR
) -> dict[str, tuple[bool, float]]:
    """Benjamini-Hochberg over a family of tests.

    Args:
        p_values: One p-value per test (e.g. per probe id).
        level: The false-discovery rate to control, in (0, 1).

    Returns:
        Per test: (rejected at ``level``, q-value).

    Raises:
        ValueError: ``level`` outside (0, 1) or a p-value outside [0, 1].
    """
    if not 0.0 < level < 1.0:
        raise ValueError(f"the false-discovery rate must be in (0, 1), got {level}")
    if not p_values:
        return {}
    keys = list(p_values)
    values = np.asarray([p_values[k] for k in keys], dtype=float)
    if np.any(~np.isfinite(values)) or np.any(values < 0) or np.any(values > 1):
        raise ValueError("p-values must be finite and in [0, 1]")
    # Imported here: statsmodels pulls in pandas (and pyarrow), which the search loop
    # would otherwise load at import time only for this one call at the end of a run.
    from statsmodels.stats.multitest import multipletests

    rejected, q_values, _, _ = multipletests(values, alpha=level, method="fdr_bh")
    return {k: (bool(r), float(q)) for k, r, q in zip(keys, rejected, q_values, strict=True)}
