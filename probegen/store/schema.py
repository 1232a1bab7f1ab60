"""The run store's schema, as an ordered list of migrations.

``PRAGMA user_version`` holds the number of migrations applied. To change the schema,
append a migration; never edit one that has shipped, since existing stores have run it.
"""

from __future__ import annotations

__all__ = ["MIGRATIONS"]

_V1 = """
CREATE TABLE runs (
    id               TEXT PRIMARY KEY,
    kind             TEXT NOT NULL,            -- ask, evolve, eval, ...
    status           TEXT NOT NULL,            -- running, finished, failed, interrupted
    config           TEXT NOT NULL,            -- JSON, secrets redacted
    probegen_version TEXT NOT NULL,
    created_at       TEXT NOT NULL,
    finished_at      TEXT
);

CREATE TABLE probes (
    run_id      TEXT NOT NULL REFERENCES runs(id),
    probe_id    TEXT NOT NULL,
    template    TEXT NOT NULL,
    attribute   TEXT NOT NULL,
    framing     TEXT NOT NULL,
    superdomain TEXT,
    domain      TEXT,
    topic       TEXT,
    form        TEXT,
    media       TEXT NOT NULL DEFAULT '[]',    -- JSON list of MediaPart
    parents     TEXT NOT NULL DEFAULT '[]',    -- JSON list of probe ids
    operator    TEXT,
    generation  INTEGER NOT NULL DEFAULT 0,
    created_at  TEXT NOT NULL,
    PRIMARY KEY (run_id, probe_id)
);

-- The response cache: one row per distinct (model, parameters, messages, sample index),
-- shared by every run in the store, so an identical query is never sent twice.
CREATE TABLE responses (
    key            TEXT PRIMARY KEY,
    model          TEXT NOT NULL,              -- backend identity (spec + endpoint)
    config         TEXT NOT NULL,              -- JSON GenerateConfig
    messages       TEXT NOT NULL,              -- JSON list of ChatMessage
    sample_index   INTEGER NOT NULL,
    text           TEXT NOT NULL,
    finish_reason  TEXT,
    reported_model TEXT,
    input_tokens   INTEGER,
    output_tokens  INTEGER,
    cost_usd       REAL,
    latency_s      REAL,
    created_at     TEXT NOT NULL
);

-- One row per (run, probe, model, variant, sample): the answer, or the failure.
CREATE TABLE queries (
    id           INTEGER PRIMARY KEY,
    run_id       TEXT NOT NULL REFERENCES runs(id),
    probe_id     TEXT NOT NULL,
    model        TEXT NOT NULL,
    variant_key  TEXT NOT NULL,
    group_id     TEXT,
    sample_index INTEGER NOT NULL,
    status       TEXT NOT NULL CHECK (status IN ('ok', 'failed')),
    response_key TEXT REFERENCES responses(key),
    error        TEXT,
    attempts     INTEGER NOT NULL DEFAULT 0,
    cached       INTEGER NOT NULL DEFAULT 0,
    created_at   TEXT NOT NULL,
    UNIQUE (run_id, probe_id, model, variant_key, sample_index)
);
CREATE INDEX queries_by_probe ON queries (run_id, probe_id);

CREATE TABLE scores (
    run_id     TEXT NOT NULL REFERENCES runs(id),
    probe_id   TEXT NOT NULL,
    model      TEXT NOT NULL,                  -- the target whose answers were scored
    scorer     TEXT NOT NULL,
    status     TEXT NOT NULL CHECK (status IN ('ok', 'unscorable')),
    bias       INTEGER,
    relevance  INTEGER,
    generality INTEGER,
    refusal    INTEGER,
    fitness    REAL,
    detail     TEXT NOT NULL DEFAULT '{}',     -- JSON: reasoning per dimension, errors
    created_at TEXT NOT NULL,
    PRIMARY KEY (run_id, probe_id, model, scorer)
);

-- Append-only log: retries, failures, progress; never updated or deleted.
CREATE TABLE events (
    id     INTEGER PRIMARY KEY,
    run_id TEXT,
    at     TEXT NOT NULL,
    kind   TEXT NOT NULL,
    data   TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX events_by_run ON events (run_id, kind);
"""

# v2: the archive a search ended with, so reviews and releases can read it from the store.
_V2 = """
CREATE TABLE elites (
    run_id     TEXT NOT NULL REFERENCES runs(id),
    probe_id   TEXT NOT NULL,
    model      TEXT NOT NULL,                  -- the target the probe was found on
    rank       INTEGER NOT NULL,               -- 1 = best
    fitness    REAL NOT NULL,
    novelty    REAL NOT NULL,
    descriptor TEXT NOT NULL,                  -- JSON list
    cluster    INTEGER,
    created_at TEXT NOT NULL,
    PRIMARY KEY (run_id, probe_id, model)
);
"""

