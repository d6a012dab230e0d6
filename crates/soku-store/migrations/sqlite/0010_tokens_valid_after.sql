-- "Sign out everywhere" (spec 4.2) ends ID tokens too: those whose sign-in (auth_time, else
-- iat) is before this instant (milliseconds since the Unix epoch; compared in whole seconds)
-- are refused. NULL: the user never signed out everywhere.
ALTER TABLE users ADD COLUMN tokens_valid_after INTEGER;
