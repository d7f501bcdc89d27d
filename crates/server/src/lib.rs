//! `v6scope serve`: the dashboard (HTML pages in English and Simplified
//! Chinese), the JSON API described by `/api/openapi.json`, Prometheus
//! metrics, and the scheduler that runs campaigns on their schedules.
//!
//! Scans run as child processes of the same binary (`v6scope scan
//! --campaign C --job N`), one at a time: a crash of a scan cannot take the
//! server down, and a run interrupted by a restart is resumed from the store
//! (`scan --resume`), where results are written target by target in
//! transactions.

mod api;
mod i18n;
mod pages;
mod scheduler;
mod svg;
pub mod synth;

use axum::Router;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use v6scope_store::Store;

pub use i18n::Lang;

/// The `[serve]` table of the configuration file, with flags applied on top.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Addresses to listen on (each its own socket).
    pub listen: Vec<SocketAddr>,
    /// Bearer token that writes (imports, runs, schedules) require. Without
    /// one, the server is read-only.
    pub token: Option<String>,
    /// A file holding the token (first line), instead of `token`.
    pub token_file: Option<PathBuf>,
    /// Language of pages without `?lang=`.
    pub lang: Lang,
    /// Plan the overview judges indicators against.
    pub plan: String,
    /// Profile whose "pass" counts as support on the pages.
    pub profile: String,
    /// Seconds between scheduler checks.
    pub tick_seconds: u64,
    /// Let scans reach private and special-purpose addresses (off: the
    /// server must not become a way to probe internal networks).
    pub allow_special_targets: bool,
    /// Special-purpose prefixes scans may reach all the same (a lab, an
    /// operator's own documentation prefixes).
    pub allow_targets: Vec<ipnet::IpNet>,
    /// Arguments added to every scan the server starts (probe settings).
    pub scan_args: Vec<String>,
    /// Provider signatures for attribution (default: the shipped set).
    pub providers: Option<PathBuf>,
    /// Largest campaign accepted through the API.
    pub max_campaign_targets: usize,
    /// Largest request body in bytes.
    pub max_body_bytes: usize,
    /// Seconds a webhook delivery may take.
    pub webhook_timeout_seconds: u64,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: vec![SocketAddr::from(([127, 0, 0, 1], 8080))],
            token: None,
            token_file: None,
            lang: Lang::En,
            plan: "cn-2017-action-plan".into(),
            profile: "internetnl".into(),
            tick_seconds: 30,
            allow_special_targets: false,
            allow_targets: Vec::new(),
            scan_args: Vec::new(),
            providers: None,
            max_campaign_targets: 2_000_000,
            max_body_bytes: 64 << 20,
            webhook_timeout_seconds: 10,
        }
    }
}

/// How the server starts scans: the program and the arguments that come
/// before the subcommand (e.g. `--config FILE`).
#[derive(Debug, Clone)]
pub struct Scanner {
    pub program: PathBuf,
    pub leading_args: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("listening on {addr}: {source}")]
    Listen { addr: SocketAddr, source: std::io::Error },
    #[error("reading the token file {path}: {source}")]
    TokenFile { path: PathBuf, source: std::io::Error },
    #[error("the token must be at least 16 characters")]
    WeakToken,
    #[error(transparent)]
    Store(#[from] v6scope_store::StoreError),
    #[error("plan: {0}")]
    Plan(String),
    #[error("providers: {0}")]
    Providers(String),
    #[error("serving: {0}")]
    Io(#[from] std::io::Error),
}

/// Shared by every handler and the scheduler.
pub(crate) struct AppState {
    pub config: ServerConfig,
    pub db: PathBuf,
    pub token: Option<String>,
    pub scanner: Scanner,
    readers: Mutex<Vec<Store>>,
    /// (targets, observations, error verdicts) of finished runs, which do
    /// not change: counting them again on every scrape cost seconds.
    pub run_counts: Mutex<std::collections::HashMap<i64, (i64, i64, i64)>>,
    pub metrics: scheduler::Metrics,
    pub wake: tokio::sync::Notify,
}

pub(crate) type SharedState = Arc<AppState>;

impl AppState {
    /// Runs `f` with a store connection on a blocking thread. Connections
    /// are kept for reuse; SQLite in WAL mode lets readers and the writing
    /// scan proceed together.
    pub async fn store<T: Send + 'static>(
        self: &Arc<Self>,
        f: impl FnOnce(&mut Store) -> Result<T, ApiError> + Send + 'static,
    ) -> Result<T, ApiError> {
        let state = self.clone();
        tokio::task::spawn_blocking(move || {
            let taken = state.readers.lock().map(|mut v| v.pop()).unwrap_or(None);
            let mut store = match taken {
                Some(s) => s,
                None => Store::open(&state.db).map_err(ApiError::from)?,
            };
            let out = f(&mut store);
            if let Ok(mut pool) = state.readers.lock()
                && pool.len() < 8
            {
                pool.push(store);
            }
            out
        })
        .await
        .map_err(|e| ApiError::Internal(format!("worker: {e}")))?
    }
}

