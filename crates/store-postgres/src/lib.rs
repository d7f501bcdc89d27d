//! The store on PostgreSQL: the same tables and migration history as the
//! SQLite backend, with the engine's own tools where they matter (arrays
//! for bulk writes, row and advisory locks for merges).
//!
//! The `postgres` client blocks on a runtime of its own, which tokio does
//! not allow on a thread that is driving async tasks; calls made from such
//! a thread run on a scoped helper thread instead, so the store can be used
//! from anywhere, as the SQLite one can.

use postgres::{Client, NoTls, Row};
use std::cell::RefCell;
use std::time::Duration;
use v6scope_store_api::{Result, StoreError};

mod campaigns;
mod collectors;
mod fleet;
mod history;
mod jobs;
mod runs;
mod traffic;

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

/// Any advisory-lock key will do, as long as migrations always take the same one.
const MIGRATION_LOCK: i64 = 0x7636_7363_6f70_6501;

/// Targets per read when a run is streamed.
const CHUNK: i64 = 2000;

pub struct PostgresStore {
    /// Always some, but for the moment `drop` takes it.
    client: RefCell<Option<Client>>,
    url: String,
    /// The `hll` extension is in the database: sketches union in SQL.
    hll: bool,
}

impl PostgresStore {
    /// Connects (10 s timeout unless the URL sets `connect_timeout`) and
    /// brings the schema up to date.
    pub fn open(url: &str) -> Result<PostgresStore> {
        let mut config: postgres::Config = url
            .parse()
            .map_err(|e| StoreError::Backend(format!("store URL {}: {e}", redact(url)).into()))?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(10));
        }
        config.keepalives(true);
        if config.get_application_name().is_none() {
            config.application_name("v6scope");
        }
        let connect = move || config.connect(NoTls);
        let client = if tokio::runtime::Handle::try_current().is_ok() {
            std::thread::scope(|s| s.spawn(connect).join())
                .map_err(|_| StoreError::Backend("connecting panicked".into()))?
        } else {
            connect()
        }
        .map_err(|e| StoreError::Backend(format!("connecting to {}: {e}", redact(url)).into()))?;
        let mut store = PostgresStore {
            client: RefCell::new(Some(client)),
            url: url.to_string(),
            hll: false,
        };
        store.with(migrate)?;
        store.hll = store.with(enable_hll)?;
        Ok(store)
    }

    /// The schema version of the open store.
    pub fn schema_version(&self) -> Result<i64> {
        self.with(|c| get(&c.query_one("SELECT MAX(version) FROM schema_version", &[]).db()?, 0))
    }

    /// Runs `f` on the connection: here, or on a helper thread when this
    /// thread drives async tasks (see the module's note).
    pub(crate) fn with<T: Send>(&self, f: impl FnOnce(&mut Client) -> Result<T> + Send) -> Result<T> {
        let mut client = self.client.borrow_mut();
        let client: &mut Client = client
            .as_mut()
            .ok_or_else(|| StoreError::Backend("the connection is closed".into()))?;
        if tokio::runtime::Handle::try_current().is_ok() {
            std::thread::scope(|s| s.spawn(move || f(client)).join())
                .map_err(|_| StoreError::Backend("a store call panicked".into()))?
        } else {
            f(client)
        }
    }

    /// Streams a run's rows in chunks of target indexes, calling `each` on
    /// this thread between reads (so it may use the store itself).
    pub(crate) fn for_each_chunk<T: Send>(
        &self,
        run: i64,
        read: impl Fn(&mut Client, i64, i64) -> Result<Vec<T>> + Sync,
        each: &mut dyn FnMut(T),
    ) -> Result<()> {
        let last: Option<i64> = self.with(|c| {
            get(
                &c.query_one("SELECT MAX(idx) FROM targets WHERE run_id = $1", &[&run])
                    .db()?,
                0,
            )
        })?;
        let Some(last) = last else { return Ok(()) };
        let mut from = 0;
        while from <= last {
            let rows = self.with(|c| read(c, from, from + CHUNK))?;
            rows.into_iter().for_each(&mut *each);
            from += CHUNK;
        }
        Ok(())
    }
}

/// Closing the connection blocks too (it says goodbye to the server), so
/// it moves off a thread that drives async tasks as every call does.
impl Drop for PostgresStore {
    fn drop(&mut self) {
        if let Some(client) = self.client.get_mut().take() {
            if tokio::runtime::Handle::try_current().is_ok() {
                std::thread::scope(|s| {
                    s.spawn(move || drop(client));
                });
            } else {
                drop(client);
            }
        }
    }
}

impl v6scope_store_api::Store for PostgresStore {
    fn describe(&self) -> String {
        redact(&self.url)
    }
}

