-- Who asked is derived only from what was authenticated.
--
-- tokens.owner_id: the person an API token acts for (stepgate tokens create
-- --owner): the requester of its checks, who may never approve them. NULL
-- for a pipeline's own token.
--
-- checks.pipeline_unverified: what a request said of its pipeline (the
-- pipeline.* parameters), kept as a claim. checks.pipeline now holds only
-- the verified claims of a CI token, so what older checks of API tokens
-- recorded there moves over.
--
-- user_links: GitHub and GitLab logins are case-insensitive, so links to
-- them are kept lower-cased (a link whose lower-case form another row has
-- already is left as it was: it no longer matches anything).
ALTER TABLE tokens ADD COLUMN owner_id TEXT;

ALTER TABLE checks ADD COLUMN pipeline_unverified TEXT CHECK (json_valid(pipeline_unverified));

UPDATE checks SET pipeline_unverified = pipeline, pipeline = NULL WHERE token_id NOT LIKE 'oidc:%';

UPDATE user_links SET link = lower(link)
 WHERE (link LIKE 'github:%' OR link LIKE 'gitlab:%')
   AND link <> lower(link)
   AND lower(link) NOT IN (SELECT link FROM user_links);
