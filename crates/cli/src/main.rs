//! The `v6scope` command line.

mod collect;
mod render;

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand};
use futures::StreamExt;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;
use v6scope_assess::{Profile, assess};
use v6scope_model::targets;
use v6scope_model::{DomainObservation, ErrorKind, ProbeError, SCHEMA_VERSION, Status, Target, Vantage, Verdict};
use v6scope_probe::{ProbeConfig, Prober};
use v6scope_store::{Store, TargetResult};

/// Exit code for usage and input errors.
const EXIT_USAGE: u8 = 2;
/// Exit code when the run itself broke (store, I/O).
const EXIT_FAILURE: u8 = 3;

// A scan allocates and frees many small buffers per target (DNS messages,
// TLS records, JSON); glibc's malloc was a tenth of its CPU.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "v6scope",
    version,
    about = "Measure how far IPv6 has really got: evaluate domains over IPv4 and IPv6, address by address."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// More logging (-v info, -vv debug); RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    /// No progress bar.
    #[arg(short, long, global = true, env = "V6SCOPE_QUIET")]
    quiet: bool,
    /// TOML configuration file; its keys are the long flag names
    /// (`resolver = ["192.0.2.53"]`, `profile = "nist-usgv6"`, `concurrency = 128`).
    /// Flags override environment variables, which override the file.
    #[arg(long, global = true, value_name = "FILE", env = "V6SCOPE_CONFIG")]
    config: Option<PathBuf>,
}

/// The command line with the configuration file's settings merged in
/// (flags > environment > file): the file named by `--config` or
/// `V6SCOPE_CONFIG` is a TOML table whose keys are long flag names; a key
/// may be any flag that also has a `V6SCOPE_*` variable, and sets it for
/// the commands that have that flag, unless the command line or the
/// environment already did. The list of keys is the flags' own.
fn merge_config_file(args: Vec<String>) -> Result<Vec<String>> {
    use clap::CommandFactory;
    use clap::parser::ValueSource;
    let from_args = args.iter().enumerate().find_map(|(i, a)| {
        if a == "--config" {
            args.get(i + 1).cloned()
        } else {
            a.strip_prefix("--config=").map(str::to_string)
        }
    });
    let Some(path) = from_args.or_else(|| std::env::var("V6SCOPE_CONFIG").ok()) else {
        return Ok(args);
    };
    let text = std::fs::read_to_string(&path).map_err(|e| usage(format!("reading config {path}: {e}")))?;
    let table: toml::Table = toml::from_str(&text).map_err(|e| usage(format!("config {path}: {e}")))?;
    let command = Cli::command();
    let configurable = |a: &clap::Arg| a.get_env().is_some() && a.get_long().is_some_and(|l| l != "config");
    let mut keys: Vec<&str> = command
        .get_arguments()
        .chain(command.get_subcommands().flat_map(|c| c.get_arguments()))
        .filter(|a| configurable(a))
        .filter_map(|a| a.get_long())
        .collect();
    keys.sort_unstable();
    keys.dedup();
    // A command line clap rejects is reported by the real parse below.
    let Ok(matches) = Cli::command().try_get_matches_from(&args) else {
        return Ok(args);
    };
    let (name, sub_matches) = matches.subcommand().unwrap_or(("", &matches));
    let sub = command.find_subcommand(name);
    let mut extra = Vec::new();
    for (key, value) in table {
        if key == "serve" {
            // The server's own table, read by `serve`.
            continue;
        }
        let key = key.replace('_', "-");
        if !keys.contains(&key.as_str()) {
            return Err(usage(format!(
                "config {path}: unknown key '{key}' (known: {})",
                keys.join(", ")
            )));
        }
        let Some(arg) = sub
            .into_iter()
            .flat_map(|c| c.get_arguments())
            .chain(command.get_arguments())
            .find(|a| a.get_long() == Some(key.as_str()))
        else {
            continue; // a setting for other commands
        };
        let id = arg.get_id().as_str();
        let source = sub_matches.value_source(id).or_else(|| matches.value_source(id));
        if matches!(source, Some(ValueSource::CommandLine | ValueSource::EnvVariable)) {
            continue;
        }
        let text = |v: &toml::Value| v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string());
        match value {
            toml::Value::Boolean(true) => extra.push(format!("--{key}")),
            toml::Value::Boolean(false) => {}
            toml::Value::Array(items) => extra.extend(items.iter().map(|v| format!("--{key}={}", text(v)))),
            other => extra.push(format!("--{key}={}", text(&other))),
        }
    }
    let mut args = args;
    args.extend(extra);
    Ok(args)
}

// Parsed once at start-up; the size of the largest variant does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
enum Command {
    /// Evaluate one or a few domains and explain the verdict.
    Check(CheckArgs),
    /// Evaluate a targets file (plain list or CSV) into the store.
    Scan(ScanArgs),
    /// Re-judge a stored run under a profile, without probing.
    Assess(AssessArgs),
    /// Bulk DNS lookups (A, AAAA, NS, MX) through the resolver, as JSON Lines.
    Dns(DnsArgs),
    /// List runs in the store.
    Runs(StoreArgs),
    /// List the built-in profiles.
    Profiles,
    /// Measure IPv4/IPv6 traffic and active IPv6 users from NetFlow/IPFIX/sFlow,
    /// pcap files or access logs into the store.
    Collect(collect::CollectArgs),
    /// IPv4/IPv6 traffic totals from the store per minute, hour, day or month.
    Traffic(TrafficArgs),
    /// Active IPv6 users (subscribers and addresses) over a window of days,
    /// per organisation, from the stored day sketches.
    Users(UsersArgs),
    /// List the built-in plans, or one plan's milestones (name or TOML file).
    Plans(PlansArgs),
    /// Campaigns: named target lists with categories, organisations and regions.
    #[command(subcommand)]
    Campaign(CampaignCommand),
    /// The monthly monitoring report of a campaign against a plan's
    /// milestones (Markdown, JSON, CSV, HTML or PDF).
    Report(ReportArgs),
    /// The dashboard, JSON API (/api/openapi.json), /metrics and the
    /// scheduler that runs campaigns on their schedules.
    Serve(ServeArgs),
    /// Generate a campaign judged in monthly runs, for benchmarks and
    /// browser tests (verdicts only, no observations).
    #[command(hide = true)]
    SynthStore(SynthArgs),
}

#[derive(Args)]
struct SynthArgs {
    #[arg(long)]
    campaign: String,
    #[arg(long)]
    targets: usize,
    #[arg(long, default_value_t = 12)]
    runs: usize,
    /// Month of the last run (YYYY-MM).
    #[arg(long, default_value = "2026-10")]
    last_month: String,
    #[arg(long, default_value = "cn-website")]
    profile: String,
    #[command(flatten)]
    store: StoreArgs,
}

#[derive(Args)]
struct ServeArgs {
    /// Address to listen on (repeatable); default: [serve] listen, or 127.0.0.1:8080.
    #[arg(long, value_name = "ADDR:PORT")]
    listen: Vec<SocketAddr>,
    #[command(flatten)]
    store: StoreArgs,
    /// File whose first line is the bearer token writes need (at least 16 characters).
    #[arg(long, value_name = "FILE", env = "V6SCOPE_TOKEN_FILE")]
    token_file: Option<PathBuf>,
    /// Language of pages without ?lang= (en or zh-CN).
    #[arg(long)]
    lang: Option<String>,
    /// Plan the overview judges against.
    #[arg(long)]
    plan: Option<String>,
    /// Profile whose "pass" counts as support on the pages.
    #[arg(long)]
    profile: Option<String>,
    /// Seconds between scheduler checks.
    #[arg(long, value_name = "S")]
    tick_seconds: Option<u64>,
    /// Let scans reach private and special-purpose addresses.
    #[arg(long)]
    allow_special_targets: bool,
    /// A special-purpose prefix scans may reach all the same (repeatable).
    #[arg(long = "scan-allow", value_name = "CIDR")]
    allow_targets: Vec<ipnet::IpNet>,
    /// Provider signatures (TOML) for attribution; default: the shipped set.
    #[arg(long, value_name = "FILE")]
    providers: Option<PathBuf>,
}

#[derive(Args)]
struct ReportArgs {
    /// Plan name or TOML file.
    #[arg(long, default_value = "cn-2017-action-plan")]
    plan: String,
    /// Campaign whose runs give the site-support rates, tables, changes and
    /// worst sites.
    #[arg(long, value_name = "NAME")]
    campaign: Option<String>,
    /// The month reported on (default: the month of the campaign's latest run).
    #[arg(long, value_name = "YYYY-MM")]
    period: Option<String>,
    /// Profile whose verdict "pass" counts as IPv6 support.
    #[arg(long, default_value = "internetnl")]
    profile: String,
    /// zh-CN or en.
    #[arg(long, default_value = "en")]
    lang: String,
    /// md, json, csv (long format), html (one self-contained page with inline
    /// SVG charts) or pdf (printed by headless Chromium; needs --out).
    #[arg(long, default_value = "md")]
    format: String,
    /// Write to FILE instead of standard output.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    #[command(flatten)]
    store: StoreArgs,
}

