//! 域名授权体系 over IPv6: follows a zone's delegation from the root servers
//! using IPv6 transport only, as a resolver without IPv4 would. Each referral
//! is followed through the referred servers' IPv6 glue or, for servers
//! without it, through their names resolved the same IPv6-only way.

use crate::Prober;
use crate::dns::{self, RecordType, name_str, parse_name, records_of};
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{Name, RData};
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use v6scope_model::{DelegationStep, ErrorKind, ProbeError, V6Delegation};

/// Referrals followed at most on one walk (the root to a deep zone is a
/// handful; more is a referral loop).
const MAX_REFERRALS: usize = 16;
/// Nested walks for server names without IPv6 glue.
const MAX_NESTING: usize = 3;
/// IPv6 addresses tried per step at most (a zone with many dead servers
/// must not stall the walk).
const MAX_TRIES: usize = 6;

/// Referrals learned during a run: zone → (the steps that reached it, its
/// servers with their IPv6 addresses).
pub(crate) type ReferralCache =
    std::sync::Mutex<std::collections::HashMap<String, (Vec<DelegationStep>, Vec<(String, Vec<Ipv6Addr>)>)>>;

/// Root servers: names and IPv6 addresses, and where they came from.
#[derive(Debug, Clone)]
pub struct RootServers {
    pub from: String,
    pub servers: Vec<(String, Vec<Ipv6Addr>)>,
}

#[derive(Debug, thiserror::Error)]
pub enum RootHintsError {
    #[error("reading root hints {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("root hints {0}: no AAAA record for any root server")]
    NoAaaa(String),
}

impl RootServers {
    /// Parses a root hints file in zone-file form (`named.root`): the AAAA
    /// records of the servers are kept.
    pub fn from_hints(path: &str) -> Result<RootServers, RootHintsError> {
        let text = std::fs::read_to_string(path).map_err(|source| RootHintsError::Read {
            path: path.into(),
            source,
        })?;
        let mut servers: Vec<(String, Vec<Ipv6Addr>)> = Vec::new();
        for line in text.lines() {
            let line = line.split(';').next().unwrap_or_default();
            let words: Vec<&str> = line.split_whitespace().collect();
            let Some(at) = words.iter().position(|w| w.eq_ignore_ascii_case("AAAA")) else {
                continue;
            };
            let (Some(owner), Some(Ok(address))) = (words.first(), words.get(at + 1).map(|a| a.parse::<Ipv6Addr>()))
            else {
                continue;
            };
            let owner = owner.trim_end_matches('.').to_ascii_lowercase() + ".";
            match servers.iter_mut().find(|(n, _)| *n == owner) {
                Some((_, addresses)) => addresses.push(address),
                None => servers.push((owner, vec![address])),
            }
        }
        if servers.is_empty() {
            return Err(RootHintsError::NoAaaa(path.into()));
        }
        Ok(RootServers {
            from: format!("root hints {path}"),
            servers,
        })
    }
}

/// What one server said to a question on the way down.
enum Reply {
    /// Authoritative answer (or authoritative NXDOMAIN/NODATA).
    Final(dns::Answer),
    /// Referral to a zone closer to the name, with its servers.
    Referral(Name, Vec<(String, Vec<Ipv6Addr>)>),
}

impl Prober {
    /// The root servers by a priming query (`. NS`) through the configured
    /// resolver, with their AAAA records.
    pub async fn prime_roots(&self) -> Result<RootServers, ProbeError> {
        let root = Name::root();
        let answer = self.resolver.query(&root, RecordType::NS).await?;
        let names: Vec<String> = records_of(&answer.message.answers, &root, RecordType::NS)
            .filter_map(|r| match r {
                RData::NS(ns) => Some(name_str(&ns.0)),
                _ => None,
            })
            .collect();
        if names.is_empty() {
            return Err(ProbeError::new(
                ErrorKind::DnsRcode,
                format!(
                    "priming query (. NS) answered {} with no NS records",
                    dns::rcode_name(answer.rcode())
                ),
            ));
        }
        let mut servers = Vec::new();
        for name in names {
            let from_additional: Vec<Ipv6Addr> = answer
                .message
                .additionals
                .iter()
                .filter(|r| name_str(&r.name) == name)
                .filter_map(|r| match &r.data {
                    RData::AAAA(a) => Some(a.0),
                    _ => None,
                })
                .collect();
            let addresses = if from_additional.is_empty() {
                let resolution = self.ns_host(&name).await;
                resolution
                    .aaaa
                    .iter()
                    .filter_map(|a| match a.address {
                        IpAddr::V6(v6) => Some(v6),
                        IpAddr::V4(_) => None,
                    })
                    .collect()
            } else {
                from_additional
            };
            servers.push((name, addresses));
        }
        let resolvers: Vec<String> = self.resolver.servers().iter().map(|s| s.ip().to_string()).collect();
        Ok(RootServers {
            from: format!("priming query (. NS) via {}", resolvers.join(", ")),
            servers,
        })
    }

