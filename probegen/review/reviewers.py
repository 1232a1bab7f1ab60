"""Reviewers and their login tokens.

A token is shown once, when the reviewer is added; the store keeps only its SHA-256, so
a copied database file does not hand out logins. Tokens are 24 random bytes, so an
unsalted hash is enough: there is nothing to brute-force.
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

__all__ = ["Reviewer", "add_reviewer", "list_reviewers", "reviewer_for_token"]


@dataclass(frozen=True)
class Reviewer:
    """A row of ``reviewers`` (without the token hash)."""

    id: int
    name: str
    created_at: str


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def add_reviewer(store: Store, name: str) -> str:
    """Add a reviewer and return their fresh login token (shown once, never stored).

    Args:
        store: The run store.
        name: A unique display name.

    Returns:
        The token, for ``--reviewer-token`` or the web login.

    Raises:
        UsageError: If the name is empty or already taken.
    """
    name = name.strip()
    if not name or any(ch.isspace() and ch != " " for ch in name):
        raise UsageError(
            f"reviewer name {name!r} is empty or holds tabs/newlines", fix="e.g. alice"
        )
    token = secrets.token_urlsafe(24)
    try:
        with store.transaction() as db:
            db.execute(
                "INSERT INTO reviewers (name, token_sha256, created_at) VALUES (?, ?, ?)",
                (name, _hash(token), utc_now()),
            )
    except sqlite3.IntegrityError:
        raise UsageError(
            f"a reviewer named '{name}' already exists in {store.path}",
            fix="choose another name",
        ) from None
    return token


def list_reviewers(store: Store) -> list[Reviewer]:
    """Every reviewer, in the order they were added."""
    rows = store.select("SELECT id, name, created_at FROM reviewers ORDER BY id")
    return [Reviewer(id=r["id"], name=r["name"], created_at=r["created_at"]) for r in rows]


def reviewer_for_token(store: Store, token: str) -> Reviewer | None:
    """The reviewer this login token belongs to, or None.

    Every stored hash is compared in constant time (no early exit on the first match and
    no index lookup keyed by the secret), so response timing says nothing about which
    hashes exist; the reviewer list is short, so the scan costs nothing.
    """
    wanted = _hash(token)
    found: Reviewer | None = None
    rows = store.select("SELECT id, name, token_sha256, created_at FROM reviewers")
    for r in rows:
        if hmac.compare_digest(wanted, r["token_sha256"]) and found is None:
            found = Reviewer(id=r["id"], name=r["name"], created_at=r["created_at"])
    return found
