//! `v6scope agent`: evaluate targets for a server from this vantage, and
//! `v6scope agents`: the server operator's tokens for them.
//!
//! An agent makes outbound HTTP(S) connections only (it works behind NAT)
//! and holds no database credentials. It registers with its self-test,
//! heartbeats (extending its leases), claims targets up to its concurrency
//! and delivers observations in batches. A delivery that fails is kept and
//! sent again: the server keys results on (run, target, vantage), so a
//! resend is never counted twice. While results cannot be delivered the
//! agent stops claiming (back-pressure).

use super::*;
use futures::stream::FuturesUnordered;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::Instant;
use v6scope_scan::protocol::{
    AGENT_API, Ack, Acks, Claim, Claimed, Heartbeat, Register, Registered, ResultOf, Results,
};

#[derive(Args)]
pub(crate) struct AgentArgs {
    /// The server's URL, e.g. https://v6scope.example.net/
    #[arg(long, env = "V6SCOPE_SERVER")]
    pub(crate) server: reqwest::Url,
    /// File holding this agent's token (v6scope agents add NAME).
    #[arg(long, value_name = "FILE", env = "V6SCOPE_AGENT_TOKEN_FILE")]
    pub(crate) token: PathBuf,
    /// Name of the network this agent measures from (agents of one vantage share its work).
    #[arg(long, env = "V6SCOPE_VANTAGE")]
    pub(crate) vantage: String,
    /// A label KEY=VALUE (repeatable): isp=…, region=…, access=mobile|fixed.
    #[arg(long = "label", value_name = "KEY=VALUE", value_parser = parse_label)]
    pub(crate) labels: Vec<(String, String)>,
    /// Targets evaluated at once; the server never leases more.
    #[arg(long, default_value_t = 256, env = "V6SCOPE_AGENT_CONCURRENCY")]
    pub(crate) concurrency: usize,
    /// A CA certificate (PEM) to trust for the server, besides the system's.
    #[arg(long, value_name = "FILE", env = "V6SCOPE_SERVER_CA")]
    pub(crate) server_ca: Option<PathBuf>,
    #[command(flatten)]
    pub(crate) probe: ProbeArgs,
}

fn parse_label(text: &str) -> std::result::Result<(String, String), String> {
    match text.split_once('=') {
        Some((k, v)) if !k.is_empty() && !v.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(format!("'{text}' is not KEY=VALUE")),
    }
}

/// Why a call to the server failed.
#[derive(Debug)]
enum CallError {
    /// The token is wrong or revoked: nothing to retry.
    Refused(String),
    /// The server or the network is away: try again.
    Transient(String),
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallError::Refused(e) | CallError::Transient(e) => f.write_str(e),
        }
    }
}

struct Server {
    client: reqwest::Client,
    base: reqwest::Url,
    token: String,
}

impl Server {
    async fn call<B: serde::Serialize, R: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> std::result::Result<R, CallError> {
        let url = self
            .base
            .join(&format!("{AGENT_API}/{path}"))
            .map_err(|e| CallError::Refused(format!("server URL: {e}")))?;
        let response = self
            .client
            .post(url)
            .bearer_auth(&self.token)
            .json(body)
            .send()
            .await
            .map_err(|e| CallError::Transient(format!("{path}: {e}")))?;
        let status = response.status();
        if status.is_success() {
            let bytes = response
                .bytes()
                .await
                .map_err(|e| CallError::Transient(format!("{path}: {e}")))?;
            let text: &[u8] = if bytes.is_empty() { b"null" } else { &bytes };
            return serde_json::from_slice(text).map_err(|e| CallError::Refused(format!("{path}: the answer: {e}")));
        }
        let text = response.text().await.unwrap_or_default();
        let why = format!("{path}: {status}: {}", text.chars().take(300).collect::<String>());
        // 401/403/400/404/409/413 will not get better by trying again;
        // 408, 429 and 5xx may.
        if status.is_server_error() || status.as_u16() == 408 || status.as_u16() == 429 {
            Err(CallError::Transient(why))
        } else {
            Err(CallError::Refused(why))
        }
    }

