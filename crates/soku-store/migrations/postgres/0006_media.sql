-- Hosted media (spec 8.1): one row per file a user uploaded or imported. The file itself is in
-- the media store (a directory or an S3 bucket) under storage_key.
CREATE TABLE media (
    id               TEXT PRIMARY KEY,
    user_id          TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    mode             TEXT NOT NULL,
    kind             TEXT NOT NULL,
    mime_type        TEXT NOT NULL,
    size_bytes       BIGINT NOT NULL,
    sha256           TEXT NOT NULL,
    width            BIGINT,
    height           BIGINT,
    duration_ms      BIGINT,
    storage_key      TEXT NOT NULL,
    file_name        TEXT NOT NULL,
    source_url       TEXT,
    -- The Idempotency-Key (or the key derived from the request); NULL once expired and taken
    -- over by a newer request.
    idempotency_key  TEXT,
    request_hash     TEXT NOT NULL,
    created_at       BIGINT NOT NULL
);
CREATE UNIQUE INDEX media_by_idempotency_key ON media (user_id, mode, idempotency_key);
CREATE INDEX media_by_user ON media (user_id, mode, created_at, id);
