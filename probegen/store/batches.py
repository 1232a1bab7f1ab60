"""The run store's record of provider batches (tables ``batches`` and ``batch_items``).

What makes a batch resumable: before it is sent, the custom id of every item it carries
(the item's response-cache key) is written under a submission token
(:func:`record_submission`, status ``submitting``); the provider's id replaces the
token's placeholder the moment the provider accepts the batch (:func:`confirm_batch`).
An item stays ``pending`` until its outcome is known. A run that needs a key which is pending in
some batch polls that batch instead of submitting the key again; a key whose batches all
ended with it failed or expired is submitted again, which is a retry like that of a
failed call. The SQL lives here, beside the batch logic's needs, and goes through the
store's own transaction and read methods (see :meth:`Store.select`).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass, replace
from typing import Literal

from probegen.redaction import redact_text
from probegen.store.store import Store, utc_now

__all__ = [
    "PendingBatch",
    "confirm_batch",
    "drop_submission",
    "finish_batch_items",
    "pending_batches",
    "record_submission",
]

SUBMITTING = "submitting:"
"""The placeholder id of a batch being submitted is this and its token."""

ItemStatus = Literal["answered", "failed", "expired"]


@dataclass(frozen=True)
class PendingBatch:
    """A recorded batch holding keys whose outcome is not known yet.

    Attributes:
        id: The provider's batch id (a placeholder while ``submitting``).
        provider: ``openai`` or ``anthropic``.
        status: ``submitting`` (sent, but the run stopped before the provider's id came
            back: look it up by ``token``), ``submitted`` (running at the provider when
            last seen) or ``ended`` (its results can be read again).
        token: The submission token sent with the batch.
        keys: The pending keys asked for that it holds.
        items: How many calls the batch was sent with (all of them, not only ``keys``).
        created_at: When it was recorded, just before it was sent (ISO-8601, UTC).
    """

    id: str
    provider: str
    status: str
    token: str
    keys: tuple[str, ...]
    items: int
    created_at: str


def record_submission(
    store: Store,
    token: str,
    *,
    provider: str,
    model: str,
    run_id: str | None,
    keys: Collection[str],
) -> None:
    """Record a batch about to be sent and its items (``pending``), in one transaction,
    under the placeholder id of ``token``."""
    with store.transaction() as db:
        db.execute(
            "INSERT INTO batches (id, provider, model, run_id, status, token, items,"
            " created_at) VALUES (?, ?, ?, ?, 'submitting', ?, ?, ?)",
            (SUBMITTING + token, provider, model, run_id, token, len(keys), utc_now()),
        )
        db.executemany(
            "INSERT INTO batch_items (batch_id, custom_id) VALUES (?, ?)",
            [(SUBMITTING + token, key) for key in keys],
        )


def confirm_batch(store: Store, token: str, batch_id: str) -> None:
    """The provider accepted the submission ``token`` as ``batch_id``: the row and its
    items take that id, in one transaction."""
    placeholder = SUBMITTING + token
    with store.transaction() as db:
        db.execute(
            "INSERT INTO batches (id, provider, model, run_id, status, token, items,"
            " created_at) SELECT ?, provider, model, run_id, 'submitted', ?, items,"
            " created_at FROM batches WHERE id = ?",
            (batch_id, token, placeholder),
        )
        db.execute(
            "UPDATE batch_items SET batch_id = ? WHERE batch_id = ?", (batch_id, placeholder)
        )
        db.execute("DELETE FROM batches WHERE id = ?", (placeholder,))


def drop_submission(store: Store, token: str) -> None:
    """Forget a submission the provider never accepted (its items may be sent again)."""
    placeholder = SUBMITTING + token
    with store.transaction() as db:
        db.execute("DELETE FROM batch_items WHERE batch_id = ?", (placeholder,))
        db.execute("DELETE FROM batches WHERE id = ?", (placeholder,))


def pending_batches(store: Store, model: str, keys: Collection[str]) -> list[PendingBatch]:
    """The batches of ``model`` that hold some of ``keys`` still ``pending``, oldest
    first; each key is given to one batch only (the oldest), so it is collected once."""
    wanted = set(keys)
    rows = store.select(
        "SELECT b.id, b.provider, b.status, b.token, b.items, b.created_at, i.custom_id"
        " FROM batch_items i JOIN batches b ON b.id = i.batch_id"
        " WHERE b.model = ? AND i.status = 'pending' ORDER BY b.created_at, b.id",
        (model,),
    )
    batches: dict[str, PendingBatch] = {}
    keys_of: dict[str, list[str]] = {}
    taken: set[str] = set()
    for row in rows:
        key = row["custom_id"]
        if key in wanted and key not in taken:
            taken.add(key)
            if row["id"] not in batches:
                batches[row["id"]] = PendingBatch(
                    row["id"], row["provider"], row["status"], row["token"], (),
                    row["items"], row["created_at"],
                )  # fmt: skip
            keys_of.setdefault(row["id"], []).append(key)
    return [
        replace(pending, keys=tuple(keys_of[batch_id])) for batch_id, pending in batches.items()
    ]


def finish_batch_items(
    store: Store,
    batch_id: str,
    outcomes: Iterable[tuple[str, ItemStatus, str | None]],
    *,
    provider_status: str,
) -> None:
    """Mark the batch ended (with the provider's status) and record the outcome of each
    ``(key, status, error)`` given, in one transaction; items not given stay pending."""
    with store.transaction() as db:
        db.executemany(
            "UPDATE batch_items SET status = ?, error = ? WHERE batch_id = ? AND custom_id = ?",
            [
                (status, None if error is None else redact_text(error), batch_id, key)
                for key, status, error in outcomes
            ],
        )
        db.execute(
            "UPDATE batches SET status = 'ended', provider_status = ?,"
            " ended_at = coalesce(ended_at, ?) WHERE id = ?",
            (provider_status, utc_now(), batch_id),
        )