    /// Calls until it works, with backoff (up to 30 s between tries), until
    /// the call is refused or `cancel` fires.
    async fn call_retrying<B: serde::Serialize, R: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
        cancel: &CancellationToken,
    ) -> Result<Option<R>> {
        let mut pause = Duration::from_millis(500);
        loop {
            match self.call(path, body).await {
                Ok(r) => return Ok(Some(r)),
                Err(CallError::Refused(e)) => bail!("the server refused: {e}"),
                Err(CallError::Transient(e)) => {
                    tracing::warn!("{e}; trying again in {:.1} s", pause.as_secs_f64());
                    tokio::select! {
                        _ = cancel.cancelled() => return Ok(None),
                        _ = tokio::time::sleep(pause) => {}
                    }
                    pause = (pause * 2).min(Duration::from_secs(30));
                }
            }
        }
    }
}

/// Runs whose runner an agent keeps at once.
const RUNNERS_KEPT: usize = 8;

/// A target being evaluated: its runner, run, idx, observation and whether it is trusted.
type Evaluation = std::pin::Pin<
    Box<dyn std::future::Future<Output = (Arc<Runner>, i64, i64, v6scope_model::DomainObservation, bool)>>,
>;

/// The agents' HTTP client (also `v6scope fetch`'s, which the eyeballs
/// bench measures): bounded connect and request times, no proxy, and an
/// extra CA to trust when given.
pub(crate) fn agent_http_client(product: &str, ca: Option<&std::path::Path>) -> Result<reqwest::Client> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut client = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .timeout(Duration::from_secs(60))
        .no_proxy()
        .user_agent(format!("{product}/{}", env!("CARGO_PKG_VERSION")));
    if let Some(ca) = ca {
        let pem = std::fs::read(ca).map_err(|e| usage(format!("reading {}: {e}", ca.display())))?;
        let cert = reqwest::Certificate::from_pem(&pem).map_err(|e| usage(format!("{}: {e}", ca.display())))?;
        client = client.add_root_certificate(cert);
    }
    client.build().context("building the HTTP client")
}

pub(crate) async fn agent(args: AgentArgs) -> Result<ExitCode> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let token = std::fs::read_to_string(&args.token)
        .map_err(|e| usage(format!("reading the token {}: {e}", args.token.display())))?
        .lines()
        .next()
        .unwrap_or("")
        .trim()
        .to_string();
    if token.is_empty() {
        return Err(usage(format!("{}: no token in the file", args.token.display())));
    }
    let server = Server {
        client: agent_http_client("v6scope-agent", args.server_ca.as_deref())?,
        base: args.server.clone(),
        token,
    };
    let cancel = cancel_on_signals()?;
    let local = args.probe.vantage_settings();
    let concurrency = fit_open_files(args.concurrency.max(1));
    // The self-test: this vantage's IPv4, IPv6 and resolvers.
    let selftest = Runner::start(&RunConfig::default(), &local, None)
        .await
        .map_err(scan_error)?
        .vantage()
        .clone();
    let labels: BTreeMap<String, String> = args.labels.iter().cloned().collect();
    let registration = Register {
        vantage: args.vantage.clone(),
        labels,
        concurrency: concurrency as i64,
        version: env!("CARGO_PKG_VERSION").into(),
        selftest: selftest.clone(),
        clock_unix: Some(v6scope_store::now_unix()),
    };
    let Some(registered): Option<Registered> = server.call_retrying("register", &registration, &cancel).await? else {
        return Ok(ExitCode::SUCCESS);
    };
    eprintln!(
        "agent {} registered for vantage {} (IPv4 {}, IPv6 {}{})",
        registered.agent,
        args.vantage,
        selftest.ipv4,
        selftest.ipv6,
        if selftest.resolver_problems.is_empty() {
            String::new()
        } else {
            format!(", resolver faults: {}", selftest.resolver_problems.join("; "))
        }
    );
    let server = Arc::new(server);
    let in_flight_count = Arc::new(std::sync::atomic::AtomicI64::new(0));
    let unsent_count = Arc::new(std::sync::atomic::AtomicI64::new(0));
    // Heartbeats keep the leases of targets being evaluated.
    let beat = {
        let (server, cancel) = (server.clone(), cancel.clone());
        let (in_flight, unsent) = (in_flight_count.clone(), unsent_count.clone());
        let every = Duration::from_secs(registered.heartbeat_seconds.max(1));
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = cancel.cancelled() => return None,
                    _ = tokio::time::sleep(every) => {}
                }
                let state = Heartbeat {
                    in_flight: in_flight.load(std::sync::atomic::Ordering::Relaxed),
                    unsent: unsent.load(std::sync::atomic::Ordering::Relaxed),
                    clock_unix: Some(v6scope_store::now_unix()),
                };
                match server.call::<_, serde_json::Value>("heartbeat", &state).await {
                    Ok(_) => {}
                    Err(CallError::Refused(e)) => {
                        // A revoked token: stop at once.
                        cancel.cancel();
                        return Some(e);
                    }
                    Err(CallError::Transient(e)) => tracing::warn!("heartbeat: {e}"),
                }
            }
        })
    };
    let outcome = work(
        &server,
        &registered,
        &local,
        concurrency,
        &cancel,
        &in_flight_count,
        &unsent_count,
    )
    .await;
    cancel.cancel();
    let refused = beat.await.ok().flatten();
    outcome?;
    if let Some(e) = refused {
        bail!("the server refused the heartbeat: {e}");
    }
    Ok(ExitCode::SUCCESS)
}

