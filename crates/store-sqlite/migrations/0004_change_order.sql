-- Changes are listed by run (newest first) and then in the order they were
-- recorded: the indexes carry the id, so a page of a run's changes is read
-- in order instead of sorting every change of the run (PostgreSQL; in
-- SQLite the rowid already followed the key, and this costs one rebuild).
DROP INDEX IF EXISTS changes_by_run;
CREATE INDEX changes_by_run ON changes (run_id, id);
DROP INDEX IF EXISTS changes_by_domain;
CREATE INDEX changes_by_domain ON changes (domain, run_id, id);
