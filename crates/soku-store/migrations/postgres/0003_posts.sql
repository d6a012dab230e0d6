-- Connected accounts, submissions and their targets (the job queue), idempotency records and
-- the simulated platforms' own record. Times are milliseconds since the Unix epoch, UTC;
-- flags are 0/1 integers.
CREATE TABLE accounts (
    id                TEXT PRIMARY KEY,
    user_id           TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    platform          TEXT NOT NULL,
    account_id        TEXT NOT NULL,
    display_name      TEXT,
    username          TEXT,
    access_token      BYTEA,
    refresh_token     BYTEA,
    token_expires_at  BIGINT,
    is_default        BIGINT NOT NULL DEFAULT 0,
    status            TEXT NOT NULL DEFAULT 'active',
    created_at        BIGINT NOT NULL,
    UNIQUE (user_id, platform, account_id)
);

CREATE TABLE submissions (
    id            TEXT PRIMARY KEY,
    user_id       TEXT NOT NULL,
    mode          TEXT NOT NULL,
    status        TEXT NOT NULL,
    post_json     TEXT NOT NULL,
    content_json  TEXT NOT NULL,
    scheduled_at  BIGINT,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL
);
CREATE INDEX submissions_by_user ON submissions (user_id, mode, created_at, id);

CREATE TABLE targets (
    id                 TEXT PRIMARY KEY,
    submission_id      TEXT NOT NULL REFERENCES submissions (id) ON DELETE CASCADE,
    position           BIGINT NOT NULL,
    platform           TEXT NOT NULL,
    account_ref        TEXT,
    account_id         TEXT NOT NULL,
    status             TEXT NOT NULL,
    attempts           BIGINT NOT NULL DEFAULT 0,
    due_at             BIGINT NOT NULL,
    lease_owner        TEXT,
    lease_until        BIGINT,
    in_flight          BIGINT NOT NULL DEFAULT 0,
    platform_post_id   TEXT,
    platform_post_url  TEXT,
    error_code         TEXT,
    error_message      TEXT,
    platform_error     TEXT,
    published_at       BIGINT,
    updated_at         BIGINT NOT NULL
);
CREATE INDEX targets_by_submission ON targets (submission_id, position);
CREATE INDEX targets_due ON targets (due_at) WHERE status IN ('scheduled', 'queued');
CREATE INDEX targets_leased ON targets (lease_until) WHERE status = 'publishing';
CREATE INDEX targets_by_lease_owner ON targets (lease_owner) WHERE lease_owner IS NOT NULL;

-- response_status NULL: the first request with this key is still in flight.
CREATE TABLE idempotency_keys (
    user_id          TEXT NOT NULL,
    mode             TEXT NOT NULL,
    key              TEXT NOT NULL,
    request_hash     TEXT NOT NULL,
    response_status  BIGINT,
    response_body    BYTEA,
    created_at       BIGINT NOT NULL,
    PRIMARY KEY (user_id, mode, key)
);
CREATE INDEX idempotency_by_age ON idempotency_keys (created_at);

CREATE TABLE sandbox_posts (
    id             TEXT PRIMARY KEY,
    user_id        TEXT NOT NULL,
    platform       TEXT NOT NULL,
    marker         TEXT NOT NULL UNIQUE,
    submission_id  TEXT NOT NULL,
    target_id      TEXT NOT NULL,
    text           TEXT,
    media_json     TEXT NOT NULL,
    received_at    BIGINT NOT NULL,
    create_count   BIGINT NOT NULL DEFAULT 1
);
CREATE INDEX sandbox_by_user ON sandbox_posts (user_id, platform, received_at);
