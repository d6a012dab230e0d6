-- Key lifecycle and sessions (spec 4.1, 4.2).

-- Scopes: names separated by spaces, NULL for full access. Allowed addresses: CIDRs separated
-- by spaces, NULL for anywhere. replaced_by: the key that replaced this one in a rotation
-- (whose grace period is this key's expires_at).
ALTER TABLE api_keys ADD COLUMN scopes TEXT;
ALTER TABLE api_keys ADD COLUMN allowed_ips TEXT;
ALTER TABLE api_keys ADD COLUMN last_used_ip TEXT;
ALTER TABLE api_keys ADD COLUMN replaced_by TEXT;

-- The addresses a key has been used from, for api_key.used_from_new_ip; bounded per key (the
-- least recently seen address gives way).
CREATE TABLE api_key_ips (
    key_id         TEXT NOT NULL REFERENCES api_keys (id) ON DELETE CASCADE,
    ip             TEXT NOT NULL,
    first_seen_at  BIGINT NOT NULL,
    last_seen_at   BIGINT NOT NULL,
    PRIMARY KEY (key_id, ip)
);

-- A user's security events, newest first; kept 90 days.
CREATE TABLE audit_events (
    id          TEXT PRIMARY KEY,
    user_id     TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    type        TEXT NOT NULL,
    at          BIGINT NOT NULL,
    key_id      TEXT,
    ip          TEXT,
    user_agent  TEXT,
    details     TEXT NOT NULL
);
CREATE INDEX audit_events_by_user ON audit_events (user_id, at, id);
CREATE INDEX audit_events_by_time ON audit_events (at);

-- Dashboard sessions: the cookie names one (sealed); signing out ends it for every copy.
CREATE TABLE sessions (
    id            TEXT PRIMARY KEY,
    user_id       TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at    BIGINT NOT NULL,
    expires_at    BIGINT NOT NULL,
    last_seen_at  BIGINT NOT NULL,
    ip            TEXT,
    user_agent    TEXT,
    revoked_at    BIGINT
);
CREATE INDEX sessions_by_user ON sessions (user_id, created_at);
