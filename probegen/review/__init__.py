"""The human verification queue: reviewers, append-only decisions, the queue of elites
awaiting review, and inter-rater agreement.

The CLI (``probegen review``) and the web app are thin layers over these functions; all
state lives in the run store (tables ``reviewers`` and ``reviews``), so decisions
survive restarts and the release builder reads them from there.
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
from probegen.review.reviewers import Reviewer, add_reviewer, list_reviewers, reviewer_for_token

__all__ = [
    "ACTIONS",
    "REJECT_REASONS",
    "AgreementReport",
    "Decision",
    "ItemKey",
    "PairAgreement",
    "ReviewItem",
    "Reviewer",
    "VariantAnswers",
    "add_reviewer",
    "agreement_report",
    "build_queue",
    "cohens_kappa",
    "disagreements",
    "history",
    "krippendorff_alpha_nominal",
    "latest_decisions",
    "list_reviewers",
    "needs_rescore",
    "record_decision",
    "reviewer_for_token",
]
