-- Secrets kept in stepgate's own database (stepgate secrets put), and the
-- secrets each check would release.
--
-- secret_versions: one row per version of a secret; a tombstone (deleted =
-- 1, no sealed parts) records `secrets rm`. The newest version of a name is
-- what it is now. sealed_value is the value under a data key of its own
-- (AES-256-GCM); sealed_key is that data key under the master key named by
-- key_id. Times are INTEGER microseconds, as in 0001.
CREATE TABLE secret_versions (
	name         TEXT    NOT NULL,
	version      INTEGER NOT NULL CHECK (version > 0),
	workspace    TEXT    NOT NULL,
	description  TEXT    NOT NULL,
	key_id       TEXT    NOT NULL,
	sealed_key   BLOB,
	sealed_value BLOB,
	deleted      INTEGER NOT NULL CHECK (deleted IN (0, 1)),
	created_at   INTEGER,
	created_by   TEXT    NOT NULL,
	PRIMARY KEY (name, version),
	CHECK (deleted = 1 OR (sealed_key IS NOT NULL AND sealed_value IS NOT NULL))
) STRICT;

-- SecretsSealedUnder: the live versions by master key.
CREATE INDEX secret_versions_key_id ON secret_versions (key_id) WHERE deleted = 0;

-- check_secrets: the secrets a check names ([{"name", "env"}]), in order.
CREATE TABLE check_secrets (
	check_id TEXT NOT NULL PRIMARY KEY REFERENCES checks (id) ON DELETE CASCADE,
	secrets  TEXT NOT NULL CHECK (json_valid(secrets))
) STRICT;
