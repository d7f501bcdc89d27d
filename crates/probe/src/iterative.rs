//! A built-in iterative resolver (`--iterative`): answers a question by
//! walking down from the root servers itself, so a platform needs no
//! trusted external resolver (internet.nl runs its own resolver for the same
//! reason). Both families are used, as the vantage allows; every server is
//! asked through the scan policy like any other probe.
//!
//! The walk keeps what it learns for the run: each zone's servers (from the
//! referral, with in-bailiwick glue, or resolved by the same walk when the
//! referral has none) until the delegation's TTL runs out, and which server
//! addresses did not answer, so a dead name server costs one timeout per
//! minute rather than one per query.

use crate::dns::{self, Answer, name_str};
use crate::policy::AddressPolicy;
use hickory_proto::op::{Message, MessageType, ResponseCode};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::OnceCell;
use v6scope_model::{ErrorKind, ProbeError};

/// Referrals followed for one question at most (the root to a deep zone is
/// a handful; more is a referral loop).
const MAX_REFERRALS: usize = 16;
/// Nested lookups of name-server names without glue.
const MAX_NESTING: usize = 3;
/// Server addresses tried per zone and question at most.
const MAX_TRIES: usize = 6;
/// Zones kept at most; beyond, the cache starts again.
const MAX_ZONES: usize = 200_000;
/// A delegation is kept at most this long, whatever its TTL.
const MAX_DELEGATION_TTL: Duration = Duration::from_secs(86_400);
/// How long an address that did not answer is passed over.
const DEAD_FOR: Duration = Duration::from_secs(60);

/// The IANA root servers (IPv4 and IPv6), used when no root hints are given.
pub const IANA_ROOTS: [&str; 26] = [
    "198.41.0.4",
    "2001:503:ba3e::2:30",
    "170.247.170.2",
    "2801:1b8:10::b",
    "192.33.4.12",
    "2001:500:2::c",
    "199.7.91.13",
    "2001:500:2d::d",
    "192.203.230.10",
    "2001:500:a8::e",
    "192.5.5.241",
    "2001:500:2f::f",
    "192.112.36.4",
    "2001:500:12::d0d",
    "198.97.190.53",
    "2001:500:1::53",
    "192.36.148.17",
    "2001:7fe::53",
    "192.58.128.30",
    "2001:503:c27::2:30",
    "193.0.14.129",
    "2001:7fd::1",
    "199.7.83.42",
    "2001:500:9f::42",
    "202.12.27.33",
    "2001:dc3::35",
];

/// The addresses (A and AAAA) in a root hints file (`named.root` form).
pub fn root_hint_addresses(text: &str) -> Vec<IpAddr> {
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.split(';').next().unwrap_or_default();
        let words: Vec<&str> = line.split_whitespace().collect();
        if let Some(at) = words
            .iter()
            .position(|w| w.eq_ignore_ascii_case("A") || w.eq_ignore_ascii_case("AAAA"))
            && let Some(Ok(address)) = words.get(at + 1).map(|a| a.parse::<IpAddr>())
            && !out.contains(&address)
        {
            out.push(address);
        }
    }
    out
}

/// One name server of a zone: its name and, once known, its addresses.
struct Server {
    name: Name,
    addresses: OnceCell<Vec<IpAddr>>,
}

struct Zone {
    servers: Vec<Server>,
    expires: Instant,
}

/// The iterative resolver of one run.
pub struct Iterative {
    roots: Arc<Zone>,
    timeout: Duration,
    policy: Arc<AddressPolicy>,
    zones: Mutex<HashMap<Name, Arc<Zone>>>,
    dead: Mutex<HashMap<IpAddr, Instant>>,
}

/// What one server said.
enum Reply {
    Final(Answer),
    Referral(Name, Arc<Zone>),
    Lame(String),
}

impl Iterative {
    pub fn new(roots: Vec<IpAddr>, timeout: Duration) -> Iterative {
        let servers = vec![Server {
            name: Name::root(),
            addresses: OnceCell::new_with(Some(roots)),
        }];
        Iterative {
            roots: Arc::new(Zone {
                servers,
                expires: Instant::now() + Duration::from_secs(u32::MAX as u64),
            }),
            timeout,
            policy: Arc::default(),
            zones: Mutex::new(HashMap::new()),
            dead: Mutex::new(HashMap::new()),
        }
    }

