"""The run store's review tables: ``reviewers``, ``review_sessions`` and ``reviews``.

:class:`ReviewTables` is a mixin of :class:`~probegen.store.Store`: every query the
review package (:mod:`probegen.review`) makes is a named method here, so the review
logic (who may decide what, tokens, session expiry) holds no SQL and the schema's
details stay in the store. The methods return rows (or plain values); the review
package turns them into its own records (``Reviewer``, ``Decision``), which the store
does not know.

Writes that must hold together are one method, hence one transaction: removing a
reviewer ends their sessions, and a decision is refused for a removed reviewer and
committed together with the probe revision an edit makes.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, Protocol

from probegen.probe import Probe

__all__ = ["ReviewTables"]

_DECISION_SELECT = (
    "SELECT r.*, v.name AS reviewer_name FROM reviews r JOIN reviewers v ON v.id = r.reviewer_id"
)


class _Database(Protocol):
    """What the mixin needs of the store it is mixed into."""

    path: Path

    def transaction(self) -> AbstractContextManager[sqlite3.Connection]: ...

    def select(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]: ...


def _decision_row(row: sqlite3.Row) -> dict[str, Any]:
    served = row["served_runs"]
    return {
        **dict(row),
        "payload": json.loads(row["payload"]),
        "served_runs": None if served is None else tuple(json.loads(served)),
    }


class ReviewTables:
    """The review queries of the run store (mixed into :class:`~probegen.store.Store`)."""

    # -- reviewers ------------------------------------------------------------------

    def insert_reviewer(self: _Database, name: str, token_sha256: str, created_at: str) -> bool:
        """Add a reviewer; False (and nothing written) when the name is taken."""
        try:
            with self.transaction() as db:
                db.execute(
                    "INSERT INTO reviewers (name, token_sha256, created_at) VALUES (?, ?, ?)",
                    (name, token_sha256, created_at),
                )
        except sqlite3.IntegrityError:
            return False
        return True

    def reviewer_rows(self: _Database) -> list[sqlite3.Row]:
        """Every reviewer (``id``, ``name``, ``token_sha256``, ``created_at``,
        ``removed_at``), removed ones included, in the order they were added."""
        return self.select(
            "SELECT id, name, token_sha256, created_at, removed_at FROM reviewers ORDER BY id"
        )

    def mark_reviewer_removed(self: _Database, name: str, removed_at: str) -> sqlite3.Row | None:
        """Mark the reviewer ``name`` removed and end their live sessions, in one
        transaction.

        Returns:
            Their row as it was before (``id``, ``name``, ``created_at``,
            ``removed_at``), or None when no reviewer has this name. A reviewer who was
            removed already is left as they are: their row's ``removed_at`` says when.
        """
        with self.transaction() as db:
            row: sqlite3.Row | None = db.execute(
                "SELECT id, name, created_at, removed_at FROM reviewers WHERE name = ?",
                (name,),
            ).fetchone()
            if row is None or row["removed_at"] is not None:
                return row
            db.execute("UPDATE reviewers SET removed_at = ? WHERE id = ?", (removed_at, row["id"]))
            db.execute(
                "UPDATE review_sessions SET ended_at = ? WHERE reviewer_id = ?"
                " AND ended_at IS NULL",
                (removed_at, row["id"]),
            )
        return row

    # -- web sessions ---------------------------------------------------------------

    def insert_review_session(
        self: _Database, id_sha256: str, reviewer_id: int, created_at: str
    ) -> None:
        """Record a new web session (by the hash of its id), last seen at its start."""
        with self.transaction() as db:
            db.execute(
                "INSERT INTO review_sessions (id_sha256, reviewer_id, created_at, last_seen_at)"
                " VALUES (?, ?, ?, ?)",
                (id_sha256, reviewer_id, created_at, created_at),
            )

    def end_review_session(self: _Database, id_sha256: str, ended_at: str) -> None:
        """End a session; an unknown or ended one is left as it is."""
        with self.transaction() as db:
            db.execute(
                "UPDATE review_sessions SET ended_at = ? WHERE id_sha256 = ? AND ended_at IS NULL",
                (ended_at, id_sha256),
            )

    def review_session_row(self: _Database, id_sha256: str) -> sqlite3.Row | None:
        """A session with its reviewer: the session's columns plus ``name``,
        ``reviewer_created_at`` and ``removed_at``; None when unknown."""
        rows = self.select(
            "SELECT s.*, r.name, r.created_at AS reviewer_created_at, r.removed_at"
            " FROM review_sessions s JOIN reviewers r ON r.id = s.reviewer_id"
            " WHERE s.id_sha256 = ?",
            (id_sha256,),
        )
        return rows[0] if rows else None

    def touch_review_session(self: _Database, id_sha256: str, last_seen_at: str) -> None:
        """Record that a session was used."""
        with self.transaction() as db:
            db.execute(
                "UPDATE review_sessions SET last_seen_at = ? WHERE id_sha256 = ?",
                (last_seen_at, id_sha256),
            )

    # -- decisions ------------------------------------------------------------------

    def insert_review(
        self: _Database,
        *,
        run_id: str,
        probe_id: str,
        reviewer_id: int,
        action: str,
        reason: str | None,
        note: str | None,
        payload: Mapping[str, Any],
        revision: Probe | None,
        created_at: str,
        threshold: float | None,
        served_runs: Sequence[str] | None,
    ) -> int | None:
        """Append one decision, with the probe revision an edit makes, in one transaction.

        Returns:
            The decision's row id, or None (and nothing written) when the reviewer is
            unknown or removed: checked inside the write, so a reviewer removed a moment
            ago decides nothing more.
        """
        # Imported here: store.py mixes this class in, so it cannot be imported above.
        from probegen.store.store import insert_probe

        with self.transaction() as db:
            reviewer = db.execute(
                "SELECT removed_at FROM reviewers WHERE id = ?", (reviewer_id,)
            ).fetchone()
            if reviewer is None or reviewer["removed_at"] is not None:
                return None
            if revision is not None:
                # Inline rather than add_probe: the revision and the decision that made
                # it must commit together, or a crash could leave an orphan revision.
                insert_probe(db, run_id, revision)
            cursor = db.execute(
                "INSERT INTO reviews (run_id, probe_id, reviewer_id, action, reason, note,"
                " payload, revision_id, created_at, threshold, served_runs)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    run_id,
                    probe_id,
                    reviewer_id,
                    action,
                    reason,
                    note,
                    json.dumps(dict(payload), ensure_ascii=False, sort_keys=True),
                    None if revision is None else revision.id,
                    created_at,
                    threshold,
                    None if served_runs is None else json.dumps(list(served_runs)),
                ),
            )
        return cursor.lastrowid

    def latest_review_rows(self: _Database, run_id: str | None = None) -> list[dict[str, Any]]:
        """The latest decision of each reviewer on each item (of ``run_id``, or of every
        run), oldest first: the ``reviews`` columns plus ``reviewer_name``, with
        ``payload`` and ``served_runs`` decoded."""
        sql = (
            f"{_DECISION_SELECT} WHERE r.id IN (SELECT max(id) FROM reviews"
            f"{' WHERE run_id = ?' if run_id is not None else ''}"
            " GROUP BY run_id, probe_id, reviewer_id) ORDER BY r.id"
        )
        rows = self.select(sql, () if run_id is None else (run_id,))
        return [_decision_row(r) for r in rows]

    def review_history_rows(self: _Database, run_id: str, probe_id: str) -> list[dict[str, Any]]:
        """Every decision recorded on one item, superseded ones included, oldest first
        (rows as in :meth:`latest_review_rows`)."""
        rows = self.select(
            f"{_DECISION_SELECT} WHERE r.run_id = ? AND r.probe_id = ? ORDER BY r.id",
            (run_id, probe_id),
        )
        return [_decision_row(r) for r in rows]

    # -- the queue ------------------------------------------------------------------

    def runs_with_elites(self: _Database) -> list[str]:
        """The ids of the runs that stored an archive, sorted."""
        rows = self.select("SELECT DISTINCT run_id FROM elites ORDER BY run_id")
        return [r["run_id"] for r in rows]
