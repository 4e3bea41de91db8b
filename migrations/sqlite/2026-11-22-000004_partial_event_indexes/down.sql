DROP INDEX events_by_interaction;
CREATE INDEX events_by_interaction ON events (scope, session_id, interaction_id, seq);
DROP INDEX events_by_sequence;
CREATE INDEX events_by_sequence ON events (scope, session_id, sequence);
