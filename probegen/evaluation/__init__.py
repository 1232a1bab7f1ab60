"""Benchmark evaluation (``probegen eval``): score a release on target models.

- :mod:`~probegen.evaluation.run`: query every item on every target and score it,
  through the runner, the run store's cache and the scorers (the I/O half).
- :mod:`~probegen.evaluation.stats`: pure aggregation: CAB scores with bootstrap
  intervals, dimension distributions, refusal rates, superdomains, transfer.
- :mod:`~probegen.evaluation.report` and :mod:`~probegen.evaluation.plots`: the
  leaderboard, ``results.jsonl``, ``eval.json`` and the self-contained HTML report.
"""

from probegen.evaluation.report import EvalReport, build_report, write_outputs
from probegen.evaluation.results import ItemResult
from probegen.evaluation.run import (
    EvalConfig,
    TargetOutcome,
    evaluate_release,
    evaluate_target,
    load_release,
)
from probegen.evaluation.stats import (
    Estimate,
    ModelSummary,
    TransferMatrix,
    bootstrap_mean,
    stratified_bootstrap_mean,
    summarize_model,
    transfer_matrix,
)

__all__ = [
    "Estimate",
    "EvalConfig",
    "EvalReport",
    "ItemResult",
    "ModelSummary",
    "TargetOutcome",
    "TransferMatrix",
    "bootstrap_mean",
    "build_report",
    "evaluate_release",
    "evaluate_target",
    "load_release",
    "stratified_bootstrap_mean",
    "summarize_model",
    "transfer_matrix",
    "write_outputs",
]
