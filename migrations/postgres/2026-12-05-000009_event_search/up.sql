-- What each event gives search and the activity view: one row per event, written in the same
-- statement as the event. `words` is its searchable text (tool, command, path, pattern,
-- prompt, messages, reply), already cut into lowercase words by the service
-- (domain/search.rs), so both backends index the same tokens. The index by time serves the
-- newest events across a scope's sessions and the per-minute counts without reading events.
-- `id` numbers the rows in commit order (one committer writes them), for the indexer.
CREATE TABLE event_search (
    id          BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    scope       TEXT    NOT NULL,
    session_key BIGINT  NOT NULL,
    seq         BIGINT  NOT NULL,
    received_at BIGINT  NOT NULL,
    event_type  TEXT    NOT NULL,
    tool        TEXT,
    words       TEXT    NOT NULL
);
CREATE INDEX event_search_by_time ON event_search (scope, received_at);
-- The full-text index of the words, in the `simple` configuration (no stemming, no stop
-- words): a vector per event that has words, filled off the commit path by the search
-- indexer's own transactions, in batches (store/search.rs). Inside the group commit, the
-- GIN index cost single events a fifth of their throughput and, when its pending list filled,
-- stalled the commit that merged it.
CREATE TABLE event_words (
    id     BIGINT   NOT NULL PRIMARY KEY,
    vector TSVECTOR NOT NULL
);
CREATE INDEX event_words_vector ON event_words USING gin (vector);
-- How far the full-text index has got: every row of `event_search` up to this id is in it (or
-- has no words).
CREATE TABLE event_words_indexed (upto BIGINT NOT NULL);
INSERT INTO event_words_indexed (upto) VALUES (0);