    /// The same roots under another scan policy (nothing learned is kept).
    pub fn with_policy(&self, policy: Arc<AddressPolicy>) -> Iterative {
        let roots = self.roots.servers[0].addresses.get().cloned().unwrap_or_default();
        let mut fresh = Iterative::new(roots, self.timeout);
        fresh.policy = policy;
        fresh
    }

    /// Answers `name`/`rtype` as a recursive resolver would: the
    /// authoritative answer (with any CNAME the zone gives), NXDOMAIN or
    /// NODATA; SERVFAIL when no server of a zone on the way answered.
    pub async fn query(&self, name: &Name, rtype: RecordType) -> Result<Answer, ProbeError> {
        self.resolve_chain(name, rtype, 0).await
    }

    /// `resolve`, following CNAMEs across zones as a recursive resolver
    /// does: the chain's records come first in the answer, and a loop or a
    /// chain over 10 hops is SERVFAIL (what unbound and BIND answer).
    async fn resolve_chain(&self, name: &Name, rtype: RecordType, nesting: usize) -> Result<Answer, ProbeError> {
        let mut current = name.to_lowercase();
        let mut seen = vec![current.clone()];
        let mut chain: Vec<Record> = Vec::new();
        loop {
            let mut answer = self.resolve(&current, rtype, nesting).await?;
            let here = |r: &Record| r.name.to_lowercase() == current;
            let has_data = answer
                .message
                .answers
                .iter()
                .any(|r| here(r) && r.record_type() == rtype);
            let next = answer.message.answers.iter().find_map(|r| match &r.data {
                RData::CNAME(c) if here(r) && rtype != RecordType::CNAME => Some(c.0.to_lowercase()),
                _ => None,
            });
            // Follow the chain as far as this answer already gives it.
            let mut end = current.clone();
            if !has_data && let Some(mut target) = next {
                loop {
                    if seen.contains(&target) || seen.len() > dns::MAX_CNAME_HOPS {
                        return Ok(servfail(name, rtype));
                    }
                    seen.push(target.clone());
                    end = target.clone();
                    let further = answer.message.answers.iter().find_map(|r| match &r.data {
                        RData::CNAME(c) if r.name.to_lowercase() == target => Some(c.0.to_lowercase()),
                        _ => None,
                    });
                    let data = answer
                        .message
                        .answers
                        .iter()
                        .any(|r| r.name.to_lowercase() == target && r.record_type() == rtype);
                    match further {
                        Some(t) if !data => target = t,
                        _ => break,
                    }
                }
            }
            let done = end == current
                || answer
                    .message
                    .answers
                    .iter()
                    .any(|r| r.name.to_lowercase() == end && r.record_type() == rtype);
            chain.append(&mut answer.message.answers);
            if done {
                answer.message.answers = chain;
                // The question is the one asked, not the chain's end.
                answer.message.queries.clear();
                answer
                    .message
                    .add_query(hickory_proto::op::Query::query(name.clone(), rtype));
                return Ok(answer);
            }
            current = end;
        }
    }

