-- Signed checkpoints of the audit chain: each says "the event at seq had
-- this hash", signed (Ed25519) with a checkpoint key whose private half is
-- sealed under the master key. There is deliberately no foreign key to
-- audit_events: a checkpoint must outlive the rows it vouches for, so
-- that their removal shows. Times are microseconds, as in 0001.
CREATE TABLE audit_checkpoint_keys (
	id         TEXT NOT NULL PRIMARY KEY,
	public_key BLOB NOT NULL,
	sealed_key BLOB NOT NULL,
	created_at INTEGER
) STRICT;

CREATE TABLE audit_checkpoints (
	seq        INTEGER NOT NULL PRIMARY KEY CHECK (seq > 0),
	hash       TEXT    NOT NULL,
	created_at INTEGER,
	key_id     TEXT    NOT NULL,
	signature  BLOB    NOT NULL
) STRICT;
