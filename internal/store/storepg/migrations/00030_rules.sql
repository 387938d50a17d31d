-- +goose Up
-- Event rules (notify.Spec as JSON). since_event: the last event id when the rule was
-- made; it judges only later events.
CREATE TABLE rules (
    name        TEXT PRIMARY KEY,
    spec        TEXT NOT NULL,
    since_event BIGINT NOT NULL,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);

-- One row per (rule, event, kind) that matched: sent, suppressed as a repeat, or a
-- digest of the repeats (event_id: the last one it sums up).
CREATE TABLE notifications (
    id         BIGSERIAL PRIMARY KEY,
    rule       TEXT NOT NULL,
    event_id   BIGINT NOT NULL,
    event_type TEXT NOT NULL,
    kind       TEXT NOT NULL,
    key        TEXT NOT NULL,
    state      TEXT NOT NULL,
    subject    TEXT NOT NULL,
    body       TEXT NOT NULL,
    count      BIGINT NOT NULL,
    epoch      BIGINT NOT NULL,
    node       TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX notifications_rule_event ON notifications (rule, event_id, kind);
CREATE INDEX notifications_event ON notifications (event_id);

-- The repeat window of each (rule, key).
CREATE TABLE notify_repeats (
    rule        TEXT NOT NULL,
    key         TEXT NOT NULL,
    since       BIGINT NOT NULL,
    until       BIGINT NOT NULL,
    suppressed  BIGINT NOT NULL,
    first_event BIGINT NOT NULL,
    last_event  BIGINT NOT NULL,
    PRIMARY KEY (rule, key)
);

-- The notifier's cursor: the last event judged. It starts at the events there are.
CREATE TABLE notify_cursor (
    id         BIGINT PRIMARY KEY CHECK (id = 1),
    event_id   BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
INSERT INTO notify_cursor (id, event_id, updated_at) SELECT 1, COALESCE(MAX(id), 0), 0 FROM events;

-- A notification's delivery records: run_id 0, notification its id.
ALTER TABLE deliveries ADD COLUMN notification BIGINT NOT NULL DEFAULT 0;
DROP INDEX deliveries_run_entry;
CREATE UNIQUE INDEX deliveries_run_entry ON deliveries (run_id, notification, entry);

-- Events recorded once per dedup key (a run's end, its lateness); NULL for the others.
ALTER TABLE events ADD COLUMN dedup TEXT;
CREATE UNIQUE INDEX events_dedup ON events (dedup);

-- +goose Down
DROP INDEX events_dedup;
ALTER TABLE events DROP COLUMN dedup;
DROP INDEX deliveries_run_entry;
DELETE FROM deliveries WHERE notification <> 0;
ALTER TABLE deliveries DROP COLUMN notification;
CREATE UNIQUE INDEX deliveries_run_entry ON deliveries (run_id, entry);
DROP TABLE notify_cursor;
DROP TABLE notify_repeats;
DROP TABLE notifications;
DROP TABLE rules;
