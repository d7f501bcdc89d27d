//! Active measurement: turns a target into [`DomainObservation`]s by probing
//! DNS, name servers, web and mail over IPv4 and IPv6 separately, address by
//! address. Facts only; judging is `v6scope-assess`'s job.

pub mod addr;
pub mod content;
pub mod crawl;
pub mod dns;
pub mod health;
mod iterative;
pub mod links;
pub mod mail;
pub mod policy;
pub mod robots;
mod shared_udp;
pub mod v6path;
pub mod web;

use crate::addr::AddressPolicy;
use crate::dns::{Resolver, chase, name_str, parse_name, records_of};
use crate::web::{HostLookup, WebClient, WebConfig};
use futures::future::join_all;
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{Name, RData, RecordType};
use std::collections::{BTreeSet, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::OnceCell;
use v6scope_model::{
    ContentParity, DomainObservation, ErrorKind, Family, MailObservation, MxHost, MxStatus, NameResolution, NameRole,
    NsHost, NsProbe, ProbeError, SCHEMA_VERSION, Scheme, Target, Transport, Vantage, WebObservation, ZoneObservation,
};

pub use crate::iterative::{IANA_ROOTS, root_hint_addresses};
pub use crate::mail::SmtpConfig;

/// Most MX hosts probed per domain (as internet.nl).
pub const MAX_MX_HOSTS: usize = 10;

#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error(transparent)]
    Web(#[from] web::WebSetupError),
    #[error("reading {path}: {source}")]
    ResolvConf { path: String, source: std::io::Error },
    #[error("no name server found in {0}; pass --resolver")]
    NoResolver(String),
}

/// Everything that shapes probing.
#[derive(Debug, Clone)]
pub struct ProbeConfig {
    pub resolvers: Vec<SocketAddr>,
    pub dns_timeout: Duration,
    pub dns_attempts: u32,
    pub allow_prefixes: Vec<ipnet::IpNet>,
    pub web: WebConfig,
    pub smtp: SmtpConfig,
    /// DNS queries per second across the run.
    pub rate: Option<NonZeroU32>,
    /// Resolver queries in flight at most.
    pub dns_in_flight: usize,
    /// `--iterative`: resolve from these root servers with the built-in
    /// iterative resolver; `resolvers` are then not used.
    pub iterative_roots: Option<Vec<IpAddr>>,
    /// Which addresses may be sent anything at all (resolvers, name
    /// servers, web and mail servers, redirect targets).
    pub scan_policy: policy::AddressPolicy,
}

impl ProbeConfig {
    /// Defaults a user of internet.nl-like tools would expect.
    pub fn with_resolvers(resolvers: Vec<SocketAddr>) -> Self {
        ProbeConfig {
            resolvers,
            dns_timeout: Duration::from_secs(2),
            dns_attempts: 2,
            allow_prefixes: Vec::new(),
            web: WebConfig {
                ca_files: Vec::new(),
                connect_timeout: Duration::from_secs(4),
                deadline: Duration::from_secs(10),
                body_cap: 2 * 1024 * 1024,
                user_agent: format!("v6scope/{} (IPv6 readiness check)", env!("CARGO_PKG_VERSION")),
                policy: policy::AddressPolicy::open(),
            },
            smtp: SmtpConfig {
                port: 25,
                connect_timeout: Duration::from_secs(4),
                deadline: Duration::from_secs(10),
                helo_name: "v6scope.invalid".into(),
                policy: policy::AddressPolicy::open(),
            },
            rate: None,
            dns_in_flight: dns::DEFAULT_MAX_IN_FLIGHT,
            iterative_roots: None,
            scan_policy: policy::AddressPolicy::open(),
        }
    }
}

/// The name servers listed in a resolv.conf file.
pub fn resolv_conf_servers(path: &str) -> Result<Vec<SocketAddr>, SetupError> {
    let text = std::fs::read_to_string(path).map_err(|source| SetupError::ResolvConf {
        path: path.into(),
        source,
    })?;
    let servers: Vec<SocketAddr> = text
        .lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            (words.next()? == "nameserver").then_some(())?;
            let addr: IpAddr = words.next()?.split('%').next()?.parse().ok()?;
            Some(SocketAddr::new(addr, 53))
        })
        .collect();
    if servers.is_empty() {
        return Err(SetupError::NoResolver(path.into()));
    }
    Ok(servers)
}

