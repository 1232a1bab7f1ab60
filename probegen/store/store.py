"""The run store: one SQLite database holding runs, probes, queries, responses, scores
and events for every run under a run directory.

Why one database per run directory rather than one per run: the response cache must be
shared ("an identical query is never sent twice, across runs too"), and reviews and
releases read across runs. ``runs/<run-id>/`` folders hold the human-facing exports.

Durability: WAL journal, ``synchronous=NORMAL``, and every write in a transaction, so a
process killed mid-write leaves a database that opens and reads consistently (the last
unfinished transaction is simply absent). All access happens on the event-loop thread;
SQLite writes here are small, so they do not need a thread of their own. The per-call
writes of a run (cached responses, query outcomes, failure events) have ``a``-prefixed
async forms that commit concurrent callers' writes together (:mod:`.group_commit`) and
return once committed; the synchronous forms commit on their own, as before.
"""

from __future__ import annotations

import functools
import json
import secrets
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from probegen.errors import StoreError
from probegen.findings.effect import Effect
from probegen.models.base import ChatMessage, GenerateConfig, Response, Usage
from probegen.probe import Probe
from probegen.redaction import redact, redact_config, redact_text
from probegen.scoring.base import Score
from probegen.store.group_commit import GroupCommit, Write
from probegen.store.reviews import ReviewTables
from probegen.store.schema import MIGRATIONS

__all__ = [
    "EliteRecord",
    "QueryRecord",
    "RunRecord",
    "Store",
    "insert_probe",
    "new_run_id",
    "utc_now",
]

STORE_FILENAME = "probegen.sqlite"


def utc_now() -> str:
    """The current time as an ISO-8601 UTC string (the store's time format)."""
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def new_run_id(kind: str) -> str:
    """A sortable, unique run id such as ``20261122-201500-ask-3f9a``."""
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    return f"{stamp}-{kind}-{secrets.token_hex(2)}"


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


@functools.lru_cache(maxsize=1024)
def _config_json(config: GenerateConfig) -> str:
    """A config as stored with a cached response (memoised: runs reuse a few configs)."""
    return _dumps(config.model_dump(mode="json"))


def _message_json(message: ChatMessage) -> str:
    """One message as stored with a cached response; ``"[" + ", ".join(...) + "]"`` of
    these is the ``_dumps`` of the list. Text messages are memoised (every sample of a
    variant stores the same ones); messages with images are not, to free their bytes."""
    if message.images:
        return _dumps(message.model_dump(mode="json"))
    return _text_message_json(message)


@functools.lru_cache(maxsize=4096)
def _text_message_json(message: ChatMessage) -> str:
    return _dumps(message.model_dump(mode="json"))


@dataclass(frozen=True)
class RunRecord:
    """A row of ``runs``."""

    id: str
    kind: str
    status: str
    config: dict[str, Any]
    probegen_version: str
    created_at: str
    finished_at: str | None


@dataclass(frozen=True)
class EliteRecord:
    """A row of ``elites``: one probe of a run's final archive.

    The store-facing subset of the elite record written to ``elites.jsonl``
    (:class:`probegen.elite.RunElite`, whose ``store_record()`` gives this row): the
    probe itself and its answers live in the store's own tables."""

    probe_id: str
    model: str
    fitness: float
    novelty: float
    descriptor: tuple[str, ...]
    cluster: int | None = None
    answer_family: int | None = None
    finding: bool = False
    """Significant after the run's false-discovery control, with fitness above 0."""
    p_value: float | None = None
    q_value: float | None = None
    effect: Effect | None = None
    replicated: bool | None = None
    """Whether the finding held when measured again; None when it was not re-measured."""


@dataclass(frozen=True)
class QueryRecord:
    """A row of ``queries`` joined with its response text, if it succeeded."""

    probe_id: str
    model: str
    variant_key: str
    group_id: str | None
    sample_index: int
    status: str
    text: str | None
    error: str | None
    attempts: int
    cached: bool


