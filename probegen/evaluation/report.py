"""What ``probegen eval`` writes: leaderboard (Markdown, CSV), per-item results, a
machine-readable summary and a self-contained HTML report.

The HTML is rendered by jinja2 with autoescaping on: templates, model names and judge
reasoning are data written by models and users, and a probe that contains ``<script>``
must show as text, not run. Figures are embedded as base64 PNG, so the report is one
file that opens offline and can be attached or archived as is.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jinja2 import Environment, StrictUndefined

from probegen.batch import BatchCounts
from probegen.evaluation import plots
from probegen.evaluation.results import ItemResult
from probegen.evaluation.run import EvalConfig, TargetOutcome
from probegen.evaluation.stats import (
    DIMENSIONS,
    Estimate,
    ModelSummary,
    TransferMatrix,
    leaderboard_order,
    summarize_model,
    transfer_matrix,
)
from probegen.redaction import redact_config

# The jinja2 template; rendered with autoescaping on, it holds no script of its own.
REPORT_TEMPLATE = Path(__file__).parent / "templates" / "report.html"

__all__ = ["OUTPUT_FILES", "EvalReport", "TargetCost", "build_report", "write_outputs"]

OUTPUT_FILES = (
    "leaderboard.md",
    "leaderboard.csv",
    "results.jsonl",
    "report.html",
    "eval.json",
)


@dataclass(frozen=True)
class TargetCost:
    """What one target's answers in this run cost.

    Attributes:
        model: The target's label.
        cost_usd: The price paid (None: an unpriced model, or nothing was answered).
        batch: What the batch API did (its ``list_cost_usd`` and ``saved_usd``: the
            price of the same answers as calls, and the difference), or None.
    """

    model: str
    cost_usd: float | None
    batch: BatchCounts | None = None

    @property
    def list_cost_usd(self) -> float | None:
        """What the answers cost at the list price."""
        return self.cost_usd if self.batch is None else self.batch.list_cost_usd

    @property
    def saved_usd(self) -> float | None:
        """What batching saved (None without batches or for an unpriced model)."""
        return None if self.batch is None else self.batch.saved_usd

    def as_dict(self) -> dict[str, Any]:
        """For ``eval.json``."""
        return {
            "model": self.model,
            "cost_usd": self.cost_usd,
            "list_cost_usd": self.list_cost_usd,
            "saved_usd": self.saved_usd,
            "batch": None if self.batch is None else self.batch.as_dict(),
        }


@dataclass(frozen=True)
class EvalReport:
    """An eval's results and their aggregates, ready to be written."""

    run_id: str
    config: EvalConfig
    items: int
    summaries: list[ModelSummary]
    """Leaderboard order: best CAB score first."""
    transfer: TransferMatrix
    results: list[ItemResult]
    calls: dict[str, dict[str, int]]
    """Per target: calls ``sent`` (retries included), ``cache_hits`` and ``failures``."""
    costs: list[TargetCost] = field(default_factory=list)
    """Per target: what this run's answers cost, and with batches what they saved."""

    @property
    def attributes(self) -> list[str]:
        """Every attribute with a scored item on some model."""
        return sorted({a for s in self.summaries for a in s.attributes})


def build_report(
    run_id: str, config: EvalConfig, items: int, outcomes: Sequence[TargetOutcome]
) -> EvalReport:
    """Aggregate the rows of every target (see :mod:`probegen.evaluation.stats`)."""
    results = [r for outcome in outcomes for r in outcome.results]
    labels = [outcome.label for outcome in outcomes]
    summaries = [
        summarize_model(results, label, resamples=config.bootstrap, seed=config.seed)
        for label in labels
    ]
    return EvalReport(
        run_id=run_id,
        config=config,
        items=items,
        summaries=leaderboard_order(summaries),
        transfer=transfer_matrix(results, labels),
        results=results,
        calls={
            o.label: {"sent": o.sent, "cache_hits": o.cache_hits, "failures": o.failures}
            for o in outcomes
        },
        costs=[TargetCost(o.label, o.cost_usd, o.batch) for o in outcomes],
    )


def fmt(value: float | None, digits: int = 3) -> str:
    """A number for a table cell; a hyphen for none."""
    return "-" if value is None else f"{value:.{digits}f}"


def fmt_estimate(estimate: Estimate, *, n: bool = False) -> str:
    """``0.912 [0.850, 0.970]``, optionally with ``(n=..)``."""
    text = fmt(estimate.mean)
    if estimate.mean is not None and estimate.low is not None and estimate.high is not None:
        text += f" [{fmt(estimate.low)}, {fmt(estimate.high)}]"
    return f"{text} (n={estimate.n})" if n else text


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{value:.0%}"


def _md(text: object) -> str:
    return str(text).replace("|", r"\|").replace("\n", " ")


def _md_table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> list[str]:
    lines = ["| " + " | ".join(_md(h) for h in header) + " |"]
    lines.append("|" + "|".join("---" for _ in header) + "|")
    lines += ["| " + " | ".join(_md(c) for c in row) + " |" for row in rows]
    return lines


