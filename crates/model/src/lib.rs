//! Shared types of v6scope.
//!
//! Two families of types live here and are kept apart on purpose:
//! *observations* (what a probe saw: addresses, timings, status codes, errors)
//! and *verdicts* (what a profile concluded from them). Observations never
//! carry judgement, so a stored run can be re-judged under another profile.
//!
//! All serialized types use stable snake_case field names and the top-level
//! documents carry [`SCHEMA_VERSION`].

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::IpAddr;

/// Version of the JSON shape of [`DomainObservation`] and [`Verdict`].
pub const SCHEMA_VERSION: u32 = 1;

/// Address family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Family {
    Ipv4,
    Ipv6,
}

impl Family {
    pub fn of(addr: &IpAddr) -> Family {
        match addr {
            IpAddr::V4(_) => Family::Ipv4,
            IpAddr::V6(_) => Family::Ipv6,
        }
    }
    pub fn label(self) -> &'static str {
        match self {
            Family::Ipv4 => "IPv4",
            Family::Ipv6 => "IPv6",
        }
    }
}

/// One line of a targets file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Target {
    /// ASCII (punycode) domain, lower case, without trailing dot.
    pub domain: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organisation: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
}

/// What kind of address an AAAA (or A) record holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AddressClass {
    Global,
    Ipv4Mapped,
    Ipv4Compatible,
    UniqueLocal,
    LinkLocal,
    Loopback,
    Unspecified,
    Multicast,
    Documentation,
    Nat64,
    SixToFour,
    Teredo,
    Discard,
    Benchmarking,
    /// IPv4 private, shared, reserved and other special-purpose space.
    SpecialPurpose,
}

/// An address with its classification. `usable` is true for global
/// addresses and for addresses inside an operator-allowed prefix.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddrInfo {
    pub address: IpAddr,
    pub class: AddressClass,
    pub usable: bool,
}

/// Why a probe step failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    Timeout,
    Refused,
    Reset,
    Unreachable,
    Tls,
    Http,
    DnsRcode,
    DnsMalformed,
    CnameLoop,
    CnameChainTooLong,
    TooLarge,
    RedirectLoop,
    TooManyRedirects,
    RedirectNoFamily,
    Protocol,
    NoAddress,
    Io,
    NotTestable,
}

/// A failed step, recorded as a fact.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProbeError {
    pub kind: ErrorKind,
    pub message: String,
}

impl ProbeError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        ProbeError {
            kind,
            message: message.into(),
        }
    }
}

impl std::fmt::Display for ProbeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}: {}", self.kind, self.message)
    }
}

/// The role a name plays for the tested domain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NameRole {
    Apex,
    Www,
    NameServer,
    MailExchanger,
    RedirectHost,
}

/// A and AAAA of one name through the recursive resolver, with the CNAME chain.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NameResolution {
    pub name: String,
    pub role: NameRole,
    /// Every hop, starting with `name`'s first CNAME target.
    pub cname_chain: Vec<String>,
    /// False when the name does not exist (NXDOMAIN).
    pub exists: bool,
    pub a: Vec<AddrInfo>,
    pub aaaa: Vec<AddrInfo>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub a_error: Option<ProbeError>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aaaa_error: Option<ProbeError>,
    pub a_ms: f64,
    pub aaaa_ms: f64,
    /// A negative answer (no AAAA, NXDOMAIN) asked again of the zone's
    /// authoritative servers: what they said, and whether the resolver
    /// disagreed (then the addresses above are the authoritative ones).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confirmation: Option<Confirmation>,
}

/// A negative answer checked at the source.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Confirmation {
    /// The authoritative server asked.
    pub server: IpAddr,
    /// What it answered, in words ("no AAAA", "AAAA 2001:db8::1", "NXDOMAIN").
    pub answer: String,
    /// The resolver said otherwise; the target is judged on `answer`.
    pub resolver_disagreed: bool,
}

