-- Run tasks received from HCP Terraform or Terraform Enterprise, kept until
-- their result is reported so that a restarted server resumes them. The
-- request is sealed under the master key (it holds the access token the
-- callbacks need). A server works on a task while it holds its lease
-- (owner, lease_until); another takes over an open task whose lease ran out. Same conventions as 0001 (INTEGER microseconds, NULL
-- for the zero time; STRICT tables).
CREATE TABLE run_tasks (
	id             TEXT    NOT NULL PRIMARY KEY,
	run_id         TEXT    NOT NULL,
	stage          TEXT    NOT NULL,
	state          TEXT    NOT NULL CHECK (state IN ('received', 'waiting', 'reporting', 'done')),
	result         TEXT    NOT NULL,
	message        TEXT    NOT NULL,
	check_id       TEXT REFERENCES checks (id),
	plan_sha256    TEXT    NOT NULL,
	sealed_request BLOB    NOT NULL,
	owner          TEXT    NOT NULL,
	lease_until    INTEGER,
	created_at     INTEGER NOT NULL,
	updated_at     INTEGER NOT NULL,
	deadline       INTEGER NOT NULL
) STRICT;

-- pre_apply finds the post_plan task of its run.
CREATE INDEX run_tasks_run ON run_tasks (run_id, stage, created_at);
-- A starting server resumes the open tasks.
CREATE INDEX run_tasks_open ON run_tasks (created_at) WHERE state <> 'done';