impl AppState {
    /// A run's counts, from the cache when the run is finished.
    pub fn run_counts(&self, store: &Store, run: i64, finished: bool) -> Result<(i64, i64, i64), ApiError> {
        if finished && let Some(c) = self.run_counts.lock().ok().and_then(|m| m.get(&run).copied()) {
            return Ok(c);
        }
        let counts = store.run_counts(run)?;
        if finished && let Ok(mut m) = self.run_counts.lock() {
            m.insert(run, counts);
        }
        Ok(counts)
    }
}

/// An error answered to a client: JSON for the API, HTML for pages.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("this needs a bearer token (Authorization: Bearer ...)")]
    Unauthorized,
    #[error("writes are disabled: the server has no token configured ([serve] token)")]
    ReadOnly,
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Unprocessable(String),
    #[error("{0}")]
    Internal(String),
}

impl From<v6scope_store::StoreError> for ApiError {
    fn from(e: v6scope_store::StoreError) -> Self {
        match e {
            v6scope_store::StoreError::NoSuchRun(_) | v6scope_store::StoreError::NoSuchJob(_) => {
                ApiError::NotFound(e.to_string())
            }
            other => ApiError::Internal(other.to_string()),
        }
    }
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::ReadOnly => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let ApiError::Internal(e) = &self {
            tracing::error!("{e}");
        }
        let mut response = (
            self.status(),
            axum::Json(serde_json::json!({"error": self.to_string()})),
        )
            .into_response();
        if matches!(self, ApiError::Unauthorized) {
            response.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer"),
            );
        }
        response
    }
}

/// Builds the state, resumes interrupted work, and serves until Ctrl-C or
/// SIGTERM.
pub async fn serve(config: ServerConfig, db: PathBuf, scanner: Scanner) -> Result<(), ServeError> {
    let token = match (&config.token, &config.token_file) {
        (_, Some(path)) => Some(
            std::fs::read_to_string(path)
                .map_err(|source| ServeError::TokenFile {
                    path: path.clone(),
                    source,
                })?
                .lines()
                .next()
                .unwrap_or_default()
                .trim()
                .to_string(),
        ),
        (Some(t), None) => Some(t.clone()),
        (None, None) => None,
    };
    if token.as_ref().is_some_and(|t| t.len() < 16) {
        return Err(ServeError::WeakToken);
    }
    v6scope_report::plan::Plan::load(&config.plan).map_err(|e| ServeError::Plan(e.to_string()))?;
    // Scans load the file themselves; a bad one should stop the server now.
    if let Some(path) = &config.providers {
        v6scope_assess::providers::Providers::load(path).map_err(|e| ServeError::Providers(e.to_string()))?;
    }
    // Webhooks may be https: rustls with ring, as the probes use.
    let _ = rustls::crypto::ring::default_provider().install_default();
    // Opening once creates the schema before any reader needs it.
    let store = Store::open(&db)?;
    let mut listeners = Vec::new();
    for addr in &config.listen {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|source| ServeError::Listen { addr: *addr, source })?;
        tracing::info!("listening on http://{}", listener.local_addr()?);
        eprintln!("v6scope serve: http://{}", listener.local_addr()?);
        listeners.push(listener);
    }
    let state = Arc::new(AppState {
        config,
        db,
        token,
        scanner,
        readers: Mutex::new(vec![store]),
        run_counts: Mutex::new(Default::default()),
        metrics: scheduler::Metrics::new(),
        wake: tokio::sync::Notify::new(),
    });
    let app = router(state.clone());
    let shutdown = shutdown_signal();
    tokio::pin!(shutdown);
    let mut tasks = tokio::task::JoinSet::new();
    tasks.spawn(scheduler::run_scheduler(state.clone()));
    tasks.spawn(scheduler::run_jobs(state.clone()));
    for listener in listeners {
        tasks.spawn(accept_loop(listener, app.clone()));
    }
    (&mut shutdown).await;
    eprintln!("v6scope serve: stopping (a running scan is resumed at the next start)");
    tasks.shutdown().await;
    Ok(())
}

/// Serves one listener. Unlike `axum::serve`, every connection has a
/// header-read timeout, so a client that sends its headers a byte at a time
/// (slowloris) is cut off; handlers and bodies are bounded by the router's
/// request timeout.
async fn accept_loop(listener: tokio::net::TcpListener, app: Router) {
    use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
    use hyper_util::service::TowerToHyperService;
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                // Out of file descriptors and the like: wait, do not spin.
                tracing::warn!("accept: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
        };
        let service = TowerToHyperService::new(app.clone());
        tokio::spawn(async move {
            let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
            builder
                .http1()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_READ_TIMEOUT);
            if let Err(e) = builder.serve_connection(TokioIo::new(stream), service).await {
                tracing::debug!("connection: {e}");
            }
        });
    }
}

const HEADER_READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);
const REQUEST_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(120);

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => {
            let _ = ctrl_c.await;
            return;
        }
    };
    tokio::select! {
        _ = ctrl_c => {},
        _ = term.recv() => {},
    }
}

fn router(state: SharedState) -> Router {
    let limit = state.config.max_body_bytes;
    Router::new()
        .merge(pages::routes())
        .merge(api::routes())
        .layer(axum::extract::DefaultBodyLimit::max(limit))
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            axum::http::StatusCode::REQUEST_TIMEOUT,
            REQUEST_TIMEOUT,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            scheduler::count_requests,
        ))
        .with_state(state)
}
