-- Interactions: commands and approvals. `result` is NULL while the result slot is empty
-- (a JSON null result is the text 'null'). `position` is the creation order in the session;
-- commands are handed out in it. `deadline` is NULL while a command is queued.
CREATE TABLE interactions (
    scope          TEXT    NOT NULL,
    session_id     TEXT    NOT NULL,
    interaction_id TEXT    NOT NULL,
    kind           TEXT    NOT NULL,
    payload        TEXT    NOT NULL,
    status         TEXT    NOT NULL,
    outcome        TEXT,
    result         TEXT,
    completed_by   TEXT,
    position       BIGINT  NOT NULL,
    created_at     BIGINT  NOT NULL,
    timeout_ms     BIGINT  NOT NULL,
    deadline       BIGINT,
    completed_at   BIGINT,
    event_count    BIGINT  NOT NULL,
    PRIMARY KEY (scope, session_id, interaction_id)
);
CREATE INDEX interactions_by_status ON interactions (scope, session_id, status, position);
CREATE INDEX interactions_by_position ON interactions (scope, session_id, position);
-- At start-up, sessions with open interactions are woken so their deadlines fire.
CREATE INDEX interactions_open ON interactions (status, scope, session_id);
