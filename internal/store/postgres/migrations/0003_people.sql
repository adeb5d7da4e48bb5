-- People: the users who approve checks, their factors (passkeys and TOTP
-- seeds), one-time enrollment links, web sessions; and the normalized
-- changes of a check's plan, for the review page. Same conventions as
-- 0001: lists are jsonb; JSON handed over as is (credential data, changes)
-- is json, kept byte for byte.

CREATE TABLE users (
	id          text        NOT NULL PRIMARY KEY,
	name        text        NOT NULL UNIQUE,
	email       text        NOT NULL,
	groups      jsonb,
	admin       boolean     NOT NULL,
	links       jsonb, -- as given, in order
	created_at  timestamptz,
	disabled_at timestamptz
);

-- users.links once more, one row per distinct link, kept in step by
-- CreateUser and UpdateUser: FindUserByLink looks a link up here, and the
-- primary key gives each link to one user at most.
CREATE TABLE user_links (
	link    text NOT NULL PRIMARY KEY,
	user_id text NOT NULL REFERENCES users (id) ON DELETE CASCADE
);

CREATE INDEX user_links_user_id ON user_links (user_id);

CREATE TABLE credentials (
	id            text        NOT NULL PRIMARY KEY,
	user_id       text        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	kind          text        NOT NULL CHECK (kind IN ('webauthn', 'totp')),
	name          text        NOT NULL,
	data          json,
	sealed_secret bytea,
	sign_count    bigint      NOT NULL CHECK (sign_count BETWEEN 0 AND 4294967295), -- a uint32
	last_step     bigint      NOT NULL,
	failures      integer     NOT NULL,
	locked_until  timestamptz,
	created_at    timestamptz,
	last_used_at  timestamptz
);

CREATE INDEX credentials_user_id ON credentials (user_id, created_at);

CREATE TABLE enrollments (
	hash       bytea       NOT NULL PRIMARY KEY,
	user_id    text        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	created_at timestamptz,
	expires_at timestamptz,
	used_at    timestamptz
);

CREATE INDEX enrollments_user_id ON enrollments (user_id);

CREATE TABLE sessions (
	hash         bytea       NOT NULL PRIMARY KEY,
	user_id      text        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	created_at   timestamptz,
	last_seen_at timestamptz,
	aal          integer     NOT NULL,
	amr          jsonb,
	auth_time    timestamptz
);

-- DeleteUserSessions.
CREATE INDEX sessions_user_id ON sessions (user_id);

-- Kept byte for byte, like checks.assessment.
CREATE TABLE check_changes (
	check_id text NOT NULL PRIMARY KEY REFERENCES checks (id) ON DELETE CASCADE,
	changes  json
);

-- ListChecks: the checks in a state, newest first.
CREATE INDEX checks_state_created_at ON checks (state, created_at DESC NULLS LAST, id DESC);