#[derive(Subcommand)]
enum CampaignCommand {
    /// Create or replace a campaign from a targets file (CSV with
    /// domain,category,organisation,region, or a domain per line).
    Import {
        name: String,
        file: PathBuf,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// List the campaigns in the store.
    List(StoreArgs),
}

#[derive(Args)]
struct PlansArgs {
    /// cn-2017-action-plan, cn-2024-work-plan, or a TOML file.
    plan: Option<String>,
    /// Language of the milestone texts: zh-CN or en.
    #[arg(long, default_value = "en")]
    lang: String,
    /// JSON output.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct UsersArgs {
    /// Window length in days ending with --until (1 = one day, 30 = the
    /// rolling 30 days).
    #[arg(long, default_value_t = 30)]
    days: u32,
    /// Last day of the window, YYYY-MM-DD (UTC); default: the latest stored day.
    #[arg(long, value_name = "DAY")]
    until: Option<String>,
    #[command(flatten)]
    store: StoreArgs,
    /// JSON output.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct TrafficArgs {
    /// minute, hour, day or month.
    #[arg(long, default_value = "day")]
    by: String,
    /// Also per exporter, interface, asn, organisation, region or source.
    #[arg(long, value_name = "DIMENSION")]
    group: Option<String>,
    #[command(flatten)]
    store: StoreArgs,
    /// JSON Lines output.
    #[arg(long)]
    json: bool,
}

#[derive(Args, Clone)]
struct ProbeArgs {
    /// Recursive resolver ADDR[:PORT] (repeatable); default: /etc/resolv.conf.
    #[arg(
        long = "resolver",
        value_name = "ADDR[:PORT]",
        env = "V6SCOPE_RESOLVER",
        value_delimiter = ','
    )]
    resolvers: Vec<String>,
    /// Treat addresses in this prefix as global (repeatable), e.g. a lab's 2001:db8::/32.
    #[arg(
        long = "allow-prefix",
        value_name = "PREFIX",
        env = "V6SCOPE_ALLOW_PREFIX",
        value_delimiter = ','
    )]
    allow_prefixes: Vec<ipnet::IpNet>,
    /// Extra trusted CA certificates (PEM), added to the web roots (repeatable).
    #[arg(
        long = "ca-file",
        value_name = "FILE",
        env = "V6SCOPE_CA_FILE",
        value_delimiter = ','
    )]
    ca_files: Vec<PathBuf>,
    /// Address queried directly to prove the vantage has working IPv4/IPv6
    /// (repeatable); default: a.root-servers.net.
    #[arg(
        long = "vantage-probe",
        value_name = "ADDR",
        env = "V6SCOPE_VANTAGE_PROBE",
        value_delimiter = ','
    )]
    vantage_probes: Vec<IpAddr>,
    /// Name that must resolve with A and AAAA, for the resolver self-test
    /// (repeatable); default: a.root-servers.net. A resolver that strips
    /// its AAAA, answers it NXDOMAIN or SERVFAIL, or rewrites NXDOMAIN makes
    /// every result not_testable, never fail.
    #[arg(long = "canary", value_name = "NAME", env = "V6SCOPE_CANARY", value_delimiter = ',')]
    canaries: Vec<String>,
    /// Profile name (internetnl, nist-usgv6) or TOML file (repeatable).
    #[arg(
        long = "profile",
        value_name = "NAME|FILE",
        env = "V6SCOPE_PROFILE",
        value_delimiter = ','
    )]
    profiles: Vec<String>,
    /// DNS query timeout in milliseconds (each attempt).
    #[arg(long, default_value_t = 2000, value_name = "MS", env = "V6SCOPE_DNS_TIMEOUT")]
    dns_timeout: u64,
    /// TCP connect timeout in milliseconds (web and mail).
    #[arg(long, default_value_t = 4000, value_name = "MS", env = "V6SCOPE_CONNECT_TIMEOUT")]
    connect_timeout: u64,
    /// Deadline for one web fetch, redirects and body included, in seconds.
    #[arg(long, default_value_t = 10, value_name = "SECS", env = "V6SCOPE_FETCH_TIMEOUT")]
    fetch_timeout: u64,
    /// Deadline for one SMTP conversation, in seconds.
    #[arg(long, default_value_t = 10, value_name = "SECS", env = "V6SCOPE_SMTP_TIMEOUT")]
    smtp_timeout: u64,
    /// Largest body read per page, in bytes.
    #[arg(long, default_value_t = 2 * 1024 * 1024, value_name = "BYTES", env = "V6SCOPE_BODY_CAP")]
    body_cap: usize,
    /// Name sent in EHLO.
    #[arg(long, default_value = "v6scope.invalid", env = "V6SCOPE_HELO_NAME")]
    helo_name: String,
    /// DNS queries per second across the run.
    #[arg(long, value_name = "QPS", env = "V6SCOPE_RATE")]
    rate: Option<NonZeroU32>,
    /// Resolver queries in flight at most (smooths bursts).
    #[arg(long, default_value_t = 512, env = "V6SCOPE_DNS_IN_FLIGHT")]
    dns_in_flight: usize,
    /// Deadline for one whole target, in seconds.
    #[arg(long, default_value_t = 60, value_name = "SECS", env = "V6SCOPE_DEADLINE")]
    deadline: u64,
    /// Resolve from the root servers with the built-in iterative resolver
    /// instead of a recursive resolver (no external resolver is trusted).
    #[arg(long, env = "V6SCOPE_ITERATIVE", conflicts_with = "resolvers")]
    iterative: bool,
    /// Root servers (named.root format) for `--iterative` and for following
    /// delegations over IPv6 only; default: the IANA root servers for
    /// `--iterative`, a priming query (. NS) through the resolver otherwise.
    #[arg(long, value_name = "FILE", env = "V6SCOPE_ROOT_HINTS")]
    root_hints: Option<PathBuf>,
}

#[derive(Args)]
struct CheckArgs {
    /// Domains to evaluate.
    #[arg(required = true)]
    domains: Vec<String>,
    #[command(flatten)]
    probe: ProbeArgs,
    /// JSON output: one object with observations and verdicts per domain.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    crawl: CrawlArgs,
}

/// The whole-site crawl (homepage, 二级 and 三级 links, sub-resources).
/// Kept with a scan's run so `--resume` crawls the same way.
#[derive(Args, Clone, serde::Serialize, serde::Deserialize)]
struct CrawlArgs {
    /// Crawl the site to level 3 over both families.
    #[arg(long)]
    crawl: bool,
    /// Pages fetched per level at most.
    #[arg(long, default_value_t = 300, value_name = "N")]
    pages_per_level: usize,
    /// Pages fetched in all at most.
    #[arg(long, default_value_t = 1000, value_name = "N")]
    max_pages: usize,
    /// Sub-resources fetched at most.
    #[arg(long, default_value_t = 500, value_name = "N")]
    max_resources: usize,
    /// URLs fetched at once during a crawl (each over both families);
    /// 16 as Scrapy's CONCURRENT_REQUESTS.
    #[arg(long, default_value_t = 16, value_name = "N")]
    crawl_concurrency: usize,
    /// Requests in flight to one server address at most during a crawl; 8 as
    /// Scrapy's CONCURRENT_REQUESTS_PER_DOMAIN (at 40 ms RTT, 4 made a
    /// 1000-page site take 13 s instead of 7).
    #[arg(long, default_value_t = 8, value_name = "N")]
    per_host: usize,
    /// Politeness delay between two requests to one server address, in
    /// milliseconds.
    #[arg(long, default_value_t = 0, value_name = "MS")]
    crawl_delay: u64,
    /// Deadline for one site's crawl, in seconds.
    #[arg(long, default_value_t = 300, value_name = "SECS")]
    crawl_deadline: u64,
    /// Homepage loads per family for the speed ratio and success rate
    /// (10 for a stability run).
    #[arg(long, default_value_t = 3, value_name = "N")]
    samples: usize,
    /// Seconds between samples.
    #[arg(long, default_value_t = 1.0, value_name = "SECS")]
    interval: f64,
    /// Crawl pages robots.txt disallows (for owners testing their own site).
    #[arg(long)]
    ignore_robots: bool,
}

