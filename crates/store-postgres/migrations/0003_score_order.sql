DROP INDEX IF EXISTS verdicts_by_score;
CREATE INDEX verdicts_by_score ON verdicts (run_id, profile, score, idx);