    fn resolve<'a>(
        &'a self,
        name: &'a Name,
        rtype: RecordType,
        nesting: usize,
    ) -> futures::future::BoxFuture<'a, Result<Answer, ProbeError>> {
        Box::pin(async move {
            let name = name.to_lowercase();
            let (mut zone_name, mut zone) = self.closest_zone(&name);
            let mut problems = Vec::new();
            for _ in 0..MAX_REFERRALS {
                match self
                    .ask_zone(&zone_name, &zone, &name, rtype, nesting, &mut problems)
                    .await
                {
                    Some(Reply::Final(answer)) => return Ok(answer),
                    Some(Reply::Referral(child, next)) => {
                        self.remember(&child, &next);
                        zone_name = child;
                        zone = next;
                    }
                    Some(Reply::Lame(_)) | None => {
                        tracing::debug!(name = %name, zone = %zone_name, ?problems, "no server answered");
                        return Ok(servfail(&name, rtype));
                    }
                }
            }
            Err(ProbeError::new(
                ErrorKind::DnsRcode,
                format!("more than {MAX_REFERRALS} referrals for {}", name_str(&name)),
            ))
        })
    }

    /// The deepest zone enclosing `name` whose servers are known.
    fn closest_zone(&self, name: &Name) -> (Name, Arc<Zone>) {
        let zones = self.zones.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        let mut candidate = name.clone();
        loop {
            if candidate.is_root() {
                return (Name::root(), self.roots.clone());
            }
            if let Some(zone) = zones.get(&candidate)
                && zone.expires > now
            {
                return (candidate, zone.clone());
            }
            candidate = candidate.base_name();
        }
    }

    fn remember(&self, zone: &Name, servers: &Arc<Zone>) {
        let mut zones = self.zones.lock().unwrap_or_else(|e| e.into_inner());
        if zones.len() >= MAX_ZONES {
            zones.clear();
        }
        zones.insert(zone.clone(), servers.clone());
    }

    fn is_dead(&self, address: IpAddr) -> bool {
        let dead = self.dead.lock().unwrap_or_else(|e| e.into_inner());
        dead.get(&address).is_some_and(|since| since.elapsed() < DEAD_FOR)
    }

    fn mark_dead(&self, address: IpAddr) {
        let mut dead = self.dead.lock().unwrap_or_else(|e| e.into_inner());
        if dead.len() >= MAX_ZONES {
            dead.retain(|_, since| since.elapsed() < DEAD_FOR);
        }
        dead.insert(address, Instant::now());
    }

    /// Asks the servers of `zone_name` in turn (glued ones first, addresses
    /// not known to be dead first) until one gives a usable reply.
    async fn ask_zone(
        &self,
        zone_name: &Name,
        zone: &Zone,
        name: &Name,
        rtype: RecordType,
        nesting: usize,
        problems: &mut Vec<String>,
    ) -> Option<Reply> {
        let mut tries = 0;
        let mut last = None;
        // Two passes: first the addresses not recently dead, then (if
        // nothing answered) those too, since an outage may have ended.
        for retry_dead in [false, true] {
            for server in &zone.servers {
                let addresses = match server.addresses.get() {
                    Some(known) => known.clone(),
                    None if nesting >= MAX_NESTING => {
                        problems.push(format!("{}: no glue (lookup nesting limit)", name_str(&server.name)));
                        continue;
                    }
                    None if zone_name.zone_of(&server.name) && !zone_name.is_root() => {
                        // In-zone server without glue: nothing can find it.
                        problems.push(format!("{}: no glue inside its own zone", name_str(&server.name)));
                        continue;
                    }
                    None => server
                        .addresses
                        .get_or_init(|| self.server_addresses(&server.name, nesting + 1))
                        .await
                        .clone(),
                };
                for address in addresses {
                    if self.is_dead(address) != retry_dead {
                        continue;
                    }
                    if tries >= MAX_TRIES {
                        return last;
                    }
                    tries += 1;
                    let reply = self.ask(address, zone_name, name, rtype).await;
                    match reply {
                        Reply::Lame(why) => {
                            problems.push(format!("{address}: {why}"));
                            last = Some(Reply::Lame(why));
                        }
                        answered => return Some(answered),
                    }
                }
            }
        }
        last
    }

    /// A name server's addresses, by the same walk (A and AAAA).
    fn server_addresses<'a>(&'a self, server: &'a Name, nesting: usize) -> futures::future::BoxFuture<'a, Vec<IpAddr>> {
        Box::pin(self.server_addresses_inner(server, nesting))
    }

    async fn server_addresses_inner(&self, server: &Name, nesting: usize) -> Vec<IpAddr> {
        let (a, aaaa) = tokio::join!(
            self.resolve_chain(server, RecordType::A, nesting),
            self.resolve_chain(server, RecordType::AAAA, nesting)
        );
        let mut out = Vec::new();
        for answer in [a, aaaa].into_iter().flatten() {
            out.extend(answer.message.answers.iter().filter_map(|r| match &r.data {
                RData::A(a) => Some(IpAddr::V4(a.0)),
                RData::AAAA(a) => Some(IpAddr::V6(a.0)),
                _ => None,
            }));
        }
        out
    }

    /// One non-recursive question to one server of `zone_name`.
    async fn ask(&self, address: IpAddr, zone_name: &Name, name: &Name, rtype: RecordType) -> Reply {
        let server = SocketAddr::new(address, 53);
        let answer = match dns::exchange(server, name, rtype, false, None, self.timeout, &self.policy).await {
            Ok(answer) => answer,
            Err(e) => {
                if matches!(e.kind, ErrorKind::Timeout | ErrorKind::Unreachable | ErrorKind::Refused) {
                    self.mark_dead(address);
                }
                return Reply::Lame(e.message);
            }
        };
        let m = &answer.message;
        match m.metadata.response_code {
            ResponseCode::NoError | ResponseCode::NXDomain => {}
            other => return Reply::Lame(dns::rcode_name(other)),
        }
        // Only records the answering zone may speak for are kept.
        let in_zone = |r: &Record| zone_name.zone_of(&r.name.to_lowercase());
        if m.metadata.response_code == ResponseCode::NXDomain || !m.answers.is_empty() {
            let mut kept = answer.clone();
            kept.message.answers.retain(in_zone);
            kept.message.additionals.clear();
            return Reply::Final(kept);
        }
        // A referral: NS records for a zone strictly below the one asked
        // that encloses the name.
        let referral: Vec<(&Name, &Name, u32)> = m
            .authorities
            .iter()
            .filter_map(|r| match &r.data {
                RData::NS(ns) => Some((&r.name, &ns.0, r.ttl)),
                _ => None,
            })
            .collect();
        if let Some(&(child, _, _)) = referral.first() {
            let child = child.to_lowercase();
            if !m.metadata.authoritative
                && child.num_labels() > zone_name.num_labels()
                && zone_name.zone_of(&child)
                && child.zone_of(name)
            {
                let ttl = referral
                    .iter()
                    .filter(|(owner, _, _)| owner.to_lowercase() == child)
                    .map(|&(_, _, ttl)| ttl)
                    .min()
                    .unwrap_or(0);
                let servers = referral
                    .iter()
                    .filter(|(owner, _, _)| owner.to_lowercase() == child)
                    .map(|&(_, host, _)| {
                        let host = host.to_lowercase();
                        // Glue only from within the zone that gave the referral.
                        let glue: Vec<IpAddr> = if zone_name.zone_of(&host) {
                            m.additionals
                                .iter()
                                .filter(|r| r.name.to_lowercase() == host)
                                .filter_map(|r| match &r.data {
                                    RData::A(a) => Some(IpAddr::V4(a.0)),
                                    RData::AAAA(a) => Some(IpAddr::V6(a.0)),
                                    _ => None,
                                })
                                .collect()
                        } else {
                            Vec::new()
                        };
                        Server {
                            name: host,
                            addresses: if glue.is_empty() {
                                OnceCell::new()
                            } else {
                                OnceCell::new_with(Some(glue))
                            },
                        }
                    })
                    .collect::<Vec<_>>();
                let mut servers = servers;
                // Servers with glue first: they need no further lookups.
                servers.sort_by_key(|s| s.addresses.get().is_none());
                let expires = Instant::now() + Duration::from_secs(u64::from(ttl)).min(MAX_DELEGATION_TTL);
                return Reply::Referral(child, Arc::new(Zone { servers, expires }));
            }
            if !m.metadata.authoritative {
                return Reply::Lame(format!(
                    "referral to {} does not lead below {} towards {}",
                    name_str(&child),
                    name_str(zone_name),
                    name_str(name)
                ));
            }
        }
        if m.metadata.authoritative {
            // NODATA.
            return Reply::Final(answer);
        }
        Reply::Lame("not authoritative and no referral".into())
    }
}

