-- The jobs table is the queue and the source of truth for every generation.
CREATE TABLE jobs (
    id                      INTEGER PRIMARY KEY AUTOINCREMENT,
    state                   TEXT    NOT NULL CHECK (state IN
                                ('queued', 'submitting', 'submitted', 'succeeded', 'failed',
                                 'delivered', 'undeliverable')),
    prompt                  TEXT    NOT NULL,
    tier                    TEXT    NOT NULL,
    aspect_ratio            TEXT    NOT NULL,
    safety                  TEXT    NOT NULL,
    output_format           TEXT    NOT NULL,
    guild_id                INTEGER,
    channel_id              INTEGER NOT NULL,
    user_id                 INTEGER NOT NULL,
    application_id          INTEGER NOT NULL,
    interaction_token       TEXT    NOT NULL,
    interaction_expires_at  REAL    NOT NULL,
    attachment_size_limit   INTEGER NOT NULL,
    provider                TEXT,
    provider_job_id         TEXT,
    callback_token          TEXT    NOT NULL UNIQUE,
    attempts                INTEGER NOT NULL DEFAULT 0,
    error                   TEXT,
    delivery_error          TEXT,
    image_paths             TEXT    NOT NULL DEFAULT '[]',
    created_at              REAL    NOT NULL,
    updated_at              REAL    NOT NULL,
    submitted_at            REAL,
    finished_at             REAL,
    delivered_at            REAL
);

CREATE INDEX jobs_by_state ON jobs (state, id);
CREATE UNIQUE INDEX jobs_by_provider_job ON jobs (provider, provider_job_id)
    WHERE provider_job_id IS NOT NULL;

-- Replicate retries a webhook with the same webhook-id; remembering ids makes replays no-ops
-- across restarts too (providers.md §1.5).
CREATE TABLE webhook_deliveries (
    delivery_id  TEXT    NOT NULL,
    provider     TEXT    NOT NULL,
    job_id       INTEGER NOT NULL REFERENCES jobs (id),
    received_at  REAL    NOT NULL,
    PRIMARY KEY (provider, delivery_id)
);
