//! What v6scope keeps, behind traits by entity (see `v6scope-store-api`),
//! and [`open`], which picks the backend from a location: one SQLite file
//! for a single box, PostgreSQL for a fleet.

pub use v6scope_store_api::*;
pub use v6scope_store_clickhouse::ClickHouseTraffic;
pub use v6scope_store_postgres::PostgresStore;
pub use v6scope_store_sqlite::SqliteStore;

use std::path::PathBuf;

/// Where a store is: `sqlite:PATH` (or a bare path) or `postgres://…`.
#[derive(Clone, PartialEq, Eq)]
pub enum Location {
    Sqlite(PathBuf),
    /// A libpq-style URL (`postgres://user@host/db`, `postgres:///db?host=/run/sock`).
    Postgres(String),
}

impl Location {
    /// The location in full (a PostgreSQL password included), for handing
    /// to a child process through its environment, never for display.
    pub fn to_url(&self) -> String {
        match self {
            Location::Sqlite(p) => format!("sqlite:{}", p.display()),
            Location::Postgres(url) => url.clone(),
        }
    }

    /// The SQLite file, if the store is one.
    pub fn sqlite_path(&self) -> Option<&std::path::Path> {
        match self {
            Location::Sqlite(p) => Some(p),
            Location::Postgres(_) => None,
        }
    }
}

impl std::str::FromStr for Location {
    type Err = String;
    fn from_str(text: &str) -> std::result::Result<Self, String> {
        if text.starts_with("postgres://") || text.starts_with("postgresql://") {
            return Ok(Location::Postgres(text.to_string()));
        }
        if let Some((scheme, _)) = text.split_once("://") {
            return Err(format!(
                "store '{scheme}://…' is not supported: use sqlite:PATH or postgres://…"
            ));
        }
        let path = text.strip_prefix("sqlite:").unwrap_or(text);
        if path.is_empty() {
            return Err("store 'sqlite:' needs a file path".into());
        }
        Ok(Location::Sqlite(PathBuf::from(path)))
    }
}

/// The location as a user may see it: a PostgreSQL password is hidden.
impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Location::Sqlite(p) => write!(f, "sqlite:{}", p.display()),
            Location::Postgres(url) => f.write_str(&v6scope_store_postgres::redact(url)),
        }
    }
}

impl std::fmt::Debug for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

/// Opens the store at `location`, creating it or bringing its schema up to
/// date.
pub fn open(location: &Location) -> Result<Box<dyn Store>> {
    Ok(match location {
        Location::Sqlite(path) => Box::new(SqliteStore::open(path)?),
        Location::Postgres(url) => Box::new(PostgresStore::open(url)?),
    })
}

/// A PostgreSQL database of its own for each test, on the server named by
/// `V6SCOPE_TEST_POSTGRES`, dropped with the value. Tests never skip when
/// that server is missing: they fail and say how to start one.
pub mod testing {
    use super::Location;
    use std::sync::atomic::{AtomicUsize, Ordering};

    pub struct ScratchPostgres {
        admin: String,
        name: String,
        pub location: Location,
    }

    impl ScratchPostgres {
        /// Creates the database; panics (with what to do) if there is no server.
        pub fn create() -> ScratchPostgres {
            static N: AtomicUsize = AtomicUsize::new(0);
            let admin = std::env::var("V6SCOPE_TEST_POSTGRES").unwrap_or_else(|_| {
                panic!(
                    "V6SCOPE_TEST_POSTGRES is not set: the PostgreSQL tests need a server where they may create \
                     databases. Start a throw-away one with `lab/postgres start` and export the URL it prints:\n  \
                     export V6SCOPE_TEST_POSTGRES=$(lab/postgres start)"
                )
            });
            let name = format!("v6test_{}_{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed));
            let mut client = postgres::Client::connect(&admin, postgres::NoTls).unwrap_or_else(|e| {
                panic!("connecting to V6SCOPE_TEST_POSTGRES ({admin}): {e}; is `lab/postgres start` running?")
            });
            client.batch_execute(&format!("CREATE DATABASE {name}")).unwrap();
            let separator = if admin.contains('?') { '&' } else { '?' };
            let location = Location::Postgres(format!("{admin}{separator}dbname={name}"));
            ScratchPostgres { admin, name, location }
        }
    }

    impl Drop for ScratchPostgres {
        fn drop(&mut self) {
            if let Ok(mut c) = postgres::Client::connect(&self.admin, postgres::NoTls) {
                let _ = c.batch_execute(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_parse_and_hide_passwords() {
        let l: Location = "sqlite:/tmp/a.db".parse().unwrap();
        assert_eq!(l, Location::Sqlite("/tmp/a.db".into()));
        let l: Location = "v6scope.db".parse().unwrap();
        assert_eq!(l.sqlite_path(), Some(std::path::Path::new("v6scope.db")));
        let l: Location = "postgres://v6:secret@db.example/v6scope".parse().unwrap();
        assert!(!l.to_string().contains("secret"), "{l}");
        assert!("mysql://x/y".parse::<Location>().is_err());
        assert!("sqlite:".parse::<Location>().is_err());
    }
}
