"""The human verification queue: reviewers, append-only decisions, the queue of elites
awaiting review, and inter-rater agreement.

The CLI (``probegen review``) and the web app are thin layers over these functions; all
state lives in the run store (tables ``reviewers``, ``reviews`` and ``review_sessions``),
so decisions survive restarts and the release builder reads them from there. Which items
a queue offers, and so which decisions count, is decided in :mod:`.scope`.
"""

from probegen.review.agreement import (
    AgreementReport,
    PairAgreement,
    agreement_report,
    cohens_kappa,
    krippendorff_alpha_nominal,
)
from probegen.review.decisions import (
    ACTIONS,
    REJECT_REASONS,
    Decision,
    ItemKey,
    history,
    latest_decisions,
    needs_rescore,
    record_decision,
)
from probegen.review.queue import ReviewItem, VariantAnswers, build_queue, disagreements
from probegen.review.reviewers import (
    Reviewer,
    add_reviewer,
    list_reviewers,
    remove_reviewer,
    reviewer_for_token,
)
from probegen.review.scope import (
    DEFAULT_THRESHOLD,
    ItemNotOffered,
    ReviewScope,
    check_offered,
    decision_counts,
    offered,
)

__all__ = [
    "ACTIONS",
    "DEFAULT_THRESHOLD",
    "REJECT_REASONS",
    "AgreementReport",
    "Decision",
    "ItemKey",
    "ItemNotOffered",
    "PairAgreement",
    "ReviewItem",
    "ReviewScope",
    "Reviewer",
    "VariantAnswers",
    "add_reviewer",
    "agreement_report",
    "build_queue",
    "check_offered",
    "cohens_kappa",
    "decision_counts",
    "disagreements",
    "history",
    "krippendorff_alpha_nominal",
    "latest_decisions",
    "list_reviewers",
    "needs_rescore",
    "offered",
    "record_decision",
    "remove_reviewer",
    "reviewer_for_token",
]
