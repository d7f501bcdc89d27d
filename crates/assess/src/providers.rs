//! Which shared infrastructure (DNS host, CDN, cloud, mail host, carrier)
//! serves a domain, and whether that part works over IPv6.
//!
//! Signatures are data (`providers/providers.toml`, embedded; users may load
//! their own): host-name suffixes per role and AS numbers. Attribution reads
//! stored observations only, so a run can be re-attributed with new data.
//! The rule is described in docs/METHODS.md §11.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::Path;
use v6scope_model::{DomainObservation, ErrorKind, Family, HttpFetch, NameResolution, NameRole, Scheme, UrlFetch};

/// The provider signatures shipped inside the binary.
pub const BUILTIN_PROVIDERS: &str = include_str!("../../../providers/providers.toml");

#[derive(Debug, thiserror::Error)]
pub enum ProvidersError {
    #[error("reading provider signatures {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("{path}: {source}")]
    InFile {
        path: String,
        #[source]
        source: Box<ProvidersError>,
    },
    #[error("parsing provider signatures: {0}")]
    Parse(#[from] toml::de::Error),
    #[error("provider #{index} (counting from 1) has an empty name")]
    EmptyName { index: usize },
    #[error("provider '{0}' is defined twice")]
    DuplicateName(String),
    #[error("provider '{provider}': unknown kind '{kind}' (known: dns, cdn, cloud, mail, hosting)")]
    UnknownKind { provider: String, kind: String },
    #[error("provider '{provider}': {field} entry '{suffix}' is not a plausible DNS suffix: {reason}")]
    BadSuffix {
        provider: String,
        field: &'static str,
        suffix: String,
        reason: &'static str,
    },
    #[error("{field} entry '{suffix}' is listed twice (providers '{first}' and '{second}')")]
    DuplicateSuffix {
        field: &'static str,
        suffix: String,
        first: String,
        second: String,
    },
    #[error("provider '{provider}': AS0 is reserved and names no network")]
    BadAsn { provider: String },
    #[error("AS{asn} is listed twice (providers '{first}' and '{second}')")]
    DuplicateAsn { asn: u32, first: String, second: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProviderKind {
    Dns,
    Cdn,
    Cloud,
    Mail,
    Hosting,
}

impl ProviderKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ProviderKind::Dns => "dns",
            ProviderKind::Cdn => "cdn",
            ProviderKind::Cloud => "cloud",
            ProviderKind::Mail => "mail",
            ProviderKind::Hosting => "hosting",
        }
    }

    fn parse(s: &str) -> Option<ProviderKind> {
        Some(match s {
            "dns" => ProviderKind::Dns,
            "cdn" => ProviderKind::Cdn,
            "cloud" => ProviderKind::Cloud,
            "mail" => ProviderKind::Mail,
            "hosting" => ProviderKind::Hosting,
            _ => return None,
        })
    }
}

/// One provider's signatures. Suffixes are stored normalised (lower case, no
/// trailing dot).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Provider {
    pub name: String,
    pub kind: ProviderKind,
    #[serde(default)]
    pub cname_suffixes: Vec<String>,
    #[serde(default)]
    pub ns_suffixes: Vec<String>,
    #[serde(default)]
    pub mx_suffixes: Vec<String>,
    #[serde(default)]
    pub asns: Vec<u32>,
}

/// What a provider does for the domain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Dns,
    Web,
    Mail,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Dns => "dns",
            Role::Web => "web",
            Role::Mail => "mail",
        }
    }

    fn suffixes(self, p: &Provider) -> &[String] {
        match self {
            Role::Dns => &p.ns_suffixes,
            Role::Web => &p.cname_suffixes,
            Role::Mail => &p.mx_suffixes,
        }
    }

    fn field(self) -> &'static str {
        match self {
            Role::Dns => "ns_suffixes",
            Role::Web => "cname_suffixes",
            Role::Mail => "mx_suffixes",
        }
    }
}

/// One provider in one role for one domain.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct ProviderUse {
    pub provider: String,
    pub role: Role,
    /// The provider's part works over IPv6 for this domain.
    pub ipv6: bool,
    pub evidence: String,
}

/// A validated set of provider signatures.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Providers {
    providers: Vec<Provider>,
}

// The file as written; kind stays a string so an unknown kind can be
// reported with its provider's name.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    provider: Vec<RawProvider>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProvider {
    #[serde(default)]
    name: String,
    kind: String,
    #[serde(default)]
    cname_suffixes: Vec<String>,
    #[serde(default)]
    ns_suffixes: Vec<String>,
    #[serde(default)]
    mx_suffixes: Vec<String>,
    #[serde(default)]
    asns: Vec<u32>,
}

impl Providers {
    /// The signatures shipped in the binary.
    pub fn builtin() -> Providers {
        Providers::parse(BUILTIN_PROVIDERS).expect("built-in provider signatures are valid (unit-tested)")
    }

