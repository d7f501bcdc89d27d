//! Stores written by earlier versions (before migrations were numbered)
//! get the same migration history as new ones.

use v6scope_store_api::StoreError;
use v6scope_store_api::prelude::*;
use v6scope_store_sqlite::{SCHEMA_VERSION, SqliteStore};

const INITIAL: &str = include_str!("../migrations/0001_initial.sql");

fn old_store(path: &std::path::Path, with_campaign_size: bool) {
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.execute_batch(INITIAL).unwrap();
    if with_campaign_size {
        conn.execute_batch("ALTER TABLE campaigns ADD COLUMN targets INTEGER NOT NULL DEFAULT 0")
            .unwrap();
    }
    conn.execute_batch(
        "INSERT INTO campaigns (name, created_at) VALUES ('gov', '2026-01-01T00:00:00Z');
         INSERT INTO campaign_targets (campaign, idx, domain) VALUES ('gov', 0, 'a.test'), ('gov', 1, 'b.test');
         INSERT INTO runs (started_at, source, profiles, config) VALUES ('2026-01-01T00:00:00Z', 'campaign:gov', 'cn', '{}');",
    )
    .unwrap();
}

#[test]
fn a_store_from_before_numbered_migrations_is_brought_up_to_date() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.db");
    old_store(&path, false);
    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(store.schema_version().unwrap(), SCHEMA_VERSION);
    // Migration 2 counted the campaign's targets; the data is all there.
    let campaigns = store.campaigns().unwrap();
    assert_eq!((campaigns[0].name.as_str(), campaigns[0].targets), ("gov", 2));
    assert_eq!(store.run(1).unwrap().source, "campaign:gov");
    drop(store);
    // Opening again applies nothing twice.
    assert_eq!(
        SqliteStore::open(&path).unwrap().schema_version().unwrap(),
        SCHEMA_VERSION
    );
}

#[test]
fn a_store_that_had_the_campaign_size_skips_that_migration() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.db");
    old_store(&path, true);
    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(store.schema_version().unwrap(), SCHEMA_VERSION);
    let conn = rusqlite::Connection::open(&path).unwrap();
    let versions: Vec<i64> = conn
        .prepare("SELECT version FROM schema_version ORDER BY version")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(versions, (1..=SCHEMA_VERSION).collect::<Vec<_>>());
}

#[test]
fn a_store_from_a_newer_version_is_refused_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("new.db");
    drop(SqliteStore::open(&path).unwrap());
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute(
        "INSERT INTO schema_version (version, name, applied_at) VALUES (?1, 'future', 'x')",
        [SCHEMA_VERSION + 1],
    )
    .unwrap();
    match SqliteStore::open(&path) {
        Err(StoreError::Conflict(message)) => assert!(message.contains("upgrade v6scope"), "{message}"),
        Err(e) => panic!("unexpected error {e}"),
        Ok(_) => panic!("a newer store was opened"),
    }
}

#[test]
fn per_vantage_statuses_of_a_version_5_store_are_filled_in() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v5.db");
    drop(SqliteStore::open(&path).unwrap());
    // Back to version 5 with one per-vantage result, as that version wrote it.
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch(
        "DROP TABLE vantage_verdicts; DROP TABLE edge_sightings; DROP TABLE collectors; DROP TABLE collector_batches; DROP TABLE operator_submissions; DROP TABLE operator_figures;
         DELETE FROM schema_version WHERE version > 5;
         INSERT INTO runs (started_at, source, profiles, config) VALUES ('2026-01-01T00:00:00Z', 'campaign:gov', 'cn,nist', '{}');
         INSERT INTO targets (run_id, idx, domain) VALUES (1, 0, 'a.test');
         INSERT INTO vantage_results (run_id, vantage, idx, agent_id, received_at, observation, verdicts)
         VALUES (1, 'isp-b', 0, 1, '2026-01-01T00:00:00Z', '{}',
                 '[{\"profile\":\"cn\",\"status\":\"fail\",\"score\":40.0},{\"profile\":\"nist\",\"status\":\"pass\",\"score\":100.0}]');",
    )
    .unwrap();
    drop(conn);
    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(store.schema_version().unwrap(), SCHEMA_VERSION);
    let brief = |profile: &str| -> Vec<(String, String, i64)> {
        store
            .vantage_tallies(1, profile)
            .unwrap()
            .into_iter()
            .map(|t| (t.vantage, t.status.as_str().to_string(), t.targets))
            .collect()
    };
    assert_eq!(brief("cn"), [("isp-b".to_string(), "fail".to_string(), 1)]);
    assert_eq!(brief("nist"), [("isp-b".to_string(), "pass".to_string(), 1)]);
}

#[test]
fn sketches_of_the_old_format_are_kept_apart_by_migration_8() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v7.db");
    drop(SqliteStore::open(&path).unwrap());
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch(
        "DROP TABLE collectors; DROP TABLE collector_batches; DROP TABLE operator_submissions; DROP TABLE operator_figures; DELETE FROM schema_version WHERE version > 7;
         INSERT INTO sketches (day, organisation, kind, sketch) VALUES ('2026-01-01', 'A', 'subscribers', CAST('{\"p\":14}' AS BLOB));
         INSERT INTO sketches (day, organisation, kind, sketch) VALUES ('2026-01-01', 'B', 'subscribers', X'114E7F');",
    )
    .unwrap();
    drop(conn);
    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(store.schema_version().unwrap(), SCHEMA_VERSION);
    let organisations = |kind: &str| -> Vec<String> {
        store
            .sketches("2026-01-01", "2026-01-01", kind)
            .unwrap()
            .into_iter()
            .map(|r| r.organisation)
            .collect()
    };
    assert_eq!(organisations("subscribers"), ["B"]);
    assert_eq!(organisations("legacy:subscribers"), ["A"]);
}
