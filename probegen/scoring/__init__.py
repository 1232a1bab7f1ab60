"""Scorers: CAB's four dimensions and fitness for one probe's answers, behind one protocol.

- ``stats`` (:class:`StatsScorer`): the offline default; embeddings and phrase detectors,
  no LLM.
- ``judge:SPEC`` (:class:`JudgeScorer`): CAB's comparative rubric judge on any model spec
  (``judge:openai:gpt-4o``, ``judge:anthropic:claude-sonnet-4-5``, a preset name).

Build one from a scorer spec (the ``judge`` setting) with :func:`make_scorer`.
"""

from __future__ import annotations

from probegen.errors import ConfigError
from probegen.models.base import ChatModel, ResponseCache
from probegen.models.managed import Model
from probegen.models.registry import resolve_model
from probegen.scoring.base import Score, Scorer, cab_fitness
from probegen.scoring.judge import JudgeScorer
from probegen.scoring.stats import StatsScorer

__all__ = [
    "JudgeScorer",
    "Score",
    "Scorer",
    "StatsScorer",
    "cab_fitness",
    "judge_model_spec",
    "make_scorer",
]

_FIX = "use stats (offline, no LLM) or judge:MODEL_SPEC, e.g. judge:openai:gpt-4o"


def make_scorer(
    spec: str,
    *,
    base_url: str | None = None,
    cache: ResponseCache | None = None,
    timeout_s: float | None = None,
    repeats: int = 1,
    backend: ChatModel | None = None,
) -> Scorer:
    """Build the scorer named by a scorer spec (the ``judge`` setting).

    Args:
        spec: ``stats`` or ``judge:MODEL_SPEC``.
        base_url: Endpoint of the judge model (``judge:`` only).
        cache: Response cache for the judge's calls (``judge:`` only), e.g. the run store.
        timeout_s: Per-attempt timeout of the judge's calls (``judge:`` only).
        repeats: Verdicts per probe in different persona orders (``judge:`` only); with
            more than one the score reports their spread.
        backend: The judge model, already built (``judge:`` only): used instead of
            resolving the spec's model, so a run builds (and loads) its judge once, and a
            judge passed as an object or a Python function needs no spec to resolve.

    Raises:
        ConfigError: The spec names no scorer (``judge``), or ``base_url`` is given for
            ``stats`` (``judge_base_url``).
        ModelSpecError: The judge's model spec is unknown.
        ModelUnavailableError: The judge's SDK, key or weights, or the embedder, are missing.
    """
    model_spec = judge_model_spec(spec)
    if model_spec is None:
        if base_url:
            raise ConfigError(
                "judge_base_url",
                "applies only to a judge:MODEL_SPEC `judge`",
                fix="drop it, or name a judge model",
            )
        return StatsScorer()
    if backend is None:
        backend = resolve_model(model_spec, base_url=base_url, timeout_s=timeout_s)
    return JudgeScorer(Model(backend, cache=cache), repeats=repeats)


def judge_model_spec(spec: str) -> str | None:
    """The model spec of a ``judge:MODEL_SPEC`` scorer spec, or None for ``stats``.

    Raises:
        ConfigError: The spec names no scorer (names ``judge``).
    """
    text = spec.strip()
    if text == "stats":
        return None
    prefix, _, model_spec = text.partition(":")
    if prefix == "judge" and model_spec.strip():
        return model_spec.strip()
    raise ConfigError("judge", "unknown scorer", value=repr(spec), fix=_FIX)
