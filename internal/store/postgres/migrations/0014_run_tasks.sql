-- Run tasks received from HCP Terraform or Terraform Enterprise, kept until
-- their result is reported so that a restarted server resumes them. The
-- request is sealed under the master key (it holds the access token the
-- callbacks need). A server works on a task while it holds its lease
-- (owner, lease_until); another takes over an open task whose lease ran out.
CREATE TABLE run_tasks (
	id             text        NOT NULL PRIMARY KEY,
	run_id         text        NOT NULL,
	stage          text        NOT NULL,
	state          text        NOT NULL CHECK (state IN ('received', 'waiting', 'reporting', 'done')),
	result         text        NOT NULL,
	message        text        NOT NULL,
	check_id       text REFERENCES checks (id),
	plan_sha256    text        NOT NULL,
	sealed_request bytea       NOT NULL,
	owner          text        NOT NULL,
	lease_until    timestamptz,
	created_at     timestamptz NOT NULL,
	updated_at     timestamptz NOT NULL,
	deadline       timestamptz NOT NULL
);

-- pre_apply finds the post_plan task of its run.
CREATE INDEX run_tasks_run ON run_tasks (run_id, stage, created_at);
-- A starting server resumes the open tasks.
CREATE INDEX run_tasks_open ON run_tasks (created_at) WHERE state <> 'done';
