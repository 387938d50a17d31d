-- +goose Up
-- The configuration change log: one row per change of a job, rule or synced setting,
-- seq one above the last (meta.config_version is the counter, locked to commit), so a
-- cursor can follow it. On a sync target, source_seq is the source's change it applied
-- and rewritten what address substitution changed.
CREATE TABLE changes (
    seq        INTEGER PRIMARY KEY,
    at         INTEGER NOT NULL,
    entity     TEXT NOT NULL,
    key        TEXT NOT NULL,
    op         TEXT NOT NULL,
    def        TEXT,
    source_seq INTEGER NOT NULL DEFAULT 0,
    rewritten  TEXT NOT NULL DEFAULT ''
);
CREATE INDEX changes_at ON changes (at);

-- This repository's role as a disaster-recovery sync target (one row).
CREATE TABLE sync_target (
    id          INTEGER PRIMARY KEY,
    active      INTEGER NOT NULL,
    source      TEXT NOT NULL,
    source_name TEXT NOT NULL,
    cursor      INTEGER NOT NULL,
    applied_at  INTEGER NOT NULL,
    promoted_at INTEGER NOT NULL
);
INSERT INTO sync_target VALUES (1, 0, '', '', 0, 0, 0);

-- Jobs a target holds paused though its source runs them (promote resumes them).
CREATE TABLE sync_held (
    job TEXT PRIMARY KEY
);

-- The sender's state on a source (one row), so the next primary resumes it.
CREATE TABLE sync_source (
    id            INTEGER PRIMARY KEY,
    paused        INTEGER NOT NULL,
    failures      INTEGER NOT NULL,
    last_error    TEXT NOT NULL,
    last_error_at INTEGER NOT NULL,
    last_ok_at    INTEGER NOT NULL,
    acked         INTEGER NOT NULL,
    target        TEXT NOT NULL
);
INSERT INTO sync_source VALUES (1, 0, 0, '', 0, 0, 0, '');

-- +goose Down
DROP TABLE sync_source;
DROP TABLE sync_held;
DROP TABLE sync_target;
DROP TABLE changes;
