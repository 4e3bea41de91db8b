-- Client sequence numbers: the next expected one is derived from stored events at start-up,
-- and a late event is told apart from a conflicting one by looking its number up.
CREATE INDEX events_by_sequence ON events (scope, session_id, sequence);