impl CrawlArgs {
    fn limits(&self) -> v6scope_probe::crawl::CrawlLimits {
        v6scope_probe::crawl::CrawlLimits {
            pages_per_level: self.pages_per_level,
            total_pages: self.max_pages,
            resources: self.max_resources,
            concurrency: self.crawl_concurrency,
            per_host: self.per_host,
            delay: Duration::from_millis(self.crawl_delay),
            deadline: Duration::from_secs(self.crawl_deadline),
            samples: self.samples,
            interval: Duration::from_secs_f64(self.interval.max(0.0)),
            respect_robots: !self.ignore_robots,
        }
    }
}

#[derive(Args)]
struct StoreArgs {
    /// SQLite store file.
    #[arg(long, default_value = "v6scope.db", env = "V6SCOPE_DB")]
    db: PathBuf,
}

#[derive(Args)]
struct ScanArgs {
    /// Targets file: a domain per line, or CSV with header domain,category,organisation,region.
    file: Option<PathBuf>,
    #[command(flatten)]
    probe: ProbeArgs,
    #[command(flatten)]
    store: StoreArgs,
    /// Targets evaluated at once. Over the internet most of a target's time is
    /// round trips and timeouts, so many must be in flight to use the CPU;
    /// lowered (with a warning) when the open-files limit cannot hold them.
    #[arg(long, default_value_t = 1024, env = "V6SCOPE_CONCURRENCY")]
    concurrency: usize,
    /// Finish an interrupted run instead of starting a new one.
    #[arg(long, value_name = "RUN")]
    resume: Option<i64>,
    /// Scan a campaign's targets (v6scope campaign import) instead of a file.
    #[arg(long, value_name = "NAME")]
    campaign: Option<String>,
    #[command(flatten)]
    crawl: CrawlArgs,
    /// Write schema-versioned JSON Lines (observation + verdicts) to FILE ('-' for stdout).
    #[arg(long, value_name = "FILE")]
    jsonl: Option<PathBuf>,
    /// Write a CSV summary (one row per domain) to FILE.
    #[arg(long, value_name = "FILE")]
    csv: Option<PathBuf>,
    /// Provider signatures (TOML) for the run's attribution; default: the shipped set.
    #[arg(long, value_name = "FILE", env = "V6SCOPE_PROVIDERS")]
    providers: Option<PathBuf>,
    /// Prefix tables (operator CSV/TOML, ip-location-db CSV, MMDB) mapping
    /// addresses to AS numbers, for attributing providers by AS (repeatable).
    #[arg(
        long = "prefixes",
        value_name = "FILE",
        env = "V6SCOPE_PREFIXES",
        value_delimiter = ','
    )]
    prefixes: Vec<PathBuf>,
    /// Refuse private and special-purpose target addresses (as `serve` does).
    #[arg(long)]
    public_only: bool,
    /// With --public-only: a special-purpose prefix that may be reached all the same (repeatable).
    #[arg(long = "scan-allow", value_name = "CIDR")]
    scan_allow: Vec<ipnet::IpNet>,
    /// The server's job this scan runs (set by `serve`).
    #[arg(long, hide = true)]
    job: Option<i64>,
}

#[derive(Args)]
struct DnsArgs {
    /// Names file (same formats as scan).
    file: PathBuf,
    /// Recursive resolver ADDR[:PORT] (repeatable); default: /etc/resolv.conf.
    #[arg(
        long = "resolver",
        value_name = "ADDR[:PORT]",
        env = "V6SCOPE_RESOLVER",
        value_delimiter = ','
    )]
    resolvers: Vec<String>,
    /// Record types to ask for each name.
    #[arg(long, value_delimiter = ',', default_value = "A,AAAA,NS,MX")]
    types: Vec<String>,
    /// Queries in flight.
    #[arg(long, default_value_t = 256)]
    concurrency: usize,
    /// Query timeout in milliseconds (each attempt).
    #[arg(long, default_value_t = 2000, value_name = "MS")]
    dns_timeout: u64,
    /// Queries per second.
    #[arg(long, value_name = "QPS", env = "V6SCOPE_RATE")]
    rate: Option<NonZeroU32>,
    /// Print nothing but the summary (for benchmarks).
    #[arg(long)]
    no_output: bool,
}

#[derive(Args)]
struct AssessArgs {
    #[arg(long)]
    run: i64,
    /// Profile name or TOML file.
    #[arg(long, default_value = "internetnl")]
    profile: String,
    #[command(flatten)]
    store: StoreArgs,
    /// Print verdicts as JSON Lines.
    #[arg(long)]
    json: bool,
}

/// An error in the user's input or usage (exit code 2).
#[derive(Debug)]
pub struct UsageError(String);
impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}
impl std::error::Error for UsageError {}

pub(crate) fn usage(message: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(UsageError(message.into()))
}

fn main() -> ExitCode {
    // `v6scope ... | head` ends quietly, as Unix tools do, instead of
    // panicking on a closed pipe.
    // SAFETY: restoring a default signal disposition before any thread exists.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let args = match merge_config_file(std::env::args().collect()) {
        Ok(args) => args,
        Err(e) => {
            eprintln!("error: {e:#}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let cli = Cli::parse_from(args);
    init_logging(cli.verbose);
    // Probing commands poll every target's future from one task (a stream with
    // a concurrency bound), so a multi-thread runtime only adds a hand-off per
    // I/O event from the worker that drives the reactor to the thread that
    // polls that task: on two cores that was 15 % of a scan's CPU in context
    // switches. They get one thread that drives both; serve and collect,
    // which serve many independent connections, keep the worker pool.
    let single_threaded = matches!(cli.command, Command::Check(_) | Command::Scan(_) | Command::Dns(_));
    let mut builder = if single_threaded {
        tokio::runtime::Builder::new_current_thread()
    } else {
        tokio::runtime::Builder::new_multi_thread()
    };
    let runtime = match builder.enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: starting the async runtime: {e}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            if e.downcast_ref::<UsageError>().is_some() {
                ExitCode::from(EXIT_USAGE)
            } else {
                ExitCode::from(EXIT_FAILURE)
            }
        }
    }
}

/// Sockets one target can hold open at once (name-server probes over UDP
/// and TCP per address, web per family and scheme, SMTP), with room to spare.
const SOCKETS_PER_TARGET: u64 = 12;
/// Descriptors kept for the store, the resolver sockets and the rest.
const RESERVED_FILES: u64 = 256;

/// Raises the soft open-files limit to the hard one and returns the
/// concurrency that fits in it. Running out of descriptors mid-scan would
/// turn the measurer's limit into targets' failures (rule 1), so the scan
/// runs fewer targets at once instead, and says so.
fn fit_open_files(wanted: usize) -> usize {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit with a valid rlimit struct.
    let soft = unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return wanted;
        }
        if limit.rlim_cur < limit.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: limit.rlim_max,
                rlim_max: limit.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                limit.rlim_cur = limit.rlim_max;
            }
        }
        limit.rlim_cur
    };
    let fits = usize::try_from(soft.saturating_sub(RESERVED_FILES) / SOCKETS_PER_TARGET)
        .unwrap_or(usize::MAX)
        .max(1);
    if fits < wanted {
        tracing::warn!(
            "open-files limit {soft} holds {fits} targets at once, not {wanted}: running {fits} (raise it with ulimit -n)"
        );
        fits
    } else {
        wanted
    }
}