/// A per-run cache in which each key is computed once, even when many
/// targets ask for it at the same time.
pub(crate) struct Shared<T> {
    cells: Mutex<HashMap<String, Arc<OnceCell<T>>>>,
}

impl<T: Clone> Shared<T> {
    fn new() -> Self {
        Shared {
            cells: Mutex::new(HashMap::new()),
        }
    }
    async fn get<F: std::future::Future<Output = T>>(&self, key: &str, make: impl FnOnce() -> F) -> T {
        let cell = {
            let mut cells = self.cells.lock().expect("cache lock");
            cells.entry(key.to_string()).or_default().clone()
        };
        cell.get_or_init(make).await.clone()
    }
}

pub struct Prober {
    resolver: Resolver,
    policy: AddressPolicy,
    web: WebClient,
    smtp: SmtpConfig,
    ns_hosts: Shared<NameResolution>,
    mx_hosts: Shared<MxHost>,
    /// Parent zone → its NS names, as the resolver gave them (successes
    /// only: a failed lookup is asked again by the next target).
    parent_servers: Mutex<HashMap<String, Vec<String>>>,
    /// IPv6-only delegation walks: zone → the steps that reached it and its
    /// servers with their IPv6 addresses.
    referrals: v6path::ReferralCache,
}

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1000.0 * 100.0).round() / 100.0
}

impl Prober {
    pub fn new(mut config: ProbeConfig) -> Result<Arc<Self>, SetupError> {
        config.web.policy = config.scan_policy.clone();
        config.smtp.policy = config.scan_policy.clone();
        let limiter = config
            .rate
            .map(|qps| Arc::new(governor::RateLimiter::direct(governor::Quota::per_second(qps))));
        Ok(Arc::new(Prober {
            resolver: match config.iterative_roots {
                Some(roots) => Resolver::iterative(roots, config.dns_timeout, limiter),
                None => Resolver::new(config.resolvers, config.dns_timeout, config.dns_attempts, limiter),
            }
            .with_max_in_flight(config.dns_in_flight)
            .with_policy(config.scan_policy.clone()),
            policy: AddressPolicy::new(config.allow_prefixes),
            web: WebClient::new(config.web)?,
            smtp: config.smtp,
            ns_hosts: Shared::new(),
            mx_hosts: Shared::new(),
            parent_servers: Mutex::default(),
            referrals: Default::default(),
        }))
    }

    pub fn resolver(&self) -> &Resolver {
        &self.resolver
    }

    /// Checks that this vantage point can itself use each family: a query
    /// through the resolver, and one direct query per family to `probes`
    /// (or to the resolvers when no probe address of that family is given).
    pub async fn vantage(&self, probes: &[IpAddr]) -> Vantage {
        let mut detail = Vec::new();
        let root = Name::root();
        match self.resolver.query(&root, RecordType::NS).await {
            Ok(a) => detail.push(format!("resolver answered '. NS' with {}", dns::rcode_name(a.rcode()))),
            Err(e) => detail.push(format!("resolver did not answer '. NS': {}", e.message)),
        }
        let mut works = [false, false];
        for (i, family) in [Family::Ipv4, Family::Ipv6].into_iter().enumerate() {
            let mut targets: Vec<IpAddr> = probes.iter().copied().filter(|a| Family::of(a) == family).collect();
            if targets.is_empty() {
                targets = self
                    .resolver
                    .servers()
                    .iter()
                    .map(|s| s.ip())
                    .filter(|a| Family::of(a) == family)
                    .collect();
            }
            if targets.is_empty() {
                detail.push(format!("no {} probe address configured", family.label()));
                continue;
            }
            for target in targets {
                let server = SocketAddr::new(target, 53);
                match dns::exchange(
                    server,
                    &root,
                    RecordType::NS,
                    false,
                    Some(Transport::Udp),
                    self.resolver.timeout(),
                    self.resolver.policy(),
                )
                .await
                {
                    Ok(a) => {
                        detail.push(format!(
                            "{}: {server} answered in {:.1} ms",
                            family.label(),
                            a.rtt.as_secs_f64() * 1000.0
                        ));
                        works[i] = true;
                        break;
                    }
                    Err(e) => detail.push(format!("{}: {server} did not answer: {}", family.label(), e.message)),
                }
            }
        }
        Vantage {
            ipv4: works[0],
            ipv6: works[1],
            detail,
            resolver_problems: Vec::new(),
        }
    }

