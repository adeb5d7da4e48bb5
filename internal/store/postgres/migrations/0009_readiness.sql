-- One row that readiness probes rewrite: a write that proves a check could
-- be recorded now, without growing the database.
CREATE TABLE readiness (
	id        integer     NOT NULL PRIMARY KEY CHECK (id = 1),
	probed_at timestamptz NOT NULL
);
INSERT INTO readiness (id, probed_at) VALUES (1, now());

-- The pending checks of one token, counted before a new one is created
-- (server.limits.max_pending_per_token).
CREATE INDEX checks_pending_token_id ON checks (token_id) WHERE state = 'pending';
