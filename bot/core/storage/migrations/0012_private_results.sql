-- Private results (issue 11): a server may have every result shown to its requester only
-- (their private response to the command, else a direct message) instead of in the channel.
-- A column of guild_settings, cached with the policy; 0 or NULL: results are public.
ALTER TABLE guild_settings ADD COLUMN private_results INTEGER NOT NULL DEFAULT 0
    CHECK (private_results IN (0, 1));
