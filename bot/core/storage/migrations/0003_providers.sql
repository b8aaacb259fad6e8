-- Every provider (issue 4): the options a provider may or may not honour, requests for several
-- images, and what a job actually got.
--
-- chosen_options:   options the member set on purpose (JSON list), so that a provider unable
--                   to honour one is never used silently.
-- image_count:      images this job asks its provider for; its credits cover all of them.
-- batch_index/size: one /imagine for N images becomes N jobs where providers return one
--                   image per request; these say which of them a job is.
-- effective_prompt: the prompt the provider says it used (AIML may rewrite it).
-- not_applied:      chosen options the job's provider could not honour (JSON list).
-- maybe_created_at: providers that may hold an unconfirmed create of this job (JSON list);
--                   the job is never sent to them again, so nobody pays twice.
ALTER TABLE jobs ADD COLUMN negative_prompt TEXT;
ALTER TABLE jobs ADD COLUMN seed INTEGER;
ALTER TABLE jobs ADD COLUMN image_count INTEGER NOT NULL DEFAULT 1 CHECK (image_count >= 1);
ALTER TABLE jobs ADD COLUMN chosen_options TEXT NOT NULL DEFAULT '[]';
ALTER TABLE jobs ADD COLUMN batch_index INTEGER NOT NULL DEFAULT 1;
ALTER TABLE jobs ADD COLUMN batch_size INTEGER NOT NULL DEFAULT 1;
ALTER TABLE jobs ADD COLUMN effective_prompt TEXT;
ALTER TABLE jobs ADD COLUMN not_applied TEXT NOT NULL DEFAULT '[]';
ALTER TABLE jobs ADD COLUMN maybe_created_at TEXT NOT NULL DEFAULT '[]';
