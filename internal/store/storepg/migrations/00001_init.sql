-- +goose Up
-- Times are BIGINT microseconds since the Unix epoch, UTC, as on SQLite: one encoding for
-- every engine. Coordination time (lease expiry) comes from clock_timestamp().
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value BIGINT NOT NULL
);
INSERT INTO meta (key, value) VALUES ('config_version', 1);

CREATE TABLE jobs (
    id         BIGSERIAL PRIMARY KEY,
    name       TEXT NOT NULL UNIQUE,
    spec       TEXT NOT NULL,
    paused     BIGINT NOT NULL DEFAULT 0,
    -- Copied out of spec for the firing path, which must not decode JSON per occurrence.
    overlap      TEXT NOT NULL,
    max_attempts BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE schedules (
    id           BIGSERIAL PRIMARY KEY,
    job_id       BIGINT NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    idx          BIGINT NOT NULL,
    key          TEXT NOT NULL,
    expr         TEXT NOT NULL,
    next_fire_at BIGINT,
    done         BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX schedules_job ON schedules (job_id);

-- Runs outlive their job (history), so job_id is not a foreign key.
CREATE TABLE runs (
    id               BIGSERIAL PRIMARY KEY,
    job_id           BIGINT NOT NULL,
    job              TEXT NOT NULL,
    schedule_id      BIGINT,
    scheduled_at     BIGINT,
    scheduled_until  BIGINT,
    occurrences      BIGINT NOT NULL DEFAULT 1,
    trigger          TEXT NOT NULL,
    state            TEXT NOT NULL,
    attempt          BIGINT NOT NULL DEFAULT 0,
    max_attempts     BIGINT NOT NULL,
    token            TEXT NOT NULL DEFAULT '',
    node             TEXT NOT NULL DEFAULT '',
    epoch            BIGINT NOT NULL DEFAULT 0,
    created_at       BIGINT NOT NULL,
    not_before       BIGINT NOT NULL,
    started_at       BIGINT,
    finished_at      BIGINT,
    exit_code        BIGINT,
    reason           TEXT NOT NULL DEFAULT '',
    cancel_requested BIGINT NOT NULL DEFAULT 0,
    stdout           BYTEA,
    stderr           BYTEA
);
-- An occurrence exists once.
CREATE UNIQUE INDEX runs_occurrence ON runs (schedule_id, scheduled_at) WHERE schedule_id IS NOT NULL;
-- Partial indexes: only active runs are entries, so they stay small and cheap to keep.
CREATE INDEX runs_active_job ON runs (job_id) WHERE state IN ('queued', 'assigned', 'running');
CREATE INDEX runs_queued ON runs (not_before, id) WHERE state = 'queued';
CREATE INDEX runs_node_active ON runs (node) WHERE state IN ('assigned', 'running');
CREATE INDEX runs_job_name ON runs (job, id);

CREATE TABLE outputs (
    run_id     BIGINT NOT NULL,
    attempt    BIGINT NOT NULL,
    name       TEXT NOT NULL,
    size       BIGINT NOT NULL,
    sha256     TEXT NOT NULL,
    node       TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (run_id, attempt, name)
);

CREATE TABLE leases (
    name       TEXT PRIMARY KEY,
    holder     TEXT NOT NULL,
    epoch      BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);

CREATE TABLE nodes (
    id           TEXT PRIMARY KEY,
    address      TEXT NOT NULL,
    mode         TEXT NOT NULL,
    priority     BIGINT NOT NULL,
    capacity     BIGINT NOT NULL,
    running      BIGINT NOT NULL,
    tags         TEXT NOT NULL,
    started_at   BIGINT NOT NULL,
    heartbeat_at BIGINT NOT NULL
);

CREATE TABLE events (
    id      BIGSERIAL PRIMARY KEY,
    type    TEXT NOT NULL,
    at      BIGINT NOT NULL,
    node    TEXT NOT NULL,
    message TEXT NOT NULL,
    data    TEXT NOT NULL
);
CREATE INDEX events_type ON events (type, id);

-- +goose Down
DROP TABLE events;
DROP TABLE nodes;
DROP TABLE leases;
DROP TABLE outputs;
DROP TABLE runs;
DROP TABLE schedules;
DROP TABLE jobs;
DROP TABLE meta;