    /// A and AAAA of `name`, each following its CNAME chain.
    pub async fn resolve(&self, name: &str, role: NameRole) -> NameResolution {
        let mut resolution = NameResolution {
            name: name.to_string(),
            role,
            cname_chain: Vec::new(),
            exists: true,
            a: Vec::new(),
            aaaa: Vec::new(),
            a_error: None,
            aaaa_error: None,
            a_ms: 0.0,
            aaaa_ms: 0.0,
            confirmation: None,
        };
        let parsed = match parse_name(name) {
            Ok(n) => n,
            Err(e) => {
                resolution.a_error = Some(e.clone());
                resolution.aaaa_error = Some(e);
                return resolution;
            }
        };
        let timed = |rtype| {
            let parsed = parsed.clone();
            async move {
                let started = Instant::now();
                let outcome = chase(&self.resolver, &parsed, rtype).await;
                (outcome, ms(started.elapsed()))
            }
        };
        let ((a, a_ms), (aaaa, aaaa_ms)) = tokio::join!(timed(RecordType::A), timed(RecordType::AAAA));
        resolution.a_ms = a_ms;
        resolution.aaaa_ms = aaaa_ms;
        for (outcome, is_v6) in [(a, false), (aaaa, true)] {
            match outcome {
                Ok(chased) => {
                    if chased.chain.len() > resolution.cname_chain.len() {
                        resolution.cname_chain = chased.chain.iter().map(name_str).collect();
                    }
                    if chased.nxdomain && chased.chain.is_empty() {
                        resolution.exists = false;
                    }
                    let addrs = chased.records.iter().filter_map(|r| match r {
                        RData::A(a) => Some(IpAddr::V4(a.0)),
                        RData::AAAA(a) => Some(IpAddr::V6(a.0)),
                        _ => None,
                    });
                    let mut infos: Vec<_> = addrs.map(|a| self.policy.info(a)).collect();
                    infos.dedup_by_key(|i| i.address);
                    if is_v6 {
                        resolution.aaaa = infos;
                    } else {
                        resolution.a = infos;
                    }
                }
                Err(e) => {
                    if is_v6 {
                        resolution.aaaa_error = Some(e);
                    } else {
                        resolution.a_error = Some(e);
                    }
                }
            }
        }
        resolution
    }

    /// Evaluates one target. Families the vantage lacks are not probed.
    pub async fn evaluate(self: &Arc<Self>, target: Target, vantage: &Vantage) -> DomainObservation {
        let started = Instant::now();
        let started_at_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or_default();
        let apex = target.domain.clone();
        let www = format!("www.{apex}");
        let (apex_res, www_res) = tokio::join!(self.resolve(&apex, NameRole::Apex), self.resolve(&www, NameRole::Www));
        let mut names = vec![apex_res, www_res];
        let redirect_hosts = Arc::new(Shared::new());
        let (zone, mail, mut web) = tokio::join!(
            self.zone(&apex, vantage),
            self.mail(&apex, vantage),
            join_all(names.iter().map(|n| self.web(n, vantage, redirect_hosts.clone())))
        );
        // Negatives are confirmed at the source before anyone is blamed: a
        // name without AAAA (or that does not exist) is asked again of the
        // zone's own servers; where they disagree with the resolver, the
        // target is judged on their answer.
        let authoritative: Vec<IpAddr> = zone
            .hosts
            .iter()
            .flat_map(|h| h.probes.iter())
            .filter(|p| p.answered && p.transport == Transport::Udp)
            .map(|p| p.address)
            .fold(Vec::new(), |mut v, a| {
                if !v.contains(&a) {
                    v.push(a);
                }
                v
            });
        for (i, name) in names.iter_mut().enumerate() {
            if self.confirm_negative(name, &authoritative).await {
                web[i] = self.web(name, vantage, redirect_hosts.clone()).await;
            }
        }
        DomainObservation {
            schema_version: SCHEMA_VERSION,
            target,
            started_at_ms,
            duration_ms: ms(started.elapsed()),
            vantage: vantage.clone(),
            names,
            zone,
            mail,
            web,
            site: None,
            error: None,
        }
    }

