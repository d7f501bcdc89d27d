//! The runner: prober and vantage set-up, then concurrent evaluation with
//! cancellation and the resolver watch.

use crate::config::{CrawlSettings, RunConfig, VantageSettings};
use crate::error::ScanError;
use crate::sink::Sink;
use futures::StreamExt;
use indicatif::ProgressBar;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use v6scope_model::{DomainObservation, ErrorKind, ProbeError, SCHEMA_VERSION, Target, Vantage};
use v6scope_probe::health::Watch;
use v6scope_probe::policy::AddressPolicy;
use v6scope_probe::v6path::RootServers;
use v6scope_probe::{ProbeConfig, Prober};

/// How often a run repeats the resolver self-test in the background.
const RESOLVER_CHECK_EVERY: Duration = Duration::from_secs(5);
/// How long a run waits for failing resolvers before it stops (resumable).
const RESOLVER_WAIT: Duration = Duration::from_secs(600);
/// Default addresses that prove the vantage's IPv4 and IPv6 (a.root-servers.net).
const DEFAULT_VANTAGE_PROBES: [&str; 2] = ["198.41.0.4", "2001:503:ba3e::2:30"];

/// How a run ended.
#[derive(Debug)]
pub enum Outcome {
    /// Every target was evaluated and handed to the sink.
    Finished,
    /// Cancelled: these targets were not evaluated (or their evaluation was
    /// in flight and dropped); a resume evaluates them.
    Cancelled { left: Vec<(i64, Target)> },
    /// The resolvers kept failing: these targets were held back, not judged.
    ResolversFailing { left: Vec<(i64, Target)> },
}

/// A prober set up for one vantage and one run configuration.
pub struct Runner {
    prober: Arc<Prober>,
    vantage: Vantage,
    watch: Arc<Watch>,
    site: SiteWork,
    deadline: Duration,
    progress: ProgressBar,
}

impl Runner {
    /// Sets up the prober and runs the vantage self-test (its IPv4 and
    /// IPv6, and the resolvers). `public_only`: refuse private and
    /// special-purpose addresses except these prefixes (and the configured
    /// resolvers and vantage probes).
    pub async fn start(
        config: &RunConfig,
        local: &VantageSettings,
        public_only: Option<&[ipnet::IpNet]>,
    ) -> Result<Runner, ScanError> {
        let resolvers = if local.iterative {
            Vec::new()
        } else {
            resolver_addresses(&local.resolvers)?
        };
        let policy = match public_only {
            None => AddressPolicy::open(),
            Some(allowed) => {
                let mut allow = allowed.to_vec();
                allow.extend(resolvers.iter().map(|r| ipnet::IpNet::from(r.ip())));
                allow.extend(local.vantage_probes.iter().map(|a| ipnet::IpNet::from(*a)));
                AddressPolicy::public_only(allow)
            }
        };
        let settings = &config.probe;
        let mut probe = ProbeConfig::with_resolvers(resolvers);
        probe.scan_policy = policy;
        if local.iterative {
            let roots = match &local.root_hints {
                Some(path) => {
                    let text = std::fs::read_to_string(path)
                        .map_err(|e| ScanError::Settings(format!("reading root hints {}: {e}", path.display())))?;
                    let roots = v6scope_probe::root_hint_addresses(&text);
                    if roots.is_empty() {
                        return Err(ScanError::Settings(format!(
                            "root hints {}: no A or AAAA record",
                            path.display()
                        )));
                    }
                    roots
                }
                None => v6scope_probe::IANA_ROOTS
                    .iter()
                    .map(|a| a.parse().expect("static address"))
                    .collect(),
            };
            probe.iterative_roots = Some(roots);
        }
        probe.dns_timeout = Duration::from_millis(settings.dns_timeout_ms);
        probe.allow_prefixes = local.allow_prefixes.clone();
        probe.web.ca_files = local.ca_files.clone();
        probe.web.connect_timeout = Duration::from_millis(settings.connect_timeout_ms);
        probe.web.deadline = Duration::from_secs(settings.fetch_timeout_secs);
        probe.web.body_cap = settings.body_cap;
        probe.smtp.connect_timeout = Duration::from_millis(settings.connect_timeout_ms);
        probe.smtp.deadline = Duration::from_secs(settings.smtp_timeout_secs);
        probe.smtp.helo_name = settings.helo_name.clone();
        probe.rate = settings.rate;
        probe.dns_in_flight = settings.dns_in_flight;
        let dns_timeout = probe.dns_timeout;
        let prober = Prober::new(probe).map_err(|e| ScanError::Settings(e.to_string()))?;
        let subject = v6scope_probe::health::Subject::of(prober.resolver());
        let probes: Vec<IpAddr> = if local.vantage_probes.is_empty() {
            DEFAULT_VANTAGE_PROBES
                .iter()
                .map(|s| s.parse().expect("static address"))
                .collect()
        } else {
            local.vantage_probes.clone()
        };
        let mut vantage = prober.vantage(&probes).await;
        let canaries: Vec<String> = if local.canaries.is_empty() {
            v6scope_probe::health::DEFAULT_CANARIES
                .iter()
                .map(|c| c.to_string())
                .collect()
        } else {
            local.canaries.clone()
        };
        let health = v6scope_probe::health::check_resolvers(&subject, &canaries, dns_timeout).await;
        tracing::info!(detail = ?health.detail, "resolver self-test");
        for problem in &health.problems {
            tracing::warn!("{problem}; results from this vantage are not_testable");
        }
        vantage.resolver_problems = health.problems.clone();
        vantage.detail.extend(health.detail.iter().cloned());
        let watch = Arc::new(Watch::new(subject, canaries, dns_timeout, health));
        tracing::info!(ipv4 = vantage.ipv4, ipv6 = vantage.ipv6, detail = ?vantage.detail, "vantage checked");
        if !vantage.ipv6 {
            tracing::warn!("this vantage point has no working IPv6; IPv6 checks will be not_testable");
        }
        if !vantage.ipv4 {
            tracing::warn!(
                "this vantage point has no working IPv4; the IPv4/IPv6 comparison (web_ipv46) will be not_testable"
            );
        }
        let profiles = crate::sink::load_profiles(&config.profiles)?;
        let site = SiteWork::new(&prober, &vantage, &config.crawl, local.root_hints.as_deref(), &profiles).await?;
        Ok(Runner {
            prober,
            vantage,
            watch,
            site,
            deadline: config.probe.deadline(),
            progress: ProgressBar::hidden(),
        })
    }

