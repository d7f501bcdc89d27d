//! The store behind traits: what v6scope keeps (runs, campaigns, history,
//! jobs, traffic), the rows it exchanges and errors that do not depend on
//! the backend. Backends live in their own crates (`v6scope-store-sqlite`,
//! `v6scope-store-postgres`); `v6scope_store::open` picks one by URL.

mod error;
mod rows;
mod traits;

pub use error::{Result, StoreError};
pub use rows::*;
pub use traits::{
    BatchMerge, Campaigns, Collectors, Fleet, History, Jobs, Runs, SketchMerge, Store, Traffic, TrafficCounters,
};

/// The traits, for `use v6scope_store::prelude::*`: calling a store's
/// methods needs them in scope.
pub mod prelude {
    pub use crate::traits::{Campaigns, Collectors, Fleet, History, Jobs, Runs, Store, Traffic, TrafficCounters};
}

/// The program's clock as stored ("YYYY-MM-DDTHH:MM:SSZ"). Backends stamp
/// rows with it rather than with the database's own clock, so every
/// backend writes the same text and a store on another host does not
/// bring its clock's skew.
pub fn now_utc() -> String {
    chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// The program's clock as Unix seconds (leases and heartbeats are kept in them).
pub fn now_unix() -> i64 {
    chrono::Utc::now().timestamp()
}

/// A run's profiles as stored: one comma-separated column.
pub fn join_profiles(profiles: &[String]) -> String {
    profiles.join(",")
}

/// The profiles of a stored comma-separated column.
pub fn split_profiles(column: &str) -> Vec<String> {
    column
        .split(',')
        .filter(|p| !p.is_empty())
        .map(str::to_string)
        .collect()
}

/// Parses a stored enum's text, or reports the row corrupt.
pub fn parse_stored<T: std::str::FromStr<Err = String>>(text: &str) -> Result<T> {
    text.parse().map_err(StoreError::Corrupt)
}
