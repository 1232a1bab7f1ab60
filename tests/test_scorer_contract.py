"""One contract for every scorer (pyribs style, like tests/test_archive_contract.py).

Each scorer is built through :func:`probegen.scoring.make_scorer`, as a run builds it:
``stats`` on the shipped MiniLM, ``judge:`` over the scripted judge of tests/test_judge.py
(no server). The contract, from :mod:`probegen.scoring.base`:

- it is a :class:`~probegen.scoring.base.Scorer` and every score names it;
- answers it can compare give ``status="ok"`` and a fitness in [0, 1], CAB's fitness of
  the four dimensions it reports;
- the same answers give the same score;
- what it cannot compare (a variant without answers, one whose every call failed, a
  single variant) gives ``status="unscorable"``, no fitness and a reason, never an
  exception.

A scorer class exported by :mod:`probegen.scoring` but missing from ``FACTORIES`` fails
the first test, so a new scorer cannot skip the contract.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable

import pytest
from test_judge import PROBE, VALID, VARIANTS, ScriptedJudge

import probegen.scoring
from probegen.answers import Answer, ProbeAnswers
from probegen.embeddings import Embedder
from probegen.scoring import Score, Scorer, make_scorer
from probegen.scoring.base import cab_fitness


@pytest.fixture(scope="module")
def embedder() -> Embedder:
    return Embedder()


FACTORIES: dict[str, Callable[[Embedder], Scorer]] = {
    "StatsScorer": lambda embedder: make_scorer("stats", embedder=embedder),
    "JudgeScorer": lambda embedder: make_scorer(
        "judge:scripted:judge", backend=ScriptedJudge([VALID])
    ),
}


@pytest.fixture(params=sorted(FACTORIES))
def scorer(request: pytest.FixtureRequest, embedder: Embedder) -> Scorer:
    return FACTORIES[request.param](embedder)


def answers(texts: dict[str, list[str | None]]) -> ProbeAnswers:
    """The answers to ``PROBE`` (variants ``james``, ``emily``); None is a failed call."""
    by_key = {v.key: v for v in VARIANTS if v.key in texts}
    grouped = {
        key: [
            Answer(key, by_key[key].group, i, text, error=None if text else "APIError: boom")
            for i, text in enumerate(values)
        ]
        for key, values in texts.items()
    }
    return ProbeAnswers(PROBE, "target", list(by_key.values()), grouped)


COMPARABLE = answers(
    {
        "james": ["Name a number and anchor high.", "Cite market data.", None],
        "emily": ["Thank your manager first.", "Ask what you could do to earn it.", "Be patient."],
    }
)
UNSCORABLE = {
    "a variant without answers": answers({"james": ["Anchor high."], "emily": []}),
    "every call of a variant failed": answers({"james": ["Anchor high."], "emily": [None, None]}),
    "a single variant": answers({"james": ["Anchor high.", "Cite market data."]}),
}


def score(scorer: Scorer, probe_answers: ProbeAnswers) -> Score:
    return asyncio.run(scorer.score(PROBE, probe_answers))


def test_every_exported_scorer_is_under_contract() -> None:
    exported = {
        name
        for name in probegen.scoring.__all__
        if inspect.isclass(cls := getattr(probegen.scoring, name))
        and callable(getattr(cls, "score", None))
        and name != "Scorer"
    }
    assert exported == set(FACTORIES)


def test_it_is_a_scorer_with_a_name(scorer: Scorer) -> None:
    assert isinstance(scorer, Scorer)
    assert isinstance(scorer.name, str)
    assert scorer.name


def test_comparable_answers_get_a_fitness_in_0_1_from_the_four_dimensions(
    scorer: Scorer,
) -> None:
    result = score(scorer, COMPARABLE)
    assert result.scorer == scorer.name
    assert result.status == "ok"
    assert result.error is None
    assert result.fitness is not None
    assert 0.0 <= result.fitness <= 1.0
    dimensions = (result.bias, result.relevance, result.generality, result.refusal)
    assert None not in dimensions
    assert result.fitness == pytest.approx(cab_fitness(*dimensions))  # type: ignore[arg-type]


def test_the_same_answers_get_the_same_score(scorer: Scorer) -> None:
    assert score(scorer, COMPARABLE) == score(scorer, COMPARABLE)


@pytest.mark.parametrize("case", sorted(UNSCORABLE))
def test_what_it_cannot_compare_is_unscorable_not_an_error(scorer: Scorer, case: str) -> None:
    result = score(scorer, UNSCORABLE[case])
    assert result.scorer == scorer.name
    assert result.status == "unscorable"
    assert result.fitness is None
    assert result.error
