-- +goose Up
-- The server incarnation (its start time, in microseconds since the Unix epoch) on which
-- each holder last took its liveness lock. A restart of the server frees every lock at
-- once; a free lock proves its holder died only if the holder had taken it on this
-- incarnation (LivenessDead).
CREATE TABLE liveness (
    holder         TEXT PRIMARY KEY,
    server_started BIGINT NOT NULL
);

-- +goose Down
DROP TABLE liveness;
