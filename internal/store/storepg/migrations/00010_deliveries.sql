-- +goose Up
-- The [[deliver]] entries of each job, one row per entry and run state it is delivered
-- on, kept by JobApply: a run's delivery records are made from them by one INSERT …
-- SELECT in the transaction that ends the run, with no JSON to decode on that path.
CREATE TABLE job_deliveries (
    job_id  BIGINT NOT NULL,
    state   TEXT NOT NULL,
    entry   BIGINT NOT NULL,
    channel TEXT NOT NULL,
    spec    TEXT NOT NULL,
    PRIMARY KEY (job_id, state, entry)
);

-- One record per run and entry: what was sent, how often, and with what answer.
CREATE TABLE deliveries (
    id            BIGSERIAL PRIMARY KEY,
    run_id        BIGINT NOT NULL,
    job           TEXT NOT NULL,
    entry         BIGINT NOT NULL,
    channel       TEXT NOT NULL,
    spec          TEXT NOT NULL,
    holder        TEXT NOT NULL,
    state         TEXT NOT NULL,
    attempts      BIGINT NOT NULL DEFAULT 0,
    retry_from    BIGINT NOT NULL DEFAULT 0,
    next_at       BIGINT NOT NULL,
    claim_node    TEXT NOT NULL DEFAULT '',
    claim_token   TEXT NOT NULL DEFAULT '',
    claim_until   BIGINT,
    last_error    TEXT NOT NULL DEFAULT '',
    last_response TEXT NOT NULL DEFAULT '',
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL,
    delivered_at  BIGINT
);
-- A run's entry is delivered by one record, however often its end is reported.
CREATE UNIQUE INDEX deliveries_run_entry ON deliveries (run_id, entry);
-- Partial indexes: only records waiting to be sent are entries.
CREATE INDEX deliveries_due ON deliveries (next_at, id) WHERE state = 'pending';
CREATE INDEX deliveries_claimed ON deliveries (claim_until) WHERE state = 'sending';
CREATE INDEX deliveries_job ON deliveries (job, id);

CREATE TABLE delivery_attempts (
    delivery_id BIGINT NOT NULL,
    n           BIGINT NOT NULL,
    node        TEXT NOT NULL,
    started_at  BIGINT NOT NULL,
    finished_at BIGINT NOT NULL,
    outcome     TEXT NOT NULL,
    response    TEXT NOT NULL,
    error       TEXT NOT NULL,
    PRIMARY KEY (delivery_id, n)
);

-- Jobs applied before this release kept their entries, stored and ignored: each is
-- delivered on success from now on (entries had no "on" then).
INSERT INTO job_deliveries (job_id, state, entry, channel, spec)
SELECT j.id, 'succeeded', e.n - 1,
    CASE WHEN jsonb_array_length(COALESCE(e.v -> 'email', '[]'::jsonb)) > 0 THEN 'email'
         WHEN COALESCE(e.v ->> 'webhook', '') <> '' THEN 'webhook' ELSE 'directory' END,
    e.v::text
FROM jobs j, jsonb_array_elements(COALESCE(j.spec::jsonb -> 'deliver', '[]'::jsonb)) WITH ORDINALITY AS e(v, n);

-- +goose Down
DROP TABLE delivery_attempts;
DROP TABLE deliveries;
DROP TABLE job_deliveries;
