-- Users, subscriptions, API keys and the built-in identity provider.
-- Times are whole milliseconds since the Unix epoch, UTC.
CREATE TABLE users (
    id          TEXT PRIMARY KEY,
    email       TEXT,
    role        TEXT NOT NULL DEFAULT 'user' CHECK (role IN ('user', 'admin')),
    created_at  BIGINT NOT NULL
);

CREATE TABLE subscriptions (
    user_id             TEXT PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    status              TEXT NOT NULL,
    current_period_end  BIGINT NOT NULL,
    updated_at          BIGINT NOT NULL
);

CREATE TABLE api_keys (
    id            TEXT PRIMARY KEY,
    user_id       TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name          TEXT,
    mode          TEXT NOT NULL CHECK (mode IN ('live', 'test')),
    key_hash      BYTEA NOT NULL UNIQUE,
    preview       TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    last_used_at  BIGINT,
    revoked_at    BIGINT,
    expires_at    BIGINT
);
CREATE INDEX api_keys_by_user ON api_keys (user_id, created_at);

-- generation 1 is the first key; a rotation adds the next generation.
CREATE TABLE signing_keys (
    generation   BIGINT PRIMARY KEY,
    kid          TEXT NOT NULL UNIQUE,
    private_pem  TEXT NOT NULL,
    created_at   BIGINT NOT NULL
);

CREATE TABLE settings (
    name   TEXT PRIMARY KEY,
    value  TEXT NOT NULL
);
