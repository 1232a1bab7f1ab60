"""The run store (SQLite): runs, probes, variant queries, cached responses, scores, events."""

from probegen.store.store import (
    STORE_FILENAME,
    EliteRecord,
    QueryRecord,
    RunRecord,
    Store,
    new_run_id,
)

__all__ = ["STORE_FILENAME", "EliteRecord", "QueryRecord", "RunRecord", "Store", "new_run_id"]
