-- Server blocklists (issue 11).
--
-- A term is stored normalised (NFKC, case-folded, invisible characters removed), as it is
-- matched, so the same word typed two ways is one entry; a regular expression is stored as
-- the admin wrote it. The unique key also serves reading one guild's list.
CREATE TABLE blocklist (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    guild_id  INTEGER NOT NULL,
    kind      TEXT    NOT NULL CHECK (kind IN ('term', 'regex')),
    entry     TEXT    NOT NULL,
    added_by  INTEGER NOT NULL,
    added_at  REAL    NOT NULL,
    UNIQUE (guild_id, kind, entry)
);
