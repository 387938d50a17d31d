-- +goose Up
-- Each node's load-balancing weight, as its heartbeats report it.
ALTER TABLE nodes ADD COLUMN weight DOUBLE PRECISION NOT NULL DEFAULT 1;

-- Cluster-wide settings every primary reads (dispatch.algorithm) and per-node settings
-- set by operators that outlive a node's process (node/ID/weight).
CREATE TABLE settings (
    key        TEXT PRIMARY KEY,
    value      TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);

-- +goose Down
DROP TABLE settings;
ALTER TABLE nodes DROP COLUMN weight;
