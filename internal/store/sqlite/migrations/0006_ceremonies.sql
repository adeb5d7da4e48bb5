-- Ceremonies in progress on the web (WebAuthn registration, sign-in and
-- approval, TOTP set-up, OpenID Connect sign-in and step-up): the browser
-- holds a random id in a cookie, the server this record, found by the
-- SHA-256 of the id and used once (UseCeremony sets used_at in one UPDATE
-- ... RETURNING). A used record stays until expires_at so that a replay is
-- told apart from an unknown id; CreateCeremony deletes expired records on
-- the way. Same conventions as 0001 (INTEGER microseconds, NULL for the
-- zero time; STRICT tables).
CREATE TABLE ceremonies (
	hash       BLOB    NOT NULL PRIMARY KEY CHECK (length(hash) = 32),
	purpose    TEXT    NOT NULL,
	bind       BLOB,
	subject    TEXT    NOT NULL,
	data       BLOB,
	created_at INTEGER NOT NULL,
	expires_at INTEGER NOT NULL,
	used_at    INTEGER
) STRICT;

-- CreateCeremony's pruning: the expired records, oldest first.
CREATE INDEX ceremonies_expires_at ON ceremonies (expires_at);

-- The approvals a check's grant carries: those that counted when it was
-- issued (people enabled and eligible then, proofs good enough then), so
-- that the grant, signed again each time it is read, names the same
-- people whatever happens to their accounts afterwards.
CREATE TABLE grant_approvals (
	check_id    TEXT NOT NULL REFERENCES checks (id) ON DELETE CASCADE,
	approval_id TEXT NOT NULL REFERENCES approvals (id) ON DELETE CASCADE,
	PRIMARY KEY (check_id, approval_id)
) STRICT;