    /// Asks `servers` (the zone's answering name servers) again when the
    /// resolver said `name` has no AAAA or does not exist. Returns whether
    /// the authoritative answer changed the resolution.
    async fn confirm_negative(&self, name: &mut NameResolution, servers: &[IpAddr]) -> bool {
        let no_aaaa = name.exists && name.aaaa.is_empty() && name.aaaa_error.is_none() && name.cname_chain.is_empty();
        let missing = !name.exists;
        if !(no_aaaa || missing) || servers.is_empty() {
            return false;
        }
        let Ok(parsed) = parse_name(&name.name) else {
            return false;
        };
        let timeout = self.resolver.timeout();
        let Some((server, answer)) =
            health::authoritative_query(&self.resolver, servers, &parsed, RecordType::AAAA, timeout).await
        else {
            return false;
        };
        let aaaa: Vec<IpAddr> = records_of(&answer.message.answers, &parsed, RecordType::AAAA)
            .filter_map(|r| match r {
                RData::AAAA(a) => Some(IpAddr::V6(a.0)),
                _ => None,
            })
            .collect();
        let nxdomain = answer.rcode() == ResponseCode::NXDomain;
        let said = if nxdomain {
            "NXDOMAIN".to_string()
        } else if aaaa.is_empty() {
            "no AAAA".to_string()
        } else {
            format!(
                "AAAA {}",
                aaaa.iter().map(IpAddr::to_string).collect::<Vec<_>>().join(", ")
            )
        };
        let disagreed = if missing { !nxdomain } else { !aaaa.is_empty() };
        name.confirmation = Some(v6scope_model::Confirmation {
            server,
            answer: said,
            resolver_disagreed: disagreed,
        });
        if !disagreed {
            return false;
        }
        if missing {
            name.exists = true;
            if let Some((_, a)) =
                health::authoritative_query(&self.resolver, servers, &parsed, RecordType::A, timeout).await
            {
                name.a = records_of(&a.message.answers, &parsed, RecordType::A)
                    .filter_map(|r| match r {
                        RData::A(x) => Some(self.policy.info(IpAddr::V4(x.0))),
                        _ => None,
                    })
                    .collect();
                name.a_error = None;
            }
        }
        name.aaaa = aaaa.into_iter().map(|a| self.policy.info(a)).collect();
        name.aaaa_error = None;
        true
    }

    fn tested<'a>(&self, resolution: &'a NameResolution, vantage: &'a Vantage) -> impl Iterator<Item = IpAddr> + 'a {
        resolution
            .a
            .iter()
            .chain(resolution.aaaa.iter())
            .filter(move |a| a.usable && vantage.has(Family::of(&a.address)))
            .map(|a| a.address)
    }

    async fn ns_host(&self, name: &str) -> NameResolution {
        self.ns_hosts
            .get(name, || self.resolve(name, NameRole::NameServer))
            .await
    }

