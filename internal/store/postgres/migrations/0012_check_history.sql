-- The history the policy reads at each new check (input.history): the
-- newest apply of a workspace and whether a requester applied there, how
-- many checks a requester created lately, and whether a plan was approved
-- and its grant then expired unused. Each query reads one of these.
CREATE INDEX checks_consumed_workspace ON checks (workspace, consumed_at, id) WHERE state = 'consumed';
CREATE INDEX checks_consumed_workspace_requester ON checks (workspace, requester) WHERE state = 'consumed';
CREATE INDEX checks_requester_created_at ON checks (requester, created_at);
CREATE INDEX checks_approved_plan ON checks (plan_sha256, workspace) WHERE state = 'approved';