class Store(ReviewTables):
    """A handle on one run-store database.

    The review tables' queries are its methods too, from
    :class:`~probegen.store.reviews.ReviewTables`.

    Args:
        path: The SQLite file; created with its parent directory if absent.

    Attributes:
        group_commit: Where the async writes queue (its counters give the batch sizes).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        # Responses queued by aput_response and not yet committed, so that a lookup in
        # the meantime still finds them (read-your-writes for the response cache).
        self._unflushed_responses: dict[str, Response] = {}
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._db = sqlite3.connect(path, isolation_level=None, timeout=30.0)
            self._db.row_factory = sqlite3.Row
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("PRAGMA foreign_keys=ON")
            self._migrate()
        except sqlite3.DatabaseError as error:
            raise StoreError(
                f"{path}: cannot open the run store: {error}",
                fix="use a run directory holding a probegen store, or a new one",
            ) from error
        self.group_commit = GroupCommit(self._db, self._unflushed_responses.clear)

    @classmethod
    def in_run_dir(cls, run_dir: Path) -> Store:
        """Open the store of ``run_dir`` (``<run_dir>/probegen.sqlite``)."""
        return cls(run_dir / STORE_FILENAME)

    def close(self) -> None:
        """Commit any queued writes and close the connection."""
        self.group_commit.flush()
        self._db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def schema_version(self) -> int:
        """How many migrations this database has applied."""
        return int(self._db.execute("PRAGMA user_version").fetchone()[0])

    def _migrate(self) -> None:
        current = self.schema_version
        if current > len(MIGRATIONS):
            raise StoreError(
                f"{self.path}: schema version {current} is newer than this probegen "
                f"understands ({len(MIGRATIONS)})",
                fix="upgrade probegen (pip install -U probegen)",
            )
        for version in range(current, len(MIGRATIONS)):
            # executescript commits on its own, so the version bump rides inside the
            # same explicit transaction as the DDL.
            self._db.executescript(
                f"BEGIN IMMEDIATE;\n{MIGRATIONS[version]}\nPRAGMA user_version = {version + 1};\n"
                "COMMIT;"
            )

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """A write transaction: committed on success, rolled back on any exception.

        Writes queued by the async methods are committed first, so writes land in the
        order they were issued."""
        self.group_commit.flush()
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    # -- runs -----------------------------------------------------------------------

    def create_run(self, kind: str, config: dict[str, Any], run_id: str | None = None) -> str:
        """Record a new run; its config is stored with secrets redacted."""
        from probegen import __version__

        run_id = run_id or new_run_id(kind)
        with self.transaction() as db:
            db.execute(
                "INSERT INTO runs (id, kind, status, config, probegen_version, created_at)"
                " VALUES (?, ?, 'running', ?, ?, ?)",
                (run_id, kind, _dumps(redact_config(config)), __version__, utc_now()),
            )
        return run_id

    def finish_run(self, run_id: str, status: str = "finished", reason: str | None = None) -> None:
        """Mark a run finished (or failed / interrupted).

        Args:
            run_id: The run.
            status: ``finished``, ``failed`` or ``interrupted``.
            reason: Why it failed, one line; logged (redacted) as a ``run_failed`` event
                in the same transaction, so a failed run always says why.
        """
        with self.transaction() as db:
            db.execute(
                "UPDATE runs SET status = ?, finished_at = ? WHERE id = ?",
                (status, utc_now(), run_id),
            )
            if reason is not None:
                db.execute(
                    "INSERT INTO events (run_id, at, kind, data) VALUES (?, ?, ?, ?)",
                    (run_id, utc_now(), "run_failed", _dumps(redact({"reason": reason}))),
                )

    def get_run(self, run_id: str) -> RunRecord | None:
        """The run with this id, or None."""
        row = self._db.execute("SELECT * FROM runs WHERE id = ?", (run_id,)).fetchone()
        return None if row is None else _run_record(row)

    def list_runs(self) -> list[RunRecord]:
        """Every run, oldest first."""
        rows = self._db.execute("SELECT * FROM runs ORDER BY created_at, id").fetchall()
        return [_run_record(row) for row in rows]

    # -- probes ---------------------------------------------------------------------

    def add_probe(self, run_id: str, probe: Probe) -> None:
        """Record ``probe`` as part of ``run_id`` (idempotent)."""
        with self.transaction() as db:
            insert_probe(db, run_id, probe)

    def probes(self, run_id: str) -> list[Probe]:
        """The probes of a run, in insertion order."""
        rows = self._db.execute(
            "SELECT * FROM probes WHERE run_id = ? ORDER BY rowid", (run_id,)
        ).fetchall()
        return [_probe(row) for row in rows]

    def probe(self, run_id: str, probe_id: str) -> Probe | None:
        """One probe of a run, or None."""
        row = self._db.execute(
            "SELECT * FROM probes WHERE run_id = ? AND probe_id = ?", (run_id, probe_id)
        ).fetchone()
        return None if row is None else _probe(row)

    def select(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        """Run a read-only query: for modules of this package that own tables of this
        store (``batches``, ``reviews``) and keep their SQL beside their logic. Writes go
        through :meth:`transaction`."""
        return self._db.execute(sql, tuple(params)).fetchall()

    # -- the response cache (implements probegen.models.base.ResponseCache) ----------

    def get_response(self, key: str) -> Response | None:
        """The cached response for ``key``, or None."""
        row = self._db.execute("SELECT * FROM responses WHERE key = ?", (key,)).fetchone()
        if row is None or not row["text"].strip():
            queued = self._unflushed_responses.get(key)
            if queued is not None:
                return queued.model_copy(update={"cached": True})
        if row is None:
            return None
        return Response(
            text=row["text"],
            finish_reason=row["finish_reason"],
            model=row["reported_model"] or "",
            usage=Usage(
                input_tokens=row["input_tokens"],
                output_tokens=row["output_tokens"],
                cost_usd=row["cost_usd"],
            ),
            latency_s=row["latency_s"] or 0.0,
            cached=True,
            top_logprobs=json.loads(row["top_logprobs"]) if row["top_logprobs"] else None,
        )

    def put_response(
        self,
        key: str,
        identity: str,
        messages: Sequence[ChatMessage],
        config: GenerateConfig,
        sample_index: int,
        response: Response,
    ) -> None:
        """Cache a successful response. The first answer for a key stays, unless it has no
        text: a store written before empty answers counted as failures may hold such rows,
        and the answer that replaces one must not be dropped."""
        with self.transaction() as db:
            db.execute(*_response_write(key, identity, messages, config, sample_index, response))

    async def aput_response(
        self,
        key: str,
        identity: str,
        messages: Sequence[ChatMessage],
        config: GenerateConfig,
        sample_index: int,
        response: Response,
    ) -> None:
        """:meth:`put_response`, committed together with the writes other tasks issue
        meanwhile; returns once committed (implements
        :class:`probegen.models.base.AsyncResponseCache`)."""
        write = _response_write(key, identity, messages, config, sample_index, response)
        self._unflushed_responses.setdefault(key, response)
        await self.group_commit.commit(write)

    def count_responses(self, model: str | None = None) -> int:
        """How many responses are cached (for one model identity, or all)."""
        if model is None:
            return int(self._db.execute("SELECT count(*) FROM responses").fetchone()[0])
        sql = "SELECT count(*) FROM responses WHERE model = ?"
        return int(self._db.execute(sql, (model,)).fetchone()[0])

    # -- queries --------------------------------------------------------------------

    def record_query(
        self,
        run_id: str,
        probe_id: str,
        model: str,
        variant_key: str,
        group_id: str | None,
        sample_index: int,
        *,
        response_key: str | None,
        error: str | None = None,
        attempts: int = 0,
        cached: bool = False,
    ) -> None:
        """Record the outcome of one variant query: an answer (``response_key``) or a
        failure (``error``, stored with secrets redacted). A later success for the same
        slot replaces a failure; the failure stays in the event log."""
        with self.transaction() as db:
            db.execute(
                *_query_write(
                    run_id, probe_id, model, variant_key, group_id, sample_index,
                    response_key=response_key, error=error, attempts=attempts, cached=cached,
                )
            )  # fmt: skip

    async def arecord_query(
        self,
        run_id: str,
        probe_id: str,
        model: str,
        variant_key: str,
        group_id: str | None,
        sample_index: int,
        *,
        response_key: str | None,
        error: str | None = None,
        attempts: int = 0,
        cached: bool = False,
        event: tuple[str, dict[str, Any]] | None = None,
    ) -> None:
        """:meth:`record_query`, committed together with the writes other tasks issue
        meanwhile; returns once committed.

        Args:
            event: ``(kind, data)`` of an event logged in the same transaction (a
                failed query's ``query_failed``).
        """
        writes = [
            _query_write(
                run_id, probe_id, model, variant_key, group_id, sample_index,
                response_key=response_key, error=error, attempts=attempts, cached=cached,
            )
        ]  # fmt: skip
        if event is not None:
            writes.append(_event_write(run_id, *event))
        await self.group_commit.commit(*writes)

    def queries(self, run_id: str, probe_id: str | None = None) -> list[QueryRecord]:
        """The query outcomes of a run (optionally one probe), with answer texts."""
        sql = (
            "SELECT q.*, r.text FROM queries q LEFT JOIN responses r ON r.key = q.response_key"
            " WHERE q.run_id = ?"
        )
        params: tuple[str, ...] = (run_id,)
        if probe_id is not None:
            sql += " AND q.probe_id = ?"
            params += (probe_id,)
        rows = self._db.execute(sql + " ORDER BY q.id", params).fetchall()
        return [
            QueryRecord(
                probe_id=r["probe_id"],
                model=r["model"],
                variant_key=r["variant_key"],
                group_id=r["group_id"],
                sample_index=r["sample_index"],
                status=r["status"],
                text=r["text"],
                error=r["error"],
                attempts=r["attempts"],
                cached=bool(r["cached"]),
            )
            for r in rows
        ]

    # -- scores ---------------------------------------------------------------------

    def put_score(self, run_id: str, probe_id: str, model: str, score: Score) -> None:
        """Record a scorer's verdict on one probe's answers from ``model`` (replaces an
        earlier verdict by the same scorer: a re-scored probe keeps only its latest)."""
        detail = {
            "reasoning": score.reasoning,
            "detail": score.detail,
            "error": score.error,
            "effect": score.effect.model_dump(mode="json") if score.effect else None,
        }
        with self.transaction() as db:
            db.execute(
                "INSERT OR REPLACE INTO scores (run_id, probe_id, model, scorer, status, bias,"
                " relevance, generality, refusal, fitness, detail, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    run_id,
                    probe_id,
                    model,
                    score.scorer,
                    score.status,
                    score.bias,
                    score.relevance,
                    score.generality,
                    score.refusal,
                    score.fitness,
                    _dumps(redact_config(detail)),
                    utc_now(),
                ),
            )

    def scores(self, run_id: str, probe_id: str | None = None) -> list[tuple[str, str, Score]]:
        """``(probe_id, model, score)`` for a run's scores (optionally one probe)."""
        sql = "SELECT * FROM scores WHERE run_id = ?"
        params: tuple[str, ...] = (run_id,)
        if probe_id is not None:
            sql += " AND probe_id = ?"
            params += (probe_id,)
        rows = self._db.execute(sql + " ORDER BY rowid", params).fetchall()
        result = []
        for r in rows:
            detail = json.loads(r["detail"])
            score = Score(
                scorer=r["scorer"],
                status=r["status"],
                bias=r["bias"],
                relevance=r["relevance"],
                generality=r["generality"],
                refusal=r["refusal"],
                fitness=r["fitness"],
                reasoning=detail.get("reasoning", {}),
                detail=detail.get("detail", {}),
                error=detail.get("error"),
                effect=detail.get("effect"),
            )
            result.append((r["probe_id"], r["model"], score))
        return result

    # -- elites ---------------------------------------------------------------------

    def replace_elites(self, run_id: str, model: str, elites: Sequence[EliteRecord]) -> None:
        """Record the archive a run ended with (replacing an earlier record, e.g. after
        a resume), in one transaction."""
        with self.transaction() as db:
            db.execute("DELETE FROM elites WHERE run_id = ? AND model = ?", (run_id, model))
            db.executemany(
                "INSERT INTO elites (run_id, probe_id, model, rank, fitness, novelty,"
                " descriptor, cluster, created_at, finding, p_value, q_value, effect,"
                " replicated, answer_family) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        run_id,
                        e.probe_id,
                        model,
                        rank,
                        e.fitness,
                        e.novelty,
                        _dumps(list(e.descriptor)),
                        e.cluster,
                        utc_now(),
                        int(e.finding),
                        e.p_value,
                        e.q_value,
                        None if e.effect is None else e.effect.model_dump_json(),
                        None if e.replicated is None else int(e.replicated),
                        e.answer_family,
                    )
                    for rank, e in enumerate(elites, start=1)
                ],
            )

    def elites(self, run_id: str) -> list[EliteRecord]:
        """A run's final archive, best first."""
        rows = self._db.execute(
            "SELECT * FROM elites WHERE run_id = ? ORDER BY model, rank", (run_id,)
        ).fetchall()
        return [
            EliteRecord(
                probe_id=r["probe_id"],
                model=r["model"],
                fitness=r["fitness"],
                novelty=r["novelty"],
                descriptor=tuple(json.loads(r["descriptor"])),
                cluster=r["cluster"],
                answer_family=r["answer_family"],
                finding=bool(r["finding"]),
                p_value=r["p_value"],
                q_value=r["q_value"],
                effect=None if r["effect"] is None else Effect.model_validate_json(r["effect"]),
                replicated=None if r["replicated"] is None else bool(r["replicated"]),
            )
            for r in rows
        ]

    # -- events ---------------------------------------------------------------------

    def log_event(self, run_id: str | None, kind: str, data: dict[str, Any] | None = None) -> None:
        """Append an event (secrets redacted)."""
        with self.transaction() as db:
            db.execute(*_event_write(run_id, kind, data))

    def events(self, run_id: str, kind: str | None = None) -> list[dict[str, Any]]:
        """A run's events, oldest first, as dicts with ``at``, ``kind`` and ``data``."""
        sql = "SELECT at, kind, data FROM events WHERE run_id = ?"
        params: tuple[str, ...] = (run_id,)
        if kind is not None:
            sql += " AND kind = ?"
            params += (kind,)
        rows = self._db.execute(sql + " ORDER BY id", params).fetchall()
        return [{"at": r["at"], "kind": r["kind"], "data": json.loads(r["data"])} for r in rows]


