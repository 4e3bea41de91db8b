DROP INDEX interactions_open;
CREATE INDEX interactions_by_status ON interactions (scope, session_id, status, position);
CREATE INDEX interactions_open ON interactions (status, scope, session_id);
