-- SQLite makes a primary key its rowid only when it is declared `INTEGER PRIMARY KEY`; the
-- `BIGINT PRIMARY KEY` of the first schema kept a rowid table plus a separate unique index on
-- `id`, so every notification was written to two B-trees for its id alone. Declared this way
-- the id is the rowid, and the table is the only B-tree keyed by it. (PostgreSQL keeps its
-- heap and primary key index either way; its schema is unchanged.)
CREATE TABLE notifications_by_rowid (
    id         INTEGER NOT NULL PRIMARY KEY,
    scope      TEXT    NOT NULL,
    session_id TEXT    NOT NULL,
    kind       TEXT    NOT NULL,
    at         BIGINT  NOT NULL,
    body       TEXT    NOT NULL
);
INSERT INTO notifications_by_rowid (id, scope, session_id, kind, at, body)
    SELECT id, scope, session_id, kind, at, body FROM notifications;
DROP TABLE notifications;
ALTER TABLE notifications_by_rowid RENAME TO notifications;
CREATE INDEX notifications_by_scope ON notifications (scope, id);
CREATE INDEX notifications_by_session ON notifications (scope, session_id, id);
