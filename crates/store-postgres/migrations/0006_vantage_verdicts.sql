-- Each vantage's status per profile, beside its full result, so reports
-- count and compare vantages without reading the verdicts' JSON.
CREATE TABLE vantage_verdicts (
    run_id  BIGINT NOT NULL,
    profile TEXT NOT NULL,
    idx     BIGINT NOT NULL,
    vantage TEXT NOT NULL,
    status  TEXT NOT NULL,
    score   DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (run_id, profile, idx, vantage)
);
INSERT INTO vantage_verdicts (run_id, profile, idx, vantage, status, score)
SELECT r.run_id, v ->> 'profile', r.idx, r.vantage, v ->> 'status', coalesce((v ->> 'score')::double precision, 0)
FROM vantage_results r, jsonb_array_elements(r.verdicts::jsonb) v
WHERE v ->> 'profile' IS NOT NULL;
