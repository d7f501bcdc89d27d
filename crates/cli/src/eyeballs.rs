//! `v6scope eyeballs`: the Happy Eyeballs bench, and `fetch`, the HTTP
//! client of v6scope's own (agents, webhooks) as a command the bench can run.

use crate::scan::cancel_on_signals;
use crate::usage;
use anyhow::{Context, Result};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use v6scope_eyeballs::{BenchConfig, Client, TrialSet};

#[derive(Args)]
pub(crate) struct EyeballsArgs {
    /// A client to test: a preset (curl, wget, python, chromium, v6scope) or
    /// a command with {url} in it, e.g. 'node fetch.js {url}'. Repeatable;
    /// the report puts them side by side. Default: curl.
    #[arg(long = "client", value_name = "CLIENT")]
    clients: Vec<String>,
    /// Print the report as JSON (every trial's evidence) instead of the table.
    #[arg(long)]
    json: bool,
    /// Write the HTML report (with charts) here.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// Step of the CAD sweep, ms (IPv6 delayed 0, STEP, 2·STEP, … ms).
    #[arg(long, value_name = "MS", default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=1000))]
    cad_step: u32,
    /// The largest IPv6 delay of the sweep, ms.
    #[arg(long, value_name = "MS", default_value_t = 400, value_parser = clap::value_parser!(u32).range(0..=2000))]
    cad_max: u32,
    /// Leave out the failure trials (blackhole, RST, unreachable, two AAAA,
    /// AAAA SERVFAIL/empty, path-MTU blackhole).
    #[arg(long)]
    no_failures: bool,
    /// Leave out the IPv6-only trials (DNS64 with unbound, NAT64 with tayga).
    #[arg(long)]
    no_ipv6_only: bool,
    /// Gateway mode: be the router of the device on this interface (moved
    /// into the bench's router namespace while it runs): DHCPv4, SLAAC and
    /// DNS for it, NAT to the upstream, and one condition per phase; then
    /// report its IPv6 share per host and phase. No clients are run.
    #[arg(long, value_name = "IFACE")]
    gateway: Option<String>,
    /// Where the gateway's traffic goes: `host` (this machine's network,
    /// through NAT) or `bench` (the bench's own test names only:
    /// dual.gw.eyeballs.test, v4.gw…, v6.gw…).
    #[arg(long, value_name = "host|bench", default_value = "host", requires = "gateway")]
    gateway_upstream: String,
    /// The resolver the gateway forwards to in host mode (default: the first
    /// non-loopback nameserver of /etc/resolv.conf).
    #[arg(long, value_name = "ADDR", requires = "gateway")]
    gateway_dns: Option<std::net::IpAddr>,
    /// A gateway phase's condition: none, ipv6+MS, ipv4+MS (one-way delay
    /// of what the device sends), ipv6-loss=PCT, ipv4-loss=PCT,
    /// ipv6-blackhole, ipv4-blackhole. Repeatable, in order (default: none, ipv6+100,
    /// ipv6+300, ipv6-blackhole).
    #[arg(long = "condition", value_name = "CONDITION", requires = "gateway")]
    conditions: Vec<v6scope_eyeballs::Condition>,
    /// How long each gateway phase lasts.
    #[arg(long, value_name = "SECONDS", default_value_t = 150, value_parser = clap::value_parser!(u64).range(1..=86400), requires = "gateway")]
    phase_seconds: u64,
    /// Seconds before a trial's client is stopped (a client that never
    /// falls back from a blackholed IPv6 waits minutes).
    #[arg(long, value_name = "SECONDS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=300))]
    trial_timeout: u64,
}

