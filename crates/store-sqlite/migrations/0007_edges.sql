-- Where each vantage was sent for names a CDN or cloud serves, and for
-- cloud products' endpoints (MIIT's node share and coverage ratio).
CREATE TABLE edge_sightings (
    run_id   INTEGER NOT NULL,
    idx      INTEGER NOT NULL,
    vantage  TEXT NOT NULL,
    provider TEXT NOT NULL,
    kind     TEXT NOT NULL,
    product  TEXT NOT NULL,
    name     TEXT NOT NULL,
    region   TEXT NOT NULL,
    isp      TEXT NOT NULL,
    v4       TEXT,
    v6       TEXT,
    v4_ok    INTEGER NOT NULL,
    v6_ok    INTEGER NOT NULL,
    PRIMARY KEY (run_id, idx, vantage, provider, product, name)
);