    /// Shows progress on this bar (hidden by default).
    pub fn with_progress(mut self, bar: ProgressBar) -> Runner {
        self.progress = bar;
        self
    }

    /// The vantage as the self-test found it.
    pub fn vantage(&self) -> &Vantage {
        &self.vantage
    }

    /// One target, within its deadline (for `check`).
    pub async fn evaluate(&self, target: Target) -> DomainObservation {
        observe(&self.prober, target, &self.vantage, self.deadline, &self.site).await
    }

    /// One target, and whether its result can be trusted: false when the
    /// resolvers were failing while it was evaluated (evaluate it again
    /// once they are healthy; never hand such a result on).
    pub async fn evaluate_checked(&self, target: Target) -> (DomainObservation, bool) {
        let faults = self.watch.faults();
        let observation = observe(&self.prober, target, &self.vantage, self.deadline, &self.site).await;
        let suspicious = v6scope_probe::health::looks_like_resolver_failure(&observation);
        let trusted = self.watch.health(suspicious).await.healthy() && self.watch.faults() == faults;
        (observation, trusted)
    }

    /// Repeats the resolver self-test in the background (as `run` does)
    /// until the handle is aborted.
    pub fn watch_resolvers(&self) -> tokio::task::JoinHandle<()> {
        self.watch.spawn_ticker(RESOLVER_CHECK_EVERY)
    }

    /// Evaluates `pending` with `concurrency` targets at once, handing each
    /// observation to `sink`. A result taken while the resolvers were
    /// failing is not handed on: the target is evaluated again once they
    /// are healthy. On `cancel`, in-flight targets are dropped and returned
    /// as left.
    pub async fn run<S: Sink>(
        &self,
        pending: Vec<(i64, Target)>,
        concurrency: usize,
        sink: &mut S,
        cancel: &CancellationToken,
    ) -> Result<Outcome, ScanError> {
        let ticker = self.watch.spawn_ticker(RESOLVER_CHECK_EVERY);
        let outcome = self.rounds(pending, concurrency.max(1), sink, cancel).await;
        ticker.abort();
        outcome
    }