impl NameResolution {
    pub fn usable_v6(&self) -> impl Iterator<Item = &AddrInfo> {
        self.aaaa.iter().filter(|a| a.usable)
    }
    pub fn has_usable_v6(&self) -> bool {
        self.usable_v6().next().is_some()
    }
    pub fn addresses(&self, family: Family) -> &[AddrInfo] {
        match family {
            Family::Ipv4 => &self.a,
            Family::Ipv6 => &self.aaaa,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Transport {
    Udp,
    Tcp,
}

/// A direct SOA query to one name-server address (never through a forwarder).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NsProbe {
    pub address: IpAddr,
    pub family: Family,
    pub transport: Transport,
    /// NOERROR, AA set and the question echoed.
    pub answered: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rcode: Option<String>,
    pub authoritative: bool,
    pub flags: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serial: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rtt_ms: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ProbeError>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NsHost {
    pub name: String,
    pub resolution: NameResolution,
    pub probes: Vec<NsProbe>,
}

/// The zone that holds the domain, its name servers and its delegation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct ZoneObservation {
    pub zone: String,
    /// NS set as the child's own servers serve it.
    pub child_ns: Vec<String>,
    /// NS set in the parent's referral.
    pub parent_ns: Vec<String>,
    pub glue: Vec<(String, IpAddr)>,
    pub ns_mismatch: bool,
    pub hosts: Vec<NsHost>,
    /// Distinct SOA serials seen across all answering addresses.
    pub serials: Vec<u32>,
    /// Distinct /48s among usable IPv6 NS addresses.
    pub distinct_v6_48s: usize,
    /// The delegation followed from the root over IPv6 transport only
    /// (taken for the profiles that ask for it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub v6_delegation: Option<V6Delegation>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<ProbeError>,
}

/// The zone's delegation chain walked from the root servers with IPv6
/// transport only: each referral followed through the IPv6 addresses of
/// the referred servers (glue, or their names resolved the same way).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct V6Delegation {
    /// Where the root servers came from ("priming query via ..." or a hints file).
    pub roots_from: String,
    /// An authoritative answer for the zone arrived over IPv6.
    pub complete: bool,
    pub steps: Vec<DelegationStep>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ProbeError>,
}

/// One server's answer on the way down.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DelegationStep {
    /// The zone whose servers were asked ("." first).
    pub zone: String,
    /// The IPv6 address that answered.
    pub server: IpAddr,
    /// The zone it referred to; none for the final, authoritative answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub referral: Option<String>,
    /// Referred servers and their IPv6 addresses (empty: none known).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub next_servers: Vec<(String, Vec<IpAddr>)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MxStatus {
    Hosts,
    NullMx,
    NullMxWithOthers,
    NoMx,
    Error,
}

/// One SMTP conversation: connect, 220, EHLO, QUIT. No mail is sent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SmtpProbe {
    pub address: IpAddr,
    pub family: Family,
    pub connected: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connect_ms: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub banner: Option<String>,
    pub banner_ok: bool,
    pub ehlo_ok: bool,
    pub starttls: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ProbeError>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MxHost {
    pub preference: u16,
    pub name: String,
    pub resolution: NameResolution,
    pub probes: Vec<SmtpProbe>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MailObservation {
    pub status: MxStatus,
    pub hosts: Vec<MxHost>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ProbeError>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scheme {
    Http,
    Https,
}

impl Scheme {
    pub fn port(self) -> u16 {
        match self {
            Scheme::Http => 80,
            Scheme::Https => 443,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct TlsObservation {
    /// Chain verified against the web roots plus any extra CA, for the SNI name.
    pub verified: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verify_error: Option<String>,
    pub name_match: bool,
    /// SHA-256 of each certificate, leaf first.
    pub chain_sha256: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_after: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alpn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}

/// One request/response of a redirect chain.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HttpHop {
    pub url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<IpAddr>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    /// For hops after the first: whether the hop's host has a usable address
    /// in the fetch's family.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_has_family: Option<bool>,
    /// Why this hop's certificate did not verify (hops after the first;
    /// the first hop's TLS facts are in [`HttpFetch::tls`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Timings {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connect_ms: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_ms: Option<f64>,
    /// From the start of the fetch to the headers of the first 2xx response
    /// (redirects included); none when no hop answered 2xx.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttfb_ms: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_ms: Option<f64>,
}

/// What the final body looked like (the body itself is not kept).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct ContentSummary {
    pub bytes: u64,
    pub truncated: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    pub charset: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// SHA-256 of the normalised visible text.
    pub text_sha256: String,
    pub text_chars: usize,
}

/// GET / on one address, one scheme, following redirects within the family.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HttpFetch {
    pub name: String,
    pub address: IpAddr,
    pub family: Family,
    pub scheme: Scheme,
    pub port: u16,
    pub tcp_connected: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsObservation>,
    pub hops: Vec<HttpHop>,
    /// Status of the last response received (after redirects).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub final_status: Option<u16>,
    /// True when a final, non-redirect response was read completely (or to the cap).
    pub completed: bool,
    /// Body bytes of the final response received so far (what arrived
    /// before a stall, when the fetch did not complete).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub body_received: u64,
    pub timings: Timings,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<ContentSummary>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ProbeError>,
}

/// Comparison of one IPv6 fetch with the IPv4 reference fetch of the same name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContentParity {
    pub name: String,
    pub scheme: Scheme,
    pub v4_address: IpAddr,
    pub v6_address: IpAddr,
    pub status_equal: bool,
    pub redirects_equal: bool,
    pub title_equal: bool,
    pub text_similarity: f64,
    pub structure_similarity: f64,
    /// Which aspects differed: status, redirects, title, text, structure.
    pub differed: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WebObservation {
    pub name: String,
    pub role: NameRole,
    pub fetches: Vec<HttpFetch>,
    pub parity: Vec<ContentParity>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// One URL fetched over one family (first usable address of its host).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UrlFetch {
    pub family: Family,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<IpAddr>,
    /// A final 2xx, every redirect hop reachable in this family.
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub final_status: Option<u16>,
    pub redirects: usize,
    pub bytes: u64,
    pub timings: Timings,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Body bytes received when the response stalled after its headers
    /// (the Path-MTU blackhole signature); none when it did not stall.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stalled_bytes: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ProbeError>,
}

/// A page of the site at crawl level 1 (homepage), 2 (二级) or 3 (三级).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PageCrawl {
    pub url: String,
    pub level: u8,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub v4: Option<UrlFetch>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub v6: Option<UrlFetch>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text_similarity: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub structure_similarity: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title_equal: Option<bool>,
}

/// A sub-resource (image, script, style, media) loaded by the crawled pages.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResourceCrawl {
    pub url: String,
    pub host: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub v4: Option<UrlFetch>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub v6: Option<UrlFetch>,
}

