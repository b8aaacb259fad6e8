-- The hot path (issue 9): every reservation counts the member's and the guild's queued jobs.
-- Only queued rows are indexed, so the index stays as small as the queue, and the counts
-- never walk a guild's finished history.
CREATE INDEX jobs_queued_by_member ON jobs (guild_id, user_id) WHERE state = 'queued';
