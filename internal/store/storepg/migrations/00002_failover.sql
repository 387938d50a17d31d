-- +goose Up
-- A planned handover names the node that may take the resigned lease first.
ALTER TABLE leases ADD COLUMN successor TEXT NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE leases DROP COLUMN successor;
