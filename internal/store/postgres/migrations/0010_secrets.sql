-- Secrets kept in stepgate's own database (stepgate secrets put), and the
-- secrets each check would release.
--
-- secret_versions: one row per version of a secret; a tombstone (deleted,
-- no sealed parts) records `secrets rm`. The newest version of a name is
-- what it is now. sealed_value is the value under a data key of its own
-- (AES-256-GCM); sealed_key is that data key under the master key named by
-- key_id.
CREATE TABLE secret_versions (
	name         text        NOT NULL,
	version      integer     NOT NULL CHECK (version > 0),
	workspace    text        NOT NULL,
	description  text        NOT NULL,
	key_id       text        NOT NULL,
	sealed_key   bytea,
	sealed_value bytea,
	deleted      boolean     NOT NULL,
	created_at   timestamptz,
	created_by   text        NOT NULL,
	PRIMARY KEY (name, version),
	CHECK (deleted OR (sealed_key IS NOT NULL AND sealed_value IS NOT NULL))
);

-- SecretsSealedUnder: the live versions by master key.
CREATE INDEX secret_versions_key_id ON secret_versions (key_id) WHERE NOT deleted;

-- check_secrets: the secrets a check names ([{"name", "env"}]), in order.
CREATE TABLE check_secrets (
	check_id text  NOT NULL PRIMARY KEY REFERENCES checks (id) ON DELETE CASCADE,
	secrets  jsonb NOT NULL
);
