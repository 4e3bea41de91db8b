ALTER TABLE events ADD COLUMN scope TEXT;
ALTER TABLE events ADD COLUMN session_id TEXT;
UPDATE events SET scope = s.scope, session_id = s.session_id
    FROM sessions s WHERE s.session_key = events.session_key;
ALTER TABLE events ALTER COLUMN scope SET NOT NULL;
ALTER TABLE events ALTER COLUMN session_id SET NOT NULL;
DROP INDEX events_dedup;
DROP INDEX events_by_type;
DROP INDEX events_by_interaction;
DROP INDEX events_by_sequence;
ALTER TABLE events DROP CONSTRAINT events_pkey;
ALTER TABLE events DROP COLUMN session_key;
ALTER TABLE events ADD PRIMARY KEY (scope, session_id, seq);
CREATE UNIQUE INDEX events_dedup ON events (scope, session_id, dedup_key);
CREATE INDEX events_by_type ON events (scope, session_id, event_type, seq);
CREATE INDEX events_by_interaction ON events (scope, session_id, interaction_id, seq)
    WHERE interaction_id IS NOT NULL;
CREATE INDEX events_by_sequence ON events (scope, session_id, sequence)
    WHERE sequence IS NOT NULL;
DROP INDEX sessions_by_key;
ALTER TABLE sessions DROP COLUMN session_key;