fn init_logging(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

async fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Check(args) => check(args).await,
        Command::Scan(args) => scan(args, cli.quiet).await,
        Command::Assess(args) => reassess(args),
        Command::Dns(args) => bulk_dns(args, cli.quiet).await,
        Command::Runs(args) => runs(args),
        Command::Collect(args) => collect::collect(args).await,
        Command::Traffic(args) => traffic(args),
        Command::Users(args) => users(args),
        Command::Plans(args) => plans(args),
        Command::Campaign(command) => campaign(command),
        Command::Report(args) => report(args),
        Command::Serve(args) => serve(args, cli.config).await,
        Command::SynthStore(args) => {
            let mut store = Store::open(&args.store.db)?;
            v6scope_server::synth::generate(
                &mut store,
                &args.campaign,
                args.targets,
                args.runs,
                &args.last_month,
                &args.profile,
                |line| eprintln!("{line}"),
            )?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Profiles => {
            for p in Profile::builtin() {
                println!("{:<12} {}", p.name, p.title);
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn parse_resolver(s: &str) -> Result<SocketAddr> {
    if let Ok(sa) = s.parse::<SocketAddr>() {
        return Ok(sa);
    }
    if let Ok(ip) = s.trim_matches(['[', ']']).parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, 53));
    }
    Err(usage(format!(
        "--resolver '{s}' is not ADDR or ADDR:PORT ([v6]:port for IPv6)"
    )))
}

fn load_profiles(names: &[String]) -> Result<Vec<Profile>> {
    let names: Vec<String> = if names.is_empty() {
        vec!["internetnl".into()]
    } else {
        names.to_vec()
    };
    names
        .iter()
        .map(|n| Profile::load(n).map_err(|e| usage(e.to_string())))
        .collect()
}

const DEFAULT_VANTAGE_PROBES: [&str; 2] = ["198.41.0.4", "2001:503:ba3e::2:30"];

/// The prober, the vantage (its families and the resolver self-test) and
/// the watch that repeats the self-test during a run.
async fn setup(
    args: &ProbeArgs,
    scan_policy: v6scope_probe::policy::AddressPolicy,
) -> Result<(Arc<Prober>, Vantage, Arc<v6scope_probe::health::Watch>)> {
    let resolvers = if args.iterative {
        Vec::new()
    } else if args.resolvers.is_empty() {
        v6scope_probe::resolv_conf_servers("/etc/resolv.conf").map_err(|e| usage(e.to_string()))?
    } else {
        args.resolvers
            .iter()
            .map(|r| parse_resolver(r))
            .collect::<Result<_>>()?
    };
    let mut config = ProbeConfig::with_resolvers(resolvers);
    config.scan_policy = scan_policy;
    if args.iterative {
        let roots = match &args.root_hints {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| usage(format!("reading root hints {}: {e}", path.display())))?;
                let roots = v6scope_probe::root_hint_addresses(&text);
                if roots.is_empty() {
                    return Err(usage(format!("root hints {}: no A or AAAA record", path.display())));
                }
                roots
            }
            None => v6scope_probe::IANA_ROOTS
                .iter()
                .map(|a| a.parse().expect("static address"))
                .collect(),
        };
        config.iterative_roots = Some(roots);
    }
    config.dns_timeout = Duration::from_millis(args.dns_timeout);
    config.allow_prefixes = args.allow_prefixes.clone();
    config.web.ca_files = args.ca_files.clone();
    config.web.connect_timeout = Duration::from_millis(args.connect_timeout);
    config.web.deadline = Duration::from_secs(args.fetch_timeout);
    config.web.body_cap = args.body_cap;
    config.smtp.connect_timeout = Duration::from_millis(args.connect_timeout);
    config.smtp.deadline = Duration::from_secs(args.smtp_timeout);
    config.smtp.helo_name = args.helo_name.clone();
    config.rate = args.rate;
    config.dns_in_flight = args.dns_in_flight;
    let dns_timeout = config.dns_timeout;
    let prober = Prober::new(config).map_err(|e| usage(e.to_string()))?;
    let subject = v6scope_probe::health::Subject::of(prober.resolver());
    let probes: Vec<IpAddr> = if args.vantage_probes.is_empty() {
        DEFAULT_VANTAGE_PROBES
            .iter()
            .map(|s| s.parse().expect("static address"))
            .collect()
    } else {
        args.vantage_probes.clone()
    };
    let mut vantage = prober.vantage(&probes).await;
    let canaries: Vec<String> = if args.canaries.is_empty() {
        v6scope_probe::health::DEFAULT_CANARIES
            .iter()
            .map(|c| c.to_string())
            .collect()
    } else {
        args.canaries.clone()
    };
    let health = v6scope_probe::health::check_resolvers(&subject, &canaries, dns_timeout).await;
    tracing::info!(detail = ?health.detail, "resolver self-test");
    for problem in &health.problems {
        eprintln!("warning: {problem}; results from this vantage are not_testable");
    }
    vantage.resolver_problems = health.problems.clone();
    vantage.detail.extend(health.detail.iter().cloned());
    let watch = Arc::new(v6scope_probe::health::Watch::new(
        subject,
        canaries,
        dns_timeout,
        health,
    ));
    tracing::info!(ipv4 = vantage.ipv4, ipv6 = vantage.ipv6, detail = ?vantage.detail, "vantage checked");
    if !vantage.ipv6 {
        eprintln!("warning: this vantage point has no working IPv6; IPv6 checks will be not_testable");
    }
    if !vantage.ipv4 {
        eprintln!(
            "warning: this vantage point has no working IPv4; the IPv4/IPv6 comparison (web_ipv46) will be not_testable"
        );
    }
    Ok((prober, vantage, watch))
}

async fn evaluate_with_deadline(
    prober: &Arc<Prober>,
    target: Target,
    vantage: &Vantage,
    deadline: Duration,
) -> DomainObservation {
    if !vantage.resolver_problems.is_empty() {
        // Nothing a faulty resolver says is worth probing on.
        let why = format!("faulty resolver: {}", vantage.resolver_problems.join("; "));
        return unprobed(target, vantage, 0.0, ProbeError::new(ErrorKind::NotTestable, why));
    }
    let fallback = target.clone();
    match tokio::time::timeout(deadline, prober.evaluate(target, vantage)).await {
        Ok(observation) => observation,
        Err(_) => {
            let why = format!("target deadline of {} s reached", deadline.as_secs());
            let ms = deadline.as_secs_f64() * 1000.0;
            unprobed(fallback, vantage, ms, ProbeError::new(ErrorKind::Timeout, why))
        }
    }
}

/// An observation with no facts, only the reason there are none.
fn unprobed(target: Target, vantage: &Vantage, duration_ms: f64, error: ProbeError) -> DomainObservation {
    DomainObservation {
        schema_version: SCHEMA_VERSION,
        target,
        started_at_ms: 0,
        duration_ms,
        vantage: vantage.clone(),
        names: Vec::new(),
        zone: Default::default(),
        mail: v6scope_model::MailObservation {
            status: v6scope_model::MxStatus::Error,
            hosts: Vec::new(),
            error: None,
        },
        web: Vec::new(),
        site: None,
        error: Some(error),
    }
}

/// Root servers from `--root-hints`, or by priming through the resolver
/// (a failed priming query is recorded per target, not fatal).
async fn root_servers(
    prober: &v6scope_probe::Prober,
    hints: Option<&std::path::Path>,
) -> Result<Result<v6scope_probe::v6path::RootServers, ProbeError>> {
    match hints {
        Some(path) => Ok(Ok(v6scope_probe::v6path::RootServers::from_hints(
            &path.display().to_string(),
        )
        .map_err(|e| usage(e.to_string()))?)),
        None => Ok(prober.prime_roots().await),
    }
}

async fn v6_delegation(
    prober: &v6scope_probe::Prober,
    zone: &str,
    roots: &Result<v6scope_probe::v6path::RootServers, ProbeError>,
) -> v6scope_model::V6Delegation {
    match roots {
        Ok(roots) => prober.v6_delegation(zone, roots).await,
        Err(e) => v6scope_model::V6Delegation {
            roots_from: "priming query (. NS)".into(),
            error: Some(e.clone()),
            ..Default::default()
        },
    }
}

/// The whole-site part of an evaluation, when the profiles or `--crawl`
/// ask for it.
struct SiteWork {
    limits: Option<v6scope_probe::crawl::CrawlLimits>,
    roots: Option<Result<v6scope_probe::v6path::RootServers, ProbeError>>,
}

impl SiteWork {
    async fn new(
        prober: &v6scope_probe::Prober,
        vantage: &Vantage,
        crawl: &CrawlArgs,
        root_hints: Option<&std::path::Path>,
        profiles: &[Profile],
    ) -> Result<SiteWork> {
        // Profiles that judge a whole site crawl it without being asked.
        let wanted = crawl.crawl || profiles.iter().any(|p| p.kind == v6scope_assess::Kind::CnWebsite);
        // The delegation is followed over IPv6 only when the vantage has IPv6.
        let roots = if wanted && vantage.ipv6 {
            Some(root_servers(prober, root_hints).await?)
        } else {
            None
        };
        Ok(SiteWork {
            limits: wanted.then(|| crawl.limits()),
            roots,
        })
    }
}

/// One target: the evaluation within its deadline, then the site crawl and
/// the IPv6-only delegation walk when asked for.
async fn observe(
    prober: &Arc<v6scope_probe::Prober>,
    target: Target,
    vantage: &Vantage,
    deadline: Duration,
    site: &SiteWork,
) -> DomainObservation {
    let domain = target.domain.clone();
    let mut observation = evaluate_with_deadline(prober, target, vantage, deadline).await;
    if let Some(limits) = &site.limits {
        observation.site = Some(prober.crawl(&domain, vantage, limits).await);
        if let Some(roots) = &site.roots {
            observation.zone.v6_delegation = Some(v6_delegation(prober, &observation.zone.zone, roots).await);
        }
    }
    observation
}

