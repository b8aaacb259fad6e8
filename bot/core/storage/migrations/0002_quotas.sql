-- Quotas, fair queues and admin control (issue 3).
--
-- The jobs table doubles as the credit ledger, keyed by job id: each job carries what it
-- costs and whether that is reserved, committed or released. A reservation is therefore the
-- INSERT of the job itself, one conditional statement, and every later change of the charge
-- rides on the job's own state transition, which happens at most once.
--
-- SQLite cannot alter a CHECK constraint, so the jobs table is rebuilt to admit 'canceled';
-- webhook_deliveries is rebuilt with it because it references jobs.

CREATE TABLE jobs_new (
    id                      INTEGER PRIMARY KEY AUTOINCREMENT,
    state                   TEXT    NOT NULL CHECK (state IN
                                ('queued', 'submitting', 'submitted', 'succeeded', 'failed',
                                 'canceled', 'delivered', 'undeliverable')),
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
    delivered_at            REAL,
    credits                 INTEGER NOT NULL DEFAULT 0 CHECK (credits >= 0),
    charge                  TEXT    NOT NULL DEFAULT 'reserved'
                                CHECK (charge IN ('reserved', 'committed', 'released'))
);

INSERT INTO jobs_new (id, state, prompt, tier, aspect_ratio, safety, output_format, guild_id,
                      channel_id, user_id, application_id, interaction_token,
                      interaction_expires_at, attachment_size_limit, provider, provider_job_id,
                      callback_token, attempts, error, delivery_error, image_paths, created_at,
                      updated_at, submitted_at, finished_at, delivered_at, charge)
SELECT id, state, prompt, tier, aspect_ratio, safety, output_format, guild_id, channel_id,
       user_id, application_id, interaction_token, interaction_expires_at,
       attachment_size_limit, provider, provider_job_id, callback_token, attempts, error,
       delivery_error, image_paths, created_at, updated_at, submitted_at, finished_at,
       delivered_at,
       CASE WHEN state = 'failed' OR error IS NOT NULL THEN 'released'
            WHEN state IN ('delivered', 'undeliverable') THEN 'committed'
            ELSE 'reserved' END
FROM jobs;

CREATE TABLE webhook_deliveries_new (
    delivery_id  TEXT    NOT NULL,
    provider     TEXT    NOT NULL,
    job_id       INTEGER NOT NULL REFERENCES jobs_new (id),
    received_at  REAL    NOT NULL,
    PRIMARY KEY (provider, delivery_id)
);
INSERT INTO webhook_deliveries_new SELECT * FROM webhook_deliveries;

DROP TABLE webhook_deliveries;
DROP TABLE jobs;
-- Renaming updates the foreign key in webhook_deliveries_new to point at "jobs".
ALTER TABLE jobs_new RENAME TO jobs;
ALTER TABLE webhook_deliveries_new RENAME TO webhook_deliveries;

CREATE INDEX jobs_by_state ON jobs (state, id);
CREATE UNIQUE INDEX jobs_by_provider_job ON jobs (provider, provider_job_id)
    WHERE provider_job_id IS NOT NULL;
-- Usage sums per member and per guild over a period.
CREATE INDEX jobs_by_member ON jobs (guild_id, user_id, created_at);
CREATE INDEX jobs_by_guild ON jobs (guild_id, created_at);

-- Per-guild overrides of the [quotas] and [queue] settings; NULL means "the configured default".
CREATE TABLE guild_settings (
    guild_id               INTEGER PRIMARY KEY,
    member_daily_credits   INTEGER CHECK (member_daily_credits >= 0),
    member_monthly_credits INTEGER CHECK (member_monthly_credits >= 0),
    guild_monthly_credits  INTEGER CHECK (guild_monthly_credits >= 0),
    exempt_role_id         INTEGER,
    max_running_per_guild  INTEGER CHECK (max_running_per_guild >= 1),
    max_queued_per_member  INTEGER CHECK (max_queued_per_member >= 1),
    max_queued_per_guild   INTEGER CHECK (max_queued_per_guild >= 1)
);

-- Limits for members holding a role (the most generous role wins) or for one member.
CREATE TABLE credit_limits (
    guild_id        INTEGER NOT NULL,
    subject         TEXT    NOT NULL CHECK (subject IN ('role', 'member')),
    subject_id      INTEGER NOT NULL,
    daily_credits   INTEGER NOT NULL CHECK (daily_credits >= 0),
    monthly_credits INTEGER NOT NULL CHECK (monthly_credits >= 0),
    PRIMARY KEY (guild_id, subject, subject_id)
);

-- A tier listed here is open only to members holding one of its roles.
CREATE TABLE tier_roles (
    guild_id  INTEGER NOT NULL,
    tier      TEXT    NOT NULL,
    role_id   INTEGER NOT NULL,
    PRIMARY KEY (guild_id, tier, role_id)
);

-- One-off credits: they raise the member's daily and monthly allowance in the period granted.
CREATE TABLE credit_grants (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    guild_id    INTEGER NOT NULL,
    user_id     INTEGER NOT NULL,
    credits     INTEGER NOT NULL CHECK (credits > 0),
    granted_by  INTEGER NOT NULL,
    granted_at  REAL    NOT NULL
);
CREATE INDEX credit_grants_by_member ON credit_grants (guild_id, user_id, granted_at);

-- A reset forgives what a member used before it, in every period.
CREATE TABLE member_resets (
    guild_id  INTEGER NOT NULL,
    user_id   INTEGER NOT NULL,
    reset_at  REAL    NOT NULL,
    PRIMARY KEY (guild_id, user_id)
);

-- Every admin change: who, what, when.
CREATE TABLE admin_audit (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    guild_id   INTEGER NOT NULL,
    actor_id   INTEGER NOT NULL,
    action     TEXT    NOT NULL,
    details    TEXT    NOT NULL,
    created_at REAL    NOT NULL
);
CREATE INDEX admin_audit_by_guild ON admin_audit (guild_id, id);
