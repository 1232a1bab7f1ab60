"""Scorers: CAB's four dimensions and fitness for one probe's answers, behind one protocol.

- ``stats`` (:class:`StatsScorer`): the offline default; embeddings and phrase detectors,
  no LLM.
- ``judge:SPEC`` (:class:`JudgeScorer`): CAB's comparative rubric judge on any model spec
  (``judge:openai:gpt-4o``, ``judge:anthropic:claude-sonnet-4-5``, a preset name).

Build one from a scorer spec (the ``judge`` setting), ``NAME`` or ``NAME:ARG``, with
:func:`make_scorer`. Scorers are found in :data:`SCORERS`: the two above are registered
in code, and a package adds its own through the ``probegen.scorers`` entry-point group,
naming a :data:`ScorerFactory`::

    [project.entry-points."probegen.scorers"]
    myscorer = "my_package.scoring:make_my_scorer"   # judge = "myscorer" or "myscorer:ARG"
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

from probegen.embeddings import TextEmbedder
from probegen.errors import ConfigError
from probegen.models.base import ChatModel, ResponseCache
from probegen.models.managed import CallGatherer, Model
from probegen.models.registry import resolve_model
from probegen.plugins import Registry
from probegen.scoring.base import Score, Scorer, cab_fitness
from probegen.scoring.judge import JudgeScorer
from probegen.scoring.stats import StatsReading, StatsScorer

__all__ = [
    "ENTRY_POINT_GROUP",
    "SCORERS",
    "JudgeScorer",
    "Score",
    "Scorer",
    "ScorerFactory",
    "StatsScorer",
    "cab_fitness",
    "judge_model_spec",
    "make_scorer",
    "resolved_scorer_spec",
]

_FIX = (
    "use stats (offline, no LLM; stats:continuous to read whole answers, stats:adjusted "
    "for the stepped level, stats:plain for the unadjusted many-group gap) or "
    "judge:MODEL_SPEC, e.g. judge:openai:gpt-4o"
)

ENTRY_POINT_GROUP = "probegen.scorers"
STATS_OPTIONS = ("", "sentences", "continuous", "adjusted", "plain")
"""What may follow ``stats:``: nothing or ``sentences`` (the default: ``continuous`` on
answers read by their sentences; chosen again on 2026-12-07 after every set was
re-measured with independent draws), ``continuous`` (the many-group gap less its
no-bias level, fitness from its level read between the thresholds, on whole answers:
the default until 2026-12-07 and for part of that day), ``adjusted`` (the same gap, the
stepped level: the default until 2026-12-05), ``plain`` (the largest gap itself, the
stepped level)."""

ScorerFactory = Callable[..., Scorer]
"""``factory(arg, **options) -> Scorer``: ``arg`` is what follows ``NAME:`` in the spec
(``""`` for none); ``options`` are :func:`make_scorer`'s keywords (``base_url``,
``cache``, ``timeout_s``, ``repeats``, ``backend``, ``embedder``), which a factory takes
or ignores. It raises :class:`ConfigError` naming ``judge`` for an argument it refuses."""


def _scorer_factory(name: str, loaded: object) -> ScorerFactory:
    if not callable(loaded):
        raise ValueError(
            f"is not a scorer factory (a {type(loaded).__name__}): name a function "
            "factory(arg, **options) -> Scorer"
        )
    return loaded


SCORERS: Registry[ScorerFactory] = Registry(ENTRY_POINT_GROUP, "scorer", check=_scorer_factory)
"""The scorers by name: ``stats`` and ``judge``, then the ``probegen.scorers`` entry points."""


def make_scorer(
    spec: str,
    *,
    base_url: str | None = None,
    cache: ResponseCache | None = None,
    timeout_s: float | None = None,
    repeats: int = 1,
    backend: ChatModel | None = None,
    embedder: TextEmbedder | None = None,
    gather: CallGatherer | None = None,
) -> Scorer:
    """Build the scorer named by a scorer spec (the ``judge`` setting).

    Args:
        spec: ``stats``, ``judge:MODEL_SPEC``, or ``NAME[:ARG]`` of a scorer in
            :data:`SCORERS` (a plugin's).
        base_url: Endpoint of the judge model (``judge:`` only).
        cache: Response cache for the judge's calls (``judge:`` only), e.g. the run store.
        timeout_s: Per-attempt timeout of the judge's calls (``judge:`` only).
        repeats: Verdicts per probe in different persona orders (``judge:`` only); with
            more than one the score reports their spread.
        backend: The judge model, already built (``judge:`` only): used instead of
            resolving the spec's model, so a run builds (and loads) its judge once, and a
            judge passed as an object or a Python function needs no spec to resolve.
        embedder: The sentence embedder of a ``stats`` scorer, already built: a run
            shares its index's, so the model loads once and one cache serves both.
        gather: Where the judge's calls go instead of its backend (``judge:`` only),
            e.g. a :class:`~probegen.batch.gather.BatchGatherer` for an eval with ``batch``.

    Raises:
        ConfigError: The spec names no scorer (``judge``), or ``base_url`` is given for
            ``stats`` (``judge_base_url``).
        ModelSpecError: The judge's model spec is unknown.
        ModelUnavailableError: The judge's SDK, key or weights, or the embedder, are missing.
        UsageError: A scorer plugin fails to load (naming its entry point).
    """
    judge_model_spec(spec)  # an unknown name or a bare ``judge`` fails here, alike
    name, _, arg = spec.strip().partition(":")
    return SCORERS.get(name)(
        arg.strip(),
        base_url=base_url,
        cache=cache,
        timeout_s=timeout_s,
        repeats=repeats,
        backend=backend,
        embedder=embedder,
        **({"gather": gather} if gather is not None else {}),  # plugins need not know it
    )


def _stats(
    arg: str, *, base_url: str | None = None, embedder: TextEmbedder | None = None, **_: Any
) -> Scorer:
    if base_url:
        raise ConfigError(
            "judge_base_url",
            "applies only to a judge:MODEL_SPEC `judge`",
            fix="drop it, or name a judge model",
        )
    # "sentences" is how runs and scores name the default reading (resolved_scorer_spec).
    if arg not in STATS_OPTIONS:
        raise ConfigError("judge", "unknown stats option", value=f"stats:{arg}", fix=_FIX)
    return StatsScorer(embedder, reading=cast(StatsReading, arg or "sentences"))


def _judge(
    arg: str,
    *,
    base_url: str | None = None,
    cache: ResponseCache | None = None,
    timeout_s: float | None = None,
    repeats: int = 1,
    backend: ChatModel | None = None,
    gather: CallGatherer | None = None,
    **_: Any,
) -> Scorer:
    if backend is None:
        backend = resolve_model(arg, base_url=base_url, timeout_s=timeout_s)
    return JudgeScorer(Model(backend, cache=cache, gather=gather), repeats=repeats)


SCORERS.register("stats", _stats)
SCORERS.register("judge", _judge)


def resolved_scorer_spec(spec: str) -> str:
    """``spec`` with the reading a bare ``stats`` stands for spelled out
    (``stats:sentences``), so that a stored run, its scores and a release say which
    reading they had even after the default changes; other specs are returned stripped."""
    spec = spec.strip()
    return "stats:sentences" if spec == "stats" else spec


def judge_model_spec(spec: str) -> str | None:
    """The model spec of a ``judge:MODEL_SPEC`` scorer spec, or None for ``stats`` and
    for a plugin's scorer (which builds whatever it needs itself).

    Raises:
        ConfigError: The spec names no scorer (names ``judge``).
    """
    prefix, _, model_spec = spec.strip().partition(":")
    if prefix == "judge" and model_spec.strip():
        return model_spec.strip()
    if prefix != "judge" and prefix in SCORERS:
        return None  # stats (its factory checks the option) or a plugin
    plugins = [name for name in SCORERS.names() if name not in ("stats", "judge")]
    fix = f"{_FIX}, or a plugin's: {', '.join(plugins)}" if plugins else _FIX
    raise ConfigError("judge", "unknown scorer", value=repr(spec), fix=fix)