    async fn rounds<S: Sink>(
        &self,
        mut pending: Vec<(i64, Target)>,
        concurrency: usize,
        sink: &mut S,
        cancel: &CancellationToken,
    ) -> Result<Outcome, ScanError> {
        let mut round = 0;
        loop {
            let mut retry: Vec<(i64, Target)> = Vec::new();
            let mut unfinished: std::collections::BTreeMap<i64, Target> =
                pending.iter().map(|(i, t)| (*i, t.clone())).collect();
            let mut stream = futures::stream::iter(pending.into_iter().map(|(idx, target)| async move {
                let (observation, trusted) = self.evaluate_checked(target).await;
                (idx, observation, trusted)
            }))
            .buffer_unordered(concurrency);
            loop {
                let next = tokio::select! {
                    biased;
                    _ = cancel.cancelled() => {
                        drop(stream);
                        let mut left: Vec<(i64, Target)> = unfinished.into_iter().collect();
                        left.extend(retry);
                        left.sort_by_key(|(i, _)| *i);
                        return Ok(Outcome::Cancelled { left });
                    }
                    next = stream.next() => next,
                };
                let Some((idx, observation, trusted)) = next else { break };
                unfinished.remove(&idx);
                if !trusted {
                    self.progress
                        .set_message(format!("resolver failing: {} to retry", retry.len() + 1));
                    retry.push((idx, observation.target));
                    continue;
                }
                self.progress.set_message(observation.target.domain.clone());
                self.progress.inc(1);
                sink.put(idx, observation).await?;
            }
            drop(stream);
            if retry.is_empty() {
                return Ok(Outcome::Finished);
            }
            round += 1;
            // Wait for the resolvers (up to 10 minutes), then evaluate again.
            let mut waited = Duration::ZERO;
            while !self.watch.health(true).await.healthy() {
                if waited >= RESOLVER_WAIT || round > 3 {
                    return Ok(Outcome::ResolversFailing { left: retry });
                }
                tokio::select! {
                    _ = cancel.cancelled() => return Ok(Outcome::Cancelled { left: retry }),
                    _ = tokio::time::sleep(Duration::from_secs(5)) => {}
                }
                waited += Duration::from_secs(5);
            }
            tracing::warn!("the resolvers answer again; evaluating {} targets again", retry.len());
            pending = retry;
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
pub fn fit_open_files(wanted: usize) -> usize {
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

/// The configured resolver addresses, or /etc/resolv.conf's when none is given.
fn resolver_addresses(given: &[String]) -> Result<Vec<SocketAddr>, ScanError> {
    if given.is_empty() {
        return v6scope_probe::resolv_conf_servers("/etc/resolv.conf").map_err(|e| ScanError::Settings(e.to_string()));
    }
    given.iter().map(|r| parse_resolver(r)).collect()
}

fn parse_resolver(s: &str) -> Result<SocketAddr, ScanError> {
    if let Ok(sa) = s.parse::<SocketAddr>() {
        return Ok(sa);
    }
    if let Ok(ip) = s.trim_matches(['[', ']']).parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, 53));
    }
    Err(ScanError::Settings(format!(
        "resolver '{s}' is not ADDR or ADDR:PORT ([v6]:port for IPv6)"
    )))
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
pub fn unprobed(target: Target, vantage: &Vantage, duration_ms: f64, error: ProbeError) -> DomainObservation {
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

/// The whole-site part of an evaluation, when the profiles or the crawl
/// setting ask for it.
struct SiteWork {
    limits: Option<v6scope_probe::crawl::CrawlLimits>,
    roots: Option<Result<RootServers, ProbeError>>,
}

impl SiteWork {
    async fn new(
        prober: &Prober,
        vantage: &Vantage,
        crawl: &CrawlSettings,
        root_hints: Option<&std::path::Path>,
        profiles: &[v6scope_assess::Profile],
    ) -> Result<SiteWork, ScanError> {
        // Profiles that judge a whole site crawl it without being asked.
        let wanted = crawl.crawl || profiles.iter().any(|p| p.kind == v6scope_assess::Kind::CnWebsite);
        // The delegation is followed over IPv6 only when the vantage has IPv6.
        let roots = if wanted && vantage.ipv6 {
            Some(match root_hints {
                Some(path) => Ok(RootServers::from_hints(&path.display().to_string())
                    .map_err(|e| ScanError::Settings(e.to_string()))?),
                None => prober.prime_roots().await,
            })
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
    prober: &Arc<Prober>,
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
            observation.zone.v6_delegation = Some(match roots {
                Ok(roots) => prober.v6_delegation(&observation.zone.zone, roots).await,
                Err(e) => v6scope_model::V6Delegation {
                    roots_from: "priming query (. NS)".into(),
                    error: Some(e.clone()),
                    ..Default::default()
                },
            });
        }
    }
    observation
}
