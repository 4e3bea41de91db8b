-- Only open interactions (queued or pending) are ever looked up by status: a session's open
-- ones when it loads or lists them, and those with deadlines at start-up. Two full indexes
-- served that and were rewritten on every create and completion (about 4.6 of the 20 WAL
-- pages a SQLite commit wrote at 1,000 completions/s). One partial index holds just the open
-- ones, so it stays small and a completion only removes its entry. An interaction is open
-- exactly while `completed_at` is NULL (every completion sets it), and the queries say
-- `completed_at IS NULL` so both planners pick this index. Listings of completed ones filter
-- `interactions_by_position`.
DROP INDEX interactions_open;
DROP INDEX interactions_by_status;
CREATE INDEX interactions_open ON interactions (scope, session_id, position)
    WHERE completed_at IS NULL;
