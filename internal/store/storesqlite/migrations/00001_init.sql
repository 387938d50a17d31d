-- +goose Up
-- Times are INTEGER microseconds since the Unix epoch, UTC.
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
INSERT INTO meta (key, value) VALUES ('config_version', 1);

CREATE TABLE jobs (
    id         INTEGER PRIMARY KEY,
    name       TEXT NOT NULL UNIQUE,
    spec       TEXT NOT NULL,
    paused     INTEGER NOT NULL DEFAULT 0,
    -- Copied out of spec for the firing path, which must not decode JSON per occurrence.
    overlap      TEXT NOT NULL,
    max_attempts INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);

CREATE TABLE schedules (
    id           INTEGER PRIMARY KEY,
    job_id       INTEGER NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    idx          INTEGER NOT NULL,
    key          TEXT NOT NULL,
    expr         TEXT NOT NULL,
    next_fire_at INTEGER,
    done         INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX schedules_job ON schedules (job_id);

-- Runs outlive their job (history), so job_id is not a foreign key.
CREATE TABLE runs (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id           INTEGER NOT NULL,
    job              TEXT NOT NULL,
    schedule_id      INTEGER,
    scheduled_at     INTEGER,
    scheduled_until  INTEGER,
    occurrences      INTEGER NOT NULL DEFAULT 1,
    trigger          TEXT NOT NULL,
    state            TEXT NOT NULL,
    attempt          INTEGER NOT NULL DEFAULT 0,
    max_attempts     INTEGER NOT NULL,
    token            TEXT NOT NULL DEFAULT '',
    node             TEXT NOT NULL DEFAULT '',
    epoch            INTEGER NOT NULL DEFAULT 0,
    created_at       INTEGER NOT NULL,
    not_before       INTEGER NOT NULL,
    started_at       INTEGER,
    finished_at      INTEGER,
    exit_code        INTEGER,
    reason           TEXT NOT NULL DEFAULT '',
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    stdout           BLOB,
    stderr           BLOB
);
-- An occurrence exists once.
CREATE UNIQUE INDEX runs_occurrence ON runs (schedule_id, scheduled_at) WHERE schedule_id IS NOT NULL;
-- Partial indexes: only active runs are entries, so they stay small and cheap to keep.
CREATE INDEX runs_active_job ON runs (job_id) WHERE state IN ('queued', 'assigned', 'running');
CREATE INDEX runs_queued ON runs (not_before, id) WHERE state = 'queued';
CREATE INDEX runs_node_active ON runs (node) WHERE state IN ('assigned', 'running');
CREATE INDEX runs_job_name ON runs (job, id);

CREATE TABLE outputs (
    run_id     INTEGER NOT NULL,
    attempt    INTEGER NOT NULL,
    name       TEXT NOT NULL,
    size       INTEGER NOT NULL,
    sha256     TEXT NOT NULL,
    node       TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (run_id, attempt, name)
);

CREATE TABLE leases (
    name       TEXT PRIMARY KEY,
    holder     TEXT NOT NULL,
    epoch      INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);

CREATE TABLE nodes (
    id           TEXT PRIMARY KEY,
    address      TEXT NOT NULL,
    mode         TEXT NOT NULL,
    priority     INTEGER NOT NULL,
    capacity     INTEGER NOT NULL,
    running      INTEGER NOT NULL,
    tags         TEXT NOT NULL,
    started_at   INTEGER NOT NULL,
    heartbeat_at INTEGER NOT NULL
);

CREATE TABLE events (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    type    TEXT NOT NULL,
    at      INTEGER NOT NULL,
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
