ALTER TABLE cluster_settings DROP COLUMN next_notification_id;
ALTER TABLE cluster_settings DROP COLUMN next_session_key;
