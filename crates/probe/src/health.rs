//! The resolver self-test: before a target is blamed for what a resolver
//! says, the resolver itself is checked (rule 1: never blame a target for
//! the measurer's fault).
//!
//! Each configured resolver is asked, on its own:
//! - the root NS set (it must answer NOERROR with NS records);
//! - A and AAAA of canary names that exist with both (default: the root
//!   servers' own name, `a.root-servers.net`); a missing AAAA is then asked
//!   of the canary's authoritative servers directly, so "strips AAAA" is
//!   stated only when the source has one;
//! - a name that must not exist (a random label under the canary's zone):
//!   an answer with addresses means NXDOMAIN is rewritten.
//!
//! A resolver that fails any of these makes the whole vantage untestable:
//! the reasons travel in [`v6scope_model::Vantage::resolver_problems`].

use crate::dns::{self, Resolver, name_str, parse_name, records_of};
use crate::policy::AddressPolicy;
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{Name, RData, RecordType};
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

/// The default canaries: names that exist with A and AAAA.
pub const DEFAULT_CANARIES: [&str; 1] = ["a.root-servers.net"];

/// What the self-test found.
#[derive(Debug, Clone, Default)]
pub struct ResolverHealth {
    /// One sentence per fault, naming the resolver; empty when healthy.
    pub problems: Vec<String>,
    /// What was asked and answered, for the record.
    pub detail: Vec<String>,
}

impl ResolverHealth {
    pub fn healthy(&self) -> bool {
        self.problems.is_empty()
    }
}

/// What the self-test asks: each configured resolver on its own, or the
/// built-in iterative resolver (`--iterative`) as a whole.
#[derive(Clone)]
pub enum Subject {
    /// The resolvers, and the scan policy they are asked under.
    Resolvers(Vec<SocketAddr>, AddressPolicy),
    Iterative(Resolver),
}

impl Subject {
    /// The subject of a prober's resolver.
    pub fn of(resolver: &Resolver) -> Subject {
        if resolver.is_iterative() {
            Subject::Iterative(resolver.clone())
        } else {
            Subject::Resolvers(resolver.servers().to_vec(), resolver.policy().clone())
        }
    }
}

/// Checks every resolver of `subject` against `canaries`.
pub async fn check_resolvers(subject: &Subject, canaries: &[String], timeout: Duration) -> ResolverHealth {
    let mut health = ResolverHealth::default();
    let checks: Vec<_> = match subject {
        Subject::Resolvers(servers, policy) => servers
            .iter()
            .map(|&server| {
                let resolver = Resolver::new(vec![server], timeout, 2, None).with_policy(policy.clone());
                check_one(resolver, format!("resolver {}", server.ip()), canaries, timeout)
            })
            .collect(),
        Subject::Iterative(resolver) => vec![check_one(
            resolver.clone(),
            "the built-in iterative resolver".to_string(),
            canaries,
            timeout,
        )],
    };
    for (problems, detail) in futures::future::join_all(checks).await {
        health.problems.extend(problems);
        health.detail.extend(detail);
    }
    health
}

