-- Sessions: one row per (scope, session id). Counters live here and are written in the
-- same transaction as the rows they count, so they never drift.
-- Times are milliseconds since the Unix epoch (BIGINT on both backends keeps one schema.rs).
CREATE TABLE sessions (
    scope                    TEXT    NOT NULL,
    session_id               TEXT    NOT NULL,
    status                   TEXT    NOT NULL,
    external_conversation_id TEXT,
    metadata                 TEXT    NOT NULL,
    created_at               BIGINT  NOT NULL,
    updated_at               BIGINT  NOT NULL,
    event_count              BIGINT  NOT NULL,
    last_seq                 BIGINT  NOT NULL,
    interactions_pending     BIGINT  NOT NULL DEFAULT 0,
    interactions_completed   BIGINT  NOT NULL DEFAULT 0,
    interactions_timed_out   BIGINT  NOT NULL DEFAULT 0,
    interactions_cancelled   BIGINT  NOT NULL DEFAULT 0,
    PRIMARY KEY (scope, session_id)
);
-- The session list pages by (updated_at, session_id), newest first, optionally by status.
CREATE INDEX sessions_by_activity ON sessions (scope, updated_at, session_id);
CREATE INDEX sessions_by_status_activity ON sessions (scope, status, updated_at, session_id);

-- Events: seq is assigned by the session actor; dedup_key is the event_id ("e:...") or a hash
-- of the content key ("c:..."), unique per session as the backstop of the actor's cache.
CREATE TABLE events (
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
CREATE UNIQUE INDEX events_dedup ON events (scope, session_id, dedup_key);
CREATE INDEX events_by_type ON events (scope, session_id, event_type, seq);
CREATE INDEX events_by_interaction ON events (scope, session_id, interaction_id, seq);

-- Notifications: a transactional outbox. Ids are assigned by the single committer in commit
-- order, so a reader that has seen id N never later finds a smaller one appear.
CREATE TABLE notifications (
    id         BIGINT  NOT NULL PRIMARY KEY,
    scope      TEXT    NOT NULL,
    session_id TEXT    NOT NULL,
    kind       TEXT    NOT NULL,
    at         BIGINT  NOT NULL,
    body       TEXT    NOT NULL
);
CREATE INDEX notifications_by_scope ON notifications (scope, id);
CREATE INDEX notifications_by_session ON notifications (scope, session_id, id);