/// Everything the crawl of one site saw.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct SiteObservation {
    /// The registrable domain whose links count as internal.
    pub site: String,
    pub start_url: String,
    pub pages: Vec<PageCrawl>,
    pub resources: Vec<ResourceCrawl>,
    /// Links to other registrable domains (not followed).
    pub external_links: usize,
    /// Every limit that cut the crawl short, in words.
    pub limits_reached: Vec<String>,
    /// Repeated homepage loads per family, for speed and stability.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub samples: Vec<TimingSample>,
    pub duration_ms: f64,
}

/// One load of the homepage (and its sub-resources) over one family.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimingSample {
    pub family: Family,
    pub ok: bool,
    /// Resolution time of the host's A or AAAA record through the resolver.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns_ms: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connect_ms: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttfb_ms: Option<f64>,
    /// The page and its sub-resources (fetched together, as a browser would).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub full_page_ms: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ProbeError>,
}

/// Whether the vantage point itself can test each family.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Vantage {
    pub ipv4: bool,
    pub ipv6: bool,
    pub detail: Vec<String>,
    /// Faults the resolver self-test found (a resolver that strips AAAA,
    /// answers NXDOMAIN or SERVFAIL for everything, rewrites NXDOMAIN, ...).
    /// Any fault makes every check of this vantage `not_testable`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resolver_problems: Vec<String>,
}

impl Vantage {
    /// A vantage assumed to have both families (for follow-up fetches whose
    /// family was already checked).
    pub fn both() -> Vantage {
        Vantage {
            ipv4: true,
            ipv6: true,
            detail: Vec::new(),
            resolver_problems: Vec::new(),
        }
    }

    pub fn has(&self, family: Family) -> bool {
        match family {
            Family::Ipv4 => self.ipv4,
            Family::Ipv6 => self.ipv6,
        }
    }
}

/// Everything observed about one domain. Facts only.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DomainObservation {
    pub schema_version: u32,
    pub target: Target,
    pub started_at_ms: i64,
    pub duration_ms: f64,
    pub vantage: Vantage,
    /// Apex and www.
    pub names: Vec<NameResolution>,
    pub zone: ZoneObservation,
    pub mail: MailObservation,
    pub web: Vec<WebObservation>,
    /// The crawl of the whole site (homepage, 二级 and 三级 links,
    /// sub-resources), when one was asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub site: Option<SiteObservation>,
    /// Set when the per-target deadline cut the evaluation short.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ProbeError>,
}

impl DomainObservation {
    pub fn name(&self, role: NameRole) -> Option<&NameResolution> {
        self.names.iter().find(|n| n.role == role)
    }
    pub fn web_for(&self, role: NameRole) -> Option<&WebObservation> {
        self.web.iter().find(|w| w.role == role)
    }
}

/// Id of the check a verdict combined from several vantages carries with
/// the per-vantage evidence (its lines starting "differs: " say where they
/// disagree).
pub const VANTAGES_CHECK: &str = "vantages";

