-- The hot path (issue 9): every reservation sums the credits a member, and the guild, used
-- in the current day and month. With credits and charge in the index the sums read the
-- index alone, never the jobs' rows.
DROP INDEX jobs_by_member;
DROP INDEX jobs_by_guild;
CREATE INDEX jobs_by_member ON jobs (guild_id, user_id, created_at, charge, credits);
CREATE INDEX jobs_by_guild ON jobs (guild_id, created_at, charge, credits);
