"""Web sessions of the review app, kept in the run store so they can be ended.

The signed session cookie carries only a random session id; the store keeps its SHA-256
(a copied database hands out no live session), the reviewer, when it started and when
it was last used. Every request looks the session up, so a session ends for good when:

- its reviewer logs out (the row is marked ended: a copy of the cookie is worthless);
- its reviewer is removed (``probegen review remove-reviewer``: every session ends);
- it sits idle longer than :attr:`SessionPolicy.idle_s` (default 1 hour), or
- it is older than :attr:`SessionPolicy.max_s` (default 12 hours), however busy.

The lookup is keyed by the hash of a 32-byte random id, so its timing tells an attacker
nothing they could steer toward a valid id.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

from probegen.review.reviewers import Reviewer
from probegen.store import Store
from probegen.store.store import utc_now

__all__ = ["SessionPolicy", "end_session", "session_reviewer", "start_session"]

TOUCH_EVERY_S = 60
"""``last_seen_at`` is rewritten at most this often, so browsing is not a write per page;
idle expiry is therefore exact to within a minute."""


@dataclass(frozen=True)
class SessionPolicy:
    """How long a session lives.

    Attributes:
        idle_s: Seconds without a request after which a session ends.
        max_s: Seconds after login after which a session ends regardless.
    """

    idle_s: int = 60 * 60
    max_s: int = 12 * 60 * 60


def _hash(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


def start_session(store: Store, reviewer: Reviewer) -> str:
    """Open a session for ``reviewer`` and return its id (for the signed cookie only)."""
    session_id = secrets.token_urlsafe(32)
    store.insert_review_session(_hash(session_id), reviewer.id, utc_now())
    return session_id


def end_session(store: Store, session_id: str) -> None:
    """End a session (logout); ending an unknown or ended one does nothing."""
    store.end_review_session(_hash(session_id), utc_now())


def session_reviewer(store: Store, session_id: str, policy: SessionPolicy) -> Reviewer | None:
    """The reviewer of a live session, or None (unknown, ended, expired, or the reviewer
    was removed). Marks the session as used, and ends it if it has expired."""
    row = store.review_session_row(_hash(session_id))
    if row is None or row["ended_at"] is not None or row["removed_at"] is not None:
        return None
    now = datetime.now(UTC)
    age = (now - datetime.fromisoformat(row["created_at"])).total_seconds()
    idle = (now - datetime.fromisoformat(row["last_seen_at"])).total_seconds()
    if age > policy.max_s or idle > policy.idle_s:
        end_session(store, session_id)
        return None
    if idle >= TOUCH_EVERY_S:
        store.touch_review_session(row["id_sha256"], utc_now())
    return Reviewer(id=row["reviewer_id"], name=row["name"], created_at=row["reviewer_created_at"])
