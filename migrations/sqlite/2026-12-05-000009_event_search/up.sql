-- What each event gives search and the activity view: one row per event, written in the same
-- transaction as the event. `words` is its searchable text (tool, command, path, pattern,
-- prompt, messages, reply), already cut into lowercase words by the service
-- (domain/search.rs), so both backends index the same tokens. The index by time serves the
-- newest events across a scope's sessions and the per-minute counts without reading events.
CREATE TABLE event_search (
    scope       TEXT    NOT NULL,
    session_key BIGINT  NOT NULL,
    seq         BIGINT  NOT NULL,
    received_at BIGINT  NOT NULL,
    event_type  TEXT    NOT NULL,
    tool        TEXT,
    words       TEXT    NOT NULL
);
CREATE INDEX event_search_by_time ON event_search (scope, received_at);
-- The full-text index of the words: an external-content FTS5 table over the rows above, keyed
-- by their rowid. Rows are added to it by the committer in large batches between commits
-- (store/search.rs), not in each commit: FTS5 writes a segment per transaction, and indexing
-- in every small group commit cost single events 13 % of their throughput.
CREATE VIRTUAL TABLE event_words USING fts5(
    words, content = 'event_search', tokenize = 'unicode61 remove_diacritics 0',
    columnsize = 0
);
-- How far the full-text index has got: every row of `event_search` up to this rowid is in it
-- (or has no words).
CREATE TABLE event_words_indexed (upto BIGINT NOT NULL);
INSERT INTO event_words_indexed (upto) VALUES (0);
