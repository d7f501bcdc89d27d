/// Why a scan could not start or go on.
#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    /// Bad settings: the user can fix them (exit code 2 at the CLI).
    #[error("{0}")]
    Settings(String),
    #[error(transparent)]
    Sink(#[from] SinkError),
}

/// Why a sink could not take a result.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    #[error(transparent)]
    Store(#[from] v6scope_store::StoreError),
    #[error("the store writer stopped: {0}")]
    Writer(String),
    #[error("{0}")]
    Remote(String),
    #[error("writing output: {0}")]
    Io(#[from] std::io::Error),
}
