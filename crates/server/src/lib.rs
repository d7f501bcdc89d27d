//! `v6scope serve`: the dashboard (HTML pages in English and Simplified
//! Chinese), the JSON API described by `/api/openapi.json`, Prometheus
//! metrics, and the scheduler that runs campaigns on their schedules.
//!
//! Scans run as child processes of the same binary (`v6scope scan
//! --campaign C --job N`), one at a time: a crash of a scan cannot take the
//! server down, and a run interrupted by a restart is resumed from the store
//! (`scan --resume`), where results are written target by target in
//! transactions.

mod agents;
mod api;
mod beacon;
mod collectors;
mod guard;
mod i18n;
mod operators;
mod pages;
mod scheduler;
mod svg;
pub mod synth;
mod webhook;

use axum::Router;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use v6scope_store::Store;

pub use agents::{new_collector_token, new_token, token_hash};
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
    /// Plan the overview judges indicators against (a name from the shipped
    /// plans or `plan_files`).
    pub plan: String,
    /// The operator's own plan files, offered by their `name` beside the
    /// shipped plans. Requests choose plans by name only.
    pub plan_files: Vec<PathBuf>,
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
    /// Cloud products and their endpoints, for scans from agents.
    pub cloud_products: Option<PathBuf>,
    /// Largest campaign accepted through the API.
    pub max_campaign_targets: usize,
    /// Largest request body in bytes.
    pub max_body_bytes: usize,
    /// Traffic counters in ClickHouse (`clickhouse://HOST:PORT/DB`) instead
    /// of the store.
    pub traffic_store: Option<String>,
    /// Seconds a webhook delivery may take.
    pub webhook_timeout_seconds: u64,
    /// Special-purpose prefixes (loopback, private, link-local, ...) that
    /// webhook URLs may reach all the same; by default none may.
    pub webhook_allow: Vec<ipnet::IpNet>,
    /// Host names the server answers to besides IP literals and
    /// `localhost` (the `Host` header is checked against DNS rebinding).
    pub allowed_hosts: Vec<String>,
    /// Open connections at most, and from one client address at most.
    pub max_connections: usize,
    pub max_connections_per_ip: usize,
    /// Largest page form body (the forms carry their token in the body, so
    /// it is read before the caller is known); a few are read at a time.
    pub max_form_bytes: usize,
    /// Seconds a connection may take to send a request's headers (and a
    /// new connection its first byte).
    pub header_timeout_seconds: u64,
    /// Seconds a target stays leased to an agent that stops heartbeating;
    /// then another agent of the vantage takes it.
    pub agent_lease_seconds: u64,
    /// Seconds between an agent's heartbeats (each extends its leases).
    pub agent_heartbeat_seconds: u64,
    /// Targets per claim and results per delivery at most.
    pub agent_max_batch: usize,
    /// The client beacon's wildcard zone (`{test}.{kind}.ZONE`); off when unset.
    pub beacon_zone: Option<String>,
    /// The scheme and port the beacon's names are fetched with.
    pub beacon_scheme: String,
    pub beacon_port: Option<u16>,
    /// A beacon fetch that succeeds in less is ok, else slow; that fails
    /// in less is bad, else a timeout.
    pub beacon_slow_ms: u64,
    /// The script gives up on a fetch after this long.
    pub beacon_timeout_ms: u64,
    /// The prefix table (as `collect --prefixes`) that gives beacon clients
    /// their organisation and region.
    pub beacon_prefixes: Option<PathBuf>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: vec![SocketAddr::from(([127, 0, 0, 1], 8080))],
            token: None,
            token_file: None,
            lang: Lang::En,
            plan: "cn-2017-action-plan".into(),
            plan_files: Vec::new(),
            profile: "internetnl".into(),
            tick_seconds: 30,
            allow_special_targets: false,
            allow_targets: Vec::new(),
            scan_args: Vec::new(),
            providers: None,
            cloud_products: None,
            max_campaign_targets: 2_000_000,
            max_body_bytes: 64 << 20,
            traffic_store: None,
            webhook_timeout_seconds: 10,
            webhook_allow: Vec::new(),
            allowed_hosts: Vec::new(),
            max_connections: 1024,
            max_connections_per_ip: 64,
            max_form_bytes: 8 << 20,
            header_timeout_seconds: 10,
            agent_lease_seconds: 60,
            agent_heartbeat_seconds: 10,
            agent_max_batch: 500,
            beacon_zone: None,
            beacon_scheme: "http".into(),
            beacon_port: None,
            beacon_slow_ms: 5000,
            beacon_timeout_ms: 15000,
            beacon_prefixes: None,
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
    #[error(transparent)]
    Beacon(#[from] beacon::BeaconError),
    #[error("serving: {0}")]
    Io(#[from] std::io::Error),
}

/// Shared by every handler and the scheduler.
pub(crate) struct AppState {
    pub config: ServerConfig,
    /// Where the store is; scans the server starts get it too.
    pub location: v6scope_store::Location,
    pub token: Option<String>,
    pub scanner: Scanner,
    /// The plans requests may name, loaded at start.
    pub plans: v6scope_report::plan::PlanSet,
    readers: Mutex<Vec<Box<dyn Store>>>,
    /// (targets, observations, error verdicts) of finished runs, which do
    /// not change: counting them again on every scrape cost seconds.
    pub run_counts: Mutex<std::collections::HashMap<i64, v6scope_store::RunCounts>>,
    pub metrics: scheduler::Metrics,
    pub wake: tokio::sync::Notify,
    /// Form bodies being read at once (see `max_form_bytes`).
    pub form_slots: Arc<tokio::sync::Semaphore>,
    /// Fleet runs' agent configuration and profiles, loaded once each.
    pub fleet_runs: Mutex<std::collections::HashMap<i64, Arc<agents::FleetRun>>>,
    /// Agents' delivery rates, for the vantages page and `/metrics`.
    pub agent_rates: Mutex<agents::Rates>,
    /// Each agent's clock minus the server's, in seconds, from its last
    /// registration or heartbeat.
    pub agent_clocks: Mutex<std::collections::HashMap<i64, i64>>,
    /// The client beacon, when a zone is configured.
    pub beacon: Option<beacon::Beacon>,
    /// Traffic counters kept apart (`--traffic-store clickhouse://…`).
    pub traffic: Option<Arc<v6scope_store::ClickHouseTraffic>>,
}

pub(crate) type SharedState = Arc<AppState>;

impl AppState {
    /// Where traffic counters are read and written: ClickHouse when
    /// configured, else the store itself.
    pub fn counters<'a>(&'a self, store: &'a dyn Store) -> &'a dyn v6scope_store::TrafficCounters {
        match &self.traffic {
            Some(ch) => &**ch,
            None => store,
        }
    }

    /// Runs `f` with a store connection on a blocking thread. Connections
    /// are kept for reuse; SQLite in WAL mode lets readers and the writing
    /// scan proceed together.
    pub async fn store<T: Send + 'static>(
        self: &Arc<Self>,
        f: impl FnOnce(&mut dyn Store) -> Result<T, ApiError> + Send + 'static,
    ) -> Result<T, ApiError> {
        let state = self.clone();
        tokio::task::spawn_blocking(move || {
            let taken = state.readers.lock().map(|mut v| v.pop()).unwrap_or(None);
            let mut store = match taken {
                Some(s) => s,
                None => v6scope_store::open(&state.location).map_err(ApiError::from)?,
            };
            let out = f(&mut *store);
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
    /// The policy webhook URLs must pass.
    pub fn webhook_policy(&self) -> v6scope_probe::policy::AddressPolicy {
        v6scope_probe::policy::AddressPolicy::public_only(self.config.webhook_allow.clone())
    }

    /// The configured plan (checked at start).
    pub fn default_plan(&self) -> Result<v6scope_report::plan::Plan, ApiError> {
        self.plans
            .get(&self.config.plan)
            .cloned()
            .map_err(|e| ApiError::Internal(e.to_string()))
    }

    /// A run's counts, from the cache when the run is finished.
    pub fn run_counts(
        &self,
        store: &dyn Store,
        run: i64,
        finished: bool,
    ) -> Result<v6scope_store::RunCounts, ApiError> {
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
    Conflict(String),
    #[error("{0}")]
    Internal(String),
    #[error("{0}")]
    Busy(String),
    #[error("{0}")]
    TooLarge(String),
    #[error("Host '{0}' is not a name of this server (add it to [serve] allowed_hosts)")]
    MisdirectedHost(String),
}

impl From<v6scope_store::StoreError> for ApiError {
    fn from(e: v6scope_store::StoreError) -> Self {
        match e {
            v6scope_store::StoreError::NotFound(_) => ApiError::NotFound(e.to_string()),
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
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            ApiError::Busy(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::MisdirectedHost(_) => StatusCode::MISDIRECTED_REQUEST,
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
pub async fn serve(
    config: ServerConfig,
    location: v6scope_store::Location,
    scanner: Scanner,
) -> Result<(), ServeError> {
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
    let plans = v6scope_report::plan::PlanSet::load(&config.plan_files).map_err(|e| ServeError::Plan(e.to_string()))?;
    plans.get(&config.plan).map_err(|e| ServeError::Plan(e.to_string()))?;
    // Scans load the file themselves; a bad one should stop the server now.
    if let Some(path) = &config.providers {
        v6scope_assess::providers::Providers::load(path).map_err(|e| ServeError::Providers(e.to_string()))?;
    }
    if let Some(path) = &config.cloud_products {
        v6scope_assess::products::Products::load(path).map_err(|e| ServeError::Providers(e.to_string()))?;
    }
    let beacon = beacon::Beacon::new(&config)?;
    // Webhooks may be https: rustls with ring, as the probes use.
    let _ = rustls::crypto::ring::default_provider().install_default();
    // Opening once creates the schema before any reader needs it.
    let store = {
        let location = location.clone();
        tokio::task::spawn_blocking(move || v6scope_store::open(&location))
            .await
            .map_err(|e| ServeError::Io(std::io::Error::other(e)))??
    };
    let traffic = match config.traffic_store.clone() {
        Some(url) => {
            let opened = tokio::task::spawn_blocking(move || v6scope_store::ClickHouseTraffic::open(&url))
                .await
                .map_err(|e| ServeError::Io(std::io::Error::other(e)))??;
            tracing::info!("traffic counters in {}", opened.describe());
            Some(Arc::new(opened))
        }
        None => None,
    };
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
        location,
        token,
        scanner,
        plans,
        readers: Mutex::new(vec![store]),
        run_counts: Mutex::new(Default::default()),
        metrics: scheduler::Metrics::new(),
        wake: tokio::sync::Notify::new(),
        form_slots: Arc::new(tokio::sync::Semaphore::new(FORMS_AT_ONCE)),
        fleet_runs: Mutex::new(Default::default()),
        agent_rates: Mutex::new(Default::default()),
        agent_clocks: Mutex::new(Default::default()),
        beacon,
        traffic,
    });
    let app = router(state.clone());
    let shutdown = shutdown_signal();
    tokio::pin!(shutdown);
    let mut tasks = tokio::task::JoinSet::new();
    tasks.spawn(scheduler::run_scheduler(state.clone()));
    tasks.spawn(scheduler::run_jobs(state.clone()));
    if state.beacon.is_some() {
        tasks.spawn(beacon::run_flusher(state.clone()));
    }
    let limits = Arc::new(ConnectionLimits::new(
        state.config.max_connections,
        state.config.max_connections_per_ip,
        std::time::Duration::from_secs(state.config.header_timeout_seconds.max(1)),
    ));
    for listener in listeners {
        tasks.spawn(accept_loop(listener, app.clone(), limits.clone()));
    }
    (&mut shutdown).await;
    eprintln!("v6scope serve: stopping (a running scan is resumed at the next start)");
    tasks.shutdown().await;
    // The beacon's counts since the last flush.
    beacon::flush(&state).await;
    Ok(())
}

/// Open connections, in all and per client address.
struct ConnectionLimits {
    total: Arc<tokio::sync::Semaphore>,
    per_ip: Mutex<std::collections::HashMap<std::net::IpAddr, usize>>,
    max_per_ip: usize,
    header_timeout: std::time::Duration,
}

/// Held for the life of one connection.
struct ConnectionSlot {
    limits: Arc<ConnectionLimits>,
    ip: std::net::IpAddr,
    _total: tokio::sync::OwnedSemaphorePermit,
}

impl ConnectionLimits {
    fn new(total: usize, per_ip: usize, header_timeout: std::time::Duration) -> Self {
        ConnectionLimits {
            header_timeout,
            total: Arc::new(tokio::sync::Semaphore::new(total.max(1))),
            per_ip: Mutex::new(Default::default()),
            max_per_ip: per_ip.max(1),
        }
    }

    fn admit(self: &Arc<Self>, ip: std::net::IpAddr) -> Option<ConnectionSlot> {
        let total = self.total.clone().try_acquire_owned().ok()?;
        let mut per_ip = self.per_ip.lock().ok()?;
        let n = per_ip.entry(ip).or_default();
        if *n >= self.max_per_ip {
            return None;
        }
        *n += 1;
        Some(ConnectionSlot {
            limits: self.clone(),
            ip,
            _total: total,
        })
    }
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        if let Ok(mut per_ip) = self.limits.per_ip.lock()
            && let Some(n) = per_ip.get_mut(&self.ip)
        {
            *n -= 1;
            if *n == 0 {
                per_ip.remove(&self.ip);
            }
        }
    }
}

/// Serves one listener. Unlike `axum::serve`, connections are capped (in
/// all and per client address; over the cap a connection is closed at
/// once), a connection that sends nothing within the header timeout is
/// closed, and one that sends its headers a byte at a time (slowloris) is
/// cut off by hyper's header-read timeout; handlers and bodies are bounded
/// by the router's request timeout. Only HTTP/1.1 is spoken, so an HTTP/2
/// preface is an ordinary bad request.
async fn accept_loop(listener: tokio::net::TcpListener, app: Router, limits: Arc<ConnectionLimits>) {
    use hyper_util::rt::{TokioIo, TokioTimer};
    use hyper_util::service::TowerToHyperService;
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                // Out of file descriptors and the like: wait, do not spin.
                tracing::warn!("accept: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
        };
        let Some(slot) = limits.admit(peer.ip()) else {
            tracing::debug!("connection from {peer} refused: over the connection cap");
            drop(stream);
            continue;
        };
        // Handlers that need the client's address (the beacon) find it here.
        let peer_ip = peer.ip();
        let service = TowerToHyperService::new(tower::ServiceExt::map_request(
            app.clone(),
            move |mut request: hyper::Request<hyper::body::Incoming>| {
                request.extensions_mut().insert(beacon::Peer(peer_ip));
                request
            },
        ));
        let header_timeout = limits.header_timeout;
        tokio::spawn(async move {
            let _slot = slot;
            // A client that connects and sends nothing is closed after the
            // header timeout, like one that sends half a header.
            let mut first = [0u8; 1];
            match tokio::time::timeout(header_timeout, stream.peek(&mut first)).await {
                Ok(Ok(n)) if n > 0 => {}
                _ => return,
            }
            let connection = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(header_timeout)
                .serve_connection(TokioIo::new(stream), service);
            if let Err(e) = connection.await {
                tracing::debug!("connection: {e}");
            }
        });
    }
}

/// Page form bodies read at once (each at most `max_form_bytes`).
const FORMS_AT_ONCE: usize = 4;
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
    let (api_limit, form_limit) = (state.config.max_body_bytes, state.config.max_form_bytes);
    Router::new()
        .merge(pages::routes().layer(axum::extract::DefaultBodyLimit::max(form_limit)))
        .merge(api::routes().layer(axum::extract::DefaultBodyLimit::max(api_limit)))
        .merge(agents::routes().layer(axum::extract::DefaultBodyLimit::max(api_limit)))
        .merge(collectors::routes().layer(axum::extract::DefaultBodyLimit::max(api_limit)))
        .merge(operators::api_routes().layer(axum::extract::DefaultBodyLimit::max(api_limit)))
        .merge(operators::page_routes())
        .merge(beacon::routes())
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            axum::http::StatusCode::REQUEST_TIMEOUT,
            REQUEST_TIMEOUT,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            scheduler::count_requests,
        ))
        // Outermost: the Host check, write authorisation before any body is
        // read, JSON errors and the security headers cover everything.
        .layer(axum::middleware::from_fn_with_state(state.clone(), guard::guard))
        .with_state(state)
}
