//! `v6scope serve` and `v6scope synth-store`: the platform.

use super::*;

#[derive(Args)]
pub(crate) struct SynthArgs {
    #[arg(long)]
    pub(crate) campaign: String,
    #[arg(long)]
    pub(crate) targets: usize,
    #[arg(long, default_value_t = 12)]
    pub(crate) runs: usize,
    /// Month of the last run (YYYY-MM).
    #[arg(long, default_value = "2026-10")]
    pub(crate) last_month: String,
    #[arg(long, default_value = "cn-website")]
    pub(crate) profile: String,
    #[command(flatten)]
    pub(crate) store: StoreArgs,
}

#[derive(Args)]
pub(crate) struct ServeArgs {
    /// Address to listen on (repeatable); default: [serve] listen, or 127.0.0.1:8080.
    #[arg(long, value_name = "ADDR:PORT")]
    pub(crate) listen: Vec<SocketAddr>,
    #[command(flatten)]
    pub(crate) store: StoreArgs,
    /// File whose first line is the bearer token writes need (at least 16 characters).
    #[arg(long, value_name = "FILE", env = "V6SCOPE_TOKEN_FILE")]
    pub(crate) token_file: Option<PathBuf>,
    /// Language of pages without ?lang= (en or zh-CN).
    #[arg(long)]
    pub(crate) lang: Option<String>,
    /// Plan the overview judges against.
    #[arg(long)]
    pub(crate) plan: Option<String>,
    /// Profile whose "pass" counts as support on the pages.
    #[arg(long)]
    pub(crate) profile: Option<String>,
    /// Seconds between scheduler checks.
    #[arg(long, value_name = "S")]
    pub(crate) tick_seconds: Option<u64>,
    /// Let scans reach private and special-purpose addresses.
    #[arg(long)]
    pub(crate) allow_special_targets: bool,
    /// A special-purpose prefix scans may reach all the same (repeatable).
    #[arg(long = "scan-allow", value_name = "CIDR")]
    pub(crate) allow_targets: Vec<ipnet::IpNet>,
    /// Provider signatures (TOML) for attribution; default: the shipped set.
    #[arg(long, value_name = "FILE")]
    pub(crate) providers: Option<PathBuf>,
    /// Cloud products and their endpoints (TOML) for the cloud indicators
    /// of the scans from agents that the server starts.
    #[arg(long, value_name = "FILE")]
    pub(crate) cloud_products: Option<PathBuf>,
    /// Turn the client beacon on: its wildcard zone, whose names
    /// {test}.{v4,v6,ds,v6ns,mtu}.ZONE point at this server (see
    /// docs/OPERATIONS.md). The page is /beacon, the snippet
    /// /beacon/beacon.js, the day's figures /clients and /api/beacon.
    #[arg(long, value_name = "ZONE")]
    pub(crate) beacon_zone: Option<String>,
    /// Port the beacon's names are fetched on (default: the scheme's).
    #[arg(long, value_name = "PORT")]
    pub(crate) beacon_port: Option<u16>,
    /// Prefix table (as collect --prefixes) for the beacon clients'
    /// organisation and region.
    #[arg(long, value_name = "FILE")]
    pub(crate) beacon_prefixes: Option<PathBuf>,
}

/// The `[serve]` table of the configuration file, if there is one.
pub(crate) fn serve_table(path: &Option<PathBuf>) -> Result<toml::Table> {
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

pub(crate) async fn serve(args: ServeArgs, config_file: Option<PathBuf>) -> Result<ExitCode> {
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
    if args.cloud_products.is_some() {
        config.cloud_products = args.cloud_products;
    }
    if args.beacon_zone.is_some() {
        config.beacon_zone = args.beacon_zone;
    }
    if args.beacon_port.is_some() {
        config.beacon_port = args.beacon_port;
    }
    if args.beacon_prefixes.is_some() {
        config.beacon_prefixes = args.beacon_prefixes;
    }
    if args.store.traffic_store.is_some() {
        config.traffic_store = args.store.traffic_store.clone();
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
    v6scope_server::serve(config, args.store.location(), scanner)
        .await
        .map_err(|e| usage(e.to_string()))?;
    Ok(ExitCode::SUCCESS)
}