pub(crate) async fn eyeballs(args: EyeballsArgs, quiet: bool) -> Result<ExitCode> {
    let workdir = std::env::temp_dir().join(format!("v6scope-eyeballs-{}", std::process::id()));
    std::fs::create_dir_all(&workdir).with_context(|| format!("creating {}", workdir.display()))?;
    if let Some(lan) = &args.gateway {
        let result = gateway(&args, lan, &workdir, quiet).await;
        let _ = std::fs::remove_dir_all(&workdir);
        return result;
    }
    let self_exe = std::env::current_exe().context("finding this program")?;
    let specs = if args.clients.is_empty() {
        vec!["curl".to_string()]
    } else {
        args.clients.clone()
    };
    let clients = specs
        .iter()
        .map(|s| Client::parse(s, &self_exe, &workdir).map_err(|e| usage(e.to_string())))
        .collect::<Result<Vec<_>>>()?;
    for client in &clients {
        let program = &client.argv[0];
        if which(program).is_none() {
            return Err(usage(format!("client {}: {program} is not installed", client.name)));
        }
    }
    if !args.no_ipv6_only {
        for program in ["unbound", "tayga"] {
            if which(program).is_none() && which(&format!("/usr/sbin/{program}")).is_none() {
                return Err(usage(format!(
                    "the IPv6-only trials need {program} (apt-get install {program}), or leave them out with --no-ipv6-only"
                )));
            }
        }
    }
    let config = BenchConfig {
        clients,
        trials: TrialSet {
            cad_step_ms: args.cad_step,
            cad_max_ms: args.cad_max,
            failures: !args.no_failures,
            ipv6_only: !args.no_ipv6_only,
            ..TrialSet::default()
        },
        trial_timeout: Duration::from_secs(args.trial_timeout),
        workdir: workdir.clone(),
    };
    let stop = stop_on_signals()?;
    let total = (config.trials.trials().len() * config.clients.len()) as u64;
    let bar = if quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(total).with_style(
            ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {pos}/{len} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        )
    };
    let report = {
        let bar = bar.clone();
        let stop = Arc::clone(&stop);
        tokio::task::spawn_blocking(move || {
            v6scope_eyeballs::run(&config, &stop, |p| {
                bar.set_position(p.done as u64);
                bar.set_message(format!("{}: {}", p.client, p.trial.label()));
            })
        })
        .await
        .context("the bench's thread")?
    };
    bar.finish_and_clear();
    let _ = std::fs::remove_dir_all(&workdir);
    let report = report.map_err(|e| match e {
        v6scope_eyeballs::BenchError::Netns(v6scope_eyeballs::NetnsError::NotRoot) => usage(e.to_string()),
        e => anyhow::Error::new(e),
    })?;
    if let Some(path) = &args.out {
        std::fs::write(path, v6scope_eyeballs::render_html(&report))
            .with_context(|| format!("writing {}", path.display()))?;
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", v6scope_eyeballs::text_table(&report));
        if report.partial {
            eprintln!("eyeballs: stopped early; the report covers the trials that ran");
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn gateway(args: &EyeballsArgs, lan: &str, workdir: &std::path::Path, quiet: bool) -> Result<ExitCode> {
    use v6scope_eyeballs::{GatewayConfig, Upstream};
    if !args.clients.is_empty() {
        return Err(usage(
            "--gateway runs no clients: the device on the interface is the client",
        ));
    }
    if which("dnsmasq").is_none() && which("/usr/sbin/dnsmasq").is_none() {
        return Err(usage("--gateway needs dnsmasq (apt-get install dnsmasq-base)"));
    }
    let upstream = match args.gateway_upstream.as_str() {
        "bench" => Upstream::Bench,
        "host" => Upstream::Host {
            dns: match args.gateway_dns {
                Some(dns) => dns,
                None => host_resolver().ok_or_else(|| {
                    usage("no usable nameserver in /etc/resolv.conf for the gateway: give --gateway-dns ADDR")
                })?,
            },
        },
        other => return Err(usage(format!("--gateway-upstream {other}: host or bench"))),
    };
    let config = GatewayConfig {
        lan: lan.to_string(),
        upstream,
        conditions: if args.conditions.is_empty() {
            v6scope_eyeballs::default_conditions()
        } else {
            args.conditions.clone()
        },
        phase: Duration::from_secs(args.phase_seconds),
        workdir: workdir.to_path_buf(),
    };
    let stop = stop_on_signals()?;
    let report = tokio::task::spawn_blocking(move || {
        v6scope_eyeballs::run_gateway(&config, &stop, |condition, i, n| {
            if !quiet {
                eprintln!("eyeballs gateway: phase {}/{n}: {condition}", i + 1);
            }
        })
    })
    .await
    .context("the gateway's thread")?
    .map_err(|e| match e {
        v6scope_eyeballs::BenchError::Netns(v6scope_eyeballs::NetnsError::NotRoot) => usage(e.to_string()),
        e => anyhow::Error::new(e),
    })?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", v6scope_eyeballs::gateway_text(&report));
    }
    Ok(ExitCode::SUCCESS)
}

/// The first nameserver of /etc/resolv.conf a router namespace can reach
/// (not a loopback stub such as systemd-resolved's 127.0.0.53).
fn host_resolver() -> Option<std::net::IpAddr> {
    v6scope_probe::resolv_conf_servers("/etc/resolv.conf")
        .ok()?
        .into_iter()
        .map(|server| server.ip())
        .find(|address| !address.is_loopback())
}

/// A flag SIGTERM and Ctrl-C set: the bench's threads look at it between
/// trials and phases, and the report of what ran is still written.
fn stop_on_signals() -> Result<Arc<AtomicBool>> {
    let stop = Arc::new(AtomicBool::new(false));
    let cancel = cancel_on_signals()?;
    let flag = Arc::clone(&stop);
    tokio::spawn(async move {
        cancel.cancelled().await;
        flag.store(true, Ordering::Relaxed);
    });
    Ok(stop)
}

fn which(program: &str) -> Option<PathBuf> {
    if program.contains('/') {
        return Some(PathBuf::from(program)).filter(|p| p.exists());
    }
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|dir| PathBuf::from(dir).join(program))
        .find(|p| p.is_file())
}

#[derive(Args)]
pub(crate) struct FetchArgs {
    /// The URL to GET.
    url: String,
    /// Also trust this CA (PEM) for HTTPS.
    #[arg(long, value_name = "FILE")]
    ca_file: Option<PathBuf>,
}

/// GET a URL with the HTTP client v6scope's agents use (reqwest on
/// hyper-util's connector, whose Happy Eyeballs the bench measures) and
/// print the status.
pub(crate) async fn fetch(args: FetchArgs) -> Result<ExitCode> {
    let client = crate::agent::agent_http_client("v6scope", args.ca_file.as_deref())?;
    let response = client
        .get(&args.url)
        .send()
        .await
        .with_context(|| format!("GET {}", args.url))?;
    let status = response.status();
    let _ = response.bytes().await;
    println!("{status}");
    Ok(if status.is_success() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
