-- The deployment_protection_rule deliveries of the GitHub App, kept until
-- they are answered: an answer owed survives a restart, and a redelivery
-- (the same X-GitHub-Delivery) is not answered twice.
CREATE TABLE github_deliveries (
	id              text        NOT NULL PRIMARY KEY,
	installation_id bigint      NOT NULL,
	repository      text        NOT NULL,
	run_id          text        NOT NULL,
	sha             text        NOT NULL,
	environment     text        NOT NULL,
	callback_url    text        NOT NULL,
	state           text        NOT NULL CHECK (state IN ('received', 'reported', 'answered')),
	answer          text        NOT NULL,
	attempts        integer     NOT NULL,
	last_error      text        NOT NULL,
	created_at      timestamptz,
	updated_at      timestamptz
);

CREATE INDEX github_deliveries_open ON github_deliveries (created_at, id) WHERE state <> 'answered';

-- ChecksOfRun finds a run's checks by their verified pipeline's run id.
CREATE INDEX checks_pipeline_run_id ON checks ((pipeline ->> 'run_id')) WHERE pipeline IS NOT NULL;
