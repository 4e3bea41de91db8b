ALTER TABLE sessions DROP COLUMN facts;