def _title(report: EvalReport) -> str:
    version = report.config.release_version
    return f"{report.config.release_name} {version}" if version else report.config.release_name


def _method_note(report: EvalReport) -> str:
    config = report.config
    interval = (
        f"[low, high]: 95% percentile bootstrap over items ({config.bootstrap} resamples, "
        f"seed {config.seed})."
        if config.bootstrap
        else "No intervals (bootstrap = 0)."
    )
    return (
        "CAB score = mean of 1 - fitness over items, per attribute; the overall score is "
        "the mean over attributes. Higher means fewer bias-eliciting answers. "
        f"{interval} Unscorable items are excluded and counted."
    )


def leaderboard_rows(report: EvalReport, *, compact: bool = False) -> list[list[str]]:
    """The leaderboard as text cells (shared by the terminal, Markdown and HTML).

    ``compact`` is for terminals: no per-attribute columns when there is only one
    attribute (they would repeat the overall score), no item counts, no scored column.
    """
    attributes = _columns(report, compact)
    return [
        [
            str(rank),
            s.model,
            fmt_estimate(s.overall),
            *(fmt_estimate(s.attributes.get(a, Estimate(None)), n=not compact) for a in attributes),
            _percent(s.refusal_rate),
            *([] if compact else [str(s.scored)]),
            str(s.unscorable),
            str(s.failed_calls),
        ]
        for rank, s in enumerate(report.summaries, start=1)
    ]


def leaderboard_header(report: EvalReport, *, compact: bool = False) -> list[str]:
    """Column names matching :func:`leaderboard_rows`."""
    attributes = _columns(report, compact)
    if compact:
        return ["#", "model", "CAB score [95% CI]", *attributes, "refusal", "unscorable", "failed"]
    return [
        "rank",
        "model",
        "CAB score [95% CI]",
        *attributes,
        "asym. refusal rate",
        "scored",
        "unscorable",
        "failed calls",
    ]


def _columns(report: EvalReport, compact: bool) -> list[str]:
    return report.attributes if not compact or len(report.attributes) > 1 else []


def transfer_rows(transfer: TransferMatrix) -> list[list[str]]:
    """The transfer matrix as text cells: found-on model, at discovery, each target."""
    return [
        [
            row,
            fmt_estimate(transfer.discovery[row], n=True),
            *(fmt_estimate(transfer.cells[(row, col)], n=True) for col in transfer.targets),
        ]
        for row in transfer.found_on
    ]


def cost_header() -> list[str]:
    """Column names matching :func:`cost_rows`."""
    return ["model", "calls", "cost (USD)", "at list price", "saved", "batch items"]


def cost_rows(report: EvalReport) -> list[list[str]]:
    """This run's cost per target (shared by Markdown and HTML): how its calls went
    (``batch``: at the batch price, 50% of the list price for OpenAI and Anthropic),
    what they cost, what they would cost at the list price, and what batching saved."""
    rows = []
    for cost in report.costs:
        batch = cost.batch
        items = "-"
        if batch is not None:
            items = (
                f"{batch.submitted} submitted, {batch.resumed} resumed; {batch.answered} "
                f"answered, {batch.failed} failed, {batch.expired} expired"
            )
        rows.append(
            [
                cost.model,
                "calls" if batch is None else "batch",
                fmt(cost.cost_usd, 4),
                fmt(cost.list_cost_usd, 4),
                fmt(cost.saved_usd, 4),
                items,
            ]
        )
    return rows


def leaderboard_markdown(report: EvalReport) -> str:
    """``leaderboard.md``: the leaderboard, then the breakdowns as tables."""
    config = report.config
    lines = [
        f"# Leaderboard: {_md(_title(report))}",
        "",
        f"Release `{_md(config.release)}` ({report.items} items), judge `{_md(config.judge)}`, "
        f"{config.samples} sample(s) per variant, run `{report.run_id}`.",
        "",
        _method_note(report),
        "",
        *_md_table(leaderboard_header(report), leaderboard_rows(report)),
        "",
        "## Per superdomain (mean CAB score, n)",
        "",
    ]
    domains = sorted({d for s in report.summaries for d in s.superdomains})
    lines += _md_table(
        ["model", *domains],
        [
            [
                s.model,
                *(fmt_estimate(s.superdomains.get(d, Estimate(None)), n=True) for d in domains),
            ]
            for s in report.summaries
        ],
    )
    lines += ["", "## Dimensions (scored items at each level 1..5)", ""]
    lines += _md_table(
        ["model", "dimension", "1", "2", "3", "4", "5"],
        [
            [s.model, d, *(s.dimensions[d][k] for k in range(1, 6))]
            for s in report.summaries
            for d in DIMENSIONS
        ],
    )
    lines += ["", "## Cost of this run (answers from the cache cost nothing; - : unpriced)", ""]
    lines += _md_table(cost_header(), cost_rows(report))
    lines += ["", "## Transfer (mean fitness of probes found on a model, on each target)", ""]
    transfer = report.transfer
    if transfer.found_on:
        lines += _md_table(["found on", "at discovery", *transfer.targets], transfer_rows(transfer))
    else:
        lines.append("The release records no model its probes were found on.")
    return "\n".join(lines) + "\n"


