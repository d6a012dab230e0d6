-- Connecting accounts (issue 6): what a connector keeps about an account besides its tokens,
-- a lease so that one process at a time refreshes an account's tokens (refresh tokens rotate),
-- and the OAuth authorizations in progress.
ALTER TABLE accounts ADD COLUMN meta_json TEXT NOT NULL DEFAULT '{}';
ALTER TABLE accounts ADD COLUMN refresh_lease_until BIGINT;
ALTER TABLE accounts ADD COLUMN refresh_lease_owner TEXT;
-- After a refresh that could not reach the platform, the background refresher waits until then.
ALTER TABLE accounts ADD COLUMN next_refresh_at BIGINT;
ALTER TABLE accounts ADD COLUMN updated_at BIGINT;
CREATE INDEX accounts_by_expiry ON accounts (token_expires_at);

-- One row per authorization started with POST /v1/accounts/connect. The state value itself is
-- never stored, only its SHA-256; the PKCE verifier and the connector's pending data are sealed
-- with the server key. A row is used once (used_at), and purged after it expires.
CREATE TABLE oauth_states (
    state_hash    BYTEA PRIMARY KEY,
    user_id       TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    platform      TEXT NOT NULL,
    redirect_uri  TEXT NOT NULL,
    return_to     TEXT,
    -- 'dashboard' (the callback must come with that user's session) or 'api'.
    started_in    TEXT NOT NULL DEFAULT 'api',
    sealed        BYTEA NOT NULL,
    created_at    BIGINT NOT NULL,
    expires_at    BIGINT NOT NULL,
    used_at       BIGINT
);
CREATE INDEX oauth_states_by_expiry ON oauth_states (expires_at);
