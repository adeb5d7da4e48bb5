-- Signed checkpoints of the audit chain: each says "the event at seq had
-- this hash", signed (Ed25519) with a checkpoint key whose private half is
-- sealed under the master key. There is deliberately no foreign key to
-- audit_events: a checkpoint must outlive the rows it vouches for, so
-- that their removal shows.
CREATE TABLE audit_checkpoint_keys (
	id         text        NOT NULL PRIMARY KEY,
	public_key bytea       NOT NULL,
	sealed_key bytea       NOT NULL,
	created_at timestamptz
);

CREATE TABLE audit_checkpoints (
	seq        bigint      NOT NULL PRIMARY KEY CHECK (seq > 0),
	hash       text        NOT NULL,
	created_at timestamptz,
	key_id     text        NOT NULL,
	signature  bytea       NOT NULL
);