    async fn zone(&self, apex: &str, vantage: &Vantage) -> ZoneObservation {
        let mut obs = ZoneObservation::default();
        let Ok(apex_name) = parse_name(apex) else {
            obs.errors
                .push(ProbeError::new(ErrorKind::DnsMalformed, format!("bad name {apex}")));
            return obs;
        };
        // Zone cut: the owner of an enclosing SOA in the answer or authority
        // section. A name that is a CNAME (or whose lookup fails, e.g. a CNAME
        // loop) lives in an enclosing zone: walk up until one answers.
        let mut zone = None;
        let mut candidate = apex_name.clone();
        loop {
            match self.resolver.query(&candidate, RecordType::SOA).await {
                Ok(answer) => {
                    zone = answer
                        .message
                        .answers
                        .iter()
                        .chain(answer.message.authorities.iter())
                        .filter(|r| r.record_type() == RecordType::SOA && r.name.zone_of(&apex_name))
                        .map(|r| r.name.to_lowercase())
                        .max_by_key(|n| n.num_labels());
                }
                Err(e) => obs.errors.push(e),
            }
            if zone.is_some() || candidate.is_root() {
                break;
            }
            candidate = candidate.base_name();
        }
        let zone = zone.unwrap_or_else(|| apex_name.clone());
        obs.zone = name_str(&zone);
        let resolver_ns: Vec<String> = match self.resolver.query(&zone, RecordType::NS).await {
            Ok(answer) if answer.rcode() == ResponseCode::NoError => ns_names(&answer.message.answers, &zone),
            Ok(answer) => {
                obs.errors.push(ProbeError::new(
                    ErrorKind::DnsRcode,
                    format!("NS {}: {}", obs.zone, dns::rcode_name(answer.rcode())),
                ));
                Vec::new()
            }
            Err(e) => {
                obs.errors.push(e);
                Vec::new()
            }
        };
        let parent = self.parent_delegation(&zone, vantage);
        let hosts = join_all(resolver_ns.iter().map(|ns| self.probe_ns_host(ns, &zone, vantage)));
        let ((parent_ns, glue, parent_error), hosts) = tokio::join!(parent, hosts);
        obs.hosts = hosts;
        obs.parent_ns = parent_ns;
        obs.glue = glue;
        if let Some(e) = parent_error {
            obs.errors.push(e);
        }
        // The child's own NS set, asked of one of its answering servers.
        let answering = obs
            .hosts
            .iter()
            .flat_map(|h| h.probes.iter())
            .find(|p| p.answered && p.transport == Transport::Udp)
            .map(|p| p.address);
        obs.child_ns = match answering {
            Some(address) => {
                match self
                    .resolver
                    .direct(SocketAddr::new(address, 53), &zone, RecordType::NS, None)
                    .await
                {
                    Ok(answer) if answer.message.metadata.authoritative => ns_names(&answer.message.answers, &zone),
                    _ => resolver_ns.clone(),
                }
            }
            None => resolver_ns.clone(),
        };
        obs.ns_mismatch = !obs.parent_ns.is_empty() && !obs.child_ns.is_empty() && obs.parent_ns != obs.child_ns;
        let serials: BTreeSet<u32> = obs
            .hosts
            .iter()
            .flat_map(|h| h.probes.iter())
            .filter(|p| p.answered)
            .filter_map(|p| p.serial)
            .collect();
        obs.serials = serials.into_iter().collect();
        let slash48s: BTreeSet<_> = obs
            .hosts
            .iter()
            .flat_map(|h| h.resolution.usable_v6())
            .filter_map(|a| match a.address {
                IpAddr::V6(v6) => Some(addr::slash48(v6)),
                IpAddr::V4(_) => None,
            })
            .collect();
        obs.distinct_v6_48s = slash48s.len();
        obs
    }

