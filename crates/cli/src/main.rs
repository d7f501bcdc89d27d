//! The `v6scope` command line.

mod agent;
mod bulk_dns;
mod check;
mod collect;
mod evaluate;
mod eyeballs;
mod push;
mod render;
mod report;
mod scan;
mod serve;
mod traffic;

use agent::*;
use bulk_dns::*;
use check::*;
use evaluate::*;
use report::*;
use scan::*;
use serve::*;
use traffic::*;

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
use v6scope_model::{SCHEMA_VERSION, Status, Target};
use v6scope_scan::{
    CancellationToken, CombineRule, CrawlSettings, EdgeAttribution, FleetSettings, Judged, Outcome, ProbeSettings,
    RunConfig, Runner, ScanError, Selector, SinkError, StoreSink, VantageSettings, VantageVerdicts, combine, edge_rows,
    fit_open_files, judge, load_profiles,
};
use v6scope_store::Store;

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
        // The subcommand's own flags are in its matches, global ones in the
        // top-level matches (asking matches for an id they do not define is
        // a bug clap's debug builds stop on).
        let own = sub
            .into_iter()
            .flat_map(|c| c.get_arguments())
            .find(|a| a.get_long() == Some(key.as_str()));
        let global = command.get_arguments().find(|a| a.get_long() == Some(key.as_str()));
        let source = match (own, global) {
            (Some(arg), _) => sub_matches.value_source(arg.get_id().as_str()),
            (None, Some(arg)) => matches.value_source(arg.get_id().as_str()),
            (None, None) => continue, // a setting for other commands
        };
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
    /// Evaluate targets for a server from this vantage (register, claim,
    /// deliver); outbound connections only.
    Agent(AgentArgs),
    /// The server's agents and their tokens.
    #[command(subcommand)]
    Agents(AgentsCommand),
    /// The server's collectors (carriers' `collect --push`) and their tokens.
    #[command(subcommand)]
    Collectors(push::CollectorsCommand),
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
    /// Does a client prefer IPv6 under dual stack? Runs curl, wget, python,
    /// chromium, v6scope's own client or any command through Happy Eyeballs
    /// trials in a private namespace pair and reports its parameters
    /// against RFC 8305 (needs root).
    Eyeballs(eyeballs::EyeballsArgs),
    /// GET a URL with v6scope's own HTTP client (the eyeballs bench's
    /// `v6scope` client).
    #[command(hide = true)]
    Fetch(eyeballs::FetchArgs),
    /// Generate a campaign judged in monthly runs, for benchmarks and
    /// browser tests (verdicts only, no observations).
    #[command(hide = true)]
    SynthStore(SynthArgs),
}

#[derive(Args, Clone)]
struct StoreArgs {
    /// Where results are kept: `sqlite:PATH` or `postgres://USER@HOST/DB`
    /// (default: sqlite:v6scope.db). Given in any way (flag, environment,
    /// config file), it wins over --db.
    #[arg(long = "store", value_name = "URL", env = "V6SCOPE_STORE")]
    location: Option<v6scope_store::Location>,
    /// The SQLite store file: the same as --store sqlite:PATH.
    #[arg(long, value_name = "PATH", env = "V6SCOPE_DB")]
    db: Option<PathBuf>,
    /// Keep traffic counters in ClickHouse instead of the store:
    /// clickhouse://HOST:HTTP-PORT/DATABASE (sketches stay in the store).
    #[arg(long, value_name = "URL", env = "V6SCOPE_TRAFFIC_STORE")]
    traffic_store: Option<String>,
}

impl StoreArgs {
    fn location(&self) -> v6scope_store::Location {
        match (&self.location, &self.db) {
            (Some(l), _) => l.clone(),
            (None, Some(db)) => v6scope_store::Location::Sqlite(db.clone()),
            (None, None) => v6scope_store::Location::Sqlite("v6scope.db".into()),
        }
    }

    /// The ClickHouse traffic store, when one is given.
    fn open_traffic(&self) -> Result<Option<v6scope_store::ClickHouseTraffic>> {
        self.traffic_store
            .as_deref()
            .map(|url| {
                v6scope_store::ClickHouseTraffic::open(url).with_context(|| format!("opening traffic store {url}"))
            })
            .transpose()
    }

    /// Opens the store, creating it if needed (commands that write).
    fn open(&self) -> Result<Box<dyn Store>> {
        let location = self.location();
        v6scope_store::open(&location).with_context(|| format!("opening store {location}"))
    }

    /// Opens a store that must exist already (commands that only read): a
    /// mistyped SQLite path is a usage error, not a new empty store.
    fn open_existing(&self) -> Result<Box<dyn Store>> {
        if let Some(path) = self.location().sqlite_path()
            && !path.exists()
        {
            bail!(usage(format!("no store at {}", path.display())));
        }
        self.open()
    }
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
        Command::Agent(args) => agent(args).await,
        Command::Agents(command) => agents(command),
        Command::Collectors(command) => push::collectors(command),
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
        Command::Eyeballs(args) => eyeballs::eyeballs(args, cli.quiet).await,
        Command::Fetch(args) => eyeballs::fetch(args).await,
        Command::SynthStore(args) => {
            let mut store = args.store.open()?;
            v6scope_server::synth::generate(
                &mut *store,
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

/// `check`: no target failed, but some result is not_testable or error.
const EXIT_NOT_TESTABLE: u8 = 4;
