ALTER TABLE interactions DROP COLUMN decided_by;
