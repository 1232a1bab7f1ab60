"""The report's figures, as base64 PNG strings ready for ``<img src="data:...">``.

Figures are drawn on matplotlib's object API with the Agg canvas (no pyplot, no global
state, no display), so plotting works headless and from any thread, and the HTML report
stays one self-contained file.
"""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Sequence

import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from probegen.evaluation.stats import DIMENSIONS, Estimate, ModelSummary, TransferMatrix

__all__ = ["cab_scores_png", "dimensions_png", "superdomain_png", "transfer_png"]

_MAX_LABEL = 36


def _label(text: str) -> str:
    # "$" would start matplotlib mathtext; long specs would swamp the axes.
    short = text if len(text) <= _MAX_LABEL else text[: _MAX_LABEL - 1] + "…"
    return short.replace("$", r"\$")


def _png(figure: Figure) -> str:
    FigureCanvasAgg(figure)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _grouped_bars(
    axes: Axes, categories: Sequence[str], series: Sequence[tuple[str, Sequence[float]]]
) -> np.ndarray:
    """Draw one bar per series within each category; returns the category centres."""
    centres = np.arange(len(categories), dtype=float)
    width = 0.8 / max(1, len(series))
    for index, (name, values) in enumerate(series):
        offset = (index - (len(series) - 1) / 2) * width
        axes.bar(centres + offset, values, width, label=_label(name))
    axes.set_xticks(centres, [_label(c) for c in categories])
    return centres


def cab_scores_png(summaries: Sequence[ModelSummary]) -> str:
    """CAB score per attribute (and overall) per model, with the 95% intervals."""
    attributes = sorted({a for s in summaries for a in s.attributes})
    categories = [*attributes, "overall"]
    figure = Figure(figsize=(max(5.0, 1.2 * len(categories) * max(1, len(summaries)) ** 0.5), 3.6))
    axes = figure.add_subplot()
    width = 0.8 / max(1, len(summaries))
    centres = np.arange(len(categories), dtype=float)
    for index, summary in enumerate(summaries):
        estimates = [summary.attributes.get(a, Estimate(None)) for a in attributes]
        estimates.append(summary.overall)
        means = [e.mean if e.mean is not None else math.nan for e in estimates]
        below = [
            e.mean - e.low if e.mean is not None and e.low is not None else 0.0 for e in estimates
        ]
        above = [
            e.high - e.mean if e.mean is not None and e.high is not None else 0.0 for e in estimates
        ]
        offset = (index - (len(summaries) - 1) / 2) * width
        axes.bar(
            centres + offset, means, width, yerr=[below, above], capsize=3,
            label=_label(summary.model),
        )  # fmt: skip
    axes.set_xticks(centres, [_label(c) for c in categories])
    axes.set_ylim(0.0, 1.05)
    axes.set_ylabel("CAB score (1 - fitness)")
    axes.set_title("CAB score per attribute, 95% bootstrap interval (higher: less bias)")
    axes.legend(
        fontsize="small",
        loc="upper center",
        bbox_to_anchor=(0.5, -0.1),
        ncol=min(3, max(1, len(summaries))),
    )
    return _png(figure)


def dimensions_png(summaries: Sequence[ModelSummary]) -> str:
    """Share of scored items at each level 1..5 of bias, relevance and generality."""
    figure = Figure(figsize=(12.0, 3.4))
    titles = {"generality": "generality (acknowledgment)"}
    for position, name in enumerate(DIMENSIONS, start=1):
        axes = figure.add_subplot(1, len(DIMENSIONS), position)
        series = []
        for summary in summaries:
            counts = summary.dimensions[name]
            total = sum(counts.values()) or 1
            series.append((summary.model, [counts[level] / total for level in range(1, 6)]))
        _grouped_bars(axes, [str(level) for level in range(1, 6)], series)
        axes.set_ylim(0.0, 1.0)
        axes.set_title(titles.get(name, name))
        if position == 1:
            axes.set_ylabel("share of scored items")
            axes.legend(fontsize="small")
    return _png(figure)


def _heatmap(
    matrix: np.ndarray,
    rows: Sequence[str],
    columns: Sequence[str],
    notes: Sequence[Sequence[str]],
    *,
    title: str,
    colour: str,
    vmax: float,
    colour_label: str,
    row_title: str | None = None,
) -> str:
    figure = Figure(figsize=(max(4.5, 1.3 * len(columns) + 3.0), max(2.2, 0.55 * len(rows) + 1.4)))
    axes = figure.add_subplot()
    image = axes.imshow(
        np.ma.masked_invalid(matrix), cmap=colour, vmin=0.0, vmax=vmax, aspect="auto"
    )
    axes.set_xticks(range(len(columns)), [_label(c) for c in columns], rotation=30, ha="right")
    axes.set_yticks(range(len(rows)), [_label(r) for r in rows])
    for i, row in enumerate(notes):
        for j, note in enumerate(row):
            # Dark cells get white text, light cells black, whatever the colour map.
            red, green, blue, _ = image.cmap(image.norm(matrix[i, j]))
            dark = np.isfinite(matrix[i, j]) and 0.299 * red + 0.587 * green + 0.114 * blue < 0.5
            axes.text(
                j, i, note, ha="center", va="center", fontsize="small",
                color="white" if dark else "black",
            )  # fmt: skip
    if row_title:
        axes.set_ylabel(row_title)
    axes.set_title(title)
    figure.colorbar(image, ax=axes, label=colour_label)
    return _png(figure)


def _cell(estimate: Estimate) -> tuple[float, str]:
    if estimate.mean is None:
        return math.nan, "-"
    return estimate.mean, f"{estimate.mean:.2f}\nn={estimate.n}"


def superdomain_png(summaries: Sequence[ModelSummary]) -> str | None:
    """Heat map of the mean CAB score per model (rows) and superdomain (columns)."""
    columns = sorted({d for s in summaries for d in s.superdomains})
    if not summaries or not columns:
        return None
    cells = [[_cell(s.superdomains.get(d, Estimate(None))) for d in columns] for s in summaries]
    return _heatmap(
        np.array([[value for value, _ in row] for row in cells], dtype=float),
        [s.model for s in summaries],
        columns,
        [[note for _, note in row] for row in cells],
        title="CAB score per superdomain",
        colour="RdYlGn",
        vmax=1.0,
        colour_label="CAB score",
    )


def transfer_png(transfer: TransferMatrix) -> str | None:
    """Heat map of the mean fitness of probes found on each model (rows) on each target."""
    if not transfer.found_on or not transfer.targets:
        return None
    cells = [[_cell(transfer.cells[(r, c)]) for c in transfer.targets] for r in transfer.found_on]
    matrix = np.array([[value for value, _ in row] for row in cells], dtype=float)
    finite = matrix[np.isfinite(matrix)]
    return _heatmap(
        matrix,
        transfer.found_on,
        transfer.targets,
        [[note for _, note in row] for row in cells],
        title="Transfer: mean fitness of probes found on one model, on each target",
        colour="Reds",
        vmax=max(0.05, float(finite.max()) if finite.size else 0.0),
        colour_label="mean fitness",
        row_title="found on",
    )
