CREATE TABLE events_by_name (
    scope          TEXT    NOT NULL,
    session_id     TEXT    NOT NULL,
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
    PRIMARY KEY (scope, session_id, seq)
);
INSERT INTO events_by_name
    SELECT s.scope, s.session_id, e.seq, e.event_id, e.dedup_key, e.event_type,
           e.occurred_at_us, e.received_at, e.interaction_id, e.sequence, e.out_of_order, e.data
    FROM events e JOIN sessions s ON s.session_key = e.session_key;
DROP TABLE events;
ALTER TABLE events_by_name RENAME TO events;
CREATE UNIQUE INDEX events_dedup ON events (scope, session_id, dedup_key);
CREATE INDEX events_by_type ON events (scope, session_id, event_type, seq);
CREATE INDEX events_by_interaction ON events (scope, session_id, interaction_id, seq)
    WHERE interaction_id IS NOT NULL;
CREATE INDEX events_by_sequence ON events (scope, session_id, sequence)
    WHERE sequence IS NOT NULL;
DROP INDEX sessions_by_key;
ALTER TABLE sessions DROP COLUMN session_key;