async fn check(args: CheckArgs) -> Result<ExitCode> {
    let profiles = load_profiles(&args.probe.profiles)?;
    let mut domains = Vec::new();
    for d in &args.domains {
        let domain = targets::normalise_domain(d).map_err(|e| usage(format!("{d}: {e}")))?;
        domains.push(domain);
    }
    let (prober, vantage, _watch) = setup(&args.probe, v6scope_probe::policy::AddressPolicy::open()).await?;
    let deadline = Duration::from_secs(args.probe.deadline);
    let site = SiteWork::new(
        &prober,
        &vantage,
        &args.crawl,
        args.probe.root_hints.as_deref(),
        &profiles,
    )
    .await?;
    let observations = futures::future::join_all(domains.into_iter().map(|domain| {
        let target = Target {
            domain,
            ..Default::default()
        };
        observe(&prober, target, &vantage, deadline, &site)
    }))
    .await;
    let (mut any_fail, mut any_untested) = (false, false);
    let mut documents = Vec::new();
    for observation in &observations {
        let verdicts: Vec<Verdict> = profiles.iter().map(|p| assess(observation, p)).collect();
        any_fail |= verdicts.iter().any(|v| v.status == Status::Fail);
        any_untested |= verdicts
            .iter()
            .any(|v| matches!(v.status, Status::NotTestable | Status::Error));
        if args.json {
            documents.push(serde_json::json!({
                "schema_version": SCHEMA_VERSION,
                "domain": observation.target.domain,
                "verdicts": verdicts,
                "observation": observation,
            }));
        } else {
            print!("{}", render::explain(observation, &verdicts));
        }
    }
    if args.json {
        let value = if documents.len() == 1 {
            documents.remove(0)
        } else {
            serde_json::Value::Array(documents)
        };
        println!("{}", serde_json::to_string_pretty(&value)?);
    }
    // 0 only when everything was tested and passed: a result that could not
    // be tested has its own code (4), never "all pass".
    Ok(if any_fail {
        ExitCode::from(1)
    } else if any_untested {
        ExitCode::from(EXIT_NOT_TESTABLE)
    } else {
        ExitCode::SUCCESS
    })
}

/// How often a scan repeats the resolver self-test in the background.
const RESOLVER_CHECK_EVERY: Duration = Duration::from_secs(5);

/// How long a scan waits for failing resolvers before it stops (resumable).
const RESOLVER_WAIT: Duration = Duration::from_secs(600);

/// `check`: no target failed, but some result is not_testable or error.
const EXIT_NOT_TESTABLE: u8 = 4;

/// What the scan writer thread receives.
struct Finished {
    idx: i64,
    observation: DomainObservation,
    verdicts: Vec<Verdict>,
}

/// Writes finished targets to the store in batches on its own thread, so
/// SQLite never blocks the probes.
fn spawn_store_writer(
    mut store: Store,
    run: i64,
) -> (
    std::sync::mpsc::SyncSender<Finished>,
    std::thread::JoinHandle<Result<Store>>,
) {
    let (tx, rx) = std::sync::mpsc::sync_channel::<Finished>(1024);
    let handle = std::thread::spawn(move || -> Result<Store> {
        let mut batch: Vec<Finished> = Vec::new();
        let flush = |store: &mut Store, batch: &mut Vec<Finished>| -> Result<()> {
            if batch.is_empty() {
                return Ok(());
            }
            let results: Vec<TargetResult<'_>> = batch
                .iter()
                .map(|f| TargetResult {
                    idx: f.idx,
                    observation: &f.observation,
                    verdicts: &f.verdicts,
                })
                .collect();
            store.save_results(run, &results).context("saving results")?;
            batch.clear();
            Ok(())
        };
        loop {
            match rx.recv_timeout(Duration::from_millis(250)) {
                Ok(item) => {
                    batch.push(item);
                    if batch.len() >= 200 {
                        flush(&mut store, &mut batch)?;
                    }
                }
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => flush(&mut store, &mut batch)?,
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                    flush(&mut store, &mut batch)?;
                    return Ok(store);
                }
            }
        }
    });
    (tx, handle)
}

fn open_output(path: &Option<PathBuf>) -> Result<Option<Box<dyn Write + Send>>> {
    Ok(match path {
        None => None,
        Some(p) if p.as_os_str() == "-" => Some(Box::new(std::io::BufWriter::new(std::io::stdout()))),
        Some(p) => Some(Box::new(std::io::BufWriter::new(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
                .with_context(|| format!("opening {}", p.display()))?,
        ))),
    })
}

/// A targets file, its bad lines and duplicates reported (never fatal).
fn read_targets(file: &std::path::Path) -> Result<Vec<Target>> {
    let bytes = std::fs::read(file).map_err(|e| usage(format!("reading {}: {e}", file.display())))?;
    let text = String::from_utf8_lossy(&bytes);
    let parsed = targets::parse(&text);
    for bad in &parsed.bad {
        eprintln!("{}:{}: skipped: {}", file.display(), bad.line, bad.reason);
    }
    if parsed.duplicates > 0 {
        eprintln!("{}: {} duplicate domain(s) skipped", file.display(), parsed.duplicates);
    }
    if parsed.targets.is_empty() {
        return Err(usage(format!("{}: no valid targets", file.display())));
    }
    Ok(parsed.targets)
}

