-- Per-target text and platform options (issue 18, spec 8.2). A target may carry its own text,
-- which replaces the post's for that target only: NULL publishes the post's text, '' no text.
-- The options themselves are kept with the submission's content (content_json). The simulated
-- platforms record the options they received, as JSON ('{}' for none).
ALTER TABLE targets ADD COLUMN text TEXT;
ALTER TABLE sandbox_posts ADD COLUMN options_json TEXT NOT NULL DEFAULT '{}';
