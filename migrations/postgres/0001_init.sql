-- The core schema on PostgreSQL: the same tables and columns as the SQLite
-- schema in the parent folder, with native uuid and timestamptz types.
--
-- Every unique key and every index that queries filter by starts with the
-- tenant key (project_id), so test_runs can be distributed by project_id on a
-- PostgreSQL-compatible distributed engine such as Citus.

CREATE TABLE organizations (
    id          uuid PRIMARY KEY,
    name        text NOT NULL UNIQUE,
    created_at  timestamptz NOT NULL
);

CREATE TABLE projects (
    id               uuid PRIMARY KEY,
    organization_id  uuid NOT NULL REFERENCES organizations (id),
    name             text NOT NULL,
    created_at       timestamptz NOT NULL,
    UNIQUE (organization_id, name)
);

CREATE TABLE api_tokens (
    id            uuid PRIMARY KEY,
    project_id    uuid NOT NULL REFERENCES projects (id),
    token_hash    text NOT NULL UNIQUE,
    prefix        text NOT NULL,
    created_at    timestamptz NOT NULL,
    last_used_at  timestamptz,
    revoked_at    timestamptz
);

CREATE INDEX api_tokens_project ON api_tokens (project_id, created_at);

CREATE TABLE test_runs (
    id            uuid NOT NULL,
    project_id    uuid NOT NULL REFERENCES projects (id),
    run_id        uuid NOT NULL,
    status        text NOT NULL CHECK (status IN ('passed', 'failed')),
    duration_ms   bigint NOT NULL CHECK (duration_ms >= 0),
    timestamp     text NOT NULL,
    timestamp_us  bigint NOT NULL,
    created_at    timestamptz NOT NULL,
    PRIMARY KEY (project_id, id),
    UNIQUE (project_id, run_id)
);

CREATE INDEX test_runs_project_timestamp ON test_runs (project_id, timestamp_us, id);
