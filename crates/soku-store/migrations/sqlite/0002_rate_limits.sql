-- Per-user rate-limit overrides (`soku admin ratelimit set|clear`). A user without a row gets
-- the quota of their tier. Read together with the key lookup, so no extra query per request.
CREATE TABLE rate_limit_overrides (
    user_id     TEXT PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    rate        INTEGER NOT NULL CHECK (rate > 0),
    burst       INTEGER NOT NULL CHECK (burst >= 0),
    updated_at  INTEGER NOT NULL
);