    /// Signatures from a TOML file of the same shape as `providers/providers.toml`.
    pub fn load(path: impl AsRef<Path>) -> Result<Providers, ProvidersError> {
        let path = path.as_ref();
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ProvidersError::Read {
            path: shown.clone(),
            source,
        })?;
        Providers::parse(&text).map_err(|e| ProvidersError::InFile {
            path: shown,
            source: Box::new(e),
        })
    }

    /// Parses and validates signatures from TOML text.
    pub fn parse(text: &str) -> Result<Providers, ProvidersError> {
        let raw: RawFile = toml::from_str(text)?;
        let mut providers = Vec::with_capacity(raw.provider.len());
        for (i, r) in raw.provider.into_iter().enumerate() {
            let name = r.name.trim().to_string();
            if name.is_empty() {
                return Err(ProvidersError::EmptyName { index: i + 1 });
            }
            let kind = ProviderKind::parse(&r.kind).ok_or_else(|| ProvidersError::UnknownKind {
                provider: name.clone(),
                kind: r.kind.clone(),
            })?;
            let normalise_all = |field: &'static str, list: Vec<String>| {
                list.iter()
                    .map(|s| {
                        normalise_suffix(s).map_err(|reason| ProvidersError::BadSuffix {
                            provider: name.clone(),
                            field,
                            suffix: s.clone(),
                            reason,
                        })
                    })
                    .collect::<Result<Vec<_>, _>>()
            };
            let cname_suffixes = normalise_all("cname_suffixes", r.cname_suffixes)?;
            let ns_suffixes = normalise_all("ns_suffixes", r.ns_suffixes)?;
            let mx_suffixes = normalise_all("mx_suffixes", r.mx_suffixes)?;
            if r.asns.contains(&0) {
                return Err(ProvidersError::BadAsn { provider: name });
            }
            providers.push(Provider {
                name,
                kind,
                cname_suffixes,
                ns_suffixes,
                mx_suffixes,
                asns: r.asns,
            });
        }
        Providers::validated(providers)
    }

    /// Both sets together (e.g. the built-in set and the lab's), checked again
    /// for names, suffixes and AS numbers claimed twice.
    pub fn merge(self, other: Providers) -> Result<Providers, ProvidersError> {
        let mut all = self.providers;
        all.extend(other.providers);
        Providers::validated(all)
    }

    pub fn providers(&self) -> &[Provider] {
        &self.providers
    }

    /// The provider whose suffix for `role` matches `name`; the most specific
    /// suffix wins (most labels, then longest), then the earlier provider.
    pub fn match_name(&self, role: Role, name: &str) -> Option<&Provider> {
        self.match_index(role, name).map(|i| &self.providers[i])
    }

    /// The provider that lists `asn`.
    pub fn by_asn(&self, asn: u32) -> Option<&Provider> {
        self.asn_index(asn).map(|i| &self.providers[i])
    }

    fn match_index(&self, role: Role, name: &str) -> Option<usize> {
        let name = normalise_name(name);
        let mut best: Option<((usize, usize), usize)> = None;
        for (i, p) in self.providers.iter().enumerate() {
            for suffix in role.suffixes(p) {
                if let Some(rank) = suffix_rank(&name, suffix)
                    && best.is_none_or(|(b, _)| rank > b)
                {
                    best = Some((rank, i));
                }
            }
        }
        best.map(|(_, i)| i)
    }

    fn asn_index(&self, asn: u32) -> Option<usize> {
        self.providers.iter().position(|p| p.asns.contains(&asn))
    }

    // Cross-provider rules; each provider's own entries are already normalised.
    fn validated(providers: Vec<Provider>) -> Result<Providers, ProvidersError> {
        let mut names: BTreeMap<&str, ()> = BTreeMap::new();
        let mut suffixes: BTreeMap<(&'static str, &str), &str> = BTreeMap::new();
        let mut asns: BTreeMap<u32, &str> = BTreeMap::new();
        for p in &providers {
            if names.insert(&p.name, ()).is_some() {
                return Err(ProvidersError::DuplicateName(p.name.clone()));
            }
            for role in [Role::Dns, Role::Web, Role::Mail] {
                for s in role.suffixes(p) {
                    // Two providers with the same suffix would make the match
                    // depend on file order.
                    if let Some(first) = suffixes.insert((role.field(), s), &p.name) {
                        return Err(ProvidersError::DuplicateSuffix {
                            field: role.field(),
                            suffix: s.clone(),
                            first: first.to_string(),
                            second: p.name.clone(),
                        });
                    }
                }
            }
            for &asn in &p.asns {
                if let Some(first) = asns.insert(asn, &p.name) {
                    return Err(ProvidersError::DuplicateAsn {
                        asn,
                        first: first.to_string(),
                        second: p.name.clone(),
                    });
                }
            }
        }
        Ok(Providers { providers })
    }
}

/// Lower case without the trailing dot, or why the entry is not a usable suffix.
fn normalise_suffix(raw: &str) -> Result<String, &'static str> {
    if raw.is_empty() {
        return Err("empty");
    }
    if raw.starts_with('.') {
        return Err("leading dot (write it without one: suffixes always match whole labels)");
    }
    let s = raw.strip_suffix('.').unwrap_or(raw).to_ascii_lowercase();
    if s.len() > 253 {
        return Err("longer than 253 characters");
    }
    let labels: Vec<&str> = s.split('.').collect();
    if labels.len() < 2 {
        return Err("a single label would match a whole top-level domain");
    }
    for label in &labels {
        if label.is_empty() {
            return Err("empty label");
        }
        if label.len() > 63 {
            return Err("label longer than 63 characters");
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'*')
        {
            return Err("only letters, digits, '-' and one '*' per label are allowed (IDNs in punycode)");
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err("a label may not start or end with '-'");
        }
        if label.matches('*').count() > 1 {
            return Err("at most one '*' per label");
        }
        if *label == "*" {
            return Err("a label may not be '*' alone");
        }
    }
    if labels.last().is_some_and(|l| l.contains('*')) {
        return Err("the last label must be literal");
    }
    Ok(s)
}

fn normalise_name(name: &str) -> String {
    name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase()
}

/// `Some((labels, literal length))` when the normalised `name` ends with
/// `suffix` on a label boundary; the rank orders matches by specificity.
fn suffix_rank(name: &str, suffix: &str) -> Option<(usize, usize)> {
    let mut name_labels = name.rsplit('.');
    let mut labels = 0;
    for pattern in suffix.rsplit('.') {
        if !label_matches(name_labels.next()?, pattern) {
            return None;
        }
        labels += 1;
    }
    Some((labels, suffix.len() - suffix.matches('*').count()))
}

fn label_matches(label: &str, pattern: &str) -> bool {
    match pattern.split_once('*') {
        Some((pre, post)) => label.len() >= pre.len() + post.len() && label.starts_with(pre) && label.ends_with(post),
        None => label == pattern,
    }
}

/// Whether an IPv6 address of the provider's part worked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reach {
    Works,
    Failed,
    /// Nothing was tried on it (the vantage point has no IPv6, or the
    /// evaluation was cut short).
    Untested,
}

/// One host or name that may belong to a provider.
struct Item {
    role: Role,
    /// How the evidence names it when attributed by AS ("NS ns1.x").
    label: String,
    /// Names matched against the role's suffixes, each with its evidence text.
    candidates: Vec<(String, String)>,
    /// The item's own IPv6 verdict for a name match: (works, note).
    name_status: (bool, String),
    /// Usable addresses, IPv6 ones with their reach, for AS matches.
    v4: Vec<IpAddr>,
    v6: Vec<(IpAddr, Reach)>,
}

/// A provider's addresses among one item's, found by AS.
#[derive(Default)]
struct AsMatch {
    addresses: Vec<String>,
    v6: Vec<(IpAddr, Reach)>,
}

#[derive(Default)]
struct Found {
    ipv6: bool,
    evidence: Vec<String>,
}