    /// Follows `zone`'s delegation from `roots` over IPv6 only, until one of
    /// the zone's own servers answers its SOA authoritatively.
    pub async fn v6_delegation(&self, zone: &str, roots: &RootServers) -> V6Delegation {
        let mut path = V6Delegation {
            roots_from: roots.from.clone(),
            ..Default::default()
        };
        let Ok(name) = parse_name(zone) else {
            path.error = Some(ProbeError::new(
                ErrorKind::DnsMalformed,
                format!("bad zone name {zone}"),
            ));
            return path;
        };
        match self.walk(&name, RecordType::SOA, roots, 0, &mut path.steps).await {
            Ok(answer) if answer.rcode() == ResponseCode::NoError => path.complete = true,
            Ok(answer) => {
                path.error = Some(ProbeError::new(
                    ErrorKind::DnsRcode,
                    format!(
                        "the zone's servers answered {} over IPv6",
                        dns::rcode_name(answer.rcode())
                    ),
                ))
            }
            Err(e) => path.error = Some(e),
        }
        path
    }

    /// One iterative resolution over IPv6 transport; `steps` receives every
    /// answer on the way (only the top-level walk's steps are kept).
    fn walk<'a>(
        &'a self,
        name: &'a Name,
        rtype: RecordType,
        roots: &'a RootServers,
        nesting: usize,
        steps: &'a mut Vec<DelegationStep>,
    ) -> futures::future::BoxFuture<'a, Result<dns::Answer, ProbeError>> {
        Box::pin(async move {
            let mut zone = Name::root();
            let mut servers = roots.servers.clone();
            // Start below the deepest zone an earlier walk already reached
            // (the root and TLD servers are asked once per run, not per target).
            let mut ancestor = name.clone();
            loop {
                let cached = self
                    .referrals
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .get(&name_str(&ancestor))
                    .cloned();
                if let Some((path, next)) = cached {
                    steps.extend(path);
                    zone = ancestor;
                    servers = next;
                    break;
                }
                if ancestor.num_labels() <= 1 {
                    break;
                }
                ancestor = ancestor.base_name();
            }
            for _ in 0..MAX_REFERRALS {
                let (server, reply) = self.ask_zone(&zone, &servers, name, rtype, roots, nesting).await?;
                match reply {
                    Reply::Final(answer) => {
                        steps.push(DelegationStep {
                            zone: name_str(&zone),
                            server: IpAddr::V6(server),
                            referral: None,
                            next_servers: Vec::new(),
                        });
                        return Ok(answer);
                    }
                    Reply::Referral(child, next) => {
                        steps.push(DelegationStep {
                            zone: name_str(&zone),
                            server: IpAddr::V6(server),
                            referral: Some(name_str(&child)),
                            next_servers: next
                                .iter()
                                .map(|(n, a)| (n.clone(), a.iter().map(|&v6| IpAddr::V6(v6)).collect()))
                                .collect(),
                        });
                        self.referrals
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .insert(name_str(&child), (steps.clone(), next.clone()));
                        zone = child;
                        servers = next;
                    }
                }
            }
            Err(ProbeError::new(
                ErrorKind::DnsRcode,
                format!("more than {MAX_REFERRALS} referrals for {}", name_str(name)),
            ))
        })
    }

    /// Asks the servers of `zone` in turn over IPv6 until one gives a usable
    /// reply. Servers without IPv6 glue are resolved over IPv6 themselves
    /// (unless their name lies inside the zone they serve: then nothing can
    /// find them without IPv4).
    async fn ask_zone(
        &self,
        zone: &Name,
        servers: &[(String, Vec<Ipv6Addr>)],
        name: &Name,
        rtype: RecordType,
        roots: &RootServers,
        nesting: usize,
    ) -> Result<(Ipv6Addr, Reply), ProbeError> {
        let mut problems: Vec<String> = Vec::new();
        let mut tries = 0;
        let mut glueless: Vec<&str> = Vec::new();
        for (server, addresses) in servers {
            if addresses.is_empty() {
                glueless.push(server);
            }
            if let Some(answered) = self
                .try_addresses(server, addresses, (name, rtype, zone), &mut tries, &mut problems)
                .await
            {
                return Ok(answered);
            }
        }
        for server in glueless {
            let Ok(server_name) = parse_name(server) else { continue };
            if zone.zone_of(&server_name) && !zone.is_root() {
                problems.push(format!(
                    "{server}: no IPv6 glue, and the name lies inside {} (only reachable through IPv4 glue)",
                    name_str(zone)
                ));
                continue;
            }
            if nesting >= MAX_NESTING {
                problems.push(format!("{server}: no IPv6 glue (lookup nesting limit)"));
                continue;
            }
            let mut ignored = Vec::new();
            let addresses: Vec<Ipv6Addr> = match self
                .walk(&server_name, RecordType::AAAA, roots, nesting + 1, &mut ignored)
                .await
            {
                Ok(answer) => records_of(&answer.message.answers, &server_name, RecordType::AAAA)
                    .filter_map(|r| match r {
                        RData::AAAA(a) => Some(a.0),
                        _ => None,
                    })
                    .collect(),
                Err(e) => {
                    problems.push(format!("{server}: no IPv6 glue; AAAA over IPv6 failed: {}", e.message));
                    continue;
                }
            };
            if addresses.is_empty() {
                problems.push(format!("{server}: no AAAA record"));
            }
            if let Some(answered) = self
                .try_addresses(server, &addresses, (name, rtype, zone), &mut tries, &mut problems)
                .await
            {
                return Ok(answered);
            }
        }
        Err(ProbeError::new(
            ErrorKind::Unreachable,
            format!(
                "no server of {} answered {} {} over IPv6 ({})",
                name_str(zone),
                name_str(name),
                rtype,
                if problems.is_empty() {
                    "no servers".to_string()
                } else {
                    problems.join("; ")
                }
            ),
        ))
    }

    /// Asks `server`'s addresses in turn, within the step's budget of
    /// tries; the first usable reply wins, failures go to `problems`.
    async fn try_addresses(
        &self,
        server: &str,
        addresses: &[Ipv6Addr],
        (name, rtype, zone): (&Name, RecordType, &Name),
        tries: &mut usize,
        problems: &mut Vec<String>,
    ) -> Option<(Ipv6Addr, Reply)> {
        for &address in addresses {
            if *tries == MAX_TRIES {
                break;
            }
            // Hostile glue (loopback, ULA, ...) is never a target.
            if !self.policy.info(IpAddr::V6(address)).usable {
                problems.push(format!("{server} {address}: not a global address"));
                continue;
            }
            *tries += 1;
            match self.ask(address, name, rtype, zone).await {
                Ok(reply) => return Some((address, reply)),
                Err(e) => problems.push(format!("{server} {address}: {}", e.message)),
            }
        }
        None
    }

    /// One question to one server of `zone` (RD=0): an authoritative reply,
    /// or a referral to a zone strictly below `zone` and above `name`.
    async fn ask(&self, address: Ipv6Addr, name: &Name, rtype: RecordType, zone: &Name) -> Result<Reply, ProbeError> {
        self.resolver.pace().await;
        let answer = dns::exchange(
            SocketAddr::new(IpAddr::V6(address), 53),
            name,
            rtype,
            false,
            None,
            self.resolver.timeout(),
            self.resolver.policy(),
        )
        .await?;
        let m = &answer.message;
        if m.metadata.authoritative && matches!(answer.rcode(), ResponseCode::NoError | ResponseCode::NXDomain) {
            return Ok(Reply::Final(answer));
        }
        if answer.rcode() != ResponseCode::NoError {
            return Err(ProbeError::new(
                ErrorKind::DnsRcode,
                format!("answered {}", dns::rcode_name(answer.rcode())),
            ));
        }
        // A referral: NS records in the authority section for a zone below
        // the one asked and enclosing the name.
        let child = m
            .authorities
            .iter()
            .filter(|r| r.record_type() == RecordType::NS)
            .map(|r| r.name.to_lowercase())
            .find(|owner| owner.zone_of(name) && zone.zone_of(owner) && owner != zone);
        let Some(child) = child else {
            return Err(ProbeError::new(
                ErrorKind::DnsRcode,
                "neither an authoritative answer nor a referral (lame)",
            ));
        };
        let servers = records_of(&m.authorities, &child, RecordType::NS)
            .filter_map(|r| match r {
                RData::NS(ns) => Some(name_str(&ns.0)),
                _ => None,
            })
            .map(|server| {
                let glue = m
                    .additionals
                    .iter()
                    .filter(|r| name_str(&r.name) == server)
                    .filter_map(|r| match &r.data {
                        RData::AAAA(a) => Some(a.0),
                        _ => None,
                    })
                    .collect();
                (server, glue)
            })
            .collect();
        Ok(Reply::Referral(child, servers))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hints_keep_aaaa_records_per_server() {
        let dir = std::env::temp_dir().join(format!("v6scope-hints-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("named.root");
        std::fs::write(
            &path,
            "; comment\n.  3600000  NS  A.ROOT-SERVERS.NET.\n\
             A.ROOT-SERVERS.NET.  3600000  A  198.41.0.4\n\
             A.ROOT-SERVERS.NET.  3600000  AAAA  2001:503:ba3e::2:30\n\
             B.ROOT-SERVERS.NET.  3600000 IN AAAA 2001:500:200::b ; trailing\n\
             junk line without type\n",
        )
        .unwrap();
        let roots = RootServers::from_hints(path.to_str().unwrap()).unwrap();
        assert_eq!(roots.servers.len(), 2);
        assert_eq!(roots.servers[0].0, "a.root-servers.net.");
        assert_eq!(
            roots.servers[0].1,
            vec!["2001:503:ba3e::2:30".parse::<Ipv6Addr>().unwrap()]
        );
        assert_eq!(roots.servers[1].1, vec!["2001:500:200::b".parse::<Ipv6Addr>().unwrap()]);
        std::fs::write(&path, ".  3600000  NS  A.ROOT-SERVERS.NET.\n").unwrap();
        assert!(matches!(
            RootServers::from_hints(path.to_str().unwrap()),
            Err(RootHintsError::NoAaaa(_))
        ));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