/// Outcome vocabulary for a check and for a domain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Pass,
    Fail,
    Warn,
    Info,
    NotApplicable,
    NotTestable,
    Error,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pass => "pass",
            Status::Fail => "fail",
            Status::Warn => "warn",
            Status::Info => "info",
            Status::NotApplicable => "not_applicable",
            Status::NotTestable => "not_testable",
            Status::Error => "error",
        }
    }
}

impl std::str::FromStr for Status {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "pass" => Status::Pass,
            "fail" => Status::Fail,
            "warn" => Status::Warn,
            "info" => Status::Info,
            "not_applicable" => Status::NotApplicable,
            "not_testable" => Status::NotTestable,
            "error" => Status::Error,
            other => return Err(format!("unknown status '{other}'")),
        })
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Per-service counts in the NIST style.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct ServiceCounts {
    pub ipv4_interfaces: usize,
    pub ipv6_assigned: usize,
    pub ipv6_operational: usize,
    /// red, yellow, green or gray.
    pub colour: String,
}

/// The judgement of one check.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckResult {
    pub id: String,
    pub title: String,
    pub status: Status,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub points: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_points: Option<f64>,
    /// Which address, which step, which error.
    pub evidence: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remedy: Option<String>,
    /// The title and remedy in Simplified Chinese, when the profile has them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title_zh: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remedy_zh: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub counts: Option<ServiceCounts>,
}

impl CheckResult {
    /// The title in Chinese if asked for and known, else in English.
    pub fn title_in(&self, zh: bool) -> &str {
        match (&self.title_zh, zh) {
            (Some(t), true) => t,
            _ => &self.title,
        }
    }

    /// The remedy in Chinese if asked for and known, else in English.
    pub fn remedy_in(&self, zh: bool) -> Option<&str> {
        match (&self.remedy_zh, zh) {
            (Some(r), true) if self.remedy.is_some() => Some(r),
            _ => self.remedy.as_deref(),
        }
    }
}

/// A domain judged under one profile.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    pub schema_version: u32,
    pub domain: String,
    pub profile: String,
    pub status: Status,
    /// Profile-specific label of the domain outcome (e.g. "operational").
    pub label: String,
    /// 0–100.
    pub score: f64,
    /// Category percentages (e.g. web, mail) where the profile defines them.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub categories: BTreeMap<String, f64>,
    pub checks: Vec<CheckResult>,
}

impl Verdict {
    pub fn check(&self, id: &str) -> Option<&CheckResult> {
        self.checks.iter().find(|c| c.id == id)
    }
}

/// Calendar days (UTC, proleptic Gregorian) without a date-time crate:
/// the few conversions the indicators need.
pub mod targets;

pub mod days {
    /// Days since 1970-01-01 of a civil date (Howard Hinnant's algorithm).
    pub fn from_civil(y: i64, m: i64, d: i64) -> i64 {
        let y = if m <= 2 { y - 1 } else { y };
        let era = y.div_euclid(400);
        let yoe = y.rem_euclid(400);
        let doy = (153 * ((m + 9) % 12) + 2) / 5 + d - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        era * 146_097 + doe - 719_468
    }

    /// Days since 1970-01-01 of "YYYY-MM-DD" (years 1900–9999).
    pub fn parse(day: &str) -> Option<i64> {
        let mut parts = day.split('-');
        let y: i64 = parts.next()?.parse().ok()?;
        let m: i64 = parts.next()?.parse().ok()?;
        let d: i64 = parts.next()?.parse().ok()?;
        if parts.next().is_some() || !(1..=12).contains(&m) || !(1..=31).contains(&d) || !(1900..=9999).contains(&y) {
            return None;
        }
        Some(from_civil(y, m, d))
    }

    /// "YYYY-MM-DD" of a day number (days since 1970-01-01).
    pub fn format(days: i64) -> String {
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let d = doy - (153 * mp + 2) / 5 + 1;
        let m = if mp < 10 { mp + 3 } else { mp - 9 };
        let y = yoe + era * 400 + i64::from(m <= 2);
        format!("{y:04}-{m:02}-{d:02}")
    }

    #[cfg(test)]
    mod tests {
        #[test]
        fn round_trips() {
            for day in ["1970-01-01", "2000-02-29", "2024-12-31", "2026-11-26"] {
                assert_eq!(super::format(super::parse(day).unwrap()), day);
            }
            assert_eq!(super::parse("1970-01-02"), Some(1));
            assert_eq!(super::parse("2024-13-01"), None);
        }
    }
}
