-- +goose Up
-- The users, API tokens and secrets a sync target holds from its source; the others
-- are its own. A full sync deletes those of them its snapshot no longer has, and
-- leaves the target's own.
CREATE TABLE sync_items (
    entity TEXT NOT NULL,
    key    TEXT NOT NULL,
    PRIMARY KEY (entity, key)
);
INSERT INTO sync_items (entity, key)
    SELECT 'user', name FROM users WHERE name IN (SELECT key FROM changes WHERE entity = 'user' AND source_seq <> 0);
INSERT INTO sync_items (entity, key)
    SELECT 'token', name FROM tokens WHERE name IN (SELECT key FROM changes WHERE entity = 'token' AND source_seq <> 0);

-- +goose Down
DROP TABLE sync_items;