async fn check_one(
    resolver: Resolver,
    who: String,
    canaries: &[String],
    timeout: Duration,
) -> (Vec<String>, Vec<String>) {
    let mut problems = Vec::new();
    let mut detail = Vec::new();
    let describe = |r: &Result<dns::Answer, v6scope_model::ProbeError>| match r {
        Ok(a) => dns::rcode_name(a.rcode()),
        Err(e) => e.message.clone(),
    };

    let root = resolver.query(&Name::root(), RecordType::NS).await;
    let root_ns = root
        .as_ref()
        .map(|a| records_of(&a.message.answers, &Name::root(), RecordType::NS).count())
        .unwrap_or(0);
    detail.push(format!("{who}: '. NS' {} ({root_ns} NS)", describe(&root)));
    if root_ns == 0 {
        problems.push(format!(
            "{who} does not give the root NS set ('. NS': {})",
            describe(&root)
        ));
        // Nothing else will work either; the first fault is the clearest.
        return (problems, detail);
    }

    for canary in canaries {
        let Ok(name) = parse_name(canary) else {
            problems.push(format!("canary '{canary}' is not a domain name"));
            continue;
        };
        let (a, aaaa) = tokio::join!(
            resolver.query(&name, RecordType::A),
            resolver.query(&name, RecordType::AAAA)
        );
        let count = |r: &Result<dns::Answer, _>, t| {
            r.as_ref()
                .map(|a: &dns::Answer| addresses(&a.message.answers, t).len())
                .unwrap_or(0)
        };
        let (n_a, n_aaaa) = (count(&a, RecordType::A), count(&aaaa, RecordType::AAAA));
        detail.push(format!(
            "{who}: canary {canary} A {} ({n_a}), AAAA {} ({n_aaaa})",
            describe(&a),
            describe(&aaaa)
        ));
        match &a {
            Ok(x) if x.rcode() == ResponseCode::NXDomain => {
                problems.push(format!("{who} answers NXDOMAIN for names that exist (canary {canary})"));
                continue;
            }
            Ok(x) if x.rcode() != ResponseCode::NoError => {
                problems.push(format!(
                    "{who} answers {} for the canary {canary}",
                    dns::rcode_name(x.rcode())
                ));
                continue;
            }
            Err(e) => {
                problems.push(format!("{who} does not resolve the canary {canary}: {}", e.message));
                continue;
            }
            Ok(_) if n_a == 0 => {
                problems.push(format!("{who} gives no A record for the canary {canary}"));
                continue;
            }
            Ok(_) => {}
        }
        if n_aaaa == 0 {
            // Only the source can say whether the canary has AAAA.
            match authoritative_aaaa(&resolver, &name, timeout).await {
                Some((source, found)) if !found.is_empty() => problems.push(format!(
                    "{who} strips AAAA: canary {canary} has AAAA {} at its authoritative server {source} but not through the resolver ({})",
                    found.iter().map(IpAddr::to_string).collect::<Vec<_>>().join(", "),
                    describe(&aaaa)
                )),
                Some((source, _)) => detail.push(format!(
                    "canary {canary} has no AAAA at its authoritative server {source}: choose a canary with AAAA"
                )),
                None => problems.push(format!(
                    "{who} gives no AAAA for the canary {canary}, and its authoritative servers could not be asked"
                )),
            }
        }
        // A name that must not exist, next to the canary.
        let zone = name.base_name();
        let label = format!("v6scope-nx-{:08x}", rand::random::<u32>());
        if let Ok(missing) = Name::from_ascii(&label).and_then(|l| l.append_domain(&zone)) {
            let answer = resolver.query(&missing, RecordType::A).await;
            detail.push(format!("{who}: {} A {}", name_str(&missing), describe(&answer)));
            if let Ok(x) = &answer
                && x.rcode() == ResponseCode::NoError
                && !addresses(&x.message.answers, RecordType::A).is_empty()
            {
                problems.push(format!(
                    "{who} rewrites NXDOMAIN: {} does not exist but it answered with {}",
                    name_str(&missing),
                    addresses(&x.message.answers, RecordType::A)
                        .iter()
                        .map(IpAddr::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
        }
    }
    (problems, detail)
}

fn addresses(records: &[hickory_proto::rr::Record], rtype: RecordType) -> Vec<IpAddr> {
    records
        .iter()
        .filter(|r| r.record_type() == rtype)
        .filter_map(|r| match &r.data {
            RData::A(a) => Some(IpAddr::V4(a.0)),
            RData::AAAA(a) => Some(IpAddr::V6(a.0)),
            _ => None,
        })
        .collect()
}

/// AAAA of `name` asked of its zone's authoritative servers directly
/// (found through the resolver: NS of the closest enclosing zone that has
/// them, their A records). The first authoritative answer, with its server.
pub(crate) async fn authoritative_aaaa(
    resolver: &Resolver,
    name: &Name,
    timeout: Duration,
) -> Option<(IpAddr, Vec<IpAddr>)> {
    let mut zone = name.base_name();
    let servers: Vec<IpAddr> = loop {
        if let Ok(answer) = resolver.query(&zone, RecordType::NS).await {
            let ns: Vec<Name> = records_of(&answer.message.answers, &zone, RecordType::NS)
                .filter_map(|r| match r {
                    RData::NS(ns) => Some(ns.0.clone()),
                    _ => None,
                })
                .collect();
            if !ns.is_empty() {
                let mut found = Vec::new();
                for host in ns.iter().take(4) {
                    for rtype in [RecordType::A, RecordType::AAAA] {
                        if let Ok(a) = resolver.query(host, rtype).await {
                            found.extend(addresses(&a.message.answers, rtype));
                        }
                    }
                }
                break found;
            }
        }
        if zone.is_root() {
            return None;
        }
        zone = zone.base_name();
    };
    authoritative_query(resolver, &servers, name, RecordType::AAAA, timeout)
        .await
        .map(|(server, answer)| (server, addresses(&answer.message.answers, RecordType::AAAA)))
}

/// `rtype` of `name` asked (without recursion) of each server in turn; the
/// first authoritative NOERROR or NXDOMAIN answer.
pub(crate) async fn authoritative_query(
    resolver: &Resolver,
    servers: &[IpAddr],
    name: &Name,
    rtype: RecordType,
    timeout: Duration,
) -> Option<(IpAddr, dns::Answer)> {
    for &server in servers.iter().take(6) {
        if resolver.policy().check(server).is_err() {
            continue;
        }
        if let Ok(answer) = resolver
            .direct_within(SocketAddr::new(server, 53), name, rtype, None, timeout)
            .await
            && answer.message.metadata.authoritative
            && matches!(answer.rcode(), ResponseCode::NoError | ResponseCode::NXDomain)
        {
            return Some((server, answer));
        }
    }
    None
}

/// The resolver self-test repeated during a long run: a result observed
/// while the resolvers are failing is not trusted (the scan evaluates that
/// target again once they are healthy).
pub struct Watch {
    subject: Subject,
    canaries: Vec<String>,
    timeout: Duration,
    state: tokio::sync::Mutex<(std::time::Instant, ResolverHealth)>,
    /// Bumped whenever a check finds a fault: an observation started before
    /// and finished after a fault is suspect too.
    faults: std::sync::atomic::AtomicU64,
}

/// How often the watch re-checks on its own, and the least time between
/// checks asked for by suspicious results.
const WATCH_INTERVAL: Duration = Duration::from_secs(30);
const WATCH_MIN_GAP: Duration = Duration::from_secs(2);

impl Watch {
    pub fn new(subject: Subject, canaries: Vec<String>, timeout: Duration, first: ResolverHealth) -> Self {
        Watch {
            subject,
            canaries,
            timeout,
            state: tokio::sync::Mutex::new((std::time::Instant::now(), first)),
            faults: Default::default(),
        }
    }

    /// The fault count, to compare before and after an evaluation.
    pub fn faults(&self) -> u64 {
        self.faults.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Checks the resolvers every `every` until the returned task is
    /// aborted, so an outage is seen while lookups are still timing out.
    pub fn spawn_ticker(self: &std::sync::Arc<Self>, every: Duration) -> tokio::task::JoinHandle<()> {
        let watch = self.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                watch.check(Duration::ZERO).await;
            }
        })
    }

    /// The resolvers' health, checked again when the last check is older
    /// than the interval (or than the minimum gap, when `suspicious`).
    pub async fn health(&self, suspicious: bool) -> ResolverHealth {
        self.check(if suspicious { WATCH_MIN_GAP } else { WATCH_INTERVAL })
            .await
    }

    async fn check(&self, older_than: Duration) -> ResolverHealth {
        let mut state = self.state.lock().await;
        let age = state.0.elapsed();
        if age >= older_than {
            let fresh = check_resolvers(&self.subject, &self.canaries, self.timeout).await;
            if !fresh.healthy() {
                self.faults.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                tracing::warn!(problems = ?fresh.problems, "resolver self-test failed mid-run");
            }
            *state = (std::time::Instant::now(), fresh);
        }
        state.1.clone()
    }
}

/// Whether an observation failed anywhere the way a failing resolver makes
/// lookups fail (timeouts, SERVFAIL, REFUSED; NXDOMAIN for the apex): its
/// names, its name servers' and mail servers' names, its zone lookups.
pub fn looks_like_resolver_failure(o: &v6scope_model::DomainObservation) -> bool {
    use v6scope_model::{ErrorKind, NameResolution, NameRole, ProbeError};
    let bad = |e: &ProbeError| {
        matches!(e.kind, ErrorKind::Timeout | ErrorKind::NotTestable)
            || (e.kind == ErrorKind::DnsRcode && (e.message.contains("SERVFAIL") || e.message.contains("REFUSED")))
    };
    let failed = |r: &NameResolution| r.a_error.as_ref().is_some_and(bad) || r.aaaa_error.as_ref().is_some_and(bad);
    if o.error.is_some() {
        return true;
    }
    match o.names.iter().find(|n| n.role == NameRole::Apex) {
        Some(apex) if !apex.exists => return true,
        None => return true,
        Some(_) => {}
    }
    o.names.iter().any(failed)
        || o.zone.hosts.iter().any(|h| failed(&h.resolution))
        || o.mail.hosts.iter().any(|h| failed(&h.resolution))
        || o.zone.errors.iter().any(bad)
        || o.mail.error.as_ref().is_some_and(bad)
}