async fn scan(mut args: ScanArgs, quiet: bool) -> Result<ExitCode> {
    let mut store =
        Store::open(&args.store.db).with_context(|| format!("opening store {}", args.store.db.display()))?;
    let (run, pending, profiles) = match args.resume {
        Some(run) => {
            let info = store.run(run).map_err(|e| usage(e.to_string()))?;
            let profiles = load_profiles(&info.profiles)?;
            inherit_probe_settings(&mut args.probe, &info.config);
            if let Some(crawl) = serde_json::from_str::<serde_json::Value>(&info.config)
                .ok()
                .and_then(|c| serde_json::from_value::<CrawlArgs>(c["crawl"].clone()).ok())
            {
                args.crawl = crawl;
            }
            let pending = store.pending_targets(run)?;
            eprintln!(
                "resuming run {run} ({}): {} of {} targets left",
                info.source,
                pending.len(),
                info.targets
            );
            (run, pending, profiles)
        }
        None => {
            let profiles = load_profiles(&args.probe.profiles)?;
            let (source, targets) = match (&args.file, &args.campaign) {
                (Some(file), None) => (file.display().to_string(), read_targets(file)?),
                (None, Some(campaign)) => {
                    let targets = store.campaign_targets(campaign)?.ok_or_else(|| {
                        usage(format!(
                            "no campaign '{campaign}' in the store (v6scope campaign import)"
                        ))
                    })?;
                    if targets.is_empty() {
                        return Err(usage(format!("campaign '{campaign}' has no targets")));
                    }
                    (format!("campaign:{campaign}"), targets)
                }
                (Some(_), Some(_)) => return Err(usage("give a targets FILE or --campaign NAME, not both")),
                (None, None) => return Err(usage("give a targets FILE, --campaign NAME, or --resume RUN")),
            };
            let names: Vec<String> = profiles.iter().map(|p| p.name.clone()).collect();
            let config = serde_json::json!({
                "resolvers": args.probe.resolvers,
                "allow_prefixes": args.probe.allow_prefixes.iter().map(|p| p.to_string()).collect::<Vec<_>>(),
                "ca_files": args.probe.ca_files,
                "vantage_probes": args.probe.vantage_probes,
                "canaries": args.probe.canaries,
                "crawl": args.crawl,
            });
            let run = store.create_run(&source, &names, &config.to_string())?;
            store.add_targets(run, &targets)?;
            let pending = targets.into_iter().enumerate().map(|(i, t)| (i as i64, t)).collect();
            eprintln!("run {run}: {} targets", store.run(run)?.targets);
            (run, pending, profiles)
        }
    };
    if let Some(job) = args.job {
        store.attach_job(job, run)?;
    }
    let providers = load_providers(&args.providers)?;
    // Loaded before the scan so that a bad file stops it at once.
    let mut table = v6scope_flow::enrich::PrefixTable::default();
    for path in &args.prefixes {
        table.load(path).map_err(|e| usage(e.to_string()))?;
    }
    let policy = if args.public_only {
        public_only_policy(&args.probe, &args.scan_allow)?
    } else {
        v6scope_probe::policy::AddressPolicy::open()
    };
    let (prober, vantage, watch) = setup(&args.probe, policy).await?;
    if !vantage.resolver_problems.is_empty() {
        // A run is never judged against a faulty resolver.
        bail!(
            "run {run} not started: the resolver self-test failed ({}); fix the resolver (or --resolver) and resume with --resume {run}",
            vantage.resolver_problems.join("; ")
        );
    }
    let site = SiteWork::new(
        &prober,
        &vantage,
        &args.crawl,
        args.probe.root_hints.as_deref(),
        &profiles,
    )
    .await?;
    let site = &site;
    let total = pending.len() as u64;
    let bar = ProgressBar::new(total);
    if quiet || !std::io::stderr().is_terminal() {
        bar.set_draw_target(ProgressDrawTarget::hidden());
    }
    bar.set_style(
        ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:40} {pos}/{len} {per_sec} eta {eta} {msg}")
            .expect("static template"),
    );
    let (tx, writer) = spawn_store_writer(store, run);
    let mut jsonl = open_output(&args.jsonl)?;
    let mut csv_out = match &args.csv {
        Some(p) => {
            let mut w = csv::Writer::from_path(p).with_context(|| format!("creating {}", p.display()))?;
            let mut header = vec![
                "domain".to_string(),
                "category".into(),
                "organisation".into(),
                "region".into(),
            ];
            for p in &profiles {
                header.push(format!("{}_status", p.name));
                header.push(format!("{}_score", p.name));
            }
            w.write_record(&header)?;
            Some(w)
        }
        None => None,
    };
    let deadline = Duration::from_secs(args.probe.deadline);
    let concurrency = fit_open_files(args.concurrency.max(1));
    let mut tally: BTreeMap<(String, Status), u64> = BTreeMap::new();
    // Targets whose result came while the resolvers were failing are
    // evaluated again once they are healthy (rounds below).
    let mut pending = pending;
    let mut round = 0;
    let ticker = watch.spawn_ticker(RESOLVER_CHECK_EVERY);
    loop {
        let mut retry: Vec<(i64, Target)> = Vec::new();
        let mut stream = futures::stream::iter(pending.into_iter().map(|(idx, target)| {
            let prober = prober.clone();
            let vantage = vantage.clone();
            let watch = watch.clone();
            async move {
                let faults = watch.faults();
                let observation = observe(&prober, target, &vantage, deadline, site).await;
                let suspicious = v6scope_probe::health::looks_like_resolver_failure(&observation);
                let trusted = watch.health(suspicious).await.healthy() && watch.faults() == faults;
                (idx, observation, trusted)
            }
        }))
        .buffer_unordered(concurrency);
        while let Some((idx, observation, trusted)) = stream.next().await {
            if !trusted {
                bar.set_message(format!("resolver failing: {} to retry", retry.len() + 1));
                retry.push((idx, observation.target));
                continue;
            }
            let verdicts: Vec<Verdict> = profiles.iter().map(|p| assess(&observation, p)).collect();
            for v in &verdicts {
                *tally.entry((v.profile.clone(), v.status)).or_default() += 1;
            }
            if let Some(out) = jsonl.as_mut() {
                let line = serde_json::json!({
                    "schema_version": SCHEMA_VERSION,
                    "run_id": run,
                    "idx": idx,
                    "domain": observation.target.domain,
                    "verdicts": verdicts,
                    "observation": observation,
                });
                writeln!(out, "{line}")?;
            }
            if let Some(w) = csv_out.as_mut() {
                let t = &observation.target;
                let mut row = vec![
                    t.domain.clone(),
                    t.category.clone().unwrap_or_default(),
                    t.organisation.clone().unwrap_or_default(),
                    t.region.clone().unwrap_or_default(),
                ];
                for v in &verdicts {
                    row.push(v.status.to_string());
                    row.push(format!("{:.0}", v.score));
                }
                w.write_record(&row)?;
            }
            bar.set_message(observation.target.domain.clone());
            bar.inc(1);
            if tx
                .send(Finished {
                    idx,
                    observation,
                    verdicts,
                })
                .is_err()
            {
                break;
            }
        }
        drop(stream);
        if retry.is_empty() {
            break;
        }
        round += 1;
        // Wait for the resolvers (up to 10 minutes), then evaluate again.
        let mut waited = Duration::ZERO;
        while !watch.health(true).await.healthy() {
            if waited >= RESOLVER_WAIT || round > 3 {
                drop(tx);
                let _ = writer.join();
                bail!(
                    "run {run}: the resolvers kept failing ({} targets not evaluated); the run is kept: finish it with --resume {run}",
                    retry.len()
                );
            }
            tokio::time::sleep(Duration::from_secs(5)).await;
            waited += Duration::from_secs(5);
        }
        eprintln!(
            "run {run}: the resolvers answer again; evaluating {} targets again",
            retry.len()
        );
        pending = retry;
    }
    ticker.abort();
    drop(tx);
    bar.finish_and_clear();
    if let Some(mut out) = jsonl {
        out.flush()?;
    }
    if let Some(mut w) = csv_out {
        w.flush()?;
    }
    let mut store = writer.join().map_err(|_| anyhow::anyhow!("store writer panicked"))??;
    store.finish_run(run)?;
    let info = store.run(run)?;
    eprintln!("run {run}: {} of {} targets evaluated", info.done, info.targets);
    let asn_of = |address: IpAddr| Some(table.label(address).asn).filter(|asn| *asn != 0);
    let summary = v6scope_report::history::summarise_run(&mut store, run, &providers, &asn_of)?;
    if summary.regressions + summary.improvements > 0 {
        eprintln!(
            "  against the previous run: {} regressions, {} improvements",
            summary.regressions, summary.improvements
        );
    }
    for ((profile, status), n) in &tally {
        eprintln!("  {profile}: {status} {n}");
    }
    Ok(ExitCode::SUCCESS)
}

async fn bulk_dns(args: DnsArgs, quiet: bool) -> Result<ExitCode> {
    use v6scope_probe::dns::{RecordType, Resolver, parse_name};
    let resolvers: Vec<SocketAddr> = if args.resolvers.is_empty() {
        v6scope_probe::resolv_conf_servers("/etc/resolv.conf").map_err(|e| usage(e.to_string()))?
    } else {
        args.resolvers
            .iter()
            .map(|r| parse_resolver(r))
            .collect::<Result<_>>()?
    };
    let types: Vec<RecordType> = args
        .types
        .iter()
        .map(|t| {
            t.to_ascii_uppercase()
                .parse::<RecordType>()
                .map_err(|_| usage(format!("unknown record type '{t}'")))
        })
        .collect::<Result<_>>()?;
    let bytes = std::fs::read(&args.file).map_err(|e| usage(format!("reading {}: {e}", args.file.display())))?;
    let parsed = targets::parse(&String::from_utf8_lossy(&bytes));
    for bad in &parsed.bad {
        eprintln!("{}:{}: skipped: {}", args.file.display(), bad.line, bad.reason);
    }
    let limiter = args
        .rate
        .map(|qps| Arc::new(governor::RateLimiter::direct(governor::Quota::per_second(qps))));
    let resolver = Resolver::new(resolvers, Duration::from_millis(args.dns_timeout), 2, limiter)
        .with_max_in_flight(args.concurrency.max(1));
    let jobs: Vec<(String, RecordType)> = parsed
        .targets
        .iter()
        .flat_map(|t| types.iter().map(move |ty| (t.domain.clone(), *ty)))
        .collect();
    let bar = ProgressBar::new(jobs.len() as u64);
    if quiet || !std::io::stderr().is_terminal() {
        bar.set_draw_target(ProgressDrawTarget::hidden());
    }
    let started = std::time::Instant::now();
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut stream = futures::stream::iter(jobs.into_iter().map(|(name, rtype)| {
        let resolver = resolver.clone();
        async move {
            let outcome = match parse_name(&name) {
                Ok(n) => resolver.query(&n, rtype).await,
                Err(e) => Err(e),
            };
            (name, rtype, outcome)
        }
    }))
    .buffer_unordered(args.concurrency.max(1));
    let (mut answered, mut failed) = (0u64, 0u64);
    while let Some((name, rtype, outcome)) = stream.next().await {
        bar.inc(1);
        let line = match outcome {
            Ok(answer) => {
                answered += 1;
                if args.no_output {
                    continue;
                }
                serde_json::json!({
                    "name": name,
                    "type": rtype.to_string(),
                    "rcode": v6scope_probe::dns::rcode_name(answer.rcode()),
                    "flags": answer.flags(),
                    "rtt_ms": answer.rtt.as_secs_f64() * 1000.0,
                    "answers": answer.message.answers.iter().map(|r| r.to_string()).collect::<Vec<_>>(),
                })
            }
            Err(e) => {
                failed += 1;
                if args.no_output {
                    continue;
                }
                serde_json::json!({"name": name, "type": rtype.to_string(), "error": e})
            }
        };
        writeln!(out, "{line}")?;
    }
    out.flush()?;
    bar.finish_and_clear();
    let elapsed = started.elapsed().as_secs_f64();
    eprintln!(
        "{} queries in {elapsed:.2} s ({:.0} queries/s): {answered} answered, {failed} failed",
        answered + failed,
        (answered + failed) as f64 / elapsed
    );
    Ok(ExitCode::SUCCESS)
}

