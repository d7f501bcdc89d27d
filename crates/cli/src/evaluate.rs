//! What `check`, `scan` and `agent` share: the probe and crawl flags, turned
//! into the scan engine's typed settings.

use super::*;

#[derive(Args, Clone)]
pub(crate) struct ProbeArgs {
    /// Recursive resolver ADDR[:PORT] (repeatable); default: /etc/resolv.conf.
    #[arg(
        long = "resolver",
        value_name = "ADDR[:PORT]",
        env = "V6SCOPE_RESOLVER",
        value_delimiter = ','
    )]
    pub(crate) resolvers: Vec<String>,
    /// Treat addresses in this prefix as global (repeatable), e.g. a lab's 2001:db8::/32.
    #[arg(
        long = "allow-prefix",
        value_name = "PREFIX",
        env = "V6SCOPE_ALLOW_PREFIX",
        value_delimiter = ','
    )]
    pub(crate) allow_prefixes: Vec<ipnet::IpNet>,
    /// Extra trusted CA certificates (PEM), added to the web roots (repeatable).
    #[arg(
        long = "ca-file",
        value_name = "FILE",
        env = "V6SCOPE_CA_FILE",
        value_delimiter = ','
    )]
    pub(crate) ca_files: Vec<PathBuf>,
    /// Address queried directly to prove the vantage has working IPv4/IPv6
    /// (repeatable); default: a.root-servers.net.
    #[arg(
        long = "vantage-probe",
        value_name = "ADDR",
        env = "V6SCOPE_VANTAGE_PROBE",
        value_delimiter = ','
    )]
    pub(crate) vantage_probes: Vec<IpAddr>,
    /// Name that must resolve with A and AAAA, for the resolver self-test
    /// (repeatable); default: a.root-servers.net. A resolver that strips
    /// its AAAA, answers it NXDOMAIN or SERVFAIL, or rewrites NXDOMAIN makes
    /// every result not_testable, never fail.
    #[arg(long = "canary", value_name = "NAME", env = "V6SCOPE_CANARY", value_delimiter = ',')]
    pub(crate) canaries: Vec<String>,
    /// Profile name (internetnl, nist-usgv6) or TOML file (repeatable).
    #[arg(
        long = "profile",
        value_name = "NAME|FILE",
        env = "V6SCOPE_PROFILE",
        value_delimiter = ','
    )]
    pub(crate) profiles: Vec<String>,
    /// DNS query timeout in milliseconds (each attempt).
    #[arg(long, default_value_t = 2000, value_name = "MS", env = "V6SCOPE_DNS_TIMEOUT")]
    pub(crate) dns_timeout: u64,
    /// TCP connect timeout in milliseconds (web and mail).
    #[arg(long, default_value_t = 4000, value_name = "MS", env = "V6SCOPE_CONNECT_TIMEOUT")]
    pub(crate) connect_timeout: u64,
    /// Deadline for one web fetch, redirects and body included, in seconds.
    #[arg(long, default_value_t = 10, value_name = "SECS", env = "V6SCOPE_FETCH_TIMEOUT")]
    pub(crate) fetch_timeout: u64,
    /// Deadline for one SMTP conversation, in seconds.
    #[arg(long, default_value_t = 10, value_name = "SECS", env = "V6SCOPE_SMTP_TIMEOUT")]
    pub(crate) smtp_timeout: u64,
    /// Largest body read per page, in bytes.
    #[arg(long, default_value_t = 2 * 1024 * 1024, value_name = "BYTES", env = "V6SCOPE_BODY_CAP")]
    pub(crate) body_cap: usize,
    /// Name sent in EHLO.
    #[arg(long, default_value = "v6scope.invalid", env = "V6SCOPE_HELO_NAME")]
    pub(crate) helo_name: String,
    /// DNS queries per second across the run.
    #[arg(long, value_name = "QPS", env = "V6SCOPE_RATE")]
    pub(crate) rate: Option<NonZeroU32>,
    /// Resolver queries in flight at most (smooths bursts).
    #[arg(long, default_value_t = 512, env = "V6SCOPE_DNS_IN_FLIGHT")]
    pub(crate) dns_in_flight: usize,
    /// Deadline for one whole target, in seconds.
    #[arg(long, default_value_t = 60, value_name = "SECS", env = "V6SCOPE_DEADLINE")]
    pub(crate) deadline: u64,
    /// Resolve from the root servers with the built-in iterative resolver
    /// instead of a recursive resolver (no external resolver is trusted).
    #[arg(long, env = "V6SCOPE_ITERATIVE", conflicts_with = "resolvers")]
    pub(crate) iterative: bool,
    /// Root servers (named.root format) for `--iterative` and for following
    /// delegations over IPv6 only; default: the IANA root servers for
    /// `--iterative`, a priming query (. NS) through the resolver otherwise.
    #[arg(long, value_name = "FILE", env = "V6SCOPE_ROOT_HINTS")]
    pub(crate) root_hints: Option<PathBuf>,
}

