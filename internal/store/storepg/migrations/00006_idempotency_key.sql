-- +goose Up
-- An on-demand run may carry the key its client gave the request: a retried request
-- (its first answer lost to a timeout) finds the run the first one created instead of
-- creating another.
ALTER TABLE runs ADD COLUMN idempotency_key TEXT;
CREATE UNIQUE INDEX runs_idempotency_key ON runs (idempotency_key) WHERE idempotency_key IS NOT NULL;

-- +goose Down
DROP INDEX runs_idempotency_key;
ALTER TABLE runs DROP COLUMN idempotency_key;
