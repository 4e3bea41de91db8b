-- What a session's events say about it (project, model, title, activity), as a JSON object
-- the session keeps up to date as its events are applied (domain/activity.rs).
ALTER TABLE sessions ADD COLUMN facts TEXT NOT NULL DEFAULT '{}';
