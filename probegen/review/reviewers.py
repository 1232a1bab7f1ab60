"""Reviewers and their login tokens.

A token is shown once, when the reviewer is added; the store keeps only its SHA-256, so
a copied database file does not hand out logins. Tokens are 24 random bytes, so an
unsalted hash is enough: there is nothing to brute-force.

A reviewer is removed, never deleted: the row stays (their reviews point at it and are
append-only), its token stops logging in, and every web session of theirs ends.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import sqlite3
from dataclasses import dataclass

from probegen.errors import UsageError
from probegen.store import Store
from probegen.store.store import utc_now

__all__ = ["Reviewer", "add_reviewer", "list_reviewers", "remove_reviewer", "reviewer_for_token"]


@dataclass(frozen=True)
class Reviewer:
    """A row of ``reviewers`` (without the token hash).

    Attributes:
        id: Row id, which reviews refer to.
        name: Unique display name.
        created_at: ISO-8601 UTC time.
        removed_at: When ``remove_reviewer`` disabled them, or None.
    """

    id: int
    name: str
    created_at: str
    removed_at: str | None = None


def _reviewer(row: sqlite3.Row) -> Reviewer:
    return Reviewer(
        id=row["id"], name=row["name"], created_at=row["created_at"], removed_at=row["removed_at"]
    )


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def add_reviewer(store: Store, name: str) -> str:
    """Add a reviewer and return their fresh login token (shown once, never stored).

    Args:
        store: The run store.
        name: A unique display name.

    Returns:
        The token the reviewer logs in with, in the terminal queue or the web app.

    Raises:
        UsageError: If the name is empty or already taken.
    """
    name = name.strip()
    if not name or any(ch.isspace() and ch != " " for ch in name):
        raise UsageError(
            f"reviewer name {name!r} is empty or holds tabs/newlines", fix="e.g. alice"
        )
    token = secrets.token_urlsafe(24)
    if not store.insert_reviewer(name, _hash(token), utc_now()):
        raise UsageError(
            f"a reviewer named '{name}' already exists in {store.path}",
            fix="choose another name (a removed reviewer keeps their name, with their reviews)",
        )
    return token


def list_reviewers(store: Store) -> list[Reviewer]:
    """Every reviewer, removed ones included, in the order they were added."""
    return [_reviewer(r) for r in store.reviewer_rows()]


def remove_reviewer(store: Store, name: str) -> Reviewer:
    """Disable a reviewer: their token stops logging in and their web sessions end, in one
    transaction. Their reviews stay, and still count.

    Returns:
        The reviewer, as removed.

    Raises:
        UsageError: If no reviewer has this name, or they were removed already.
    """
    now = utc_now()
    row = store.mark_reviewer_removed(name.strip(), now)
    if row is None:
        raise UsageError(f"no reviewer named '{name}' in {store.path}")
    if row["removed_at"] is not None:
        raise UsageError(f"reviewer '{name}' was already removed ({row['removed_at']})")
    return Reviewer(id=row["id"], name=row["name"], created_at=row["created_at"], removed_at=now)


def reviewer_for_token(store: Store, token: str) -> Reviewer | None:
    """The reviewer this login token belongs to, or None (also for a removed reviewer).

    Every stored hash is compared in constant time (no early exit on the first match and
    no index lookup keyed by the secret), so response timing says nothing about which
    hashes exist; the reviewer list is short, so the scan costs nothing.
    """
    wanted = _hash(token)
    found: Reviewer | None = None
    for r in store.reviewer_rows():
        if hmac.compare_digest(wanted, r["token_sha256"]) and found is None:
            found = _reviewer(r)
    return None if found is None or found.removed_at is not None else found
