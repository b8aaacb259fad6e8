-- The community prompt library (issue 12).
--
-- An entry is a shared job's recipe (its prompt and the options actually applied), a title and
-- tags, and the bot's own copy of its image (``image_name`` and ``thumbnail_name``, files in the
-- library's directory: a job's stored image may be pruned, an entry's stays until the entry
-- goes). One entry per job: sharing it again is refused, naming the entry.
CREATE TABLE library_entries (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    guild_id         INTEGER NOT NULL,
    author_id        INTEGER NOT NULL,
    -- The author's name as Discord showed it when they shared: the web gallery has no Discord
    -- to resolve an id with.
    author_name      TEXT    NOT NULL,
    job_id           INTEGER REFERENCES jobs (id) ON DELETE SET NULL,
    title            TEXT    NOT NULL,
    -- The tags as one space-separated string: what the full-text index reads.
    tags             TEXT    NOT NULL DEFAULT '',
    prompt           TEXT    NOT NULL,
    negative_prompt  TEXT,
    tier             TEXT    NOT NULL,
    aspect_ratio     TEXT    NOT NULL,
    safety           TEXT    NOT NULL,
    output_format    TEXT    NOT NULL,
    seed             INTEGER,
    chosen_options   TEXT    NOT NULL DEFAULT '[]',
    image_name       TEXT    NOT NULL,
    thumbnail_name   TEXT    NOT NULL,
    width            INTEGER NOT NULL,
    height           INTEGER NOT NULL,
    created_at       REAL    NOT NULL,
    hidden           INTEGER NOT NULL DEFAULT 0 CHECK (hidden IN (0, 1)),
    likes            INTEGER NOT NULL DEFAULT 0 CHECK (likes >= 0),
    uses             INTEGER NOT NULL DEFAULT 0 CHECK (uses >= 0),
    -- The entry's post in the server's gallery channel, when it has one: removed with it.
    gallery_channel_id INTEGER,
    gallery_message_id INTEGER,
    UNIQUE (guild_id, job_id)
);
-- Browsing reads one guild's visible entries in one of three orders.
CREATE INDEX library_entries_newest ON library_entries (guild_id, hidden, id);
CREATE INDEX library_entries_author ON library_entries (guild_id, author_id, id);

-- One row per tag of an entry, normalised (case-folded): the exact filter and autocomplete.
CREATE TABLE library_tags (
    entry_id INTEGER NOT NULL REFERENCES library_entries (id) ON DELETE CASCADE,
    guild_id INTEGER NOT NULL,
    tag      TEXT    NOT NULL,
    PRIMARY KEY (entry_id, tag)
);
CREATE INDEX library_tags_by_guild ON library_tags (guild_id, tag);

-- Full-text search over title, tags and prompt (bm25-ranked with weights in the query). An
-- external-content table: the text lives once, in library_entries, and these triggers keep
-- the index in step with every insert, change and delete.
CREATE VIRTUAL TABLE library_search USING fts5(
    title, tags, prompt,
    content = 'library_entries', content_rowid = 'id',
    tokenize = 'unicode61 remove_diacritics 2'
);
CREATE TRIGGER library_entries_indexed AFTER INSERT ON library_entries BEGIN
    INSERT INTO library_search (rowid, title, tags, prompt)
    VALUES (new.id, new.title, new.tags, new.prompt);
END;
CREATE TRIGGER library_entries_unindexed AFTER DELETE ON library_entries BEGIN
    INSERT INTO library_search (library_search, rowid, title, tags, prompt)
    VALUES ('delete', old.id, old.title, old.tags, old.prompt);
END;
CREATE TRIGGER library_entries_reindexed AFTER UPDATE OF title, tags, prompt ON library_entries
BEGIN
    INSERT INTO library_search (library_search, rowid, title, tags, prompt)
    VALUES ('delete', old.id, old.title, old.tags, old.prompt);
    INSERT INTO library_search (rowid, title, tags, prompt)
    VALUES (new.id, new.title, new.tags, new.prompt);
END;

-- One like per member per entry; ``likes`` on the entry is kept equal to the count of these
-- rows by the same transaction that adds or removes one.
CREATE TABLE library_likes (
    entry_id INTEGER NOT NULL REFERENCES library_entries (id) ON DELETE CASCADE,
    user_id  INTEGER NOT NULL,
    liked_at REAL    NOT NULL,
    PRIMARY KEY (entry_id, user_id)
);
CREATE INDEX library_likes_by_member ON library_likes (user_id);

-- One report per member per entry (a second one updates the reason).
CREATE TABLE library_reports (
    entry_id    INTEGER NOT NULL REFERENCES library_entries (id) ON DELETE CASCADE,
    user_id     INTEGER NOT NULL,
    reason      TEXT    NOT NULL DEFAULT '',
    reported_at REAL    NOT NULL,
    PRIMARY KEY (entry_id, user_id)
);

-- Members an admin stopped from sharing.
CREATE TABLE library_barred (
    guild_id  INTEGER NOT NULL,
    user_id   INTEGER NOT NULL,
    barred_by INTEGER NOT NULL,
    barred_at REAL    NOT NULL,
    PRIMARY KEY (guild_id, user_id)
);

-- A browse or search, as the ordered ids it found when it started (at most a fixed number):
-- Previous and Next move through this list, so paging stays stable while entries are added,
-- liked or used. A hidden or deleted entry is skipped when shown.
CREATE TABLE library_browses (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    guild_id   INTEGER NOT NULL,
    user_id    INTEGER NOT NULL,
    entry_ids  TEXT    NOT NULL,
    heading    TEXT    NOT NULL,
    created_at REAL    NOT NULL
);
CREATE INDEX library_browses_by_age ON library_browses (created_at);

-- Each server's library settings: the channel new entries are also posted to, and whether
-- the web gallery shows its entries (off until an admin turns it on).
CREATE TABLE library_settings (
    guild_id           INTEGER PRIMARY KEY,
    gallery_channel_id INTEGER,
    -- The server's name when an admin last changed these settings, as the gallery's heading.
    guild_name         TEXT    NOT NULL DEFAULT '',
    web_gallery        INTEGER NOT NULL DEFAULT 0 CHECK (web_gallery IN (0, 1))
);

-- A job made from a library entry (Use): which entry, and its title and author as they were,
-- so its result says "remix of <title> by <author>" even if the entry goes meanwhile.
ALTER TABLE jobs ADD COLUMN shared_entry_id INTEGER;
ALTER TABLE jobs ADD COLUMN shared_title TEXT;
ALTER TABLE jobs ADD COLUMN shared_author_id INTEGER;
