-- +goose Up
-- Outputs survive their node: each is copied to other nodes, checked by its SHA-256.
-- copies is what the job asked for (0: the cluster's output_copies); needs_copies is 1
-- from the output's recording until a copier found it had enough copies, and again
-- whenever a holder goes, so copiers look only at the few outputs that need them.
ALTER TABLE outputs ADD COLUMN copies INTEGER NOT NULL DEFAULT 0;
ALTER TABLE outputs ADD COLUMN needs_copies INTEGER NOT NULL DEFAULT 1;
CREATE INDEX outputs_needs_copies ON outputs (run_id) WHERE needs_copies = 1;

-- One row per node that holds a copy (verified_at set), is making one (claim_until set:
-- the slot is taken until then), or held one when it was declared lost (lost_at set: it
-- does not count until the node checks its copy again).
CREATE TABLE output_holders (
    run_id      INTEGER NOT NULL,
    attempt     INTEGER NOT NULL,
    name        TEXT NOT NULL,
    node        TEXT NOT NULL,
    verified_at INTEGER,
    claim_until INTEGER,
    lost_at     INTEGER,
    PRIMARY KEY (run_id, attempt, name, node)
);
CREATE INDEX output_holders_node ON output_holders (node);

-- Outputs recorded before copies existed are held by the node that produced them.
INSERT INTO output_holders (run_id, attempt, name, node, verified_at)
    SELECT run_id, attempt, name, node, created_at FROM outputs;

-- +goose Down
DROP TABLE output_holders;
DROP INDEX outputs_needs_copies;
ALTER TABLE outputs DROP COLUMN needs_copies;
ALTER TABLE outputs DROP COLUMN copies;
