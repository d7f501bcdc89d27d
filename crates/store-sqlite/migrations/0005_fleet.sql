-- Agents and the per-vantage results of fleet runs.
CREATE TABLE agents (
    id           INTEGER PRIMARY KEY,
    name         TEXT NOT NULL UNIQUE,
    token_hash   TEXT NOT NULL UNIQUE,
    created_at   TEXT NOT NULL,
    revoked_at   TEXT,
    vantage      TEXT,
    labels       TEXT NOT NULL DEFAULT '{}',
    concurrency  INTEGER NOT NULL DEFAULT 0,
    version      TEXT,
    selftest     TEXT,
    last_seen    INTEGER,
    results      INTEGER NOT NULL DEFAULT 0,
    errors       INTEGER NOT NULL DEFAULT 0
);
-- The vantages a fleet run is evaluated from, and how far targets have
-- been handed out (every index below next_idx is leased or delivered).
CREATE TABLE run_vantages (
    run_id   INTEGER NOT NULL,
    vantage  TEXT NOT NULL,
    next_idx INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (run_id, vantage)
);
CREATE TABLE leases (
    run_id     INTEGER NOT NULL,
    vantage    TEXT NOT NULL,
    idx        INTEGER NOT NULL,
    agent_id   INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    PRIMARY KEY (run_id, vantage, idx)
);
CREATE INDEX leases_by_agent ON leases (agent_id, expires_at);
CREATE INDEX leases_by_expiry ON leases (run_id, vantage, expires_at);
CREATE TABLE vantage_results (
    run_id      INTEGER NOT NULL,
    vantage     TEXT NOT NULL,
    idx         INTEGER NOT NULL,
    agent_id    INTEGER NOT NULL,
    received_at TEXT NOT NULL,
    observation TEXT NOT NULL,
    verdicts    TEXT NOT NULL,
    PRIMARY KEY (run_id, vantage, idx)
);
CREATE INDEX vantage_results_by_target ON vantage_results (run_id, idx);
-- Targets every vantage has delivered, waiting to be combined.
CREATE TABLE fleet_ready (
    run_id INTEGER NOT NULL,
    idx    INTEGER NOT NULL,
    PRIMARY KEY (run_id, idx)
);
