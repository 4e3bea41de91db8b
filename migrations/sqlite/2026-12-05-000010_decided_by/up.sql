-- Who decided an approval, as the deciding client said (resolve and reject take a
-- `decided_by`); NULL when it did not say, and for every other completion.
ALTER TABLE interactions ADD COLUMN decided_by TEXT;
