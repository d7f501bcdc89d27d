//! Runs the trials: the namespaces, the delay line and the servers up, each
//! client through every trial one after another (timing is the measurement:
//! nothing runs beside a trial), the record read back into observations.

use crate::analysis::{ClientReport, analyse};
use crate::client::Client;
use crate::netns::{NamespacePair, NetnsError};
use crate::server::{self, Event, Journal, Shared, ZONE, tcp_syn};
use crate::trial::{Failure, TrialKind, TrialSet};
use serde::Serialize;
use std::io::Read;
use std::net::{IpAddr, SocketAddr};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// What to run.
#[derive(Debug, Clone)]
pub struct BenchConfig {
    pub clients: Vec<Client>,
    pub trials: TrialSet,
    /// A trial whose client has not finished by then is stopped (a client
    /// that never falls back from a blackholed IPv6 would wait minutes).
    pub trial_timeout: Duration,
    /// Where the browser's profile goes; removed afterwards by the caller.
    pub workdir: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error(transparent)]
    Netns(#[from] NetnsError),
    #[error("the bench's servers did not start: {0}")]
    Servers(String),
    #[error("the delay line did not start: {0}")]
    DelayLine(String),
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
    #[error("running {client}: {detail}")]
    Client { client: String, detail: String },
}

/// One trial of one client, as the server side saw it. Times are ms after
/// the trial's first DNS query (after its start when no query came).
#[derive(Debug, Clone, Serialize)]
pub struct Observation {
    pub trial: TrialKind,
    pub name: String,
    /// The family and address of the connection that carried the request.
    /// At the server: the family and address the request arrived on (an
    /// IPv6-only client's request through NAT64 arrives over IPv4).
    pub family_used: Option<Family>,
    pub address_used: Option<IpAddr>,
    /// The request came through NAT64.
    pub via_nat64: bool,
    pub request_ms: Option<f64>,
    pub queries: Vec<QueryTiming>,
    /// Connection attempts (first SYN of each), in order.
    pub attempts: Vec<Attempt>,
    pub duration_ms: f64,
    pub timed_out: bool,
    pub exit_code: Option<i32>,
    /// The end of the client's error output, when it failed.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub client_error: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Family {
    Ipv4,
    Ipv6,
}

