DROP TABLE notifications;
DROP TABLE events;
DROP TABLE sessions;
