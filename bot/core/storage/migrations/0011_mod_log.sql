-- The mod log and provider safety blocks (issue 11).
--
-- The mod-log channel is a column of guild_settings: part of the guild's policy, cached with
-- it and changed by the same audited upsert; NULL: no mod log, nothing is reported.
ALTER TABLE guild_settings ADD COLUMN mod_log_channel_id INTEGER;

-- Why a failed job failed, where admins need to tell kinds apart: 'safety_blocked' when the
-- provider's safety filter refused it (counted per member in /imagine-admin usage). NULL for
-- every other ending; ``error`` keeps the member's message as before.
ALTER TABLE jobs ADD COLUMN outcome TEXT CHECK (outcome IN ('safety_blocked'));
