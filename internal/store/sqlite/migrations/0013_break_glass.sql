-- Break-glass: a pipeline's request for the emergency path on a check (its
-- reason, the deny rules it overrides), and once a person of the
-- break-glass group used it, who did and the review another person must
-- give before review_due_at. Same conventions as 0001.
CREATE TABLE break_glass (
	check_id      TEXT    NOT NULL PRIMARY KEY REFERENCES checks (id) ON DELETE CASCADE,
	reason        TEXT    NOT NULL,
	deny_rules    TEXT    CHECK (json_valid(deny_rules)),
	requested_at  INTEGER NOT NULL,
	subject       TEXT    NOT NULL DEFAULT '',
	approval_id   TEXT    REFERENCES approvals (id) ON DELETE SET NULL,
	used_at       INTEGER,
	review_due_at INTEGER,
	reviewer      TEXT    NOT NULL DEFAULT '',
	review_note   TEXT    NOT NULL DEFAULT '',
	reviewed_at   INTEGER,
	reminded_at   INTEGER
) STRICT;

-- The review queue: used, oldest first.
CREATE INDEX break_glass_used_at ON break_glass (used_at) WHERE used_at IS NOT NULL;