/// A resumed run probes the way it started unless told otherwise.
fn inherit_probe_settings(probe: &mut ProbeArgs, stored: &str) {
    let Ok(config) = serde_json::from_str::<serde_json::Value>(stored) else {
        return;
    };
    let strings = |key: &str| -> Vec<String> {
        config[key]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect()
    };
    if probe.resolvers.is_empty() {
        probe.resolvers = strings("resolvers");
    }
    if probe.allow_prefixes.is_empty() {
        probe.allow_prefixes = strings("allow_prefixes")
            .iter()
            .filter_map(|p| p.parse().ok())
            .collect();
    }
    if probe.ca_files.is_empty() {
        probe.ca_files = strings("ca_files").into_iter().map(PathBuf::from).collect();
    }
    if probe.vantage_probes.is_empty() {
        probe.vantage_probes = strings("vantage_probes")
            .iter()
            .filter_map(|p| p.parse().ok())
            .collect();
    }
    if probe.canaries.is_empty() {
        probe.canaries = strings("canaries");
    }
}

fn load_providers(path: &Option<PathBuf>) -> Result<v6scope_assess::providers::Providers> {
    match path {
        Some(p) => v6scope_assess::providers::Providers::load(p).map_err(|e| usage(e.to_string())),
        None => Ok(v6scope_assess::providers::Providers::builtin()),
    }
}

/// The policy of `--public-only`: special-purpose addresses are refused,
/// except the allowed prefixes and the resolvers the operator configured.
fn public_only_policy(probe: &ProbeArgs, allowed: &[ipnet::IpNet]) -> Result<v6scope_probe::policy::AddressPolicy> {
    use v6scope_probe::policy::AddressPolicy;
    let mut allow = allowed.to_vec();
    let resolvers: Vec<SocketAddr> = if probe.resolvers.is_empty() {
        v6scope_probe::resolv_conf_servers("/etc/resolv.conf").map_err(|e| usage(e.to_string()))?
    } else {
        probe
            .resolvers
            .iter()
            .map(|r| parse_resolver(r))
            .collect::<Result<_>>()?
    };
    allow.extend(resolvers.iter().map(|r| ipnet::IpNet::from(r.ip())));
    allow.extend(probe.vantage_probes.iter().map(|a| ipnet::IpNet::from(*a)));
    Ok(AddressPolicy::public_only(allow))
}

/// The `[serve]` table of the configuration file, if there is one.
fn serve_table(path: &Option<PathBuf>) -> Result<toml::Table> {
    let Some(path) = path else {
        return Ok(toml::Table::new());
    };
    let text = std::fs::read_to_string(path).map_err(|e| usage(format!("reading config {}: {e}", path.display())))?;
    let mut table: toml::Table = toml::from_str(&text).map_err(|e| usage(format!("config {}: {e}", path.display())))?;
    Ok(match table.remove("serve") {
        Some(toml::Value::Table(t)) => t,
        Some(_) => bail!(usage("config: [serve] must be a table")),
        None => toml::Table::new(),
    })
}

async fn serve(args: ServeArgs, config_file: Option<PathBuf>) -> Result<ExitCode> {
    use v6scope_server::{Lang, Scanner, ServerConfig};
    let table = serve_table(&config_file)?;
    let mut config: ServerConfig = toml::Value::Table(table)
        .try_into()
        .map_err(|e| usage(format!("config [serve]: {e}")))?;
    if !args.listen.is_empty() {
        config.listen = args.listen;
    }
    if args.token_file.is_some() {
        config.token_file = args.token_file;
    }
    if let Some(lang) = &args.lang {
        config.lang = Lang::parse(lang).ok_or_else(|| usage(format!("--lang {lang}: en or zh-CN")))?;
    }
    if let Some(plan) = args.plan {
        // A file given here is offered by its name, like `plan_files`.
        if plan.ends_with(".toml") || plan.contains('/') {
            let loaded = v6scope_report::plan::Plan::load(&plan).map_err(|e| usage(e.to_string()))?;
            config.plan_files.push(PathBuf::from(&plan));
            config.plan = loaded.name;
        } else {
            config.plan = plan;
        }
    }
    if let Some(profile) = args.profile {
        config.profile = profile;
    }
    if let Some(tick) = args.tick_seconds {
        config.tick_seconds = tick;
    }
    config.allow_special_targets |= args.allow_special_targets;
    config.allow_targets.extend(args.allow_targets);
    if args.providers.is_some() {
        config.providers = args.providers;
    }
    // The file's probe settings reach the server's scans through the same
    // `--config` (a scan merges it as every command does).
    let leading_args = match &config_file {
        Some(path) => {
            let path = std::fs::canonicalize(path).unwrap_or_else(|_| path.clone());
            vec!["--config".to_string(), path.display().to_string()]
        }
        None => Vec::new(),
    };
    let scanner = Scanner {
        program: std::env::current_exe().context("locating the v6scope binary for scans")?,
        leading_args,
    };
    v6scope_server::serve(config, args.store.db, scanner)
        .await
        .map_err(|e| usage(e.to_string()))?;
    Ok(ExitCode::SUCCESS)
}

fn reassess(args: AssessArgs) -> Result<ExitCode> {
    let profile = Profile::load(&args.profile).map_err(|e| usage(e.to_string()))?;
    let mut store =
        Store::open(&args.store.db).with_context(|| format!("opening store {}", args.store.db.display()))?;
    store.run(args.run).map_err(|e| usage(e.to_string()))?;
    let mut verdicts = Vec::new();
    store.for_each_observation(args.run, |idx, observation| {
        verdicts.push((idx, assess(&observation, &profile)));
    })?;
    store.save_verdicts(args.run, &verdicts)?;
    v6scope_report::history::summarise_run(&mut store, args.run, &load_providers(&None)?, &|_| None)?;
    let mut tally: BTreeMap<Status, u64> = BTreeMap::new();
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    for (_, v) in &verdicts {
        *tally.entry(v.status).or_default() += 1;
        if args.json {
            writeln!(out, "{}", serde_json::to_string(v)?)?;
        }
    }
    eprintln!(
        "run {}: {} targets judged under {}",
        args.run,
        verdicts.len(),
        profile.name
    );
    for (status, n) in tally {
        eprintln!("  {status}: {n}");
    }
    Ok(ExitCode::SUCCESS)
}

fn report(args: ReportArgs) -> Result<ExitCode> {
    // The report itself lives in the library, so the server makes the same one.
    use v6scope_report::monthly::{self, ReportRequest};
    let zh = match args.lang.as_str() {
        "zh-CN" | "zh" => true,
        "en" => false,
        other => bail!(usage(format!("--lang {other}: zh-CN or en"))),
    };
    let format = args.format.as_str();
    if !matches!(format, "md" | "json" | "html" | "csv" | "pdf") {
        bail!(usage(format!("--format {format}: md, json, html, csv or pdf")));
    }
    if format == "pdf" && args.out.is_none() {
        bail!(usage("--format pdf needs --out FILE"));
    }
    if !args.store.db.exists() {
        bail!(usage(format!("no store at {}", args.store.db.display())));
    }
    let store = Store::open(&args.store.db)?;
    let plan = v6scope_report::plan::Plan::load(&args.plan).map_err(|e| usage(e.to_string()))?;
    let request = ReportRequest {
        campaign: args.campaign,
        period: args.period,
        plan,
        profile: args.profile,
        zh,
    };
    let report = monthly::build(&store, &request).map_err(|e| {
        if e.is_usage() {
            usage(e.to_string())
        } else {
            anyhow::Error::new(e)
        }
    })?;
    let text = match format {
        "json" => monthly::json(&report),
        "csv" => monthly::csv(&report),
        "html" => monthly::html(&report),
        "pdf" => {
            let out = args.out.as_deref().unwrap_or(std::path::Path::new("report.pdf"));
            monthly::pdf(&monthly::html(&report), out)?;
            return Ok(ExitCode::SUCCESS);
        }
        _ => monthly::markdown(&report),
    };
    match &args.out {
        Some(path) => std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?,
        None => print!("{text}"),
    }
    Ok(ExitCode::SUCCESS)
}

