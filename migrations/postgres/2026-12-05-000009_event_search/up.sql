-- What each event gives search and the activity view: one row per event, written in the same
-- statement as the event. `words` is its searchable text (tool, command, path, pattern,
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
-- The full-text index: the `simple` configuration (no stemming, no stop words) over the
-- words; events without words are not in it, and queries repeat this expression and
-- condition. GIN's pending list takes new entries cheaply and searches see them at once; a
-- list of up to 32 MiB is merged into the index by autovacuum rather than by the committer's
-- statement (the default 4 MiB made some group commits merge it, stalling them).
CREATE INDEX event_search_words ON event_search
    USING gin (to_tsvector('simple', words))
    WITH (fastupdate = on, gin_pending_list_limit = 32768)
    WHERE words <> '';
