"""The run store (SQLite): runs, probes, variant queries, cached responses, scores, events."""

from probegen.store.store import STORE_FILENAME, QueryRecord, RunRecord, Store, new_run_id

__all__ = ["STORE_FILENAME", "QueryRecord", "RunRecord", "Store", "new_run_id"]