async fn work(
    server: &Server,
    registered: &Registered,
    local: &VantageSettings,
    concurrency: usize,
    cancel: &CancellationToken,
    in_flight_count: &std::sync::atomic::AtomicI64,
    unsent_count: &std::sync::atomic::AtomicI64,
) -> Result<()> {
    let batch = registered.max_batch.max(1);
    // One runner per run (its configuration and self-test), the most
    // recently used few kept: targets in flight hold their own.
    let mut runners: HashMap<i64, (Arc<Runner>, tokio::task::JoinHandle<()>, Instant)> = HashMap::new();
    let mut in_flight: FuturesUnordered<Evaluation> = FuturesUnordered::new();
    let mut unsent: VecDeque<ResultOf> = VecDeque::new();
    let mut next_claim = Instant::now();
    let mut idle_pause = Duration::from_millis(250);
    let mut next_delivery = Instant::now();
    let mut delivery_pause = Duration::from_millis(500);
    let mut oldest_unsent: Option<Instant> = None;
    let stopped = loop {
        if cancel.is_cancelled() {
            break true;
        }
        // Claim when a quarter of the slots is free and deliveries keep up.
        let room = concurrency.saturating_sub(in_flight.len());
        if room > 0 && room * 4 >= concurrency && unsent.len() < 2 * concurrency && Instant::now() >= next_claim {
            match server.call::<_, Claimed>("claim", &Claim { max: room as i64 }).await {
                Ok(claimed) => {
                    if claimed.leases.is_empty() {
                        next_claim = Instant::now() + idle_pause;
                        idle_pause = (idle_pause * 2).min(Duration::from_secs(5));
                    } else {
                        idle_pause = Duration::from_millis(250);
                    }
                    for lease in claimed.leases {
                        let runner = match runners.get_mut(&lease.run) {
                            Some((r, _, used)) => {
                                *used = Instant::now();
                                r.clone()
                            }
                            None => {
                                let config = claimed.runs.get(&lease.run).cloned().with_context(|| {
                                    format!("the server sent no configuration for run {}", lease.run)
                                })?;
                                let runner = Arc::new(Runner::start(&config, local, None).await.map_err(scan_error)?);
                                if runners.len() >= RUNNERS_KEPT
                                    && let Some(oldest) = runners
                                        .iter()
                                        .min_by_key(|(_, (_, _, used))| *used)
                                        .map(|(run, _)| *run)
                                    && let Some((_, watch, _)) = runners.remove(&oldest)
                                {
                                    watch.abort();
                                }
                                let watch = runner.watch_resolvers();
                                runners.insert(lease.run, (runner.clone(), watch, Instant::now()));
                                runner
                            }
                        };
                        in_flight.push(evaluate(runner, lease.run, lease.idx, lease.target, Duration::ZERO));
                    }
                }
                Err(CallError::Refused(e)) => bail!("the server refused the claim: {e}"),
                Err(CallError::Transient(e)) => {
                    tracing::warn!("claim: {e}");
                    next_claim = Instant::now() + idle_pause;
                    idle_pause = (idle_pause * 2).min(Duration::from_secs(30));
                }
            }
        }
        // Deliver full batches at once, and what waits longer than half a second.
        let due = unsent.len() >= batch || oldest_unsent.is_some_and(|t| t.elapsed() >= Duration::from_millis(500));
        if !unsent.is_empty() && due && Instant::now() >= next_delivery {
            match deliver(server, &mut unsent, batch).await {
                Ok(()) => {
                    delivery_pause = Duration::from_millis(500);
                    oldest_unsent = (!unsent.is_empty()).then(Instant::now);
                }
                Err(CallError::Refused(e)) => bail!("the server refused the results: {e}"),
                Err(CallError::Transient(e)) => {
                    tracing::warn!("results: {e}; {} kept to send again", unsent.len());
                    next_delivery = Instant::now() + delivery_pause;
                    delivery_pause = (delivery_pause * 2).min(Duration::from_secs(30));
                }
            }
        }
        in_flight_count.store(in_flight.len() as i64, std::sync::atomic::Ordering::Relaxed);
        unsent_count.store(unsent.len() as i64, std::sync::atomic::Ordering::Relaxed);
        tokio::select! {
            _ = cancel.cancelled() => break true,
            Some((runner, run, idx, observation, trusted)) = in_flight.next(), if !in_flight.is_empty() => {
                if trusted {
                    unsent.push_back(ResultOf { run, idx, observation });
                    oldest_unsent.get_or_insert_with(Instant::now);
                } else {
                    // The resolvers were failing: the lease is kept by the
                    // heartbeat, and the target is evaluated again.
                    in_flight.push(evaluate(runner, run, idx, observation.target, Duration::from_secs(5)));
                }
            }
            _ = tokio::time::sleep(Duration::from_millis(100)) => {}
        }
    };
    for (_, watch, _) in runners.values() {
        watch.abort();
    }
    if stopped {
        // Targets in flight are dropped (their leases run out and another
        // agent takes them); what finished is delivered.
        let deadline = Instant::now() + Duration::from_secs(20);
        while !unsent.is_empty() && Instant::now() < deadline {
            if let Err(e) = deliver(server, &mut unsent, batch).await {
                tracing::warn!("delivering before stopping: {e}");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
        if !unsent.is_empty() {
            eprintln!(
                "warning: {} results could not be delivered; another agent will evaluate those targets",
                unsent.len()
            );
        }
        eprintln!("agent stopped: {} targets in flight dropped", in_flight.len());
    }
    Ok(())
}

/// Evaluates a target on a task of its own, so that probes go on (and their
/// timings stay true) while the agent waits for the server.
fn evaluate(runner: Arc<Runner>, run: i64, idx: i64, target: Target, after: Duration) -> Evaluation {
    let task = tokio::spawn(async move {
        if !after.is_zero() {
            tokio::time::sleep(after).await;
        }
        let (observation, trusted) = runner.evaluate_checked(target).await;
        (runner, run, idx, observation, trusted)
    });
    Box::pin(async move {
        match task.await {
            Ok(done) => done,
            Err(e) => std::panic::resume_unwind(e.into_panic()),
        }
    })
}

/// Sends up to `batch` results; they leave `unsent` only when the server
/// has answered for them.
async fn deliver(server: &Server, unsent: &mut VecDeque<ResultOf>, batch: usize) -> std::result::Result<(), CallError> {
    let n = unsent.len().min(batch);
    let results = Results {
        results: unsent.iter().take(n).cloned().collect(),
    };
    let acks: Acks = server.call("results", &results).await?;
    let refused = acks.acks.iter().filter(|a| **a == Ack::NotGiven).count();
    if refused > 0 {
        tracing::warn!("{refused} results refused: their leases had passed to another agent");
    }
    unsent.drain(..n);
    Ok(())
}

#[derive(Subcommand)]
pub(crate) enum AgentsCommand {
    /// Create an agent and its token (written to --token-file, or printed once).
    Add {
        name: String,
        /// Write the token here (mode 0600) instead of printing it.
        #[arg(long, value_name = "FILE")]
        token_file: Option<PathBuf>,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Revoke an agent's token; its leased targets go to other agents of its vantage.
    Revoke {
        name: String,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// List agents: vantage, labels, self-test, last seen, results.
    List {
        /// JSON output.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        store: StoreArgs,
    },
}

/// Agent, collector and operator names: 1 to 64 ASCII letters, digits, '-', '_' or '.'.
pub(crate) fn check_name(what: &str, name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(usage(format!(
            "{what} '{name}': 1 to 64 ASCII letters, digits, '-', '_' or '.'"
        )))
    }
}

/// Writes a new token to `file` (mode 0600), or prints it once.
pub(crate) fn hand_out_token(whose: &str, token: &str, file: Option<&std::path::Path>) -> Result<()> {
    match file {
        Some(path) => {
            use std::os::unix::fs::OpenOptionsExt;
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(path)
                .with_context(|| format!("creating {}", path.display()))?;
            writeln!(f, "{token}")?;
            eprintln!("{whose}: token written to {}", path.display());
        }
        None => println!("{token}"),
    }
    Ok(())
}

pub(crate) fn agents(command: AgentsCommand) -> Result<ExitCode> {
    match command {
        AgentsCommand::Add {
            name,
            token_file,
            store,
        } => {
            check_name("agent name", &name)?;
            let token = v6scope_server::new_token();
            let mut store = store.open()?;
            store
                .add_agent(&name, &v6scope_server::token_hash(&token))
                .map_err(|e| usage(e.to_string()))?;
            hand_out_token(&format!("agent {name}"), &token, token_file.as_deref())?;
            Ok(ExitCode::SUCCESS)
        }
        AgentsCommand::Revoke { name, store } => {
            if store.open_existing()?.revoke_agent(&name)? {
                eprintln!("agent {name}: token revoked");
                Ok(ExitCode::SUCCESS)
            } else {
                Err(usage(format!("no agent named '{name}'")))
            }
        }
        AgentsCommand::List { json, store } => {
            let agents = store.open_existing()?.agents()?;
            let now = v6scope_store::now_unix();
            for a in &agents {
                let selftest: Option<serde_json::Value> =
                    a.selftest.as_deref().and_then(|s| serde_json::from_str(s).ok());
                if json {
                    println!(
                        "{}",
                        serde_json::json!({
                            "name": a.name, "vantage": a.vantage, "labels": a.labels, "revoked": a.revoked,
                            "concurrency": a.concurrency, "version": a.version, "selftest": selftest,
                            "last_seen": a.last_seen, "results": a.results, "errors": a.errors, "leased": a.leased,
                            "created_at": a.created_at,
                        })
                    );
                } else {
                    let seen = a
                        .last_seen
                        .map(|t| format!("{} s ago", now - t))
                        .unwrap_or_else(|| "never".into());
                    let labels: Vec<String> = a.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
                    println!(
                        "{}\t{}\t{}\t{}\tseen {seen}\t{} results\t{} errors\t{} leased",
                        a.name,
                        if a.revoked { "revoked" } else { "active" },
                        a.vantage.as_deref().unwrap_or("-"),
                        labels.join(","),
                        a.results,
                        a.errors,
                        a.leased
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
