-- +goose Up
-- The process (node id and incarnation) that claimed each node id: heartbeats of any other
-- process are refused, so two processes never share one node's row.
ALTER TABLE nodes ADD COLUMN holder TEXT NOT NULL DEFAULT '';

-- Operator holds, kept across failover and restarts until released: target 'primary' is
-- the suspension of the cluster's primary role, a node id is a held standby.
CREATE TABLE holds (
    target TEXT PRIMARY KEY,
    kind   TEXT NOT NULL,
    set_by TEXT NOT NULL,
    set_at BIGINT NOT NULL
);

-- +goose Down
DROP TABLE holds;
ALTER TABLE nodes DROP COLUMN holder;