/// Which providers serve the domain in which role, and whether each works
/// over IPv6. One entry per (provider, role), ordered by role (dns, web,
/// mail) and then by the provider's place in the signature file.
///
/// A host is attributed by its name (NS host, CNAME target of the apex or
/// www, sub-resource host, MX host) when a suffix matches; only a host no
/// suffix matched is attributed by the AS of its addresses (`asn_of`), so a
/// hosted mail service is not also counted as its parent company's cloud.
pub fn attribute(
    obs: &DomainObservation,
    providers: &Providers,
    asn_of: &dyn Fn(IpAddr) -> Option<u32>,
) -> Vec<ProviderUse> {
    let mut found: BTreeMap<(Role, usize), Found> = BTreeMap::new();
    for item in dns_items(obs).into_iter().chain(web_items(obs)).chain(mail_items(obs)) {
        attribute_item(&item, providers, asn_of, &mut found);
    }
    found
        .into_iter()
        .map(|((role, i), f)| ProviderUse {
            provider: providers.providers[i].name.clone(),
            role,
            ipv6: f.ipv6,
            evidence: f.evidence.join("; "),
        })
        .collect()
}

fn attribute_item(
    item: &Item,
    providers: &Providers,
    asn_of: &dyn Fn(IpAddr) -> Option<u32>,
    found: &mut BTreeMap<(Role, usize), Found>,
) {
    let mut record = |i: usize, ipv6: bool, evidence: String| {
        let f = found.entry((item.role, i)).or_default();
        f.ipv6 |= ipv6;
        if !f.evidence.contains(&evidence) {
            f.evidence.push(evidence);
        }
    };
    let mut by_name = Vec::new();
    for (name, text) in &item.candidates {
        if let Some(i) = providers.match_index(item.role, name)
            && !by_name.contains(&i)
        {
            by_name.push(i);
            let (ipv6, note) = &item.name_status;
            record(i, *ipv6, format!("{text} ({note})"));
        }
    }
    if !by_name.is_empty() {
        return;
    }
    // Per provider: its addresses with their AS, and its IPv6 addresses' reach.
    let mut by_asn: BTreeMap<usize, AsMatch> = BTreeMap::new();
    let v4 = item.v4.iter().map(|a| (*a, None));
    let v6 = item.v6.iter().map(|(a, r)| (*a, Some(*r)));
    for (address, reach) in v4.chain(v6) {
        let Some(asn) = asn_of(address) else { continue };
        let Some(i) = providers.asn_index(asn) else { continue };
        let entry = by_asn.entry(i).or_default();
        entry.addresses.push(format!("{address} (AS{asn})"));
        if let Some(reach) = reach {
            entry.v6.push((address, reach));
        }
    }
    for (i, AsMatch { addresses, v6 }) in by_asn {
        let (ipv6, note) = if v6.is_empty() && !item.v6.is_empty() {
            (false, "no IPv6 address in its AS".to_string())
        } else {
            summarise(item.role, &v6)
        };
        record(i, ipv6, format!("{} via {} ({note})", item.label, addresses.join(", ")));
    }
}

/// A published AAAA counts when one of its addresses worked, or when nothing
/// was tried over IPv6 (the note says so).
fn summarise(role: Role, v6: &[(IpAddr, Reach)]) -> (bool, String) {
    if v6.is_empty() {
        return (false, "no AAAA".into());
    }
    if v6.iter().any(|(_, r)| *r == Reach::Works) {
        let text = match role {
            Role::Dns => "IPv6 answered",
            Role::Web => "IPv6 fetch ok",
            Role::Mail => "IPv6 reachable",
        };
        return (true, text.into());
    }
    if v6.iter().any(|(_, r)| *r == Reach::Untested) {
        return (true, "AAAA, not tested over IPv6".into());
    }
    let text = match role {
        Role::Dns => "AAAA, no answer over IPv6",
        Role::Web => "AAAA, IPv6 fetch failed",
        Role::Mail => "AAAA, unreachable over IPv6",
    };
    (false, text.into())
}

fn usable(r: &NameResolution, family: Family) -> impl Iterator<Item = IpAddr> + '_ {
    r.addresses(family).iter().filter(|a| a.usable).map(|a| a.address)
}

fn reach_of(tried: impl Iterator<Item = bool>) -> Reach {
    let mut any = false;
    for ok in tried {
        if ok {
            return Reach::Works;
        }
        any = true;
    }
    if any { Reach::Failed } else { Reach::Untested }
}

fn host_item(role: Role, kind: &str, name: &str, r: &NameResolution, reach: impl Fn(IpAddr) -> Reach) -> Item {
    let v6: Vec<(IpAddr, Reach)> = usable(r, Family::Ipv6).map(|a| (a, reach(a))).collect();
    Item {
        role,
        label: format!("{kind} {name}"),
        candidates: vec![(name.to_string(), format!("{kind} {name}"))],
        name_status: summarise(role, &v6),
        v4: usable(r, Family::Ipv4).collect(),
        v6,
    }
}

fn dns_items(obs: &DomainObservation) -> Vec<Item> {
    let zone = &obs.zone;
    let mut items: Vec<Item> = zone
        .hosts
        .iter()
        .map(|h| {
            // Any direct SOA query on the address that answered (UDP or TCP).
            host_item(Role::Dns, "NS", &h.name, &h.resolution, |a| {
                reach_of(h.probes.iter().filter(|p| p.address == a).map(|p| p.answered))
            })
        })
        .collect();
    // NS names the probe did not follow still say who hosts the zone.
    let mut seen: Vec<String> = zone.hosts.iter().map(|h| normalise_name(&h.name)).collect();
    for name in zone.child_ns.iter().chain(&zone.parent_ns) {
        let n = normalise_name(name);
        if seen.contains(&n) {
            continue;
        }
        seen.push(n);
        items.push(Item {
            role: Role::Dns,
            label: format!("NS {name}"),
            candidates: vec![(name.clone(), format!("NS {name}"))],
            name_status: (false, "not probed".into()),
            v4: Vec::new(),
            v6: Vec::new(),
        });
    }
    items
}

/// The same test the NIST web service count uses: a final status below 400,
/// and for HTTPS a verified certificate on every hop.
/// Where one vantage was sent for one web name: the first usable address
/// over each family, and whether a web fetch to that family worked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebReach {
    pub v4: Option<IpAddr>,
    pub v6: Option<IpAddr>,
    pub v4_ok: bool,
    pub v6_ok: bool,
}

/// The reach of the target's apex or www from this observation's vantage;
/// none when the observation is no evidence about the target (evaluation
/// cut short, faulty resolver, a vantage without both families): the
/// vantage's fault is nobody else's.
pub fn web_reach(obs: &DomainObservation, role: NameRole) -> Option<WebReach> {
    if obs.error.is_some() || !obs.vantage.resolver_problems.is_empty() || !(obs.vantage.ipv4 && obs.vantage.ipv6) {
        return None;
    }
    let r = obs.name(role)?;
    let works = |family: Family| {
        obs.web_for(role)
            .is_some_and(|w| w.fetches.iter().any(|f| f.family == family && fetch_works(f)))
    };
    let v4 = usable(r, Family::Ipv4).next();
    let v6 = usable(r, Family::Ipv6).next();
    Some(WebReach {
        v4,
        v6,
        v4_ok: v4.is_some() && works(Family::Ipv4),
        v6_ok: v6.is_some() && works(Family::Ipv6),
    })
}

