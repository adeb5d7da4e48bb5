-- The deployment_protection_rule deliveries of the GitHub App, kept until
-- they are answered: an answer owed survives a restart, and a redelivery
-- (the same X-GitHub-Delivery) is not answered twice.
CREATE TABLE github_deliveries (
	id              TEXT    NOT NULL PRIMARY KEY,
	installation_id INTEGER NOT NULL,
	repository      TEXT    NOT NULL,
	run_id          TEXT    NOT NULL,
	sha             TEXT    NOT NULL,
	environment     TEXT    NOT NULL,
	callback_url    TEXT    NOT NULL,
	state           TEXT    NOT NULL CHECK (state IN ('received', 'reported', 'answered')),
	answer          TEXT    NOT NULL,
	attempts        INTEGER NOT NULL,
	last_error      TEXT    NOT NULL,
	created_at      INTEGER,
	updated_at      INTEGER
) STRICT;

CREATE INDEX github_deliveries_open ON github_deliveries (created_at, id) WHERE state <> 'answered';

-- ChecksOfRun finds a run's checks by their verified pipeline's run id.
CREATE INDEX checks_pipeline_run_id ON checks (pipeline ->> 'run_id') WHERE pipeline IS NOT NULL;