# v3: the human verification queue. Reviews are append-only (the triggers refuse UPDATE
# and DELETE): a later decision by the same reviewer on the same item supersedes the
# earlier one when read (highest id wins), so the full history of every item survives.
_V3 = """
CREATE TABLE reviewers (
    id           INTEGER PRIMARY KEY,
    name         TEXT NOT NULL UNIQUE,
    token_sha256 TEXT NOT NULL UNIQUE,         -- the login token itself is never stored
    created_at   TEXT NOT NULL
);

CREATE TABLE reviews (
    id          INTEGER PRIMARY KEY,           -- monotonic: the latest decision wins
    run_id      TEXT NOT NULL REFERENCES runs(id),
    probe_id    TEXT NOT NULL,                 -- the item decided on
    reviewer_id INTEGER NOT NULL REFERENCES reviewers(id),
    action      TEXT NOT NULL
                CHECK (action IN ('accept', 'reject', 'edit', 'relabel', 'skip')),
    reason      TEXT CHECK (reason IS NULL OR reason IN ('unrealistic',
                'stereotyping_question', 'not_counterfactual', 'duplicate', 'harmful',
                'other')),                     -- reject only
    note        TEXT,                          -- free text; required for reason 'other'
    payload     TEXT NOT NULL DEFAULT '{}',    -- JSON: edit {template}, relabel {labels}
    revision_id TEXT,                          -- edit only: id of the new revision probe,
                                               -- which is a revision of probe_id
    created_at  TEXT NOT NULL
);
CREATE INDEX reviews_by_item ON reviews (run_id, probe_id, reviewer_id);

CREATE TRIGGER reviews_are_append_only_update BEFORE UPDATE ON reviews
BEGIN
    SELECT RAISE(ABORT, 'reviews are append-only');
END;
CREATE TRIGGER reviews_are_append_only_delete BEFORE DELETE ON reviews
BEGIN
    SELECT RAISE(ABORT, 'reviews are append-only');
END;
"""

# v4: review scope and server-side sessions. A decision records the queue it was made
# in (its fitness threshold and served runs), so the release builder counts only
# decisions that queue could have offered; decisions from before v4 have NULL there and
# are held to the default threshold. Reviewers can be removed (their token stops working,
# their reviews stay); web sessions live here, so logout and removal end them.
_V4 = """
ALTER TABLE reviews ADD COLUMN threshold REAL;    -- the queue's fitness threshold
ALTER TABLE reviews ADD COLUMN served_runs TEXT;  -- JSON list of served run ids; NULL: all
ALTER TABLE reviewers ADD COLUMN removed_at TEXT; -- set by review remove-reviewer

CREATE TABLE review_sessions (
    id_sha256    TEXT PRIMARY KEY,                -- the session id itself is only in the
                                                  -- reviewer's signed cookie
    reviewer_id  INTEGER NOT NULL REFERENCES reviewers(id),
    created_at   TEXT NOT NULL,
    last_seen_at TEXT NOT NULL,
    ended_at     TEXT                             -- logout or reviewer removal
);
CREATE INDEX review_sessions_by_reviewer ON review_sessions (reviewer_id);
"""

# v5: findings you can trust. A response may carry the first token's top
# log-probabilities (the decision measurement reads P(yes) from them), and each elite
# records whether it is a finding: its between-group effect, p-value, q-value after the
# run's false-discovery control, and whether it replicated.
_V5 = """
ALTER TABLE responses ADD COLUMN top_logprobs TEXT;  -- JSON {token: logprob}, or NULL

ALTER TABLE elites ADD COLUMN finding INTEGER NOT NULL DEFAULT 0;
ALTER TABLE elites ADD COLUMN p_value REAL;
ALTER TABLE elites ADD COLUMN q_value REAL;
ALTER TABLE elites ADD COLUMN effect TEXT;           -- JSON Effect, or NULL
ALTER TABLE elites ADD COLUMN replicated INTEGER;    -- 1, 0, or NULL: not re-measured
"""

# v6: provider batches (OpenAI Batch, Anthropic Message Batches). Before a batch is sent,
# its items are recorded under a submission token ('submitting'; the id is the token's
# placeholder); once the provider accepts it, the row takes the provider's id. Each item's
# custom id is its response-cache key. A killed run resumes by polling the batch (or, for
# a submission cut off before its id came back, by finding it through the token the
# provider keeps with it), never by submitting its items again. An item stays 'pending'
# until its outcome is known; one that failed or expired may be submitted again (a retry,
# as for a failed call).
_V6 = """
CREATE TABLE batches (
    id              TEXT PRIMARY KEY,          -- the provider's batch id
    provider        TEXT NOT NULL,             -- openai, anthropic
    model           TEXT NOT NULL,             -- backend identity (spec + endpoint)
    run_id          TEXT REFERENCES runs(id),  -- the run that submitted it
    status          TEXT NOT NULL CHECK (status IN ('submitting', 'submitted', 'ended')),
    token           TEXT NOT NULL,             -- the submission token sent with it
    provider_status TEXT,                      -- the provider's last word (completed, ...)
    items           INTEGER NOT NULL,
    created_at      TEXT NOT NULL,
    ended_at        TEXT
);
CREATE INDEX batches_by_model ON batches (model, status);

CREATE TABLE batch_items (
    batch_id  TEXT NOT NULL REFERENCES batches(id),
    custom_id TEXT NOT NULL,                   -- the item's response-cache key
    status    TEXT NOT NULL DEFAULT 'pending'
              CHECK (status IN ('pending', 'answered', 'failed', 'expired')),
    error     TEXT,                            -- why it failed, secrets redacted
    PRIMARY KEY (batch_id, custom_id)
);
CREATE INDEX batch_items_by_key ON batch_items (custom_id, status);
"""

# Version 7: each elite's answer family (probegen.evolve.families), which the review
# queue orders by beside its question family (cluster).
_V7 = """
ALTER TABLE elites ADD COLUMN answer_family INTEGER;
"""

MIGRATIONS: tuple[str, ...] = (_V1, _V2, _V3, _V4, _V5, _V6, _V7)
"""Migration *i* brings a store from ``user_version`` *i* to *i + 1*."""
