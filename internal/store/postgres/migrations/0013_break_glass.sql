-- Break-glass: a pipeline's request for the emergency path on a check (its
-- reason, the deny rules it overrides), and once a person of the
-- break-glass group used it, who did and the review another person must
-- give before review_due_at.
CREATE TABLE break_glass (
	check_id      text        NOT NULL PRIMARY KEY REFERENCES checks (id) ON DELETE CASCADE,
	reason        text        NOT NULL,
	deny_rules    jsonb,
	requested_at  timestamptz NOT NULL,
	subject       text        NOT NULL DEFAULT '',
	approval_id   text        REFERENCES approvals (id) ON DELETE SET NULL,
	used_at       timestamptz,
	review_due_at timestamptz,
	reviewer      text        NOT NULL DEFAULT '',
	review_note   text        NOT NULL DEFAULT '',
	reviewed_at   timestamptz,
	reminded_at   timestamptz
);

-- The review queue: used, oldest first.
CREATE INDEX break_glass_used_at ON break_glass (used_at) WHERE used_at IS NOT NULL;
