-- The initial schema. Times are INTEGER microseconds since the Unix epoch,
-- UTC (NULL: the zero time); JSON is TEXT checked by json_valid; booleans are
-- INTEGER 0 or 1. Tables are STRICT, so a value of the wrong type is refused.

CREATE TABLE checks (
	id                  TEXT    NOT NULL PRIMARY KEY,
	state               TEXT    NOT NULL,
	kind                TEXT    NOT NULL,
	workspace           TEXT    NOT NULL,
	environment         TEXT    NOT NULL,
	plan_sha256         TEXT    NOT NULL,
	plan_file_sha256    TEXT    NOT NULL,
	requester           TEXT    NOT NULL,
	token_id            TEXT    NOT NULL,
	pipeline            TEXT    CHECK (json_valid(pipeline)),
	assessment          TEXT    CHECK (json_valid(assessment)),
	resume_key          TEXT    NOT NULL,
	created_at          INTEGER,
	updated_at          INTEGER,
	expires_at          INTEGER,
	grant_id            TEXT    NOT NULL,
	grant_issued_at     INTEGER,
	grant_expires_at    INTEGER,
	consumed_at         INTEGER,
	outcome_exit_code   INTEGER,
	outcome_duration_ms INTEGER NOT NULL,
	outcome_at          INTEGER
) STRICT;

-- FindPendingCheck and ExpiredChecks only look at pending checks.
CREATE INDEX checks_pending_resume_key ON checks (resume_key, created_at) WHERE state = 'pending';
CREATE INDEX checks_pending_expires_at ON checks (expires_at) WHERE state = 'pending';

CREATE TABLE approvals (
	id         TEXT    NOT NULL PRIMARY KEY,
	check_id   TEXT    NOT NULL REFERENCES checks (id) ON DELETE CASCADE,
	subject    TEXT    NOT NULL,
	approved   INTEGER NOT NULL CHECK (approved IN (0, 1)),
	reason     TEXT    NOT NULL,
	amr        TEXT    CHECK (json_valid(amr)),
	aal        INTEGER NOT NULL,
	auth_time  INTEGER,
	evidence   TEXT    CHECK (json_valid(evidence)),
	created_at INTEGER
) STRICT;

CREATE INDEX approvals_check_id ON approvals (check_id, created_at);

CREATE TABLE tokens (
	id           TEXT NOT NULL PRIMARY KEY,
	name         TEXT NOT NULL,
	hash         BLOB UNIQUE,
	workspaces   TEXT CHECK (json_valid(workspaces)),
	created_at   INTEGER,
	revoked_at   INTEGER,
	last_used_at INTEGER
) STRICT;

CREATE TABLE signing_keys (
	id          TEXT NOT NULL PRIMARY KEY,
	algorithm   TEXT NOT NULL,
	public_key  BLOB,
	sealed_key  BLOB,
	created_at  INTEGER,
	retired_at  INTEGER,
	publish_end INTEGER
) STRICT;

-- The hash-chained audit log. seq is 1, 2, 3... and each prev_hash is the
-- hash of the event before: the unique constraints refuse a forked chain.
CREATE TABLE audit_events (
	seq         INTEGER NOT NULL PRIMARY KEY CHECK (seq > 0),
	occurred_at INTEGER,
	type        TEXT    NOT NULL,
	actor       TEXT    NOT NULL,
	subject     TEXT    NOT NULL,
	data        TEXT    CHECK (json_valid(data)),
	prev_hash   TEXT    NOT NULL UNIQUE,
	hash        TEXT    NOT NULL UNIQUE
) STRICT;
