-- Server defaults, the safety floor and members' own defaults (issue 11).
--
-- The server's settings are columns of guild_settings: they are part of the guild's policy,
-- read in the same statement and cached with it, and changed by the same audited upsert.
-- NULL means "not set" everywhere (no floor; the next level of defaults applies).
ALTER TABLE guild_settings ADD COLUMN safety_floor TEXT CHECK (safety_floor IN
    ('block_low_and_above', 'block_medium_and_above', 'block_only_high'));
ALTER TABLE guild_settings ADD COLUMN default_tier TEXT CHECK (default_tier IN
    ('fast', 'standard', 'ultra'));
ALTER TABLE guild_settings ADD COLUMN default_aspect_ratio TEXT CHECK (default_aspect_ratio IN
    ('1:1', '9:16', '16:9', '3:4', '4:3'));

-- A member's own defaults in one server; a member with none has no row.
CREATE TABLE member_defaults (
    guild_id       INTEGER NOT NULL,
    user_id        INTEGER NOT NULL,
    tier           TEXT CHECK (tier IN ('fast', 'standard', 'ultra')),
    aspect_ratio   TEXT CHECK (aspect_ratio IN ('1:1', '9:16', '16:9', '3:4', '4:3')),
    safety         TEXT CHECK (safety IN
                       ('block_low_and_above', 'block_medium_and_above', 'block_only_high')),
    output_format  TEXT CHECK (output_format IN ('jpg', 'png')),
    updated_at     REAL NOT NULL,
    PRIMARY KEY (guild_id, user_id)
);
