-- Every event index began with the (scope, session_id) text pair, repeated in every entry of
-- the table's primary key, its dedup index and its type index. A session now has an integer
-- key, assigned once when it is created, and events carry that instead: smaller entries,
-- cheaper comparisons, more entries per page. (`bench/sqlite-floor.py` stores the service's
-- event rows about 40 % faster this way.) Readers find the key through the session row.
ALTER TABLE sessions ADD COLUMN session_key BIGINT NOT NULL DEFAULT 0;
UPDATE sessions SET session_key = rowid;
CREATE UNIQUE INDEX sessions_by_key ON sessions (session_key);

CREATE TABLE events_keyed (
    session_key    BIGINT  NOT NULL,
    seq            BIGINT  NOT NULL,
    event_id       TEXT,
    dedup_key      TEXT    NOT NULL,
    event_type     TEXT    NOT NULL,
    occurred_at_us BIGINT  NOT NULL,
    received_at    BIGINT  NOT NULL,
    interaction_id TEXT,
    sequence       BIGINT,
    out_of_order   BOOLEAN NOT NULL,
    data           TEXT    NOT NULL,
    PRIMARY KEY (session_key, seq)
);
INSERT INTO events_keyed
    SELECT s.session_key, e.seq, e.event_id, e.dedup_key, e.event_type, e.occurred_at_us,
           e.received_at, e.interaction_id, e.sequence, e.out_of_order, e.data
    FROM events e JOIN sessions s ON s.scope = e.scope AND s.session_id = e.session_id;
DROP TABLE events;
ALTER TABLE events_keyed RENAME TO events;
CREATE UNIQUE INDEX events_dedup ON events (session_key, dedup_key);
CREATE INDEX events_by_type ON events (session_key, event_type, seq);
CREATE INDEX events_by_interaction ON events (session_key, interaction_id, seq)
    WHERE interaction_id IS NOT NULL;
CREATE INDEX events_by_sequence ON events (session_key, sequence)
    WHERE sequence IS NOT NULL;