    /// The parent's referral for `zone`: NS names and glue.
    async fn parent_delegation(
        &self,
        zone: &Name,
        vantage: &Vantage,
    ) -> (Vec<String>, Vec<(String, IpAddr)>, Option<ProbeError>) {
        if zone.is_root() {
            return (Vec::new(), Vec::new(), None);
        }
        let parent = zone.base_name();
        let key = name_str(&parent);
        let known = self.parent_servers.lock().expect("cache lock").get(&key).cloned();
        let parent_servers: Vec<String> = match known {
            Some(servers) => servers,
            None => match self.resolver.query(&parent, RecordType::NS).await {
                Ok(answer) => {
                    let servers: Vec<String> = records_of(&answer.message.answers, &parent, RecordType::NS)
                        .filter_map(|r| match r {
                            RData::NS(ns) => Some(name_str(&ns.0)),
                            _ => None,
                        })
                        .collect();
                    if !servers.is_empty() {
                        self.parent_servers
                            .lock()
                            .expect("cache lock")
                            .insert(key, servers.clone());
                    }
                    servers
                }
                Err(e) => return (Vec::new(), Vec::new(), Some(e)),
            },
        };
        let mut last_error = None;
        for server_name in parent_servers.iter().take(4) {
            let resolution = self.ns_host(server_name).await;
            for address in self.tested(&resolution, vantage).collect::<Vec<_>>() {
                self.resolver.pace().await;
                match self
                    .resolver
                    .direct(SocketAddr::new(address, 53), zone, RecordType::NS, None)
                    .await
                {
                    // A reply without NS records is no referral: try the next server.
                    Ok(answer)
                        if answer.rcode() == ResponseCode::NoError
                            && records_of(&answer.message.answers, zone, RecordType::NS)
                                .chain(records_of(&answer.message.authorities, zone, RecordType::NS))
                                .next()
                                .is_some() =>
                    {
                        let m = &answer.message;
                        let section = if m.metadata.authoritative && !m.answers.is_empty() {
                            &m.answers
                        } else {
                            &m.authorities
                        };
                        let names = ns_names(section, zone);
                        let glue = m
                            .additionals
                            .iter()
                            .filter_map(|r| match &r.data {
                                RData::A(a) => Some((name_str(&r.name), IpAddr::V4(a.0))),
                                RData::AAAA(a) => Some((name_str(&r.name), IpAddr::V6(a.0))),
                                _ => None,
                            })
                            .collect();
                        return (names, glue, None);
                    }
                    Ok(answer) => {
                        last_error = Some(ProbeError::new(
                            ErrorKind::DnsRcode,
                            format!("parent server {address} answered {}", dns::rcode_name(answer.rcode())),
                        ))
                    }
                    Err(e) => last_error = Some(e),
                }
            }
        }
        (
            Vec::new(),
            Vec::new(),
            last_error.or_else(|| Some(ProbeError::new(ErrorKind::NoAddress, "no parent server reachable"))),
        )
    }

    async fn probe_ns_host(&self, name: &str, zone: &Name, vantage: &Vantage) -> NsHost {
        let resolution = self.ns_host(name).await;
        let addresses: Vec<IpAddr> = self.tested(&resolution, vantage).collect();
        // TCP is asked of IPv6 addresses only: it is what `ns_tcp_v6` judges
        // (as internet.nl does), and a connection per IPv4 name-server
        // address per domain was a quarter of a scan's TCP connections.
        let probes = join_all(addresses.iter().flat_map(|&address| {
            let transports: &[Transport] = if address.is_ipv6() {
                &[Transport::Udp, Transport::Tcp]
            } else {
                &[Transport::Udp]
            };
            transports
                .iter()
                .map(move |&transport| self.soa_probe(address, zone, transport))
        }))
        .await;
        NsHost {
            name: name.to_string(),
            resolution,
            probes,
        }
    }

