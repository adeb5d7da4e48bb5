-- People: the users who approve checks, their factors (passkeys and TOTP
-- seeds), one-time enrollment links, web sessions; and the normalized
-- changes of a check's plan, for the review page. Same conventions as
-- 0001 (INTEGER microseconds, NULL for the zero time; JSON TEXT checked by
-- json_valid; STRICT tables).

CREATE TABLE users (
	id          TEXT    NOT NULL PRIMARY KEY,
	name        TEXT    NOT NULL UNIQUE,
	email       TEXT    NOT NULL,
	groups      TEXT    CHECK (json_valid(groups)),
	admin       INTEGER NOT NULL CHECK (admin IN (0, 1)),
	links       TEXT    CHECK (json_valid(links)), -- as given, in order
	created_at  INTEGER,
	disabled_at INTEGER
) STRICT;

-- users.links once more, one row per distinct link, kept in step by
-- CreateUser and UpdateUser: FindUserByLink looks a link up here, and the
-- primary key gives each link to one user at most.
CREATE TABLE user_links (
	link    TEXT NOT NULL PRIMARY KEY,
	user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE
) STRICT;

CREATE INDEX user_links_user_id ON user_links (user_id);

CREATE TABLE credentials (
	id            TEXT    NOT NULL PRIMARY KEY,
	user_id       TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	kind          TEXT    NOT NULL CHECK (kind IN ('webauthn', 'totp')),
	name          TEXT    NOT NULL,
	data          TEXT    CHECK (json_valid(data)),
	sealed_secret BLOB,
	sign_count    INTEGER NOT NULL CHECK (sign_count BETWEEN 0 AND 4294967295), -- a uint32
	last_step     INTEGER NOT NULL,
	failures      INTEGER NOT NULL,
	locked_until  INTEGER,
	created_at    INTEGER,
	last_used_at  INTEGER
) STRICT;

CREATE INDEX credentials_user_id ON credentials (user_id, created_at);

CREATE TABLE enrollments (
	hash       BLOB    NOT NULL PRIMARY KEY,
	user_id    TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	created_at INTEGER,
	expires_at INTEGER,
	used_at    INTEGER
) STRICT;

CREATE INDEX enrollments_user_id ON enrollments (user_id);

CREATE TABLE sessions (
	hash         BLOB    NOT NULL PRIMARY KEY,
	user_id      TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	created_at   INTEGER,
	last_seen_at INTEGER,
	aal          INTEGER NOT NULL,
	amr          TEXT    CHECK (json_valid(amr)),
	auth_time    INTEGER
) STRICT;

-- DeleteUserSessions.
CREATE INDEX sessions_user_id ON sessions (user_id);

-- Kept byte for byte, like checks.assessment.
CREATE TABLE check_changes (
	check_id TEXT NOT NULL PRIMARY KEY REFERENCES checks (id) ON DELETE CASCADE,
	changes  TEXT CHECK (json_valid(changes))
) STRICT;

-- ListChecks: the checks in a state, newest first (NULLs sort last in
-- descending order).
CREATE INDEX checks_state_created_at ON checks (state, created_at DESC, id DESC);
