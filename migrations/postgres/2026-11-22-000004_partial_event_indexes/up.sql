-- Most events name no interaction and carry no client sequence number, yet every insert paid
-- for an entry in both indexes. Partial indexes keep only the rows the look-ups can match
-- (queries on these columns say `IS NOT NULL` so both planners pick them).
DROP INDEX events_by_interaction;
CREATE INDEX events_by_interaction ON events (scope, session_id, interaction_id, seq)
    WHERE interaction_id IS NOT NULL;
DROP INDEX events_by_sequence;
CREATE INDEX events_by_sequence ON events (scope, session_id, sequence)
    WHERE sequence IS NOT NULL;
