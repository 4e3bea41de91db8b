-- Counters the nodes of a cluster share, in the one row of cluster_settings.
-- Session keys are handed out in blocks: each node takes the next block from here, so two nodes
-- never give the same key to different sessions.
ALTER TABLE cluster_settings ADD COLUMN next_session_key BIGINT NOT NULL DEFAULT 1;
UPDATE cluster_settings SET next_session_key = (SELECT coalesce(max(session_key), 0) + 1 FROM sessions);
-- Notification ids are taken from here inside each group commit: the row stays locked until
-- the commit ends, so ids are handed out in commit order across every node, without gaps.
ALTER TABLE cluster_settings ADD COLUMN next_notification_id BIGINT NOT NULL DEFAULT 1;
UPDATE cluster_settings SET next_notification_id = (SELECT coalesce(max(id), 0) + 1 FROM notifications);
