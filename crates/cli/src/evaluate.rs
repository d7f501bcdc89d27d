//! What `check` and `scan` share: the probe flags, the prober and vantage set-up, one evaluation.

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
#[derive(Args, Clone, serde::Serialize, serde::Deserialize)]
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
    pub(crate) fn limits(&self) -> v6scope_probe::crawl::CrawlLimits {
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

/// Sockets one target can hold open at once (name-server probes over UDP
/// and TCP per address, web per family and scheme, SMTP), with room to spare.
pub(crate) const SOCKETS_PER_TARGET: u64 = 12;
/// Descriptors kept for the store, the resolver sockets and the rest.
pub(crate) const RESERVED_FILES: u64 = 256;

/// Raises the soft open-files limit to the hard one and returns the
/// concurrency that fits in it. Running out of descriptors mid-scan would
/// turn the measurer's limit into targets' failures (rule 1), so the scan
/// runs fewer targets at once instead, and says so.
pub(crate) fn fit_open_files(wanted: usize) -> usize {
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

pub(crate) fn load_profiles(names: &[String]) -> Result<Vec<Profile>> {
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

pub(crate) const DEFAULT_VANTAGE_PROBES: [&str; 2] = ["198.41.0.4", "2001:503:ba3e::2:30"];

/// The prober, the vantage (its families and the resolver self-test) and
/// the watch that repeats the self-test during a run.
pub(crate) async fn setup(
    args: &ProbeArgs,
    scan_policy: v6scope_probe::policy::AddressPolicy,
) -> Result<(Arc<Prober>, Vantage, Arc<v6scope_probe::health::Watch>)> {
    let resolvers = if args.iterative {
        Vec::new()
    } else {
        resolver_addresses(&args.resolvers)?
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

pub(crate) async fn evaluate_with_deadline(
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
pub(crate) fn unprobed(target: Target, vantage: &Vantage, duration_ms: f64, error: ProbeError) -> DomainObservation {
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
pub(crate) async fn root_servers(
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

pub(crate) async fn v6_delegation(
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
pub(crate) struct SiteWork {
    pub(crate) limits: Option<v6scope_probe::crawl::CrawlLimits>,
    pub(crate) roots: Option<Result<v6scope_probe::v6path::RootServers, ProbeError>>,
}

impl SiteWork {
    pub(crate) async fn new(
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
pub(crate) async fn observe(
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

pub(crate) fn load_providers(path: &Option<PathBuf>) -> Result<v6scope_assess::providers::Providers> {
    match path {
        Some(p) => v6scope_assess::providers::Providers::load(p).map_err(|e| usage(e.to_string())),
        None => Ok(v6scope_assess::providers::Providers::builtin()),
    }
}

/// The policy of `--public-only`: special-purpose addresses are refused,
/// except the allowed prefixes and the resolvers the operator configured.
pub(crate) fn public_only_policy(
    probe: &ProbeArgs,
    allowed: &[ipnet::IpNet],
) -> Result<v6scope_probe::policy::AddressPolicy> {
    use v6scope_probe::policy::AddressPolicy;
    let mut allow = allowed.to_vec();
    let resolvers = resolver_addresses(&probe.resolvers)?;
    allow.extend(resolvers.iter().map(|r| ipnet::IpNet::from(r.ip())));
    allow.extend(probe.vantage_probes.iter().map(|a| ipnet::IpNet::from(*a)));
    Ok(AddressPolicy::public_only(allow))
}
