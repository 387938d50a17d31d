-- +goose Up
-- The version of tandem each node runs, as its heartbeats report it (the console's
-- Server Status shows it).
ALTER TABLE nodes ADD COLUMN version TEXT NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE nodes DROP COLUMN version;