impl Family {
    pub fn of(address: IpAddr) -> Family {
        if address.is_ipv4() { Family::Ipv4 } else { Family::Ipv6 }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct QueryTiming {
    pub rtype: String,
    pub asked_ms: f64,
    pub answered_ms: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Attempt {
    pub at_ms: f64,
    pub family: Family,
    pub address: IpAddr,
    pub port: u16,
}

impl Observation {
    pub fn first_attempt(&self, family: Family) -> Option<f64> {
        self.attempts.iter().find(|a| a.family == family).map(|a| a.at_ms)
    }

    pub fn answered(&self, rtype: &str) -> Option<f64> {
        self.queries
            .iter()
            .filter(|q| q.rtype == rtype)
            .filter_map(|q| q.answered_ms)
            .reduce(f64::min)
    }
}

/// The whole sweep.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub generated_unix: u64,
    pub trial_set: TrialSet,
    pub trial_timeout_ms: u64,
    pub clients: Vec<ClientReport>,
    /// True when the run was stopped before every trial ran.
    pub partial: bool,
}

/// What a running bench reports as it goes.
pub struct Progress<'a> {
    pub client: &'a str,
    pub trial: &'a TrialKind,
    pub done: usize,
    pub total: usize,
}

/// Runs every client through every trial. `stop` ends the sweep early
/// (the report is then `partial`).
pub fn run(
    config: &BenchConfig,
    stop: &AtomicBool,
    mut progress: impl FnMut(Progress<'_>),
) -> Result<Report, BenchError> {
    let ipv6_only = config.trials.trials().iter().any(TrialKind::ipv6_only);
    let bed = Testbed::start(config.trials.rules(), &config.workdir, ipv6_only)?;
    sweep(config, &bed, stop, &mut progress)
}

/// The bench's namespaces with their servers, delay line and (when asked)
/// DNS64/NAT64 running; all stopped and removed when dropped.
pub(crate) struct Testbed {
    // Dropped in this order after `drop`: the daemons, then the namespaces.
    nat64: Option<crate::nat64::Nat64>,
    pub(crate) pair: NamespacePair,
    pub(crate) shared: Shared,
    pub(crate) ca_file: PathBuf,
    server_stop: Arc<tokio::sync::Notify>,
    delay_stop: Arc<AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Drop for Testbed {
    fn drop(&mut self) {
        self.server_stop.notify_one();
        self.delay_stop.store(true, Ordering::Relaxed);
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

impl Testbed {
    pub(crate) fn start(
        rules: Vec<v6scope_netem::Rule>,
        workdir: &std::path::Path,
        ipv6_only: bool,
    ) -> Result<Testbed, BenchError> {
        let pair = NamespacePair::create()?;
        let tls = crate::tls::make()?;
        let ca_file = crate::tls::trust_in_namespace(&pair.client, &tls.ca_pem, workdir)?;
        crate::tls::trust_in_namespace(&pair.client_v6_only, &tls.ca_pem, workdir)?;
        let server_tls = Arc::clone(&tls.server);
        let shared: Shared = Arc::new(Mutex::new(Journal::default()));
        let mut bed = Testbed {
            nat64: None,
            pair,
            shared: Arc::clone(&shared),
            ca_file,
            server_stop: Arc::new(tokio::sync::Notify::new()),
            delay_stop: Arc::new(AtomicBool::new(false)),
            threads: Vec::new(),
        };

        // The delay line first: once the queue rule is in, an unserved queue drops.
        let (ready_tx, ready_rx) = mpsc::channel::<Result<(), String>>();
        bed.threads.push({
            let pair_server = bed.pair.server.clone();
            let shared = Arc::clone(&shared);
            let delay_stop = Arc::clone(&bed.delay_stop);
            let ready_tx = ready_tx.clone();
            std::thread::spawn(move || {
                if let Err(e) = crate::netns::enter(&pair_server) {
                    let _ = ready_tx.send(Err(e.to_string()));
                    return;
                }
                let ready = ready_tx.clone();
                let result = v6scope_netem::run_with_tap(
                    0,
                    &rules,
                    &delay_stop,
                    64,
                    move || {
                        let _ = ready.send(Ok(()));
                    },
                    |at, packet| {
                        if let Some((source_port, destination)) = tcp_syn(packet) {
                            server::push_at(
                                &shared,
                                at,
                                Event::Syn {
                                    source_port,
                                    destination,
                                },
                            );
                        }
                    },
                );
                if let Err(e) = result {
                    let _ = ready_tx.send(Err(e.to_string()));
                }
            })
        });
        wait_ready(&ready_rx).map_err(BenchError::DelayLine)?;

        bed.threads.push({
            let pair_server = bed.pair.server.clone();
            let server_stop = Arc::clone(&bed.server_stop);
            let ready_tx = ready_tx.clone();
            std::thread::spawn(move || {
                let started = crate::netns::enter(&pair_server)
                    .map_err(|e| e.to_string())
                    .and_then(|()| {
                        tokio::runtime::Builder::new_current_thread()
                            .enable_all()
                            .build()
                            .map_err(|e| e.to_string())
                    });
                let runtime = match started {
                    Ok(r) => r,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                runtime.block_on(async move {
                    // Every address of the server: the clients' links and the
                    // gateway's upstream link.
                    let dns = SocketAddr::new(std::net::Ipv4Addr::UNSPECIFIED.into(), 53);
                    let serving = server::serve(shared, dns, server_tls, server_stop);
                    tokio::pin!(serving);
                    // Bound by the time the first poll returns Pending.
                    tokio::select! {
                        biased;
                        result = &mut serving => {
                            let _ = ready_tx.send(Err(result.err().map_or("stopped".into(), |e| e.to_string())));
                            return;
                        }
                        () = tokio::time::sleep(Duration::from_millis(50)) => {
                            let _ = ready_tx.send(Ok(()));
                        }
                    }
                    let _ = serving.await;
                });
            })
        });
        wait_ready(&ready_rx).map_err(BenchError::Servers)?;
        install_conditions(&bed.pair)?;
        // DNS64 and NAT64 only when a trial needs them (they need unbound and tayga).
        if ipv6_only {
            bed.nat64 = Some(crate::nat64::Nat64::start(&bed.pair, workdir)?);
        }
        Ok(bed)
    }
}

fn wait_ready(rx: &mpsc::Receiver<Result<(), String>>) -> Result<(), String> {
    match rx.recv_timeout(Duration::from_secs(10)) {
        Ok(result) => result,
        Err(_) => Err("no answer within 10 s".into()),
    }
}

pub(crate) fn iptables(v6: bool) -> &'static str {
    // This kernel queues only through the xt NFQUEUE target (no nft_queue),
    // as lab/delay does.
    let legacy = if v6 { "ip6tables-legacy" } else { "iptables-legacy" };
    if std::process::Command::new(legacy).arg("--version").output().is_ok() {
        legacy
    } else if v6 {
        "ip6tables"
    } else {
        "iptables"
    }
}

fn install_conditions(pair: &NamespacePair) -> Result<(), BenchError> {
    let dev = format!("{}0", pair.server);
    for v6 in [false, true] {
        pair.in_server(
            iptables(v6),
            &format!("-t raw -A PREROUTING -i {dev} -j NFQUEUE --queue-num 0"),
        )?;
    }
    let reset = Failure::Reset.address();
    let unreachable = Failure::Unreachable.address();
    pair.in_server(
        iptables(true),
        &format!("-A INPUT -d {reset} -p tcp -j REJECT --reject-with tcp-reset"),
    )?;
    pair.in_server(
        iptables(true),
        &format!("-A INPUT -d {unreachable} -j REJECT --reject-with icmp6-addr-unreachable"),
    )?;
    // The path-MTU blackhole sits on the client's side, where a router
    // would drop: what the server sends larger than the MTU never arrives,
    // and no Packet Too Big comes back.
    let pmtu = crate::trial::V6_PMTU_BLACKHOLE;
    let too_big = crate::trial::PMTU_BLACKHOLE_MTU + 1;
    pair.in_client(
        iptables(true),
        &format!("-t raw -A PREROUTING -s {pmtu} -m length --length {too_big}:65535 -j DROP"),
    )?;
    Ok(())
}

fn sweep(
    config: &BenchConfig,
    bed: &Testbed,
    stop: &AtomicBool,
    progress: &mut impl FnMut(Progress<'_>),
) -> Result<Report, BenchError> {
    let trials = config.trials.trials();
    let nonce = format!("{:06x}", fastrand::u32(..0x100_0000));
    let total = trials.len() * config.clients.len();
    let mut done = 0;
    let mut reports = Vec::new();
    let mut partial = false;
    'clients: for (c, client) in config.clients.iter().enumerate() {
        let mut observations = Vec::new();
        for (t, trial) in trials.iter().enumerate() {
            if stop.load(Ordering::Relaxed) {
                partial = true;
                if !observations.is_empty() {
                    reports.push(analyse(client, observations));
                }
                break 'clients;
            }
            progress(Progress {
                client: &client.name,
                trial,
                done,
                total,
            });
            let name = format!("c{c}t{t}-{nonce}.{ZONE}");
            observations.push(one_trial(config, bed, client, *trial, &name)?);
            done += 1;
        }
        reports.push(analyse(client, observations));
    }
    Ok(Report {
        generated_unix: SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()),
        trial_set: config.trials.clone(),
        trial_timeout_ms: config.trial_timeout.as_millis() as u64,
        clients: reports,
        partial,
    })
}

/// Late packets of a trial (a SYN retransmitted just before the client
/// exits) are waited for this long before the record is read.
const SETTLE: Duration = Duration::from_millis(150);

fn one_trial(
    config: &BenchConfig,
    bed: &Testbed,
    client: &Client,
    trial: TrialKind,
    name: &str,
) -> Result<Observation, BenchError> {
    let (pair, shared, ca_file) = (&bed.pair, &bed.shared, bed.ca_file.as_path());
    if let Ok(mut journal) = shared.lock() {
        journal.events.clear();
        journal.plans.insert(name.to_string(), trial.plan());
    }
    let host = trial.host(name);
    let url = format!("{}://{host}/", trial.scheme());
    let argv = client.command_for(&url, ca_file);
    let started = Instant::now();
    let mut child = pair
        .client_command(trial.ipv6_only(), &argv)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        // Its own process group, so a browser's helpers stop with it.
        .process_group(0)
        .spawn()
        .map_err(|e| BenchError::Client {
            client: client.name.clone(),
            detail: format!("{}: {e}", argv.join(" ")),
        })?;
    let mut stderr = child.stderr.take();
    let reader = std::thread::spawn(move || {
        let mut text = Vec::new();
        if let Some(err) = stderr.as_mut() {
            let _ = err.take(1 << 20).read_to_end(&mut text);
        }
        text
    });
    let mut timed_out = false;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if started.elapsed() >= config.trial_timeout => {
                timed_out = true;
                // SAFETY: signalling the process group we created.
                unsafe {
                    libc::kill(-(child.id() as libc::pid_t), libc::SIGKILL);
                }
                break child.wait().ok();
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(5)),
            Err(_) => break None,
        }
    };
    let duration = started.elapsed();
    // Helpers of the client that outlived it.
    // SAFETY: as above; the group is ours.
    unsafe {
        libc::kill(-(child.id() as libc::pid_t), libc::SIGKILL);
    }
    std::thread::sleep(SETTLE);
    let stderr = reader.join().unwrap_or_default();
    let events = match shared.lock() {
        Ok(mut journal) => {
            journal.plans.remove(name);
            std::mem::take(&mut journal.events)
        }
        Err(_) => Vec::new(),
    };
    let exit_code = status.and_then(|s| s.code());
    let failed = timed_out || exit_code != Some(0);
    Ok(observe(
        trial,
        name,
        &host,
        started,
        &events,
        duration,
        timed_out,
        exit_code,
        if failed { tail(&stderr) } else { String::new() },
    ))
}

fn tail(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(3)..]
        .join("\n")
        .chars()
        .take(500)
        .collect()
}

#[allow(clippy::too_many_arguments)]
fn observe(
    trial: TrialKind,
    name: &str,
    host: &str,
    started: Instant,
    events: &[(Instant, Event)],
    duration: Duration,
    timed_out: bool,
    exit_code: Option<i32>,
    client_error: String,
) -> Observation {
    let t0 = events
        .iter()
        .find_map(|(at, e)| matches!(e, Event::Query { name: n, .. } if n == name).then_some(*at))
        .unwrap_or(started);
    let ms = |at: Instant| {
        if at >= t0 {
            (at - t0).as_secs_f64() * 1e3
        } else {
            -((t0 - at).as_secs_f64() * 1e3)
        }
    };
    let mut queries: Vec<QueryTiming> = Vec::new();
    let mut attempts: Vec<Attempt> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    let mut request = None;
    for (at, event) in events {
        match event {
            Event::Query { name: n, rtype } if n == name => queries.push(QueryTiming {
                rtype: rtype.to_string(),
                asked_ms: ms(*at),
                answered_ms: None,
            }),
            Event::Answered { name: n, rtype } if n == name => {
                let rtype = rtype.to_string();
                if let Some(q) = queries.iter_mut().find(|q| q.rtype == rtype && q.answered_ms.is_none()) {
                    q.answered_ms = Some(ms(*at));
                }
            }
            Event::Syn {
                source_port,
                destination,
            } if seen.insert((*source_port, *destination)) => {
                attempts.push(Attempt {
                    at_ms: ms(*at),
                    family: Family::of(destination.ip()),
                    address: destination.ip(),
                    port: destination.port(),
                });
            }
            Event::Request {
                host: requested,
                local,
                peer,
            } if requested == host && request.is_none() => {
                request = Some((*local, *peer, ms(*at)));
            }
            _ => {}
        }
    }
    attempts.sort_by(|a, b| a.at_ms.total_cmp(&b.at_ms));
    Observation {
        trial,
        name: name.to_string(),
        family_used: request.map(|(a, _, _)| Family::of(a)),
        address_used: request.map(|(a, _, _)| a),
        via_nat64: request.is_some_and(|(_, peer, _)| crate::nat64::from_nat64_pool(peer)),
        request_ms: request.map(|(_, _, t)| t),
        queries,
        attempts,
        duration_ms: duration.as_secs_f64() * 1e3,
        timed_out,
        exit_code,
        client_error,
    }
}
