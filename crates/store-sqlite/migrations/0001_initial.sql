-- The schema of stores written before migrations were numbered. Every
-- statement is IF NOT EXISTS: such a store already has all of it.
CREATE TABLE IF NOT EXISTS runs (
    id          INTEGER PRIMARY KEY,
    started_at  TEXT NOT NULL,
    finished_at TEXT,
    source      TEXT NOT NULL,
    profiles    TEXT NOT NULL,
    config      TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS targets (
    run_id       INTEGER NOT NULL REFERENCES runs(id),
    idx          INTEGER NOT NULL,
    domain       TEXT NOT NULL,
    category     TEXT,
    organisation TEXT,
    region       TEXT,
    PRIMARY KEY (run_id, idx)
);
CREATE TABLE IF NOT EXISTS observations (
    run_id INTEGER NOT NULL,
    idx    INTEGER NOT NULL,
    domain TEXT NOT NULL,
    body   TEXT NOT NULL,
    PRIMARY KEY (run_id, idx)
);
CREATE TABLE IF NOT EXISTS verdicts (
    run_id  INTEGER NOT NULL,
    idx     INTEGER NOT NULL,
    profile TEXT NOT NULL,
    domain  TEXT NOT NULL,
    status  TEXT NOT NULL,
    score   REAL NOT NULL,
    body    TEXT NOT NULL,
    PRIMARY KEY (run_id, idx, profile)
);
CREATE INDEX IF NOT EXISTS verdicts_by_status ON verdicts (run_id, profile, status);
CREATE TABLE IF NOT EXISTS traffic (
    start        INTEGER NOT NULL,
    seconds      INTEGER NOT NULL,
    source       TEXT NOT NULL,
    exporter     TEXT NOT NULL,
    interface    INTEGER NOT NULL,
    asn          INTEGER NOT NULL,
    organisation TEXT NOT NULL,
    region       TEXT NOT NULL,
    family       INTEGER NOT NULL,
    bytes        INTEGER NOT NULL,
    packets      INTEGER NOT NULL,
    records      INTEGER NOT NULL,
    scaled       INTEGER NOT NULL,
    PRIMARY KEY (start, seconds, source, exporter, interface, asn, organisation, region, family, scaled)
);
CREATE TABLE IF NOT EXISTS campaigns (
    name        TEXT PRIMARY KEY,
    created_at  TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS campaign_targets (
    campaign     TEXT NOT NULL REFERENCES campaigns(name),
    idx          INTEGER NOT NULL,
    domain       TEXT NOT NULL,
    category     TEXT,
    organisation TEXT,
    region       TEXT,
    PRIMARY KEY (campaign, idx)
);
CREATE TABLE IF NOT EXISTS sketches (
    day          TEXT NOT NULL,
    organisation TEXT NOT NULL,
    kind         TEXT NOT NULL,
    sketch       BLOB NOT NULL,
    PRIMARY KEY (day, organisation, kind)
);
CREATE INDEX IF NOT EXISTS targets_by_domain ON targets (domain, run_id);
CREATE INDEX IF NOT EXISTS runs_by_source ON runs (source, id);
CREATE INDEX IF NOT EXISTS verdicts_by_score ON verdicts (run_id, profile, score);
CREATE TABLE IF NOT EXISTS run_summary (
    run_id    INTEGER NOT NULL,
    profile   TEXT NOT NULL,
    dimension TEXT NOT NULL,
    key       TEXT NOT NULL,
    targets   INTEGER NOT NULL,
    pass      INTEGER NOT NULL,
    score     REAL NOT NULL,
    PRIMARY KEY (run_id, profile, dimension, key)
);
CREATE TABLE IF NOT EXISTS provider_uses (
    run_id   INTEGER NOT NULL,
    idx      INTEGER NOT NULL,
    provider TEXT NOT NULL,
    role     TEXT NOT NULL,
    ipv6     INTEGER NOT NULL,
    evidence TEXT NOT NULL,
    PRIMARY KEY (run_id, idx, provider, role)
);
CREATE TABLE IF NOT EXISTS changes (
    id           INTEGER PRIMARY KEY,
    campaign     TEXT NOT NULL,
    run_id       INTEGER NOT NULL,
    previous_run INTEGER NOT NULL,
    domain       TEXT NOT NULL,
    profile      TEXT NOT NULL,
    kind         TEXT NOT NULL,
    check_id     TEXT NOT NULL,
    from_status  TEXT NOT NULL,
    to_status    TEXT NOT NULL,
    text         TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS changes_by_domain ON changes (domain, run_id);
CREATE INDEX IF NOT EXISTS changes_by_run ON changes (run_id);
CREATE TABLE IF NOT EXISTS schedules (
    id         INTEGER PRIMARY KEY,
    campaign   TEXT NOT NULL,
    cron       TEXT NOT NULL,
    args       TEXT NOT NULL,
    last_fired INTEGER,
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS jobs (
    id           INTEGER PRIMARY KEY,
    campaign     TEXT NOT NULL,
    args         TEXT NOT NULL,
    reason       TEXT NOT NULL,
    state        TEXT NOT NULL,
    run_id       INTEGER,
    requested_at TEXT NOT NULL,
    finished_at  TEXT,
    error        TEXT
);
CREATE TABLE IF NOT EXISTS campaign_hooks (
    campaign TEXT PRIMARY KEY,
    webhook  TEXT NOT NULL
);
