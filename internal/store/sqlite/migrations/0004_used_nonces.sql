-- The nonces of ID tokens from the organisation's OpenID Connect provider
-- that were used, so that an ID token is accepted once by every server
-- sharing the database. Only the SHA-256 of a nonce is kept, until
-- expires_at (microseconds, as in 0001), when it may be forgotten (the
-- token has long expired by then); UseNonce deletes the forgotten ones on
-- the way.
CREATE TABLE used_nonces (
	hash       BLOB    NOT NULL PRIMARY KEY CHECK (length(hash) = 32),
	expires_at INTEGER NOT NULL
) STRICT;

-- UseNonce's pruning: the rows past their expires_at, oldest first.
CREATE INDEX used_nonces_expires_at ON used_nonces (expires_at);