/// Whether the `hll` extension (Debian: postgresql-15-hll) is usable. It is
/// created when the role may; without it sketches are merged by the
/// program, with the same result.
fn enable_hll(client: &mut Client) -> Result<bool> {
    if let Err(e) = client.batch_execute("CREATE EXTENSION IF NOT EXISTS hll") {
        tracing::debug!("the hll extension is not available: {e}");
    }
    let row = client
        .query_one("SELECT count(*) FROM pg_extension WHERE extname = 'hll'", &[])
        .db()?;
    Ok(get::<i64>(&row, 0)? > 0)
}

fn migrate(client: &mut Client) -> Result<()> {
    let mut tx = client.transaction().db()?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .db()?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS schema_version (version BIGINT PRIMARY KEY, name TEXT NOT NULL, \
         applied_at TEXT NOT NULL)",
    )
    .db()?;
    let current: i64 = get(
        &tx.query_one("SELECT COALESCE(MAX(version), 0) FROM schema_version", &[])
            .db()?,
        0,
    )?;
    if current > SCHEMA_VERSION {
        return Err(StoreError::Conflict(format!(
            "the store's schema is version {current}, newer than this v6scope's {SCHEMA_VERSION}: upgrade v6scope"
        )));
    }
    for (version, name, sql) in MIGRATIONS.iter().filter(|m| m.0 > current) {
        tx.batch_execute(sql)
            .map_err(|e| StoreError::Backend(format!("migration {version:04} {name}: {e}").into()))?;
        tx.execute(
            "INSERT INTO schema_version (version, name, applied_at) VALUES ($1, $2, $3)",
            &[version, name, &v6scope_store_api::now_utc()],
        )
        .db()?;
    }
    tx.commit().db()
}

/// A URL with its password replaced, for messages and `describe`.
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let (authority, tail) = rest.split_at(rest.find(['/', '?']).unwrap_or(rest.len()));
    let mut out = match authority.rsplit_once('@') {
        Some((user, host)) => match user.split_once(':') {
            Some((name, _)) => format!("{scheme}://{name}:***@{host}"),
            None => format!("{scheme}://{user}@{host}"),
        },
        None => format!("{scheme}://{authority}"),
    };
    // A password may also come as a query parameter.
    let mut first = true;
    let (path, query) = tail.split_once('?').unwrap_or((tail, ""));
    out.push_str(path);
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        out.push(if first { '?' } else { '&' });
        first = false;
        match pair.split_once('=') {
            Some(("password", _)) => out.push_str("password=***"),
            _ => out.push_str(pair),
        }
    }
    out
}

/// postgres' errors as the store's: an integrity violation (class 23) is a
/// conflict, the rest is the backend's.
pub(crate) trait Db<T> {
    fn db(self) -> Result<T>;
}

impl<T> Db<T> for std::result::Result<T, postgres::Error> {
    fn db(self) -> Result<T> {
        self.map_err(|e| match e.code() {
            Some(code) if code.code().starts_with("23") => StoreError::Conflict(e.to_string()),
            _ => StoreError::backend(e),
        })
    }
}

/// A column, or a corrupt-row error (never a panic, as `Row::get` would).
pub(crate) fn get<'a, T: postgres::types::FromSql<'a>>(row: &'a Row, column: usize) -> Result<T> {
    row.try_get(column)
        .map_err(|e| StoreError::Corrupt(format!("column {column}: {e}")))
}

/// A stored enum's text.
pub(crate) fn parsed<T: std::str::FromStr<Err = String>>(row: &Row, column: usize) -> Result<T> {
    v6scope_store_api::parse_stored(get::<&str>(row, column)?)
}

pub(crate) fn parsed_opt<T: std::str::FromStr<Err = String>>(row: &Row, column: usize) -> Result<Option<T>> {
    get::<Option<&str>>(row, column)?
        .map(v6scope_store_api::parse_stored)
        .transpose()
}

/// One JSON body, if the row exists.
pub(crate) fn json_body<T: serde::de::DeserializeOwned>(row: Option<Row>) -> Result<Option<T>> {
    match row {
        Some(r) => Ok(Some(serde_json::from_str(get::<&str>(&r, 0)?)?)),
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            super::redact("postgres://v6:secret@db:5432/v6scope?sslmode=disable"),
            "postgres://v6:***@db:5432/v6scope?sslmode=disable"
        );
        assert_eq!(
            super::redact("postgres:///v6scope?host=/tmp&password=secret"),
            "postgres:///v6scope?host=/tmp&password=***"
        );
        assert_eq!(super::redact("postgres://v6@db/x"), "postgres://v6@db/x");
    }
}