def _probe(r: sqlite3.Row) -> Probe:
    return Probe.model_validate(
        {
            "template": r["template"],
            "attribute": r["attribute"],
            "framing": r["framing"],
            "superdomain": r["superdomain"],
            "domain": r["domain"],
            "topic": r["topic"],
            "form": r["form"],
            "media": json.loads(r["media"]),
            "provenance": {
                "parents": json.loads(r["parents"]),
                "operator": r["operator"],
                "generation": r["generation"],
                "run_id": r["run_id"],
            },
        }
    )


_PUT_RESPONSE = (
    "INSERT INTO responses (key, model, config, messages, sample_index,"
    " text, finish_reason, reported_model, input_tokens, output_tokens, cost_usd,"
    " latency_s, created_at, top_logprobs)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    " ON CONFLICT (key) DO UPDATE SET text = excluded.text,"
    " finish_reason = excluded.finish_reason,"
    " reported_model = excluded.reported_model,"
    " input_tokens = excluded.input_tokens, output_tokens = excluded.output_tokens,"
    " cost_usd = excluded.cost_usd, latency_s = excluded.latency_s,"
    " created_at = excluded.created_at, top_logprobs = excluded.top_logprobs"
    " WHERE trim(responses.text, ' ' || char(9, 10, 11, 12, 13)) = ''"
    " AND responses.top_logprobs IS NULL"
)

