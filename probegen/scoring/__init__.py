"""Scorers: CAB's four dimensions and fitness for one probe's answers, behind one protocol.

- ``stats`` (:class:`StatsScorer`): the offline default; embeddings and phrase detectors,
  no LLM.
- ``judge:SPEC`` (:class:`JudgeScorer`): CAB's comparative rubric judge on any model spec
  (``judge:openai:gpt-4o``, ``judge:anthropic:claude-sonnet-4-5``, a preset name).

Build one from the ``--judge`` value with :func:`make_scorer`.
"""

from __future__ import annotations

from probegen.errors import UsageError
from probegen.models.base import ResponseCache
from probegen.models.managed import Model
from probegen.models.registry import resolve_model
from probegen.scoring.base import Score, Scorer, cab_fitness
from probegen.scoring.judge import JudgeScorer
from probegen.scoring.stats import StatsScorer

__all__ = ["JudgeScorer", "Score", "Scorer", "StatsScorer", "cab_fitness", "make_scorer"]

_FIX = "use --judge stats (offline, no LLM) or --judge judge:MODEL_SPEC, e.g. judge:openai:gpt-4o"


def make_scorer(
    spec: str,
    *,
    base_url: str | None = None,
    cache: ResponseCache | None = None,
    timeout_s: float | None = None,
    repeats: int = 1,
) -> Scorer:
    """Build the scorer named by a ``--judge`` value.

    Args:
        spec: ``stats`` or ``judge:MODEL_SPEC``.
        base_url: Endpoint of the judge model (``judge:`` only).
        cache: Response cache for the judge's calls (``judge:`` only), e.g. the run store.
        timeout_s: Per-attempt timeout of the judge's calls (``judge:`` only).
        repeats: Verdicts per probe in different persona orders (``judge:`` only); with
            more than one the score reports their spread.

    Raises:
        UsageError: The spec names no scorer, or ``base_url`` is given for ``stats``.
        ModelSpecError: The judge's model spec is unknown.
        ModelUnavailableError: The judge's SDK, key or weights, or the embedder, are missing.
    """
    text = spec.strip()
    if text == "stats":
        if base_url:
            raise UsageError(
                "--judge-base-url applies only to --judge judge:MODEL_SPEC",
                fix="drop --judge-base-url, or name a judge model",
            )
        return StatsScorer()
    prefix, _, model_spec = text.partition(":")
    if prefix == "judge" and model_spec.strip():
        backend = resolve_model(model_spec.strip(), base_url=base_url, timeout_s=timeout_s)
        return JudgeScorer(Model(backend, cache=cache), repeats=repeats)
    raise UsageError(f"--judge {spec!r}: unknown scorer", fix=_FIX)
