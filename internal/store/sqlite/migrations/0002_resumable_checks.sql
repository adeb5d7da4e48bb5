-- FindResumableCheck looks for the newest pending, allowed or approved check
-- of a resume key: a pipeline asking again gets its approved grant.
CREATE INDEX checks_resumable_resume_key ON checks (resume_key, created_at)
	WHERE state IN ('pending', 'allowed', 'approved');
