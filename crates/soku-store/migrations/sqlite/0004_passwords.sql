-- Passwords of the built-in identity provider (dashboard sign-in): argon2id PHC strings.
ALTER TABLE users ADD COLUMN password_hash TEXT;
CREATE INDEX users_by_email ON users (LOWER(email));
