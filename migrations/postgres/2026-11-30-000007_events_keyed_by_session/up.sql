-- Every event index began with the (scope, session_id) text pair, repeated in every entry of
-- the primary key, the dedup index and the type index. A session now has an integer key,
-- assigned once when it is created, and events carry that instead: smaller entries and
-- cheaper comparisons. Readers find the key through the session row.
ALTER TABLE sessions ADD COLUMN session_key BIGINT;
UPDATE sessions SET session_key = numbered.n
    FROM (SELECT scope, session_id,
                 row_number() OVER (ORDER BY created_at, scope, session_id) AS n
          FROM sessions) AS numbered
    WHERE sessions.scope = numbered.scope AND sessions.session_id = numbered.session_id;
ALTER TABLE sessions ALTER COLUMN session_key SET NOT NULL;
CREATE UNIQUE INDEX sessions_by_key ON sessions (session_key);

ALTER TABLE events ADD COLUMN session_key BIGINT;
UPDATE events SET session_key = s.session_key
    FROM sessions s WHERE s.scope = events.scope AND s.session_id = events.session_id;
ALTER TABLE events ALTER COLUMN session_key SET NOT NULL;
DROP INDEX events_dedup;
DROP INDEX events_by_type;
DROP INDEX events_by_interaction;
DROP INDEX events_by_sequence;
ALTER TABLE events DROP CONSTRAINT events_pkey;
ALTER TABLE events DROP COLUMN scope;
ALTER TABLE events DROP COLUMN session_id;
ALTER TABLE events ADD PRIMARY KEY (session_key, seq);
CREATE UNIQUE INDEX events_dedup ON events (session_key, dedup_key);
CREATE INDEX events_by_type ON events (session_key, event_type, seq);
CREATE INDEX events_by_interaction ON events (session_key, interaction_id, seq)
    WHERE interaction_id IS NOT NULL;
CREATE INDEX events_by_sequence ON events (session_key, sequence)
    WHERE sequence IS NOT NULL;