    /// A direct, non-recursive SOA query to one name-server address.
    async fn soa_probe(&self, address: IpAddr, zone: &Name, transport: Transport) -> NsProbe {
        let mut probe = NsProbe {
            address,
            family: Family::of(&address),
            transport,
            answered: false,
            rcode: None,
            authoritative: false,
            flags: String::new(),
            serial: None,
            rtt_ms: None,
            error: None,
        };
        self.resolver.pace().await;
        let server = SocketAddr::new(address, 53);
        let mut outcome = Err(ProbeError::new(ErrorKind::Timeout, "not attempted"));
        // Bounded retry: one more try after a timeout, as resolvers do.
        for _ in 0..2 {
            outcome = self
                .resolver
                .direct(server, zone, RecordType::SOA, Some(transport))
                .await;
            if !matches!(&outcome, Err(e) if e.kind == ErrorKind::Timeout) {
                break;
            }
        }
        match outcome {
            Ok(answer) => {
                let m = &answer.message;
                probe.rcode = Some(dns::rcode_name(answer.rcode()));
                probe.authoritative = m.metadata.authoritative;
                probe.flags = answer.flags();
                probe.rtt_ms = Some(ms(answer.rtt));
                probe.serial = records_of(&m.answers, zone, RecordType::SOA).find_map(|r| match r {
                    RData::SOA(soa) => Some(soa.serial),
                    _ => None,
                });
                probe.answered =
                    answer.rcode() == ResponseCode::NoError && probe.authoritative && !m.queries.is_empty();
                if !probe.answered {
                    probe.error = Some(ProbeError::new(
                        if answer.rcode() == ResponseCode::NoError {
                            ErrorKind::Protocol
                        } else {
                            ErrorKind::DnsRcode
                        },
                        format!(
                            "{server} {:?}: rcode {}, flags [{}]{}",
                            transport,
                            dns::rcode_name(answer.rcode()),
                            probe.flags,
                            if probe.authoritative {
                                ""
                            } else {
                                ", not authoritative (AA unset)"
                            }
                        ),
                    ));
                }
            }
            Err(e) => probe.error = Some(e),
        }
        probe
    }

    async fn mail(&self, apex: &str, vantage: &Vantage) -> MailObservation {
        let mut obs = MailObservation {
            status: MxStatus::NoMx,
            hosts: Vec::new(),
            error: None,
        };
        let name = match parse_name(apex) {
            Ok(n) => n,
            Err(e) => {
                obs.status = MxStatus::Error;
                obs.error = Some(e);
                return obs;
            }
        };
        let answer = match self.resolver.query(&name, RecordType::MX).await {
            Ok(a) => a,
            Err(e) => {
                obs.status = MxStatus::Error;
                obs.error = Some(e);
                return obs;
            }
        };
        match answer.rcode() {
            ResponseCode::NoError | ResponseCode::NXDomain => {}
            other => {
                obs.status = MxStatus::Error;
                obs.error = Some(ProbeError::new(
                    ErrorKind::DnsRcode,
                    format!("MX {apex}: {}", dns::rcode_name(other)),
                ));
                return obs;
            }
        }
        let mut records: Vec<(u16, String)> = answer
            .message
            .answers
            .iter()
            .filter_map(|r| match &r.data {
                RData::MX(mx) => Some((mx.preference, name_str(&mx.exchange))),
                _ => None,
            })
            .collect();
        let has_null = records.iter().any(|(_, host)| host == ".");
        records.retain(|(_, host)| host != "." && host != "localhost");
        records.sort();
        let mut seen = BTreeSet::new();
        records.retain(|(_, host)| seen.insert(host.clone()));
        records.truncate(MAX_MX_HOSTS);
        obs.status = match (has_null, records.is_empty()) {
            (true, true) => MxStatus::NullMx,
            (true, false) => MxStatus::NullMxWithOthers,
            (false, true) => MxStatus::NoMx,
            (false, false) => MxStatus::Hosts,
        };
        obs.hosts = join_all(records.into_iter().map(|(preference, host)| async move {
            let mut mx = self
                .mx_hosts
                .get(&host, || async {
                    let resolution = self.resolve(&host, NameRole::MailExchanger).await;
                    let addresses: Vec<IpAddr> = self.tested(&resolution, vantage).collect();
                    let probes = join_all(addresses.iter().map(|a| mail::probe(*a, &self.smtp))).await;
                    MxHost {
                        preference: 0,
                        name: host.clone(),
                        resolution,
                        probes,
                    }
                })
                .await;
            mx.preference = preference;
            mx
        }))
        .await;
        obs
    }

    /// Resolves redirect targets. The cache lives for one target only: most
    /// redirect hosts (www.<domain>) are unique to it, and a run-wide cache
    /// would grow with the target list.
    pub(crate) fn lookup_fn(self: &Arc<Self>, cache: Arc<Shared<NameResolution>>) -> HostLookup {
        let me = self.clone();
        Arc::new(move |host: String, family: Family| {
            let me = me.clone();
            let cache = cache.clone();
            Box::pin(async move {
                let resolution = cache.get(&host, || me.resolve(&host, NameRole::RedirectHost)).await;
                resolution.addresses(family).to_vec()
            })
        })
    }