/// A CDN or cloud edge a vantage was sent to for a name the provider serves.
/// MIIT's CDN method counts these as nodes and coverage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EdgeSighting {
    pub provider: String,
    pub kind: ProviderKind,
    /// The served name (the target's apex or www).
    pub name: String,
    pub reach: WebReach,
}

/// The CDN and cloud edges a target's web names were sent to, by the
/// name's CNAME chain (a suffix of the provider's) or else by the AS of its
/// addresses; nothing when [`web_reach`] has no evidence.
pub fn edge_sightings(
    obs: &DomainObservation,
    providers: &Providers,
    asn_of: &dyn Fn(IpAddr) -> Option<u32>,
) -> Vec<EdgeSighting> {
    let edge = |p: &&Provider| matches!(p.kind, ProviderKind::Cdn | ProviderKind::Cloud);
    let mut out = Vec::new();
    for role in [NameRole::Apex, NameRole::Www] {
        let (Some(r), Some(reach)) = (obs.name(role), web_reach(obs, role)) else {
            continue;
        };
        let provider = r
            .cname_chain
            .iter()
            .find_map(|hop| providers.match_name(Role::Web, hop).filter(edge))
            .or_else(|| {
                reach
                    .v4
                    .into_iter()
                    .chain(reach.v6)
                    .find_map(|a| asn_of(a).and_then(|asn| providers.by_asn(asn)).filter(edge))
            });
        if let Some(provider) = provider {
            out.push(EdgeSighting {
                provider: provider.name.clone(),
                kind: provider.kind,
                name: r.name.clone(),
                reach,
            });
        }
    }
    out
}

fn fetch_works(f: &HttpFetch) -> bool {
    f.completed
        && f.final_status.is_some_and(|s| s < 400)
        && (f.scheme == Scheme::Http || f.tls.as_ref().is_some_and(|t| t.verified))
        && f.hops.iter().all(|h| h.tls_error.is_none())
}

fn web_items(obs: &DomainObservation) -> Vec<Item> {
    let mut items = Vec::new();
    for r in obs
        .names
        .iter()
        .filter(|n| matches!(n.role, NameRole::Apex | NameRole::Www))
    {
        let web = obs.web_for(r.role);
        let reach = |a: IpAddr| match web {
            Some(w) => reach_of(
                w.fetches
                    .iter()
                    .filter(|f| f.family == Family::Ipv6 && f.address == a)
                    .map(fetch_works),
            ),
            None => Reach::Untested,
        };
        let v6: Vec<(IpAddr, Reach)> = usable(r, Family::Ipv6).map(|a| (a, reach(a))).collect();
        items.push(Item {
            role: Role::Web,
            label: format!("web {}", r.name),
            candidates: r
                .cname_chain
                .iter()
                .map(|hop| (hop.clone(), format!("CNAME {} → {hop}", r.name)))
                .collect(),
            name_status: summarise(Role::Web, &v6),
            v4: usable(r, Family::Ipv4).collect(),
            v6,
        });
    }
    // Sub-resources (images, scripts) served from a provider's host name:
    // the page is only as IPv6-ready as they are.
    let mut hosts: BTreeMap<String, Vec<Option<&UrlFetch>>> = BTreeMap::new();
    for res in obs.site.iter().flat_map(|s| &s.resources) {
        hosts
            .entry(normalise_name(&res.host))
            .or_default()
            .push(res.v6.as_ref());
    }
    for (host, v6) in hosts {
        let status = if v6.iter().flatten().any(|f| f.ok) {
            (true, "IPv6 fetch ok")
        } else if v6.iter().flatten().any(|f| !no_address(f)) {
            (false, "IPv6 fetch failed")
        } else if v6.iter().any(Option::is_some) {
            (false, "no AAAA")
        } else {
            // The AAAA was never looked up, so nothing says it has one.
            (false, "not tested over IPv6")
        };
        items.push(Item {
            role: Role::Web,
            label: format!("resource {host}"),
            candidates: vec![(host.clone(), format!("resource {host}"))],
            name_status: (status.0, status.1.to_string()),
            v4: Vec::new(),
            v6: Vec::new(),
        });
    }
    items
}

fn no_address(f: &UrlFetch) -> bool {
    f.error.as_ref().is_some_and(|e| e.kind == ErrorKind::NoAddress)
}