_RECORD_QUERY = (
    "INSERT INTO queries (run_id, probe_id, model, variant_key, group_id,"
    " sample_index, status, response_key, error, attempts, cached, created_at)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    " ON CONFLICT (run_id, probe_id, model, variant_key, sample_index) DO UPDATE"
    " SET status = excluded.status, response_key = excluded.response_key,"
    " error = excluded.error, attempts = excluded.attempts,"
    " cached = excluded.cached, created_at = excluded.created_at"
)


def _response_write(
    key: str,
    identity: str,
    messages: Sequence[ChatMessage],
    config: GenerateConfig,
    sample_index: int,
    response: Response,
) -> Write:
    """The write that caches a response (see :meth:`Store.put_response`)."""
    return (
        _PUT_RESPONSE,
        (
            key,
            identity,
            _config_json(config),
            "[" + ", ".join(_message_json(m) for m in messages) + "]",
            sample_index,
            response.text,
            response.finish_reason,
            response.model,
            response.usage.input_tokens,
            response.usage.output_tokens,
            response.usage.cost_usd,
            response.latency_s,
            utc_now(),
            None if response.top_logprobs is None else _dumps(response.top_logprobs),
        ),
    )


def _query_write(
    run_id: str,
    probe_id: str,
    model: str,
    variant_key: str,
    group_id: str | None,
    sample_index: int,
    *,
    response_key: str | None,
    error: str | None,
    attempts: int,
    cached: bool,
) -> Write:
    """The write that records a query's outcome (see :meth:`Store.record_query`)."""
    status = "ok" if response_key is not None else "failed"
    return (
        _RECORD_QUERY,
        (
            run_id,
            probe_id,
            model,
            variant_key,
            group_id,
            sample_index,
            status,
            response_key,
            None if error is None else redact_text(error),
            attempts,
            int(cached),
            utc_now(),
        ),
    )


