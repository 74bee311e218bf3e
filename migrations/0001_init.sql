-- The core schema. Table and column names are part of the public contract:
-- operators query them directly with the sqlite3 shell.
--
-- Ids are lowercase hyphenated UUIDs stored as text; service-created times are
-- RFC 3339 UTC with milliseconds (2026-01-12T10:10:05.000Z), so they sort as text.

CREATE TABLE organizations (
    id          TEXT PRIMARY KEY NOT NULL,
    name        TEXT NOT NULL UNIQUE,
    created_at  TEXT NOT NULL
);

CREATE TABLE projects (
    id               TEXT PRIMARY KEY NOT NULL,
    organization_id  TEXT NOT NULL REFERENCES organizations (id),
    name             TEXT NOT NULL,
    created_at       TEXT NOT NULL,
    UNIQUE (organization_id, name)
);

-- Only the SHA-256 hex digest of a token is stored; `prefix` is its first
-- 12 characters, enough to recognise a token in a list and useless to an attacker.
CREATE TABLE api_tokens (
    id            TEXT PRIMARY KEY NOT NULL,
    project_id    TEXT NOT NULL REFERENCES projects (id),
    token_hash    TEXT NOT NULL UNIQUE,
    prefix        TEXT NOT NULL,
    created_at    TEXT NOT NULL,
    last_used_at  TEXT,
    revoked_at    TEXT
);

CREATE INDEX api_tokens_project ON api_tokens (project_id, created_at);

-- `timestamp` is kept exactly as the client sent it; `timestamp_us` is the same
-- instant as microseconds since the Unix epoch, for ordering and range queries.
-- UNIQUE (project_id, run_id) is what makes ingestion idempotent.
CREATE TABLE test_runs (
    id            TEXT PRIMARY KEY NOT NULL,
    project_id    TEXT NOT NULL REFERENCES projects (id),
    run_id        TEXT NOT NULL,
    status        TEXT NOT NULL CHECK (status IN ('passed', 'failed')),
    duration_ms   INTEGER NOT NULL CHECK (duration_ms >= 0),
    timestamp     TEXT NOT NULL,
    timestamp_us  INTEGER NOT NULL,
    created_at    TEXT NOT NULL,
    UNIQUE (project_id, run_id)
);

CREATE INDEX test_runs_project_timestamp ON test_runs (project_id, timestamp_us, id);
