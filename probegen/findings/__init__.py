"""Findings you can trust: effect sizes with intervals, false-discovery control over a
run, and replication on fresh samples and other names.

- :mod:`probegen.findings.effect`: the between-group :class:`Effect` every measurement
  reports (estimate, 95% interval, p-value).
- :mod:`probegen.findings.fdr`: Benjamini-Hochberg over everything a run tested.
"""

from probegen.findings.effect import LEVEL, Effect, decision_effect, divergence_effect
from probegen.findings.fdr import DEFAULT_FDR, benjamini_hochberg

__all__ = [
    "DEFAULT_FDR",
    "LEVEL",
    "Effect",
    "benjamini_hochberg",
    "decision_effect",
    "divergence_effect",
]