def _event_write(run_id: str | None, kind: str, data: dict[str, Any] | None) -> Write:
    """The write that appends an event, secrets redacted (see :meth:`Store.log_event`)."""
    return (
        "INSERT INTO events (run_id, at, kind, data) VALUES (?, ?, ?, ?)",
        (run_id, utc_now(), kind, _dumps(redact(data or {}))),
    )


def insert_probe(db: sqlite3.Connection, run_id: str, probe: Probe) -> None:
    """Insert ``probe`` into ``probes`` inside the caller's transaction (idempotent)."""
    p = probe.provenance
    db.execute(
        "INSERT OR IGNORE INTO probes (run_id, probe_id, template, attribute, framing,"
        " superdomain, domain, topic, form, media, parents, operator, generation,"
        " created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            run_id,
            probe.id,
            probe.template,
            probe.attribute,
            probe.framing.value,
            probe.superdomain,
            probe.domain,
            probe.topic,
            probe.form.value if probe.form else None,
            _dumps([m.model_dump(mode="json") for m in probe.media]),
            _dumps(list(p.parents)),
            p.operator,
            p.generation,
            utc_now(),
        ),
    )


def _run_record(row: sqlite3.Row) -> RunRecord:
    return RunRecord(
        id=row["id"],
        kind=row["kind"],
        status=row["status"],
        config=json.loads(row["config"]),
        probegen_version=row["probegen_version"],
        created_at=row["created_at"],
        finished_at=row["finished_at"],
    )
