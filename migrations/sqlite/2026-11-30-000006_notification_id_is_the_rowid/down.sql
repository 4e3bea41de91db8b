CREATE TABLE notifications_by_key (
    id         BIGINT  NOT NULL PRIMARY KEY,
    scope      TEXT    NOT NULL,
    session_id TEXT    NOT NULL,
    kind       TEXT    NOT NULL,
    at         BIGINT  NOT NULL,
    body       TEXT    NOT NULL
);
INSERT INTO notifications_by_key (id, scope, session_id, kind, at, body)
    SELECT id, scope, session_id, kind, at, body FROM notifications;
DROP TABLE notifications;
ALTER TABLE notifications_by_key RENAME TO notifications;
CREATE INDEX notifications_by_scope ON notifications (scope, id);
CREATE INDEX notifications_by_session ON notifications (scope, session_id, id);