fn campaign(command: CampaignCommand) -> Result<ExitCode> {
    match command {
        CampaignCommand::Import { name, file, store } => {
            if name.trim().is_empty() || name.len() > 200 {
                bail!(usage("a campaign name of 1 to 200 characters"));
            }
            let targets = read_targets(&file)?;
            let mut store = Store::open(&store.db).with_context(|| format!("opening store {}", store.db.display()))?;
            store.put_campaign(&name, &targets)?;
            let mut by_category: BTreeMap<String, usize> = BTreeMap::new();
            for t in &targets {
                *by_category.entry(t.category.clone().unwrap_or_default()).or_default() += 1;
            }
            println!("campaign {name}: {} targets", targets.len());
            for (category, n) in by_category {
                println!(
                    "  {:<32} {n}",
                    if category.is_empty() {
                        "(no category)"
                    } else {
                        &category
                    }
                );
            }
        }
        CampaignCommand::List(store) => {
            if !store.db.exists() {
                bail!(usage(format!("no store at {}", store.db.display())));
            }
            let store = Store::open(&store.db)?;
            println!("{:<32}  {:<20}  {:>8}", "campaign", "created", "targets");
            for (name, created, n) in store.campaigns()? {
                println!("{name:<32}  {created:<20}  {n:>8}");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn plans(args: PlansArgs) -> Result<ExitCode> {
    use v6scope_report::plan::{Plan, builtin_names};
    let zh = match args.lang.as_str() {
        "zh-CN" | "zh" => true,
        "en" => false,
        other => bail!(usage(format!("--lang {other}: zh-CN or en"))),
    };
    let Some(name) = &args.plan else {
        for name in builtin_names() {
            let plan = Plan::load(name)?;
            println!("{name:<24}  {}", if zh { &plan.title_zh } else { &plan.title_en });
        }
        return Ok(ExitCode::SUCCESS);
    };
    let plan = Plan::load(name).map_err(|e| usage(e.to_string()))?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&plan)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{} ({}, {})",
        if zh { &plan.title_zh } else { &plan.title_en },
        plan.issued,
        plan.source
    );
    for m in &plan.milestones {
        let target = match (m.target, m.indicator.is_share()) {
            (Some(t), true) => format!("{:.0} %", t * 100.0),
            (Some(t), false) => format!("{t}"),
            (None, _) => "-".into(),
        };
        let indicator = serde_json::to_value(m.indicator)?;
        println!(
            "  {}  {:<22} {:<24} {:>12}  {}",
            m.deadline,
            indicator.as_str().unwrap_or_default(),
            m.category.as_deref().unwrap_or(""),
            target,
            if zh { &m.zh } else { &m.en }
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn users(args: UsersArgs) -> Result<ExitCode> {
    use v6scope_flow::aggregate::{day_of, day_start};
    use v6scope_flow::users::Sketch;
    if !args.store.db.exists() {
        bail!(usage(format!("no store at {}", args.store.db.display())));
    }
    let store = Store::open(&args.store.db)?;
    let until = match &args.until {
        Some(day) => day.clone(),
        None => match store.sketches("0000-00-00", "9999-99-99", "subscribers")?.last() {
            Some((day, _, _)) => day.clone(),
            None => bail!(usage("the store holds no user sketches (run v6scope collect)")),
        },
    };
    let end = day_start(&until).ok_or_else(|| usage(format!("--until {until}: expected YYYY-MM-DD")))?;
    let first = day_of(end.saturating_sub(u64::from(args.days.max(1) - 1) * 86_400));
    // Per organisation, and all organisations together ("").
    let mut merged: BTreeMap<(String, &str), Sketch> = BTreeMap::new();
    for kind in ["subscribers", "addresses"] {
        for (day, organisation, bytes) in store.sketches(&first, &until, kind)? {
            let sketch = Sketch::from_bytes(&bytes).with_context(|| format!("sketch {day} {organisation} {kind}"))?;
            for key in [organisation.clone(), "(all)".to_string()] {
                merged.entry((key, kind)).or_default().merge(&sketch)?;
            }
        }
    }
    let mut rows: BTreeMap<String, [u64; 2]> = BTreeMap::new();
    for ((organisation, kind), sketch) in &merged {
        rows.entry(organisation.clone()).or_default()[usize::from(*kind == "addresses")] = sketch.count();
    }
    if args.json {
        let list: Vec<serde_json::Value> = rows
            .iter()
            .map(|(o, [s, a])| serde_json::json!({"organisation": o, "subscribers": s, "addresses": a}))
            .collect();
        println!(
            "{}",
            serde_json::json!({"first_day": first, "last_day": until, "days": args.days, "organisations": list})
        );
    } else {
        println!("active IPv6 users {first} .. {until} ({} day(s))", args.days);
        println!("{:<32}  {:>12}  {:>12}", "organisation", "subscribers", "addresses");
        for (o, [s, a]) in &rows {
            println!(
                "{:<32}  {s:>12}  {a:>12}",
                if o.is_empty() { "(no organisation)" } else { o }
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn traffic(args: TrafficArgs) -> Result<ExitCode> {
    if !args.store.db.exists() {
        bail!(usage(format!("no store at {}", args.store.db.display())));
    }
    if !matches!(args.by.as_str(), "minute" | "hour" | "day" | "month") {
        bail!(usage(format!("--by {}: minute, hour, day or month", args.by)));
    }
    if let Some(g) = &args.group
        && !matches!(
            g.as_str(),
            "exporter" | "interface" | "asn" | "organisation" | "region" | "source"
        )
    {
        bail!(usage(format!(
            "--group {g}: exporter, interface, asn, organisation, region or source"
        )));
    }
    let store = Store::open(&args.store.db)?;
    // (period, group) → [IPv4, IPv6] (bytes, packets, records).
    type Counts = [(i64, i64, i64); 2];
    let mut periods: BTreeMap<(String, String), Counts> = BTreeMap::new();
    for t in store.traffic_by(&args.by, args.group.as_deref())? {
        let slot = usize::from(t.family == 6);
        periods.entry((t.period, t.group)).or_default()[slot] = (t.bytes, t.packets, t.records);
    }
    let group = args.group.as_deref().unwrap_or("");
    if !args.json {
        println!(
            "{:<16}  {:<24}  {:>16}  {:>16}  {:>9}  {:>14}  {:>14}",
            args.by, group, "IPv4 bytes", "IPv6 bytes", "IPv6 %", "IPv4 packets", "IPv6 packets"
        );
    }
    for ((period, value), [v4, v6]) in &periods {
        let share = if v4.0 + v6.0 > 0 {
            v6.0 as f64 * 100.0 / (v4.0 + v6.0) as f64
        } else {
            0.0
        };
        if args.json {
            let mut row = serde_json::json!({"period": period, "ipv4_bytes": v4.0, "ipv6_bytes": v6.0,
                "ipv4_packets": v4.1, "ipv6_packets": v6.1, "ipv4_records": v4.2, "ipv6_records": v6.2,
                "ipv6_byte_share": (share * 100.0).round() / 10_000.0});
            if !group.is_empty() {
                row[group] = serde_json::json!(value);
            }
            println!("{row}");
        } else {
            println!(
                "{period:<16}  {value:<24}  {:>16}  {:>16}  {share:>8.2}%  {:>14}  {:>14}",
                v4.0, v6.0, v4.1, v6.1
            );
        }
    }
    // Records no rate was given for: an IPv6 share per exporter (the rate,
    // whatever it is, is the same for both families), never a volume.
    let mut waiting: BTreeMap<(String, String), [i64; 4]> = BTreeMap::new();
    for t in store.traffic_unscaled(&args.by)? {
        let at = if t.family == 6 { 2 } else { 0 };
        let e = waiting.entry((t.period, t.group)).or_default();
        e[at] += t.bytes;
        e[at + 1] += t.records;
    }
    if !waiting.is_empty() {
        let records: i64 = waiting.values().map(|c| c[1] + c[3]).sum();
        eprintln!(
            "note: {records} records wait for a sampling rate (their exporters state none): shown below as IPv6 shares \
             per exporter, unscaled, with no volume; give the rate with --sampling-default PREFIX=N (or \
             --sampling-override) when collecting"
        );
        if !args.json {
            println!("\nunscaled (sampling rate unknown)");
            println!(
                "{:<16}  {:<24}  {:>10}  {:>10}  {:>9}",
                args.by, "exporter", "IPv4 recs", "IPv6 recs", "IPv6 %"
            );
        }
        for ((period, exporter), c) in &waiting {
            let share = if c[0] + c[2] > 0 {
                c[2] as f64 * 100.0 / (c[0] + c[2]) as f64
            } else {
                0.0
            };
            if args.json {
                println!(
                    "{}",
                    serde_json::json!({"period": period, "exporter": exporter, "scaled": false,
                        "ipv4_records": c[1], "ipv6_records": c[3],
                        "ipv6_byte_share": (share * 100.0).round() / 10_000.0})
                );
            } else {
                println!(
                    "{period:<16}  {exporter:<24}  {:>10}  {:>10}  {share:>8.2}%",
                    c[1], c[3]
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn runs(args: StoreArgs) -> Result<ExitCode> {
    if !args.db.exists() {
        bail!(usage(format!("no store at {}", args.db.display())));
    }
    let store = Store::open(&args.db)?;
    println!(
        "{:>5}  {:<20}  {:<20}  {:>9}  {:>9}  profiles  source",
        "run", "started", "finished", "targets", "done"
    );
    for r in store.runs()? {
        println!(
            "{:>5}  {:<20}  {:<20}  {:>9}  {:>9}  {}  {}",
            r.id,
            r.started_at,
            r.finished_at.unwrap_or_else(|| "(unfinished)".into()),
            r.targets,
            r.done,
            r.profiles.join(","),
            r.source
        );
    }
    Ok(ExitCode::SUCCESS)
}
