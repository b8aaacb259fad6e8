-- Where /imagine and the result buttons work, per server (issue 11).
--
-- A server with no rows here allows every channel. The rows are part of the guild's policy:
-- read in the same snapshot and cached with it. The primary key also serves reading one
-- guild's list.
CREATE TABLE allowed_channels (
    guild_id    INTEGER NOT NULL,
    channel_id  INTEGER NOT NULL,
    added_by    INTEGER NOT NULL,
    added_at    REAL    NOT NULL,
    PRIMARY KEY (guild_id, channel_id)
);