/// The whole-site crawl (homepage, 二级 and 三级 links, sub-resources).
/// Kept with a scan's run so `--resume` crawls the same way.
#[derive(Args, Clone)]
pub(crate) struct CrawlArgs {
    /// Crawl the site to level 3 over both families.
    #[arg(long)]
    pub(crate) crawl: bool,
    /// Pages fetched per level at most.
    #[arg(long, default_value_t = 300, value_name = "N")]
    pub(crate) pages_per_level: usize,
    /// Pages fetched in all at most.
    #[arg(long, default_value_t = 1000, value_name = "N")]
    pub(crate) max_pages: usize,
    /// Sub-resources fetched at most.
    #[arg(long, default_value_t = 500, value_name = "N")]
    pub(crate) max_resources: usize,
    /// URLs fetched at once during a crawl (each over both families);
    /// 16 as Scrapy's CONCURRENT_REQUESTS.
    #[arg(long, default_value_t = 16, value_name = "N")]
    pub(crate) crawl_concurrency: usize,
    /// Requests in flight to one server address at most during a crawl; 8 as
    /// Scrapy's CONCURRENT_REQUESTS_PER_DOMAIN (at 40 ms RTT, 4 made a
    /// 1000-page site take 13 s instead of 7).
    #[arg(long, default_value_t = 8, value_name = "N")]
    pub(crate) per_host: usize,
    /// Politeness delay between two requests to one server address, in
    /// milliseconds.
    #[arg(long, default_value_t = 0, value_name = "MS")]
    pub(crate) crawl_delay: u64,
    /// Deadline for one site's crawl, in seconds.
    #[arg(long, default_value_t = 300, value_name = "SECS")]
    pub(crate) crawl_deadline: u64,
    /// Homepage loads per family for the speed ratio and success rate
    /// (10 for a stability run).
    #[arg(long, default_value_t = 3, value_name = "N")]
    pub(crate) samples: usize,
    /// Seconds between samples.
    #[arg(long, default_value_t = 1.0, value_name = "SECS")]
    pub(crate) interval: f64,
    /// Crawl pages robots.txt disallows (for owners testing their own site).
    #[arg(long)]
    pub(crate) ignore_robots: bool,
}

impl CrawlArgs {
    pub(crate) fn settings(&self) -> CrawlSettings {
        CrawlSettings {
            crawl: self.crawl,
            pages_per_level: self.pages_per_level,
            max_pages: self.max_pages,
            max_resources: self.max_resources,
            crawl_concurrency: self.crawl_concurrency,
            per_host: self.per_host,
            crawl_delay: self.crawl_delay,
            crawl_deadline: self.crawl_deadline,
            samples: self.samples,
            interval: self.interval,
            ignore_robots: self.ignore_robots,
        }
    }
}

impl ProbeArgs {
    /// The run's probe limits.
    pub(crate) fn settings(&self) -> ProbeSettings {
        ProbeSettings {
            dns_timeout_ms: self.dns_timeout,
            connect_timeout_ms: self.connect_timeout,
            fetch_timeout_secs: self.fetch_timeout,
            smtp_timeout_secs: self.smtp_timeout,
            body_cap: self.body_cap,
            helo_name: self.helo_name.clone(),
            rate: self.rate,
            dns_in_flight: self.dns_in_flight,
            deadline_secs: self.deadline,
        }
    }

    /// What belongs to this machine: resolvers, CA files, self-test.
    pub(crate) fn vantage_settings(&self) -> VantageSettings {
        VantageSettings {
            resolvers: self.resolvers.clone(),
            allow_prefixes: self.allow_prefixes.clone(),
            ca_files: self.ca_files.clone(),
            vantage_probes: self.vantage_probes.clone(),
            canaries: self.canaries.clone(),
            iterative: self.iterative,
            root_hints: self.root_hints.clone(),
        }
    }

    /// A new run's configuration from these flags.
    pub(crate) fn run_config(&self, crawl: &CrawlArgs) -> RunConfig {
        RunConfig {
            profiles: if self.profiles.is_empty() {
                vec!["internetnl".into()]
            } else {
                self.profiles.clone()
            },
            probe: self.settings(),
            crawl: crawl.settings(),
            vantage: self.vantage_settings(),
            ..RunConfig::default()
        }
    }
}

/// A scan engine error at the command line: bad settings are usage errors.
pub(crate) fn scan_error(e: ScanError) -> anyhow::Error {
    match e {
        ScanError::Settings(why) => usage(why),
        other => anyhow::Error::new(other),
    }
}

/// The `--resolver` addresses, or /etc/resolv.conf's when none is given.
pub(crate) fn resolver_addresses(given: &[String]) -> Result<Vec<SocketAddr>> {
    if given.is_empty() {
        return v6scope_probe::resolv_conf_servers("/etc/resolv.conf").map_err(|e| usage(e.to_string()));
    }
    given.iter().map(|r| parse_resolver(r)).collect()
}

pub(crate) fn parse_resolver(s: &str) -> Result<SocketAddr> {
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

pub(crate) fn load_providers(path: &Option<PathBuf>) -> Result<v6scope_assess::providers::Providers> {
    match path {
        Some(p) => v6scope_assess::providers::Providers::load(p).map_err(|e| usage(e.to_string())),
        None => Ok(v6scope_assess::providers::Providers::builtin()),
    }
}
