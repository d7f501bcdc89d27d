//! Errors every backend reports the same way, so callers (the server's
//! status codes, the CLI's exit codes) never match on a backend's own types.

/// What went wrong in a store, whichever backend holds it.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The named thing (`run 5`, `job 7`) is not in this store.
    #[error("{0} does not exist in this store")]
    NotFound(String),
    /// The write contradicts what is stored (a key already taken).
    #[error("store conflict: {0}")]
    Conflict(String),
    /// A stored value does not decode (a corrupt row, a foreign schema).
    #[error("store: stored data does not decode: {0}")]
    Corrupt(String),
    /// The backend itself failed: I/O, connection, SQL.
    #[error("store: {0}")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl StoreError {
    pub fn no_such_run(run: i64) -> StoreError {
        StoreError::NotFound(format!("run {run}"))
    }

    pub fn no_such_job(job: i64) -> StoreError {
        StoreError::NotFound(format!("job {job}"))
    }

    /// Wraps a backend's own error.
    pub fn backend(e: impl std::error::Error + Send + Sync + 'static) -> StoreError {
        StoreError::Backend(Box::new(e))
    }
}

impl From<serde_json::Error> for StoreError {
    fn from(e: serde_json::Error) -> Self {
        StoreError::Corrupt(e.to_string())
    }
}

pub type Result<T> = std::result::Result<T, StoreError>;
