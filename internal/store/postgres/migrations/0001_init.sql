-- The initial schema. Times are timestamptz (microseconds; NULL: the zero
-- time). Maps and lists are jsonb; JSON the application hands over as is
-- (assessment, evidence, audit data) is json, which keeps its text byte for
-- byte, so audit hashes and signatures over it stay checkable.

CREATE TABLE checks (
	id                  text        NOT NULL PRIMARY KEY,
	state               text        NOT NULL,
	kind                text        NOT NULL,
	workspace           text        NOT NULL,
	environment         text        NOT NULL,
	plan_sha256         text        NOT NULL,
	plan_file_sha256    text        NOT NULL,
	requester           text        NOT NULL,
	token_id            text        NOT NULL,
	pipeline            jsonb,
	assessment          json,
	resume_key          text        NOT NULL,
	created_at          timestamptz,
	updated_at          timestamptz,
	expires_at          timestamptz,
	grant_id            text        NOT NULL,
	grant_issued_at     timestamptz,
	grant_expires_at    timestamptz,
	consumed_at         timestamptz,
	outcome_exit_code   integer,
	outcome_duration_ms bigint      NOT NULL,
	outcome_at          timestamptz
);

-- FindPendingCheck and ExpiredChecks only look at pending checks.
CREATE INDEX checks_pending_resume_key ON checks (resume_key, created_at DESC NULLS LAST) WHERE state = 'pending';
CREATE INDEX checks_pending_expires_at ON checks (expires_at) WHERE state = 'pending';

CREATE TABLE approvals (
	id         text        NOT NULL PRIMARY KEY,
	check_id   text        NOT NULL REFERENCES checks (id) ON DELETE CASCADE,
	subject    text        NOT NULL,
	approved   boolean     NOT NULL,
	reason     text        NOT NULL,
	amr        jsonb,
	aal        integer     NOT NULL,
	auth_time  timestamptz,
	evidence   json,
	created_at timestamptz
);

CREATE INDEX approvals_check_id ON approvals (check_id, created_at);

CREATE TABLE tokens (
	id           text  NOT NULL PRIMARY KEY,
	name         text  NOT NULL,
	hash         bytea UNIQUE,
	workspaces   jsonb,
	created_at   timestamptz,
	revoked_at   timestamptz,
	last_used_at timestamptz
);

CREATE TABLE signing_keys (
	id          text  NOT NULL PRIMARY KEY,
	algorithm   text  NOT NULL,
	public_key  bytea,
	sealed_key  bytea,
	created_at  timestamptz,
	retired_at  timestamptz,
	publish_end timestamptz
);

-- The hash-chained audit log. seq is 1, 2, 3... and each prev_hash is the
-- hash of the event before: the unique constraints refuse a forked chain.
CREATE TABLE audit_events (
	seq         bigint      NOT NULL PRIMARY KEY CHECK (seq > 0),
	occurred_at timestamptz,
	type        text        NOT NULL,
	actor       text        NOT NULL,
	subject     text        NOT NULL,
	data        json,
	prev_hash   text        NOT NULL UNIQUE,
	hash        text        NOT NULL UNIQUE
);
