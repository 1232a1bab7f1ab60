"""Recording and reading reviewers' decisions.

The ``reviews`` table is append-only (triggers refuse UPDATE and DELETE). A reviewer who
changes their mind records a new decision; readers take the latest one per (item,
reviewer), by row id, so nothing a reviewer ever said is lost and the history of each
item can be shown to an adjudicator.

Actions:

- ``accept``: the probe is fine as it is.
- ``reject``: with a reason from :data:`REJECT_REASONS` (``other`` needs a note).
- ``edit``: the template is rewritten. The edit becomes a new probe (a *revision*) in the
  same run, with provenance ``operator="review-edit"`` and the original as its parent;
  its answers and scores belong to the old text, so it must be re-queried and re-scored
  before it can enter a release (:func:`needs_rescore`).
- ``relabel``: the superdomain / domain / topic labels are corrected (validated against
  the taxonomy). The probe itself is not rewritten: the release builder applies labels.
- ``skip``: not a review; the item stays in the queue, at the end of this reviewer's.

Every decision is made in a queue's scope (:class:`~probegen.review.scope.ReviewScope`):
:func:`record_decision` refuses items that scope does not offer and stores the scope
with the decision, so the release builder can check it again.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple

from probegen.corpora import Corpora, load_corpora
from probegen.errors import TemplateError, UsageError
from probegen.probe import Probe, Provenance
from probegen.review.reviewers import Reviewer
from probegen.review.scope import ReviewScope, check_offered
from probegen.store import Store
from probegen.store.store import utc_now

if TYPE_CHECKING:
    from probegen.review.queue import ReviewItem

__all__ = [
    "ACTIONS",
    "EDIT_OPERATOR",
    "REJECT_REASONS",
    "Decision",
    "ItemKey",
    "history",
    "latest_decisions",
    "needs_rescore",
    "record_decision",
]

ACTIONS = ("accept", "reject", "edit", "relabel", "skip")
"""Every action a reviewer can take."""

REJECT_REASONS: dict[str, str] = {
    "unrealistic": "unrealistic: nobody would ask this",
    "stereotyping_question": "the question itself stereotypes",
    "not_counterfactual": "the variants are not counterfactual",
    "duplicate": "duplicate of another probe",
    "harmful": "harmful beyond testing purpose",
    "other": "other (explain in a note)",
}
"""Reasons a reject may give, with a label for humans."""

EDIT_OPERATOR = "review-edit"
"""The provenance operator of a probe revision made by an edit."""

LABEL_FIELDS = ("superdomain", "domain", "topic")


class ItemKey(NamedTuple):
    """What is reviewed: one probe of one run."""

    run_id: str
    probe_id: str


@dataclass(frozen=True)
class Decision:
    """A row of ``reviews`` with its reviewer's name.

    Attributes:
        id: Row id; higher is later.
        run_id: The run the item belongs to.
        probe_id: The probe decided on.
        reviewer_id: The reviewer's id.
        reviewer: The reviewer's name.
        action: One of :data:`ACTIONS`.
        reason: For a reject, one of :data:`REJECT_REASONS`.
        note: Free text (required with reason ``other``).
        payload: ``{"template": ...}`` for an edit, ``{"superdomain", "domain",
            "topic"}`` for a relabel, else empty.
        revision_id: For an edit, the id of the probe revision it created.
        created_at: ISO-8601 UTC time.
        threshold: The fitness threshold of the queue it was made in (None: recorded
            before decisions were scoped).
        served_runs: The runs that queue served (None: every run with elites).
    """

    id: int
    run_id: str
    probe_id: str
    reviewer_id: int
    reviewer: str
    action: str
    reason: str | None
    note: str | None
    payload: dict[str, Any] = field(default_factory=dict)
    revision_id: str | None = None
    created_at: str = ""
    threshold: float | None = None
    served_runs: tuple[str, ...] | None = None

    @property
    def key(self) -> ItemKey:
        """The item decided on."""
        return ItemKey(self.run_id, self.probe_id)

    @property
    def verdict(self) -> str | None:
        """``accept`` or ``reject`` as agreement counts it, or None for a skip.

        An edit or relabel means "keep this probe, with a fix", so it counts as accept.
        """
        if self.action == "skip":
            return None
        return "reject" if self.action == "reject" else "accept"


def _item_key(item: ItemKey | tuple[str, str] | ReviewItem) -> ItemKey:
    if isinstance(item, tuple):
        return ItemKey(*item)
    return ItemKey(item.run_id, item.probe_id)


def record_decision(
    store: Store,
    reviewer: Reviewer,
    item: ItemKey | tuple[str, str] | ReviewItem,
    action: str,
    *,
    reason: str | None = None,
    note: str | None = None,
    template: str | None = None,
    labels: Mapping[str, str] | None = None,
    corpora: Corpora | None = None,
    scope: ReviewScope | None = None,
) -> Decision:
    """Validate and append one decision (and, for an edit, the new probe revision).

    Args:
        store: The run store.
        reviewer: Who decides (from :func:`~probegen.review.reviewer_for_token`).
        item: The probe decided on: a :class:`ItemKey`, ``(run_id, probe_id)`` or a
            :class:`~probegen.review.ReviewItem`.
        action: One of :data:`ACTIONS`.
        reason: Required for ``reject``: a key of :data:`REJECT_REASONS`.
        note: Free text; required when ``reason`` is ``other``.
        template: Required for ``edit``: the new template.
        labels: Required for ``relabel``: ``superdomain``, ``domain`` and ``topic``.
        corpora: For validating edits and labels (default: the shipped corpora).
        scope: The queue the decision is made in (default: every run, the default
            threshold); stored with the decision.

    Returns:
        The stored decision.

    Raises:
        ItemNotOffered: If ``scope`` does not offer the item (see
            :func:`~probegen.review.scope.check_offered`).
        UsageError: If the reviewer was removed, or a field is missing or invalid; the
            one-line message names the field.
    """
    key = _item_key(item)
    if action not in ACTIONS:
        raise UsageError(f"action: unknown action '{action}'", fix=f"use one of: {ACTIONS}")
    scope = scope or ReviewScope()
    check_offered(store, scope, key.run_id, key.probe_id)
    probe = store.probe(key.run_id, key.probe_id)
    if probe is None:
        raise UsageError(f"item: no probe {key.probe_id} in run {key.run_id}")
    note = note.strip() if note and note.strip() else None
    if action != "reject" and reason is not None:
        raise UsageError(f"reason: only a reject takes a reason, not {action}")
    if action == "reject":
        if reason not in REJECT_REASONS:
            raise UsageError(
                f"reason: a reject needs a reason, got {reason!r}",
                fix=f"use one of: {', '.join(REJECT_REASONS)}",
            )
        if reason == "other" and note is None:
            raise UsageError("note: a reject with reason 'other' needs a note saying why")
    if action != "edit" and template is not None:
        raise UsageError(f"template: only an edit takes a template, not {action}")
    if action != "relabel" and labels is not None:
        raise UsageError(f"labels: only a relabel takes labels, not {action}")

    payload: dict[str, Any] = {}
    revision: Probe | None = None
    if action == "edit":
        revision = _revision(probe, key, template, corpora or load_corpora())
        payload = {"template": revision.template}
    elif action == "relabel":
        payload = _validated_labels(labels, corpora or load_corpora())

    created_at = utc_now()
    revision_id = revision.id if revision is not None else None
    served_runs = list(scope.runs) or None
    # What the store row and the returned decision share, written once.
    shared: dict[str, Any] = {
        "run_id": key.run_id,
        "probe_id": key.probe_id,
        "reviewer_id": reviewer.id,
        "action": action,
        "reason": reason,
        "note": note,
        "payload": payload,
        "created_at": created_at,
        "threshold": scope.threshold,
    }
    # One write with the revision, refused for a reviewer removed a moment ago.
    row_id = store.insert_review(**shared, revision=revision, served_runs=served_runs)
    if row_id is None:
        raise UsageError(f"reviewer: '{reviewer.name}' was removed and can decide no more")
    return Decision(
        id=row_id,
        **shared,
        reviewer=reviewer.name,
        revision_id=revision_id,
        served_runs=None if served_runs is None else tuple(served_runs),
    )


def _revision(probe: Probe, key: ItemKey, template: str | None, corpora: Corpora) -> Probe:
    if template is None or not template.strip():
        raise UsageError("template: an edit needs the new template")
    template = template.strip()
    if template == probe.template:
        raise UsageError("template: the edited template is unchanged", fix="change it or accept")
    revision = Probe.model_validate(
        {
            **probe.model_dump(exclude={"id", "provenance"}),
            "template": template,
            "provenance": Provenance(
                parents=(probe.id,),
                operator=EDIT_OPERATOR,
                generation=probe.provenance.generation,
                run_id=key.run_id,
            ),
        }
    )
    try:  # through the probe, so an image probe's neutral text keeps its image variants
        revision.grouped_variants(corpora)
    except TemplateError as error:
        raise UsageError(f"template: {error}") from None
    return revision


def _validated_labels(labels: Mapping[str, str] | None, corpora: Corpora) -> dict[str, str]:
    if labels is None:
        raise UsageError("labels: a relabel needs superdomain, domain and topic")
    missing = [name for name in LABEL_FIELDS if not str(labels.get(name) or "").strip()]
    if missing:
        raise UsageError(f"labels: missing {', '.join(missing)}")
    extra = sorted(set(labels) - set(LABEL_FIELDS))
    if extra:
        raise UsageError(
            f"labels: unknown field {', '.join(extra)}", fix="use " + "/".join(LABEL_FIELDS)
        )
    try:
        superdomain = corpora.taxonomy.superdomain(labels["superdomain"])
        domain = corpora.taxonomy.domain(superdomain.id, labels["domain"])
    except UsageError as error:
        raise UsageError(f"labels: {error.message}", fix=error.fix) from None
    topic = labels["topic"].strip()
    if topic not in domain.topics:
        raise UsageError(
            f"labels: unknown topic '{topic}' in domain '{domain.id}'",
            fix=f"use one of: {'; '.join(domain.topics)}",
        )
    return {"superdomain": superdomain.id, "domain": domain.id, "topic": topic}


def _decision(r: Mapping[str, Any]) -> Decision:
    return Decision(
        id=r["id"],
        run_id=r["run_id"],
        probe_id=r["probe_id"],
        reviewer_id=r["reviewer_id"],
        reviewer=r["reviewer_name"],
        action=r["action"],
        reason=r["reason"],
        note=r["note"],
        payload=r["payload"],
        revision_id=r["revision_id"],
        created_at=r["created_at"],
        threshold=r["threshold"],
        served_runs=r["served_runs"],
    )


def latest_decisions(store: Store, run_id: str | None = None) -> list[Decision]:
    """The current decision of each reviewer on each item (a later one supersedes an
    earlier one), oldest first.

    Args:
        store: The run store.
        run_id: Only this run's items, or every run's.
    """
    return [_decision(r) for r in store.latest_review_rows(run_id)]


def history(store: Store, run_id: str, probe_id: str) -> list[Decision]:
    """Every decision ever recorded on one item, superseded ones included, oldest first."""
    return [_decision(r) for r in store.review_history_rows(run_id, probe_id)]


def needs_rescore(store: Store, run_id: str, probe_id: str) -> bool:
    """Whether a probe is a review-edit revision that has no score yet.

    Such a probe's text differs from what the target answered, so it must be re-queried
    and re-scored before it can enter a release; a score row for it ends that.
    """
    probe = store.probe(run_id, probe_id)
    if probe is None or probe.provenance.operator != EDIT_OPERATOR:
        return False
    return not store.scores(run_id, probe_id)
