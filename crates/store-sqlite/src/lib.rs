//! The embedded store: one SQLite file (WAL) holding runs, their targets,
//! the observations made and the verdicts given, the platform's history,
//! jobs and traffic.
//!
//! Results are written in transactions of whole targets, keyed by
//! (run, target index), so a run killed at any point can be resumed with
//! nothing lost and nothing duplicated.

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use std::path::{Path, PathBuf};
use v6scope_store_api::{Result, StoreError};

mod campaigns;
mod collectors;
mod fleet;
mod history;
mod jobs;
mod runs;
mod traffic;

/// The numbered migrations, in order. A store records each one it has had
/// in `schema_version`.
const MIGRATIONS: &[(i64, &str, &str)] = &[
    (1, "initial", include_str!("../migrations/0001_initial.sql")),
    (2, "campaign_size", include_str!("../migrations/0002_campaign_size.sql")),
    (3, "score_order", include_str!("../migrations/0003_score_order.sql")),
    (4, "change_order", include_str!("../migrations/0004_change_order.sql")),
    (5, "fleet", include_str!("../migrations/0005_fleet.sql")),
    (
        6,
        "vantage_verdicts",
        include_str!("../migrations/0006_vantage_verdicts.sql"),
    ),
    (7, "edges", include_str!("../migrations/0007_edges.sql")),
    (8, "collectors", include_str!("../migrations/0008_collectors.sql")),
];

/// The schema version this build writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS[MIGRATIONS.len() - 1].0;

pub struct SqliteStore {
    conn: Connection,
    path: PathBuf,
}

impl SqliteStore {
    /// Opens (creating if needed) the store at `path` and brings its schema
    /// up to date.
    pub fn open(path: impl AsRef<Path>) -> Result<SqliteStore> {
        let path = path.as_ref().to_path_buf();
        let mut conn = Connection::open(&path).db()?;
        conn.pragma_update(None, "journal_mode", "WAL").db()?;
        conn.pragma_update(None, "synchronous", "NORMAL").db()?;
        conn.busy_timeout(std::time::Duration::from_secs(10)).db()?;
        migrate(&mut conn)?;
        Ok(SqliteStore { conn, path })
    }

    /// The schema version of the open store.
    pub fn schema_version(&self) -> Result<i64> {
        self.conn
            .query_row("SELECT MAX(version) FROM schema_version", [], |r| r.get(0))
            .db()
    }
}

impl v6scope_store_api::Store for SqliteStore {
    fn describe(&self) -> String {
        format!("sqlite:{}", self.path.display())
    }
}

/// Applies the migrations the store has not had, in one immediate
/// transaction, so two processes opening a new store at once do not both
/// apply them.
fn migrate(conn: &mut Connection) -> Result<()> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).db()?;
    let versioned: bool = tx
        .prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'")
        .db()?
        .exists([])
        .db()?;
    let mut current = 0;
    if versioned {
        current = tx
            .query_row("SELECT COALESCE(MAX(version), 0) FROM schema_version", [], |r| r.get(0))
            .db()?;
    } else {
        tx.execute_batch(
            "CREATE TABLE schema_version (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)",
        )
        .db()?;
        // A store from before numbered migrations has the initial schema,
        // and the campaign size if it is recent enough.
        let has = |sql: &str| -> Result<bool> { tx.prepare(sql).db()?.exists([]).db() };
        if has("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'runs'")? {
            current = 1;
            if has("SELECT 1 FROM pragma_table_info('campaigns') WHERE name = 'targets'")? {
                current = 2;
            }
            for (version, name, _) in MIGRATIONS.iter().filter(|m| m.0 <= current) {
                tx.execute(
                    "INSERT INTO schema_version (version, name, applied_at) VALUES (?1, ?2, ?3)",
                    params![version, name, v6scope_store_api::now_utc()],
                )
                .db()?;
            }
        }
    }
    if current > SCHEMA_VERSION {
        return Err(StoreError::Conflict(format!(
            "the store's schema is version {current}, newer than this v6scope's {SCHEMA_VERSION}: upgrade v6scope"
        )));
    }
    for (version, name, sql) in MIGRATIONS.iter().filter(|m| m.0 > current) {
        tx.execute_batch(sql)
            .map_err(|e| StoreError::Backend(format!("migration {version:04} {name}: {e}").into()))?;
        tx.execute(
            "INSERT INTO schema_version (version, name, applied_at) VALUES (?1, ?2, ?3)",
            params![version, name, v6scope_store_api::now_utc()],
        )
        .db()?;
    }
    tx.commit().db()
}

/// rusqlite's errors as the store's: a broken constraint is a conflict, a
/// value that does not convert is a corrupt row, the rest is the backend's.
pub(crate) trait Db<T> {
    fn db(self) -> Result<T>;
}

impl<T> Db<T> for rusqlite::Result<T> {
    fn db(self) -> Result<T> {
        self.map_err(|e| match &e {
            rusqlite::Error::SqliteFailure(f, _) if f.code == rusqlite::ErrorCode::ConstraintViolation => {
                StoreError::Conflict(e.to_string())
            }
            rusqlite::Error::FromSqlConversionFailure(..) | rusqlite::Error::InvalidColumnType(..) => {
                StoreError::Corrupt(e.to_string())
            }
            _ => StoreError::backend(e),
        })
    }
}

/// A stored enum's text as a column value (for `query_map` closures).
pub(crate) fn parsed<T: std::str::FromStr<Err = String>>(
    row: &rusqlite::Row<'_>,
    column: usize,
) -> rusqlite::Result<T> {
    let text: String = row.get(column)?;
    text.parse()
        .map_err(|e: String| rusqlite::Error::FromSqlConversionFailure(column, rusqlite::types::Type::Text, e.into()))
}

/// A nullable stored enum's text as a column value.
pub(crate) fn parsed_opt<T: std::str::FromStr<Err = String>>(
    row: &rusqlite::Row<'_>,
    column: usize,
) -> rusqlite::Result<Option<T>> {
    let text: Option<String> = row.get(column)?;
    text.map(|t| {
        t.parse().map_err(|e: String| {
            rusqlite::Error::FromSqlConversionFailure(column, rusqlite::types::Type::Text, e.into())
        })
    })
    .transpose()
}

pub(crate) fn collect<T>(rows: impl Iterator<Item = rusqlite::Result<T>>) -> Result<Vec<T>> {
    rows.collect::<rusqlite::Result<_>>().db()
}

/// One JSON body, if the row exists.
pub(crate) fn json_body<T: serde::de::DeserializeOwned>(
    conn: &Connection,
    sql: &str,
    p: impl rusqlite::Params,
) -> Result<Option<T>> {
    let body: Option<String> = conn.query_row(sql, p, |r| r.get(0)).optional().db()?;
    Ok(match body {
        Some(b) => Some(serde_json::from_str(&b)?),
        None => None,
    })
}