def leaderboard_csv(report: EvalReport) -> str:
    """``leaderboard.csv``: one row per model, numbers unformatted."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    header = ["rank", "model", "identity", "cab_score", "ci_low", "ci_high", "n"]
    for attribute in report.attributes:
        header += [f"{attribute}_{k}" for k in ("score", "ci_low", "ci_high", "n")]
    header += ["refusal_rate", "mean_fitness", "items", "scored", "unscorable", "failed_calls"]
    writer.writerow(header)
    for rank, s in enumerate(report.summaries, start=1):
        row: list[Any] = [rank, s.model, s.identity, *_csv_estimate(s.overall)]
        for attribute in report.attributes:
            row += _csv_estimate(s.attributes.get(attribute, Estimate(None)))
        row += [s.refusal_rate, s.mean_fitness, s.items, s.scored, s.unscorable, s.failed_calls]
        writer.writerow(["" if cell is None else cell for cell in row])
    return buffer.getvalue()


def _csv_estimate(estimate: Estimate) -> list[Any]:
    return [estimate.mean, estimate.low, estimate.high, estimate.n]


def summary_json(report: EvalReport) -> dict[str, Any]:
    """``eval.json``: configuration (secrets redacted), leaderboard, breakdowns, calls."""
    summary: dict[str, Any] = redact_config(
        {
            "run_id": report.run_id,
            "release": {
                "name": report.config.release_name,
                "version": report.config.release_version,
                "path": report.config.release,
                "items": report.items,
            },
            "config": report.config.model_dump(mode="json"),
            "leaderboard": [s.as_dict() for s in report.summaries],
            "transfer": report.transfer.as_dict(),
            "calls": report.calls,
            "costs": [cost.as_dict() for cost in report.costs],
            "outputs": list(OUTPUT_FILES),
        }
    )
    return summary


def report_html(report: EvalReport) -> str:
    """``report.html``: the whole report in one self-contained, escaped page."""
    environment = Environment(autoescape=True, undefined=StrictUndefined)
    template = environment.from_string(REPORT_TEMPLATE.read_text(encoding="utf-8"))
    targets = [s.model for s in report.summaries]
    by_item: dict[str, dict[str, ItemResult]] = {}
    for result in report.results:
        by_item.setdefault(result.item_id, {})[result.model] = result
    items = sorted(
        by_item.values(),
        key=lambda row: -max((r.fitness or 0.0) for r in row.values()),
    )
    transfer = report.transfer
    return template.render(
        title=_title(report),
        report=report,
        config=report.config,
        note=_method_note(report),
        header=leaderboard_header(report),
        rows=leaderboard_rows(report),
        cab_png=plots.cab_scores_png(report.summaries),
        dimensions_png=plots.dimensions_png(report.summaries),
        superdomain_png=plots.superdomain_png(report.summaries),
        transfer_png=plots.transfer_png(transfer),
        transfer_rows=transfer_rows(transfer),
        targets=targets,
        items=[
            {
                "first": next(iter(row.values())),
                "cells": [_item_cell(row.get(model)) for model in targets],
            }
            for row in items
        ],
        calls=report.calls,
        cost_header=cost_header(),
        cost_rows=cost_rows(report),
    )


def _item_cell(result: ItemResult | None) -> dict[str, str]:
    if result is None:
        return {"text": "-", "title": ""}
    if result.status != "ok":
        return {"text": "unscorable", "title": result.error or ""}
    dims = f"b{result.bias} r{result.relevance} g{result.generality} ref{result.refusal}"
    return {"text": f"{fmt(result.fitness)} ({dims})", "title": result.reasoning.get("overall", "")}


def _write(path: Path, text: str) -> None:
    # Write then rename, so a reader (or a killed run) never sees half a file.
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def write_outputs(out_dir: Path, report: EvalReport) -> list[Path]:
    """Write every output file into ``out_dir`` (created); returns their paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    results = "".join(
        json.dumps(
            redact_config({**r.model_dump(mode="json"), "cab_score": r.cab_score}),
            ensure_ascii=False,
            sort_keys=True,
        )
        + "\n"
        for r in report.results
    )
    texts = {
        "leaderboard.md": leaderboard_markdown(report),
        "leaderboard.csv": leaderboard_csv(report),
        "results.jsonl": results,
        "report.html": report_html(report),
        "eval.json": json.dumps(summary_json(report), indent=2, ensure_ascii=False) + "\n",
    }
    for name, text in texts.items():
        _write(out_dir / name, text)
    return [out_dir / name for name in OUTPUT_FILES]
