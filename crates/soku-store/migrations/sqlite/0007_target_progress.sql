-- What a connector keeps across attempts at a target (issue 17): an uploaded media id, a
-- container being processed, so that a retry or another process resumes instead of uploading
-- again. JSON; written only by the target's lease owner.
ALTER TABLE targets ADD COLUMN progress_json TEXT;