    async fn web(
        self: &Arc<Self>,
        resolution: &NameResolution,
        vantage: &Vantage,
        redirect_hosts: Arc<Shared<NameResolution>>,
    ) -> WebObservation {
        let lookup = self.lookup_fn(redirect_hosts);
        let addresses: Vec<IpAddr> = self.tested(resolution, vantage).collect();
        let jobs = addresses.iter().flat_map(|&address| {
            [Scheme::Http, Scheme::Https].map(|scheme| {
                let lookup = lookup.clone();
                async move { self.web.fetch(&resolution.name, address, scheme, &lookup).await }
            })
        });
        let results = join_all(jobs).await;
        let mut parity = Vec::new();
        for scheme in [Scheme::Https, Scheme::Http] {
            let reference = results
                .iter()
                .find(|(f, p)| f.scheme == scheme && f.family == Family::Ipv4 && f.completed && p.is_some());
            let Some((v4, Some(v4_page))) = reference else { continue };
            for (v6, page) in results
                .iter()
                .filter(|(f, _)| f.scheme == scheme && f.family == Family::Ipv6 && f.completed)
            {
                let Some(v6_page) = page else { continue };
                parity.push(compare(v4, v4_page, v6, v6_page));
            }
        }
        WebObservation {
            name: resolution.name.clone(),
            role: resolution.role,
            fetches: results.into_iter().map(|(f, _)| f).collect(),
            parity,
        }
    }
}

/// The NS names owned by `zone` in a section, sorted and deduplicated.
fn ns_names(section: &[hickory_proto::rr::Record], zone: &Name) -> Vec<String> {
    let mut names: Vec<String> = records_of(section, zone, RecordType::NS)
        .filter_map(|r| match r {
            RData::NS(ns) => Some(name_str(&ns.0)),
            _ => None,
        })
        .collect();
    names.sort();
    names.dedup();
    names
}

fn redirect_path(fetch: &v6scope_model::HttpFetch) -> Vec<String> {
    fetch.hops.iter().map(|h| h.url.clone()).collect()
}

fn compare(
    v4: &v6scope_model::HttpFetch,
    v4_page: &content::Page,
    v6: &v6scope_model::HttpFetch,
    v6_page: &content::Page,
) -> ContentParity {
    let text_similarity = content::text_similarity(&v4_page.text, &v6_page.text);
    let structure_similarity = content::structure_similarity(&v4_page.tags, &v6_page.tags);
    let status_equal = v4.final_status == v6.final_status;
    let redirects_equal = redirect_path(v4) == redirect_path(v6);
    let title_equal = v4_page.title == v6_page.title;
    let mut differed = Vec::new();
    for (same, label) in [
        (status_equal, "status"),
        (redirects_equal, "redirects"),
        (title_equal, "title"),
        (text_similarity >= 0.999, "text"),
        (structure_similarity >= 0.999, "structure"),
    ] {
        if !same {
            differed.push(label.to_string());
        }
    }
    ContentParity {
        name: v4.name.clone(),
        scheme: v4.scheme,
        v4_address: v4.address,
        v6_address: v6.address,
        status_equal,
        redirects_equal,
        title_equal,
        text_similarity: (text_similarity * 1000.0).round() / 1000.0,
        structure_similarity: (structure_similarity * 1000.0).round() / 1000.0,
        differed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_resolv_conf() {
        let dir = std::env::temp_dir().join(format!("v6scope-resolv-{}", std::process::id()));
        std::fs::write(&dir, "# c\nnameserver 192.0.2.53\nnameserver fe80::1%eth0\nsearch x\n").unwrap();
        let servers = resolv_conf_servers(dir.to_str().unwrap()).unwrap();
        std::fs::remove_file(&dir).unwrap();
        assert_eq!(servers.len(), 2);
        assert_eq!(servers[0], "192.0.2.53:53".parse().unwrap());
    }
}
