DROP INDEX events_by_sequence;