/// The answer a recursive resolver gives when it cannot get one.
fn servfail(name: &Name, rtype: RecordType) -> Answer {
    let mut message = Message::query();
    message.metadata.message_type = MessageType::Response;
    message.metadata.response_code = ResponseCode::ServFail;
    message.metadata.recursion_available = true;
    message.add_query(hickory_proto::op::Query::query(name.clone(), rtype));
    Answer {
        message,
        rtt: Duration::ZERO,
        transport: v6scope_model::Transport::Udp,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_hints_give_both_families() {
        let hints = ".  3600000  NS  A.ROOT-SERVERS.NET.\n\
                     A.ROOT-SERVERS.NET.  3600000  A  198.41.0.4 ; comment\n\
                     A.ROOT-SERVERS.NET.  3600000  AAAA  2001:503:ba3e::2:30\n\
                     garbage line AAAA not-an-address\n";
        let got = root_hint_addresses(hints);
        assert_eq!(
            got,
            vec![
                "198.41.0.4".parse::<IpAddr>().unwrap(),
                "2001:503:ba3e::2:30".parse().unwrap()
            ]
        );
    }

    #[test]
    fn the_built_in_roots_are_addresses() {
        for r in IANA_ROOTS {
            r.parse::<IpAddr>().unwrap();
        }
    }
}
