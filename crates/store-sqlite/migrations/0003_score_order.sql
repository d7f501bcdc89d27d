-- Target lists sort by score, then by target index (was: by rowid, which
-- only SQLite has): the index carries both so a page still reads only
-- what it shows.
DROP INDEX IF EXISTS verdicts_by_score;
CREATE INDEX verdicts_by_score ON verdicts (run_id, profile, score, idx);
