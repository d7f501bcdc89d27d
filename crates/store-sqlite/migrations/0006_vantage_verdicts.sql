-- Each vantage's status per profile, beside its full result, so reports
-- count and compare vantages without reading the verdicts' JSON.
CREATE TABLE vantage_verdicts (
    run_id  INTEGER NOT NULL,
    profile TEXT NOT NULL,
    idx     INTEGER NOT NULL,
    vantage TEXT NOT NULL,
    status  TEXT NOT NULL,
    score   REAL NOT NULL,
    PRIMARY KEY (run_id, profile, idx, vantage)
);
INSERT INTO vantage_verdicts (run_id, profile, idx, vantage, status, score)
SELECT r.run_id, json_extract(v.value, '$.profile'), r.idx, r.vantage,
       json_extract(v.value, '$.status'), coalesce(json_extract(v.value, '$.score'), 0)
FROM vantage_results r, json_each(r.verdicts) v
WHERE json_extract(v.value, '$.profile') IS NOT NULL;