fn mail_items(obs: &DomainObservation) -> Vec<Item> {
    obs.mail
        .hosts
        .iter()
        .map(|h| {
            // Reachable: the server greeted with 220.
            host_item(Role::Mail, "MX", &h.name, &h.resolution, |a| {
                reach_of(h.probes.iter().filter(|p| p.address == a).map(|p| p.banner_ok))
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use v6scope_model::{
        AddrInfo, AddressClass, HttpHop, MailObservation, MxHost, MxStatus, NsHost, NsProbe, ResourceCrawl,
        SiteObservation, SmtpProbe, Target, Timings, TlsObservation, Transport, Vantage, WebObservation,
        ZoneObservation,
    };

    const LAB: &str = include_str!("../../../lab/providers.toml");

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn addrs(list: &[&str]) -> Vec<AddrInfo> {
        list.iter()
            .map(|a| AddrInfo {
                address: ip(a),
                class: AddressClass::Global,
                usable: true,
            })
            .collect()
    }

    fn resolution(name: &str, role: NameRole, chain: &[&str], a: &[&str], aaaa: &[&str]) -> NameResolution {
        NameResolution {
            name: name.into(),
            role,
            cname_chain: chain.iter().map(|s| s.to_string()).collect(),
            exists: true,
            a: addrs(a),
            aaaa: addrs(aaaa),
            a_error: None,
            aaaa_error: None,
            a_ms: 1.0,
            aaaa_ms: 1.0,
            confirmation: None,
        }
    }

    fn observation() -> DomainObservation {
        DomainObservation {
            schema_version: v6scope_model::SCHEMA_VERSION,
            target: Target {
                domain: "example.test".into(),
                ..Default::default()
            },
            started_at_ms: 0,
            duration_ms: 0.0,
            vantage: Vantage::both(),
            names: Vec::new(),
            zone: ZoneObservation::default(),
            mail: MailObservation {
                status: MxStatus::NoMx,
                hosts: Vec::new(),
                error: None,
            },
            web: Vec::new(),
            site: None,
            error: None,
        }
    }

    /// An NS host; `v6_answered` says how its IPv6 SOA query went (none: not tried).
    fn ns(name: &str, a: &[&str], aaaa: &[&str], v6_answered: Option<bool>) -> NsHost {
        let mut probes: Vec<NsProbe> = a.iter().map(|x| ns_probe(x, true)).collect();
        if let Some(ok) = v6_answered {
            probes.extend(aaaa.iter().map(|x| ns_probe(x, ok)));
        }
        NsHost {
            name: name.into(),
            resolution: resolution(name, NameRole::NameServer, &[], a, aaaa),
            probes,
        }
    }

    fn ns_probe(address: &str, answered: bool) -> NsProbe {
        let address = ip(address);
        NsProbe {
            address,
            family: Family::of(&address),
            transport: Transport::Udp,
            answered,
            rcode: answered.then(|| "NOERROR".into()),
            authoritative: answered,
            flags: String::new(),
            serial: None,
            rtt_ms: None,
            error: None,
        }
    }

    fn mx(name: &str, a: &[&str], aaaa: &[&str], v6_banner: Option<bool>) -> MxHost {
        let probe = |address: &str, ok: bool| {
            let address = ip(address);
            SmtpProbe {
                address,
                family: Family::of(&address),
                connected: ok,
                connect_ms: None,
                banner: None,
                banner_ok: ok,
                ehlo_ok: ok,
                starttls: false,
                error: None,
            }
        };
        let mut probes: Vec<SmtpProbe> = a.iter().map(|x| probe(x, true)).collect();
        if let Some(ok) = v6_banner {
            probes.extend(aaaa.iter().map(|x| probe(x, ok)));
        }
        MxHost {
            preference: 10,
            name: name.into(),
            resolution: resolution(name, NameRole::MailExchanger, &[], a, aaaa),
            probes,
        }
    }

    fn fetch(name: &str, address: &str, ok: bool) -> HttpFetch {
        let address = ip(address);
        HttpFetch {
            name: name.into(),
            address,
            family: Family::of(&address),
            scheme: Scheme::Https,
            port: 443,
            tcp_connected: ok,
            tls: ok.then(|| TlsObservation {
                verified: true,
                name_match: true,
                ..Default::default()
            }),
            hops: vec![HttpHop {
                url: format!("https://{name}/"),
                address: Some(address),
                status: ok.then_some(200),
                location: None,
                host_has_family: None,
                tls_error: None,
            }],
            final_status: ok.then_some(200),
            completed: ok,
            body_received: 0,
            timings: Timings::default(),
            headers: Default::default(),
            content: None,
            error: (!ok).then(|| v6scope_model::ProbeError::new(ErrorKind::Timeout, "timed out")),
        }
    }

    fn web(name: &str, role: NameRole, fetches: Vec<HttpFetch>) -> WebObservation {
        WebObservation {
            name: name.into(),
            role,
            fetches,
            parity: Vec::new(),
        }
    }

    fn no_asn(_: IpAddr) -> Option<u32> {
        None
    }

    fn parse_err(text: &str) -> ProvidersError {
        Providers::parse(text).expect_err("should be refused")
    }

    // ------------------------------------------------------------ parsing

    #[test]
    fn builtin_and_lab_signatures_are_valid() {
        let builtin = Providers::builtin();
        assert!(builtin.providers().len() >= 15);
        let tencent = builtin.providers().iter().find(|p| p.name == "Tencent Cloud").unwrap();
        assert_eq!(tencent.kind, ProviderKind::Cloud);
        assert!(tencent.ns_suffixes.contains(&"dnspod.net".to_string()));
        assert_eq!(builtin.by_asn(13335).unwrap().name, "Cloudflare");
        assert_eq!(builtin.by_asn(4134).unwrap().name, "China Telecom");
        assert!(builtin.by_asn(64512).is_none());

        let lab = Providers::parse(LAB).unwrap();
        let names: Vec<&str> = lab.providers().iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["lab-dns", "lab-cdn-v4", "lab-cdn"]);
        // The lab set adds to the built-in one without clashes.
        let both = builtin.clone().merge(lab).unwrap();
        assert_eq!(both.providers().len(), builtin.providers().len() + 3);
    }

    #[test]
    fn suffixes_are_normalised_and_kinds_parsed() {
        let p = Providers::parse(
            r#"
            [[provider]]
            name = "X"
            kind = "hosting"
            ns_suffixes = ["NS.Example.NET."]
            asns = [64500]
            "#,
        )
        .unwrap();
        let x = &p.providers()[0];
        assert_eq!(x.ns_suffixes, ["ns.example.net"]);
        assert_eq!(x.kind, ProviderKind::Hosting);
        assert!(x.cname_suffixes.is_empty() && x.mx_suffixes.is_empty());
        assert_eq!(x.asns, [64500]);
        assert!(Providers::parse("").unwrap().providers().is_empty());
    }

    #[test]
    fn invalid_files_are_refused_with_the_reason() {
        let one = |fields: &str| format!("[[provider]]\nname = \"X\"\nkind = \"cdn\"\n{fields}\n");

        assert!(matches!(
            parse_err("[[provider]]\nname = \"  \"\nkind = \"cdn\"\n"),
            ProvidersError::EmptyName { index: 1 }
        ));
        assert!(matches!(
            parse_err("[[provider]]\nkind = \"cdn\"\n"),
            ProvidersError::EmptyName { .. }
        ));
        let twice = format!("{}{}", one(""), one(""));
        assert!(matches!(parse_err(&twice), ProvidersError::DuplicateName(n) if n == "X"));

        let e = parse_err("[[provider]]\nname = \"X\"\nkind = \"isp\"\n");
        assert!(matches!(&e, ProvidersError::UnknownKind { kind, .. } if kind == "isp"));
        assert!(e.to_string().contains("unknown kind 'isp'"), "{e}");

        for (suffix, reason) in [
            ("", "empty"),
            (".dnspod.net", "leading dot"),
            ("net", "single label"),
            ("a..net", "empty label"),
            ("dns pod.net", "only letters"),
            ("dns_pod.net", "only letters"),
            ("-dnspod.net", "start or end"),
            ("*.dnspod.net", "'*' alone"),
            ("a**b.net", "at most one"),
            ("dnspod.n*t", "last label"),
        ] {
            let e = parse_err(&one(&format!("ns_suffixes = [\"{suffix}\"]")));
            assert!(
                matches!(&e, ProvidersError::BadSuffix { field: "ns_suffixes", suffix: s, .. } if s == suffix),
                "{suffix}: {e:?}"
            );
            assert!(e.to_string().contains(reason), "{suffix}: {e}");
        }
        let long = format!("{}.net", "a".repeat(64));
        assert!(matches!(
            parse_err(&one(&format!("cname_suffixes = [\"{long}\"]"))),
            ProvidersError::BadSuffix {
                field: "cname_suffixes",
                ..
            }
        ));

        let clash = format!(
            "{}[[provider]]\nname = \"Y\"\nkind = \"cdn\"\nmx_suffixes = [\"mx.example.net\"]\n",
            one("mx_suffixes = [\"MX.example.net\"]")
        );
        assert!(matches!(
            parse_err(&clash),
            ProvidersError::DuplicateSuffix { field: "mx_suffixes", first, second, .. } if first == "X" && second == "Y"
        ));
        // The same suffix in different roles is fine.
        Providers::parse(&one(
            "ns_suffixes = [\"example.net\"]\ncname_suffixes = [\"example.net\"]",
        ))
        .unwrap();

        let asn_clash = format!(
            "{}[[provider]]\nname = \"Y\"\nkind = \"cdn\"\nasns = [64500]\n",
            one("asns = [64500]")
        );
        assert!(matches!(
            parse_err(&asn_clash),
            ProvidersError::DuplicateAsn { asn: 64500, .. }
        ));
        assert!(matches!(parse_err(&one("asns = [0]")), ProvidersError::BadAsn { .. }));

        // Typos in field names are not silently ignored.
        assert!(matches!(
            parse_err(&one("ns_suffix = [\"a.net\"]")),
            ProvidersError::Parse(_)
        ));
        assert!(matches!(
            parse_err("[[providers]]\nname = \"X\"\n"),
            ProvidersError::Parse(_)
        ));

        // Merging re-checks the combined set.
        let a = Providers::parse(&one("")).unwrap();
        assert!(matches!(a.clone().merge(a), Err(ProvidersError::DuplicateName(_))));
    }

    #[test]
    fn load_reports_the_file() {
        let dir = std::env::temp_dir().join(format!("v6scope-providers-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let good = dir.join("good.toml");
        std::fs::write(&good, LAB).unwrap();
        assert_eq!(Providers::load(&good).unwrap(), Providers::parse(LAB).unwrap());

        let bad = dir.join("bad.toml");
        std::fs::write(
            &bad,
            "[[provider]]\nname = \"X\"\nkind = \"cdn\"\nns_suffixes = [\".x.net\"]\n",
        )
        .unwrap();
        let e = Providers::load(&bad).unwrap_err();
        assert!(
            matches!(&e, ProvidersError::InFile { source, .. } if matches!(**source, ProvidersError::BadSuffix { .. }))
        );
        assert!(e.to_string().starts_with(&bad.display().to_string()), "{e}");

        let missing = dir.join("missing.toml");
        assert!(matches!(Providers::load(&missing), Err(ProvidersError::Read { .. })));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    // ------------------------------------------------------------ matching

    #[test]
    fn suffixes_match_on_label_boundaries() {
        assert_eq!(suffix_rank("f1g1ns1.dnspod.net", "dnspod.net"), Some((2, 10)));
        assert_eq!(suffix_rank("dnspod.net", "dnspod.net"), Some((2, 10)));
        assert_eq!(suffix_rank("notdnspod.net", "dnspod.net"), None);
        assert_eq!(suffix_rank("dnspod.net.evil.com", "dnspod.net"), None);
        assert_eq!(suffix_rank("net", "dnspod.net"), None);
        // Globs stay inside their label.
        assert!(suffix_rank("ns-1.awsdns-12.co.uk", "awsdns-*.co.uk").is_some());
        assert!(suffix_rank("awsdns-.com", "awsdns-*.com").is_some());
        assert!(suffix_rank("ns-1.xawsdns-12.com", "awsdns-*.com").is_none());
        assert!(suffix_rank("awsdns-12.com.evil.net", "awsdns-*.com").is_none());
        assert!(suffix_rank("ns-1.awsdns-12.a.com", "awsdns-*.com").is_none());

        let b = Providers::builtin();
        let dns = |n: &str| b.match_name(Role::Dns, n).map(|p| p.name.as_str());
        assert_eq!(dns("F1G1NS1.DNSPod.net."), Some("Tencent Cloud"));
        assert_eq!(dns("notdnspod.net"), None);
        assert_eq!(dns("ns-1536.awsdns-00.co.uk"), Some("Amazon Web Services"));
        assert_eq!(dns("kate.ns.cloudflare.com"), Some("Cloudflare"));
        assert_eq!(dns("ns.cloudflare.com.example.net"), None);
        // Roles keep their own lists: a CDN name is not a name server.
        assert_eq!(dns("x.cdn.cloudflare.net"), None);
        assert_eq!(
            b.match_name(Role::Web, "x.cdn.cloudflare.net").map(|p| p.name.as_str()),
            Some("Cloudflare")
        );
        let mail = |n: &str| b.match_name(Role::Mail, n).map(|p| p.name.as_str());
        assert_eq!(mail("mxbiz1.qq.com"), Some("Tencent Exmail"));
        assert_eq!(mail("mxw.mxhichina.com"), Some("Alibaba Cloud"));
        assert_eq!(mail("example-com.mail.protection.outlook.com"), Some("Microsoft 365"));
    }

    #[test]
    fn the_most_specific_suffix_wins() {
        let p = Providers::parse(
            r#"
            [[provider]]
            name = "Broad"
            kind = "cloud"
            cname_suffixes = ["example.net", "*x.org"]
            [[provider]]
            name = "Narrow"
            kind = "cdn"
            cname_suffixes = ["cdn.example.net", "box.org"]
            "#,
        )
        .unwrap();
        let web = |n: &str| p.match_name(Role::Web, n).map(|p| p.name.as_str());
        assert_eq!(web("a.cdn.example.net"), Some("Narrow"));
        assert_eq!(web("a.example.net"), Some("Broad"));
        assert_eq!(web("cdn.example.net"), Some("Narrow"));
        // Same number of labels: the literal one is more specific than the glob.
        assert_eq!(web("box.org"), Some("Narrow"));
        assert_eq!(web("fox.org"), Some("Broad"));
    }

    // ------------------------------------------------------------ attribution

    #[test]
    fn name_servers_are_attributed_by_name_with_ipv6_per_host() {
        let b = Providers::builtin();
        let mut o = observation();
        o.zone.hosts = vec![
            ns("f1g1ns1.dnspod.net", &["192.0.2.1"], &[], None),
            ns("f1g1ns2.dnspod.net", &["192.0.2.2"], &["2001:db8::2"], Some(false)),
            ns("notdnspod.net", &["192.0.2.3"], &["2001:db8::3"], Some(true)),
        ];
        let uses = attribute(&o, &b, &no_asn);
        assert_eq!(
            uses,
            [ProviderUse {
                provider: "Tencent Cloud".into(),
                role: Role::Dns,
                ipv6: false,
                evidence: "NS f1g1ns1.dnspod.net (no AAAA); NS f1g1ns2.dnspod.net (AAAA, no answer over IPv6)".into(),
            }]
        );

        // One host of the provider answering over IPv6 is enough.
        o.zone.hosts[0] = ns("f1g1ns1.dnspod.net", &["192.0.2.1"], &["2001:db8::1"], Some(true));
        let uses = attribute(&o, &b, &no_asn);
        assert_eq!(uses.len(), 1);
        assert!(uses[0].ipv6);
        assert!(
            uses[0].evidence.starts_with("NS f1g1ns1.dnspod.net (IPv6 answered); "),
            "{}",
            uses[0].evidence
        );
    }

    #[test]
    fn untested_ipv6_counts_the_published_aaaa_and_says_so() {
        let b = Providers::builtin();
        let mut o = observation();
        o.vantage.ipv6 = false;
        o.zone.hosts = vec![ns("kate.ns.cloudflare.com", &["192.0.2.1"], &["2001:db8::1"], None)];
        let uses = attribute(&o, &b, &no_asn);
        assert_eq!(uses.len(), 1);
        assert!(uses[0].ipv6);
        assert_eq!(
            uses[0].evidence,
            "NS kate.ns.cloudflare.com (AAAA, not tested over IPv6)"
        );
    }

    #[test]
    fn name_servers_are_attributed_by_asn_when_no_name_matches() {
        let b = Providers::builtin();
        let mut o = observation();
        o.zone.hosts = vec![
            ns("ns1.example.cn", &["192.0.2.1"], &["2001:db8::1"], Some(true)),
            ns("ns2.example.cn", &["192.0.2.2"], &[], None),
            // A name match keeps the host out of AS attribution.
            ns("a1-1.akam.net", &["192.0.2.9"], &[], None),
        ];
        let asn_of = |a: IpAddr| match a.to_string().as_str() {
            "192.0.2.1" | "192.0.2.2" | "192.0.2.9" => Some(4134),
            "2001:db8::1" => Some(4812),
            _ => None,
        };
        let uses = attribute(&o, &b, &asn_of);
        assert_eq!(uses.len(), 2, "{uses:?}");
        assert_eq!(uses[0].provider, "Akamai");
        assert_eq!(uses[1].provider, "China Telecom");
        assert!(uses[1].ipv6);
        assert_eq!(
            uses[1].evidence,
            "NS ns1.example.cn via 192.0.2.1 (AS4134), 2001:db8::1 (AS4812) (IPv6 answered); \
             NS ns2.example.cn via 192.0.2.2 (AS4134) (no AAAA)"
        );

        // IPv6 from another network does not make the carrier's part IPv6.
        let asn_of = |a: IpAddr| if a.is_ipv4() { Some(4134) } else { Some(13335) };
        o.zone.hosts.truncate(1);
        let uses = attribute(&o, &b, &asn_of);
        let telecom = uses.iter().find(|u| u.provider == "China Telecom").unwrap();
        assert!(!telecom.ipv6);
        assert!(
            telecom.evidence.ends_with("(no IPv6 address in its AS)"),
            "{}",
            telecom.evidence
        );
        let cloudflare = uses.iter().find(|u| u.provider == "Cloudflare").unwrap();
        assert!(cloudflare.ipv6);
    }

    #[test]
    fn web_is_attributed_by_cname_and_ipv6_needs_a_working_fetch() {
        let b = Providers::builtin();
        let mut o = observation();
        o.names = vec![
            resolution("example.test", NameRole::Apex, &[], &["192.0.2.80"], &[]),
            resolution(
                "www.example.test",
                NameRole::Www,
                &["www.example.test.cdn.cloudflare.net"],
                &["192.0.2.81"],
                &["2001:db8::81"],
            ),
        ];
        o.web = vec![web(
            "www.example.test",
            NameRole::Www,
            vec![
                fetch("www.example.test", "192.0.2.81", true),
                fetch("www.example.test", "2001:db8::81", true),
            ],
        )];
        let uses = attribute(&o, &b, &no_asn);
        assert_eq!(
            uses,
            [ProviderUse {
                provider: "Cloudflare".into(),
                role: Role::Web,
                ipv6: true,
                evidence: "CNAME www.example.test → www.example.test.cdn.cloudflare.net (IPv6 fetch ok)".into(),
            }]
        );

        o.web[0].fetches[1] = fetch("www.example.test", "2001:db8::81", false);
        let uses = attribute(&o, &b, &no_asn);
        assert!(!uses[0].ipv6);
        assert!(uses[0].evidence.ends_with("(AAAA, IPv6 fetch failed)"));

        // No AAAA at the end of the chain.
        o.names[1].aaaa.clear();
        let uses = attribute(&o, &b, &no_asn);
        assert!(!uses[0].ipv6);
        assert!(uses[0].evidence.ends_with("(no AAAA)"));
    }

    #[test]
    fn a_chain_through_two_providers_names_both_and_one_provider_once() {
        let b = Providers::builtin();
        let mut o = observation();
        o.names = vec![resolution(
            "www.example.test",
            NameRole::Www,
            &["www.example.test.edgekey.net", "e1.a.akamaiedge.net", "x.wscdns.com"],
            &["192.0.2.81"],
            &[],
        )];
        let uses = attribute(&o, &b, &|_| Some(13335));
        let names: Vec<&str> = uses.iter().map(|u| u.provider.as_str()).collect();
        // File order (Wangsu before Akamai); Akamai once; no AS match once a name matched.
        assert_eq!(names, ["Wangsu (ChinaNetCenter)", "Akamai"]);
        assert_eq!(
            uses[1].evidence,
            "CNAME www.example.test → www.example.test.edgekey.net (no AAAA)"
        );
    }

    #[test]
    fn web_addresses_are_attributed_by_asn_and_apex_and_www_deduplicate() {
        let b = Providers::builtin();
        let mut o = observation();
        o.names = vec![
            resolution("example.test", NameRole::Apex, &[], &["192.0.2.80"], &["2001:db8::80"]),
            resolution(
                "www.example.test",
                NameRole::Www,
                &[],
                &["192.0.2.80"],
                &["2001:db8::80"],
            ),
        ];
        o.web = vec![
            web(
                "example.test",
                NameRole::Apex,
                vec![fetch("example.test", "2001:db8::80", false)],
            ),
            web(
                "www.example.test",
                NameRole::Www,
                vec![fetch("www.example.test", "2001:db8::80", true)],
            ),
        ];
        let uses = attribute(&o, &b, &|_| Some(37963));
        assert_eq!(uses.len(), 1, "{uses:?}");
        assert_eq!(uses[0].provider, "Alibaba Cloud");
        assert_eq!(uses[0].role, Role::Web);
        // The www fetch worked, so the provider's web part works over IPv6.
        assert!(uses[0].ipv6);
        assert_eq!(
            uses[0].evidence,
            "web example.test via 192.0.2.80 (AS37963), 2001:db8::80 (AS37963) (AAAA, IPv6 fetch failed); \
             web www.example.test via 192.0.2.80 (AS37963), 2001:db8::80 (AS37963) (IPv6 fetch ok)"
        );
    }

    #[test]
    fn mail_is_attributed_by_mx_name_before_asn() {
        let b = Providers::builtin();
        let mut o = observation();
        o.mail.status = MxStatus::Hosts;
        o.mail.hosts = vec![
            mx("mxbiz1.qq.com", &["192.0.2.25"], &["2001:db8::25"], Some(true)),
            mx("mxbiz2.qq.com", &["192.0.2.26"], &[], None),
            mx("mx.example.test", &["192.0.2.27"], &["2001:db8::27"], Some(false)),
        ];
        // Every address is in Tencent's AS: only the unmatched host goes by AS.
        let uses = attribute(&o, &b, &|_| Some(45090));
        assert_eq!(
            uses,
            [
                ProviderUse {
                    provider: "Tencent Cloud".into(),
                    role: Role::Mail,
                    ipv6: false,
                    evidence: "MX mx.example.test via 192.0.2.27 (AS45090), 2001:db8::27 (AS45090) \
                               (AAAA, unreachable over IPv6)"
                        .into(),
                },
                ProviderUse {
                    provider: "Tencent Exmail".into(),
                    role: Role::Mail,
                    ipv6: true,
                    evidence: "MX mxbiz1.qq.com (IPv6 reachable); MX mxbiz2.qq.com (no AAAA)".into(),
                },
            ]
        );
    }

    #[test]
    fn one_provider_in_several_roles_is_listed_per_role_in_role_order() {
        let b = Providers::builtin();
        let mut o = observation();
        o.mail.status = MxStatus::Hosts;
        o.mail.hosts = vec![mx("inbound-smtp.us-east-1.amazonaws.com", &["192.0.2.25"], &[], None)];
        o.names = vec![resolution(
            "example.test",
            NameRole::Apex,
            &["d1.cloudfront.net"],
            &["192.0.2.80"],
            &[],
        )];
        o.zone.hosts = vec![ns("ns-1.awsdns-01.org", &["192.0.2.53"], &["2001:db8::53"], Some(true))];
        let uses = attribute(&o, &b, &no_asn);
        let got: Vec<(&str, Role, bool)> = uses.iter().map(|u| (u.provider.as_str(), u.role, u.ipv6)).collect();
        assert_eq!(
            got,
            [
                ("Amazon Web Services", Role::Dns, true),
                ("Amazon Web Services", Role::Web, false),
                ("Amazon Web Services", Role::Mail, false),
            ]
        );
        let json = serde_json::to_value(&uses[0]).unwrap();
        assert_eq!(json["role"], "dns");
        assert_eq!(json["provider"], "Amazon Web Services");
    }

    #[test]
    fn unprobed_ns_names_are_still_attributed() {
        let b = Providers::builtin();
        let mut o = observation();
        o.zone.child_ns = vec!["ns1-01.azure-dns.com.".into()];
        o.zone.parent_ns = vec!["NS1-01.azure-dns.com".into()];
        let uses = attribute(&o, &b, &no_asn);
        assert_eq!(uses.len(), 1);
        assert_eq!(uses[0].provider, "Microsoft Azure");
        assert!(!uses[0].ipv6);
        assert_eq!(uses[0].evidence, "NS ns1-01.azure-dns.com. (not probed)");
    }

    #[test]
    fn lab_sub_resources_from_the_ipv4_only_cdn_are_attributed() {
        let lab = Providers::parse(LAB).unwrap();
        let mut o = observation();
        let resource = |path: &str, v6: Option<UrlFetch>| ResourceCrawl {
            url: format!("https://img.cdn-v4.test{path}"),
            host: "IMG.cdn-v4.test".into(),
            v4: None,
            v6,
        };
        let no_aaaa = UrlFetch {
            family: Family::Ipv6,
            address: None,
            ok: false,
            final_status: None,
            redirects: 0,
            bytes: 0,
            timings: Timings::default(),
            title: None,
            stalled_bytes: None,
            error: Some(v6scope_model::ProbeError::new(ErrorKind::NoAddress, "no AAAA")),
        };
        o.site = Some(SiteObservation {
            resources: vec![
                resource("/static/site.css", Some(no_aaaa.clone())),
                resource("/static/logo.png", Some(no_aaaa.clone())),
            ],
            ..Default::default()
        });
        let uses = attribute(&o, &lab, &no_asn);
        assert_eq!(
            uses,
            [ProviderUse {
                provider: "lab-cdn-v4".into(),
                role: Role::Web,
                ipv6: false,
                evidence: "resource img.cdn-v4.test (no AAAA)".into(),
            }]
        );

        // One resource fetched over IPv6 makes the host's part work.
        let ok = UrlFetch {
            ok: true,
            address: Some(ip("2001:db8::54")),
            error: None,
            ..no_aaaa
        };
        o.site
            .as_mut()
            .unwrap()
            .resources
            .push(resource("/static/site.js", Some(ok)));
        let uses = attribute(&o, &lab, &no_asn);
        assert!(uses[0].ipv6);
        assert_eq!(uses[0].evidence, "resource img.cdn-v4.test (IPv6 fetch ok)");
    }

    #[test]
    fn a_lab_observation_is_attributed_to_the_shared_name_servers() {
        let o: DomainObservation =
            serde_json::from_str(include_str!("../tests/fixtures/dual-stack-good.json")).unwrap();
        let lab = Providers::parse(LAB).unwrap();
        let uses = attribute(&o, &lab, &no_asn);
        assert_eq!(
            uses,
            [ProviderUse {
                provider: "lab-dns".into(),
                role: Role::Dns,
                ipv6: true,
                evidence: "NS ns1.lab-dns.test (IPv6 answered); NS ns2.lab-dns.test (IPv6 answered)".into(),
            }]
        );
        // The built-in set knows nothing of the lab.
        assert!(attribute(&o, &Providers::builtin(), &no_asn).is_empty());
    }
}
