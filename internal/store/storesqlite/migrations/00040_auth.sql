-- +goose Up
-- Users log in with a password (an argon2id PHC string); tokens are API tokens and
-- login sessions, each kept as the SHA-256 of its secret, never the secret.
CREATE TABLE users (
    name          TEXT PRIMARY KEY,
    role          TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
);

CREATE TABLE tokens (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    name         TEXT NOT NULL UNIQUE,
    kind         TEXT NOT NULL,
    role         TEXT NOT NULL,
    user_name    TEXT NOT NULL DEFAULT '',
    hash         TEXT NOT NULL UNIQUE,
    created_by   TEXT NOT NULL DEFAULT '',
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER,
    last_used_at INTEGER
);
CREATE INDEX tokens_user ON tokens (user_name);

-- +goose Down
DROP TABLE tokens;
DROP TABLE users;
