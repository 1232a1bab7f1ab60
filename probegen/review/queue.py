"""The review queue: elites that still need human reviews, with everything a reviewer
needs to judge them (variants, answers, scores, provenance).

An item is one probe of one run's final archive (``elites``). It needs ``k`` reviews:
``k`` reviewers whose current decision is anything but ``skip``. Edited revisions are not
in the queue: they are not elites until a later run re-queries and re-scores them.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

from probegen.elite import review_order
from probegen.errors import ConfigError
from probegen.findings.effect import Effect
from probegen.probe import Probe, Provenance
from probegen.review.decisions import Decision, ItemKey, latest_decisions
from probegen.review.scope import DEFAULT_THRESHOLD, offered
from probegen.runner import REPLICATION_SAMPLE_OFFSET
from probegen.scoring.base import Score
from probegen.store import EliteRecord, Store

__all__ = [
    "ReviewItem",
    "VariantAnswers",
    "build_queue",
    "check_runs",
    "disagreements",
    "load_item",
]


@dataclass(frozen=True)
class VariantAnswers:
    """One variant of a probe and the target's sampled answers to it.

    Attributes:
        key: The CAB variant key.
        group: The group it names (from the query records), if known.
        text: The filled-in question.
        answers: Answer texts, by sample index; None where the query failed.
    """

    key: str
    group: str | None
    text: str
    answers: tuple[str | None, ...]


@dataclass(frozen=True)
class ReviewItem:
    """One elite awaiting (or under) review.

    Attributes:
        run_id: The run it was found in.
        probe_id: Its id.
        probe: The probe (template, labels, provenance).
        model: The target it was found on.
        fitness: Its archive fitness.
        scores: The scorers' verdicts on ``model``'s answers (four dimensions and
            reasoning).
        variants: The variants with their answers, side by side.
        decisions: Each reviewer's current decision, oldest first.
        finding: Whether its group difference survived the run's false-discovery
            control (see :mod:`probegen.findings`).
        effect: The measured between-group effect, with its 95% interval and p-value.
        q_value: Its q-value over the run's tests.
        replicated: Whether it held when measured again (None: not re-measured).
        cluster: Its question family among its run's elites (None: not clustered; see
            :func:`probegen.evolve.families.cluster_elites`).
        answer_family: Its answer family among its run's elites (None: in none; see
            :func:`probegen.evolve.families.answer_families`).
    """

    run_id: str
    probe_id: str
    probe: Probe
    model: str
    fitness: float
    scores: tuple[Score, ...]
    variants: tuple[VariantAnswers, ...]
    decisions: tuple[Decision, ...] = field(default=())
    finding: bool = False
    effect: Effect | None = None
    q_value: float | None = None
    replicated: bool | None = None
    cluster: int | None = None
    answer_family: int | None = None

    @property
    def key(self) -> ItemKey:
        """The item as a decision refers to it."""
        return ItemKey(self.run_id, self.probe_id)

    @property
    def provenance(self) -> Provenance:
        """Parents, operator and generation."""
        return self.probe.provenance

    @property
    def reviews(self) -> int:
        """How many reviewers have a current decision other than skip."""
        return sum(1 for d in self.decisions if d.action != "skip")


def check_runs(store: Store, runs: Sequence[str] | None) -> list[str]:
    """The run ids to review: ``runs``, checked, or every run with elites.

    Raises:
        ConfigError: If a run id is not in the store (names ``runs``).
    """
    if runs:
        for run_id in runs:
            if store.get_run(run_id) is None:
                raise ConfigError(
                    "runs",
                    f"no such run in {store.path}",
                    value=run_id,
                    fix="see the run ids in the run directory",
                )
        return list(dict.fromkeys(runs))
    return store.runs_with_elites()


def _elites(store: Store, run_ids: Sequence[str]) -> list[tuple[str, EliteRecord]]:
    # A probe can be an elite for several targets; review it once, on its best showing.
    best: dict[ItemKey, tuple[str, EliteRecord]] = {}
    for run_id in run_ids:
        for elite in store.elites(run_id):
            key = ItemKey(run_id, elite.probe_id)
            if key not in best or elite.fitness > best[key][1].fitness:
                best[key] = (run_id, elite)
    return list(best.values())


def _item(
    store: Store, run_id: str, elite: EliteRecord, decisions: Sequence[Decision]
) -> ReviewItem | None:
    probe = store.probe(run_id, elite.probe_id)
    if probe is None:  # an archive without its probe rows: nothing a human could judge
        return None
    answers: dict[str, dict[int, str | None]] = defaultdict(dict)
    groups: dict[str, str | None] = {}
    for query in store.queries(run_id, elite.probe_id):
        # The answers it was scored on, not those of its replication.
        if query.model == elite.model and query.sample_index < REPLICATION_SAMPLE_OFFSET:
            answers[query.variant_key][query.sample_index] = query.text
            groups[query.variant_key] = query.group_id
    variants = tuple(
        VariantAnswers(
            key=variant.key,
            group=groups.get(variant.key),
            text=variant.text,
            answers=tuple(answers[variant.key][i] for i in sorted(answers[variant.key])),
        )
        for variant in probe.variants()
    )
    scores = tuple(
        s for _, model, s in store.scores(run_id, elite.probe_id) if model == elite.model
    )
    return ReviewItem(
        run_id=run_id,
        probe_id=elite.probe_id,
        probe=probe,
        model=elite.model,
        fitness=elite.fitness,
        scores=scores,
        variants=variants,
        decisions=tuple(decisions),
        finding=elite.finding,
        effect=elite.effect,
        q_value=elite.q_value,
        replicated=elite.replicated,
        cluster=elite.cluster,
        answer_family=elite.answer_family,
    )


def load_item(store: Store, run_id: str, probe_id: str) -> ReviewItem | None:
    """One elite as a review item, queued or not (for its page and adjudication).

    Returns:
        The item on the target it scored best on, or None if the probe is not an elite
        of ``run_id``.
    """
    elites = [e for e in store.elites(run_id) if e.probe_id == probe_id]
    if not elites:
        return None
    elite = max(elites, key=lambda e: e.fitness)
    decisions = _decisions_by_item(store, [run_id]).get(ItemKey(run_id, probe_id), [])
    return _item(store, run_id, elite, decisions)


def _decisions_by_item(store: Store, run_ids: Sequence[str]) -> dict[ItemKey, list[Decision]]:
    wanted = set(run_ids)
    by_item: dict[ItemKey, list[Decision]] = defaultdict(list)
    for decision in latest_decisions(store):
        if decision.run_id in wanted:
            by_item[decision.key].append(decision)
    return by_item


def build_queue(
    store: Store,
    *,
    runs: Sequence[str] | None = None,
    threshold: float = DEFAULT_THRESHOLD,
    k: int = 2,
    reviewer: str | None = None,
) -> list[ReviewItem]:
    """The items still needing review, best first.

    Args:
        store: The run store.
        runs: Run ids to draw elites from (default: every run with elites).
        threshold: Minimum archive fitness for an elite to need review (the rule is
            :func:`~probegen.review.scope.offered`, which decisions are checked by too).
        k: Reviews each item needs; an item with ``k`` non-skip decisions leaves the queue.
        reviewer: A reviewer's name: leave out what they already decided, and put what
            they skipped at the end (a skip is not a review).

    Returns:
        Findings first (lowest q-value first), then the other items by fitness, highest
        first, each part in rounds over its runs' answer families and, within them,
        question families (the best of each, then each one's second: see
        :func:`~probegen.elite.review_order`); a reviewer's skipped items last.

    Raises:
        ConfigError: If a run id is unknown (``runs``) or ``k`` < 1.
    """
    if k < 1:
        raise ConfigError("k", "each item needs at least one review", value=k)
    run_ids = check_runs(store, runs)
    by_item = _decisions_by_item(store, run_ids)
    fresh: list[ReviewItem] = []
    skipped: list[ReviewItem] = []
    for run_id, elite in _elites(store, run_ids):
        if not offered(elite.fitness, threshold, elite.finding):
            continue
        decisions = by_item.get(ItemKey(run_id, elite.probe_id), [])
        if sum(1 for d in decisions if d.action != "skip") >= k:
            continue
        mine = [d for d in decisions if reviewer is not None and d.reviewer == reviewer]
        if mine and mine[-1].action != "skip":
            continue
        item = _item(store, run_id, elite, decisions)
        if item is not None:
            (skipped if mine else fresh).append(item)
    # Findings first (most significant first), then the rest by fitness.
    order = lambda item: (  # noqa: E731
        not item.finding,
        item.q_value if item.finding and item.q_value is not None else 1.0,
        -item.fitness,
        item.run_id,
        item.probe_id,
    )
    return _in_rounds(sorted(fresh, key=order)) + _in_rounds(sorted(skipped, key=order))


def _in_rounds(items: Sequence[ReviewItem]) -> list[ReviewItem]:
    """Findings, then the rest, each in rounds over the answer and question families of
    each run: a reviewer meets every distinct behaviour, and every distinct question,
    before the tenth variation of the first."""

    def question(item: ReviewItem) -> tuple[str, int] | None:
        return None if item.cluster is None else (item.run_id, item.cluster)

    def answer(item: ReviewItem) -> tuple[str, int] | None:
        return None if item.answer_family is None else (item.run_id, item.answer_family)

    findings = [item for item in items if item.finding]
    rest = [item for item in items if not item.finding]
    return review_order(findings, question, answer) + review_order(rest, question, answer)


def disagreements(
    store: Store,
    k: int = 2,
    runs: Sequence[str] | None = None,
    threshold: float | None = None,
) -> list[ReviewItem]:
    """Items for the adjudication view: at least ``k`` reviews whose current verdicts
    disagree (one says accept, another reject; edit and relabel count as accept).

    Args:
        store: The run store.
        k: Reviews an item needs before a disagreement counts.
        runs: Run ids (default: every run with elites).
        threshold: Only items a queue with this threshold offers (an adjudicator's
            decision must be one the queue accepts); None: every elite.

    Returns:
        The items, with every reviewer's current decision, best fitness first.
    """
    run_ids = check_runs(store, runs)
    by_item = _decisions_by_item(store, run_ids)
    found = []
    for run_id, elite in _elites(store, run_ids):
        if threshold is not None and not offered(elite.fitness, threshold, elite.finding):
            continue
        decisions = by_item.get(ItemKey(run_id, elite.probe_id), [])
        verdicts = [d.verdict for d in decisions if d.verdict is not None]
        if len(verdicts) >= k and len(set(verdicts)) > 1:
            item = _item(store, run_id, elite, decisions)
            if item is not None:
                found.append(item)
    return sorted(found, key=lambda item: (-item.fitness, item.run_id, item.probe_id))
