-- Carriers' collectors (`v6scope collect --push`) and the batches they
-- pushed: a batch is stored once per (collector, stream, seq).
CREATE TABLE collectors (
    id                INTEGER PRIMARY KEY,
    name              TEXT NOT NULL UNIQUE,
    operator          TEXT NOT NULL,
    -- The measurement point its exporters sit at (metro-egress, mobile-lte, …), or ''.
    point             TEXT NOT NULL DEFAULT '',
    token_hash        TEXT NOT NULL UNIQUE,
    created_at        TEXT NOT NULL,
    revoked_at        TEXT,
    last_push         INTEGER,
    last_interval_end INTEGER,
    batches           INTEGER NOT NULL DEFAULT 0,
    rows              INTEGER NOT NULL DEFAULT 0,
    duplicates        INTEGER NOT NULL DEFAULT 0,
    spool_dropped     INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE collector_batches (
    collector_id INTEGER NOT NULL,
    stream       TEXT NOT NULL,
    seq          INTEGER NOT NULL,
    received_at  INTEGER NOT NULL,
    first_start  INTEGER NOT NULL,
    last_end     INTEGER NOT NULL,
    rows         INTEGER NOT NULL,
    PRIMARY KEY (collector_id, stream, seq)
);
-- Sketches of the JSON format used before cannot be unioned with the
-- storage-spec ones: they are kept, under a kind nothing reads.
UPDATE sketches SET kind = 'legacy:' || kind WHERE substr(sketch, 1, 1) = X'7B';
-- Figures carriers report for their measurement points (the operator
-- reporting interface). A correction is a new version of the same key;
-- every version is kept.
CREATE TABLE operator_submissions (
    id           INTEGER PRIMARY KEY,
    operator     TEXT NOT NULL,
    collector    TEXT NOT NULL,
    submitted_at TEXT NOT NULL,
    format       TEXT NOT NULL,
    rows         INTEGER NOT NULL
);
CREATE TABLE operator_figures (
    operator           TEXT NOT NULL,
    point              TEXT NOT NULL,
    site               TEXT NOT NULL,
    period             TEXT NOT NULL,
    version            INTEGER NOT NULL,
    submission_id      INTEGER NOT NULL,
    unit               TEXT NOT NULL,
    ipv4_value         REAL,
    ipv6_value         REAL,
    ipv4_bytes         REAL,
    ipv6_bytes         REAL,
    active_connections INTEGER,
    ipv6_users         INTEGER,
    users              INTEGER,
    iot_connections    INTEGER,
    PRIMARY KEY (operator, point, site, period, version)
);
CREATE INDEX operator_figures_by_period ON operator_figures (period);
