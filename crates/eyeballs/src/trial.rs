//! The trials of a sweep: what each one does to the network and to DNS,
//! and which addresses the test name gets.

use serde::{Deserialize, Serialize};
use std::net::{Ipv4Addr, Ipv6Addr};
use std::time::Duration;
use v6scope_netem::Rule;

/// The IPv4 address every trial's A record points to: no condition.
pub const V4_PLAIN: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 1);
/// IPv6 addresses by condition (all the server's, see `netns`).
pub fn v6_delayed(ms: u32) -> Ipv6Addr {
    // The delay is the address's last 32 bits, so a glance at a capture
    // tells the condition (and never the all-zero subnet-router anycast).
    Ipv6Addr::new(0x2001, 0xdb8, 0xe1, 1, 0, 1, (ms >> 16) as u16, ms as u16)
}
pub const V6_BLACKHOLE: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0xe1, 2, 0, 0, 0, 1);
pub const V6_RESET: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0xe1, 3, 0, 0, 0, 1);
pub const V6_UNREACHABLE: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0xe1, 4, 0, 0, 0, 1);
/// Packets from this address larger than 1280 bytes vanish on the way to
/// the client (a path-MTU blackhole: no ICMPv6 Packet Too Big).
pub const V6_PMTU_BLACKHOLE: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0xe1, 5, 0, 0, 0, 1);
/// TLS over this address waits before the handshake (TCP answers at once).
pub const V6_TLS_SLOW: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0xe1, 6, 0, 0, 0, 1);
/// How long the server holds the TLS handshake on `V6_TLS_SLOW`.
pub const TLS_SLOW_MS: u64 = 1000;
/// The path MTU of the blackhole.
pub const PMTU_BLACKHOLE_MTU: u16 = 1280;

/// How the IPv6 path fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Failure {
    /// Packets vanish (a dead route, a broken tunnel): only a timer helps.
    Blackhole,
    /// The connection is refused with a TCP RST.
    Reset,
    /// An ICMPv6 destination unreachable (address unreachable) comes back.
    Unreachable,
}

impl Failure {
    pub fn address(self) -> Ipv6Addr {
        match self {
            Failure::Blackhole => V6_BLACKHOLE,
            Failure::Reset => V6_RESET,
            Failure::Unreachable => V6_UNREACHABLE,
        }
    }
}

/// What one trial tests.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TrialKind {
    /// Both families work; IPv6 is this much slower (one-way, on the SYN).
    Cad { ipv6_delay_ms: u32 },
    /// The AAAA answer comes this much after the A answer.
    AaaaLate { ms: u32 },
    /// The A answer comes this much after the AAAA answer; IPv6 works.
    ALate { ms: u32 },
    /// IPv6 fails in this way; IPv4 works.
    Ipv6Fails { failure: Failure },
    /// Two AAAA records, the first blackholed, the second working; and an A.
    FirstOfTwoAaaaDead,
    /// The AAAA query gets SERVFAIL; the A answer is fine.
    AaaaServfail,
    /// The AAAA query gets an empty answer (NODATA); the A answer is fine.
    AaaaEmpty,
    /// IPv6 connects, then every packet over 1280 bytes towards the client
    /// vanishes; the page is large (HEv3's known gap: the race is over).
    PmtuBlackhole,
    /// An HTTPS record (RFC 9460: alpn http/1.1, address hints) is served
    /// beside A and AAAA: does the client ask for it, and what follows.
    HttpsRecord,
    /// HTTPS with both families working (the control of the next).
    Https,
    /// HTTPS; IPv6 connects at once but its TLS handshake is held 1 s: does
    /// the client race to the handshake (HEv3) or take the first TCP
    /// connection?
    TlsSlowOnIpv6,
    /// From the IPv6-only client (DNS64 resolver, NAT64): a name with only
    /// an A record.
    Ipv6OnlyIpv4Site,
    /// From the IPv6-only client: a dual-stack name (native IPv6 expected).
    Ipv6OnlyDualStack,
    /// From the IPv6-only client: a URL with an IPv4 literal (works only
    /// with a CLAT, RFC 6877).
    Ipv6OnlyIpv4Literal,
}

impl TrialKind {
    /// A short label for tables and the progress line.
    pub fn label(&self) -> String {
        match self {
            TrialKind::Cad { ipv6_delay_ms } => format!("IPv6 +{ipv6_delay_ms} ms"),
            TrialKind::AaaaLate { ms } => format!("AAAA {ms} ms late"),
            TrialKind::ALate { ms } => format!("A {ms} ms late"),
            TrialKind::Ipv6Fails { failure } => format!("IPv6 {}", failure_text(*failure)),
            TrialKind::FirstOfTwoAaaaDead => "first of two AAAA dead".into(),
            TrialKind::AaaaServfail => "AAAA SERVFAIL".into(),
            TrialKind::AaaaEmpty => "AAAA empty".into(),
            TrialKind::PmtuBlackhole => format!("IPv6 path MTU {PMTU_BLACKHOLE_MTU} blackhole"),
            TrialKind::HttpsRecord => "HTTPS record".into(),
            TrialKind::Https => "HTTPS".into(),
            TrialKind::TlsSlowOnIpv6 => format!("HTTPS, IPv6 TLS handshake {TLS_SLOW_MS} ms late"),
            TrialKind::Ipv6OnlyIpv4Site => "IPv6-only, IPv4-only name (DNS64/NAT64)".into(),
            TrialKind::Ipv6OnlyDualStack => "IPv6-only, dual-stack name".into(),
            TrialKind::Ipv6OnlyIpv4Literal => "IPv6-only, IPv4 literal".into(),
        }
    }

    /// Runs from the IPv6-only client.
    pub fn ipv6_only(&self) -> bool {
        matches!(
            self,
            TrialKind::Ipv6OnlyIpv4Site | TrialKind::Ipv6OnlyDualStack | TrialKind::Ipv6OnlyIpv4Literal
        )
    }

    /// The trial's URL scheme.
    pub fn scheme(&self) -> &'static str {
        match self {
            TrialKind::Https | TrialKind::TlsSlowOnIpv6 => "https",
            _ => "http",
        }
    }

    /// The host the trial's URL names: its fresh name, or the IPv4 literal.
    pub fn host(&self, name: &str) -> String {
        match self {
            TrialKind::Ipv6OnlyIpv4Literal => V4_PLAIN.to_string(),
            _ => name.to_string(),
        }
    }
}

pub(crate) fn failure_text(failure: Failure) -> &'static str {
    match failure {
        Failure::Blackhole => "blackholed",
        Failure::Reset => "refused (TCP RST)",
        Failure::Unreachable => "unreachable (ICMPv6)",
    }
}

/// How the DNS server answers one type for a trial's name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnswerKind {
    Records,
    Empty,
    Servfail,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub delay: Duration,
    pub kind: AnswerKind,
}

impl Answer {
    pub(crate) fn now() -> Answer {
        Answer {
            delay: Duration::ZERO,
            kind: AnswerKind::Records,
        }
    }
    fn after(ms: u32) -> Answer {
        Answer {
            delay: Duration::from_millis(ms.into()),
            kind: AnswerKind::Records,
        }
    }
}

/// What the DNS server tells about a trial's name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamePlan {
    pub a: Vec<Ipv4Addr>,
    pub aaaa: Vec<Ipv6Addr>,
    pub a_answer: Answer,
    pub aaaa_answer: Answer,
    /// The web server answers with a large page (64 KiB) instead of a small one.
    pub large_page: bool,
    /// An HTTPS record is served for the name.
    pub https_record: bool,
}

impl TrialKind {
    pub fn plan(&self) -> NamePlan {
        let mut plan = NamePlan {
            a: vec![V4_PLAIN],
            aaaa: vec![v6_delayed(0)],
            a_answer: Answer::now(),
            aaaa_answer: Answer::now(),
            large_page: false,
            https_record: false,
        };
        match *self {
            TrialKind::Cad { ipv6_delay_ms } => plan.aaaa = vec![v6_delayed(ipv6_delay_ms)],
            TrialKind::AaaaLate { ms } => plan.aaaa_answer = Answer::after(ms),
            TrialKind::ALate { ms } => plan.a_answer = Answer::after(ms),
            TrialKind::Ipv6Fails { failure } => plan.aaaa = vec![failure.address()],
            TrialKind::FirstOfTwoAaaaDead => plan.aaaa = vec![V6_BLACKHOLE, v6_delayed(0)],
            TrialKind::AaaaServfail => plan.aaaa_answer.kind = AnswerKind::Servfail,
            TrialKind::AaaaEmpty => plan.aaaa_answer.kind = AnswerKind::Empty,
            TrialKind::PmtuBlackhole => {
                plan.aaaa = vec![V6_PMTU_BLACKHOLE];
                plan.large_page = true;
            }
            TrialKind::HttpsRecord => plan.https_record = true,
            TrialKind::TlsSlowOnIpv6 => plan.aaaa = vec![V6_TLS_SLOW],
            TrialKind::Https => {}
            TrialKind::Ipv6OnlyIpv4Site => plan.aaaa.clear(),
            TrialKind::Ipv6OnlyDualStack | TrialKind::Ipv6OnlyIpv4Literal => {}
        }
        plan
    }
}

/// Which trials a sweep runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrialSet {
    /// The CAD sweep: IPv6 delayed 0, step, 2·step, … up to max.
    pub cad_step_ms: u32,
    pub cad_max_ms: u32,
    /// How late the AAAA (then the A) answer comes in the Resolution Delay trials.
    pub aaaa_late_ms: Vec<u32>,
    pub a_late_ms: Vec<u32>,
    /// The failure trials, the several-addresses trial and the DNS failures.
    pub failures: bool,
    /// The IPv6-only trials (DNS64/NAT64: needs unbound and tayga).
    pub ipv6_only: bool,
}

impl Default for TrialSet {
    /// The standard set: RFC 8305's CAD range in 5 ms steps.
    fn default() -> TrialSet {
        TrialSet {
            cad_step_ms: 5,
            cad_max_ms: 400,
            aaaa_late_ms: vec![25, 50, 100, 200, 500],
            a_late_ms: vec![500],
            failures: true,
            ipv6_only: true,
        }
    }
}

impl TrialSet {
    pub fn trials(&self) -> Vec<TrialKind> {
        let step = self.cad_step_ms.max(1);
        let mut out: Vec<TrialKind> = (0..=self.cad_max_ms / step)
            .map(|i| TrialKind::Cad {
                ipv6_delay_ms: i * step,
            })
            .collect();
        out.extend(self.aaaa_late_ms.iter().map(|&ms| TrialKind::AaaaLate { ms }));
        out.extend(self.a_late_ms.iter().map(|&ms| TrialKind::ALate { ms }));
        if self.failures {
            for failure in [Failure::Blackhole, Failure::Reset, Failure::Unreachable] {
                out.push(TrialKind::Ipv6Fails { failure });
            }
            out.push(TrialKind::FirstOfTwoAaaaDead);
            out.push(TrialKind::AaaaServfail);
            out.push(TrialKind::AaaaEmpty);
            out.push(TrialKind::PmtuBlackhole);
        }
        out.push(TrialKind::HttpsRecord);
        out.extend([TrialKind::Https, TrialKind::TlsSlowOnIpv6]);
        if self.ipv6_only {
            out.extend([
                TrialKind::Ipv6OnlyIpv4Site,
                TrialKind::Ipv6OnlyDualStack,
                TrialKind::Ipv6OnlyIpv4Literal,
            ]);
        }
        out
    }

    /// The delay line's rules: one per delayed IPv6 address, and the blackhole.
    pub fn rules(&self) -> Vec<Rule> {
        let mut rules = vec![Rule {
            selector: v6scope_netem::Selector::Prefix(ipnet_of(V6_BLACKHOLE)),
            delay: Duration::ZERO,
            loss: 1.0,
        }];
        for trial in self.trials() {
            if let TrialKind::Cad { ipv6_delay_ms } = trial
                && ipv6_delay_ms > 0
            {
                rules.push(Rule {
                    selector: v6scope_netem::Selector::Prefix(ipnet_of(v6_delayed(ipv6_delay_ms))),
                    delay: Duration::from_millis(ipv6_delay_ms.into()),
                    loss: 0.0,
                });
            }
        }
        rules
    }
}

fn ipnet_of(address: Ipv6Addr) -> ipnet::IpNet {
    ipnet::IpNet::V6(ipnet::Ipv6Net::new(address, 128).expect("/128 is a valid prefix length"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_standard_set_sweeps_0_to_400_in_5_ms_and_has_every_kind() {
        let trials = TrialSet::default().trials();
        let cad: Vec<u32> = trials
            .iter()
            .filter_map(|t| match t {
                TrialKind::Cad { ipv6_delay_ms } => Some(*ipv6_delay_ms),
                _ => None,
            })
            .collect();
        assert_eq!(cad.len(), 81);
        assert_eq!((cad[0], cad[1], cad[80]), (0, 5, 400));
        assert!(trials.contains(&TrialKind::Ipv6Fails {
            failure: Failure::Reset
        }));
        assert!(trials.contains(&TrialKind::FirstOfTwoAaaaDead));
        // One rule per delayed address plus the blackhole; delay 0 needs none.
        assert_eq!(TrialSet::default().rules().len(), 81);
        assert_eq!(trials.len(), 100);
    }

    #[test]
    fn addresses_carry_their_condition() {
        assert_eq!(v6_delayed(250).to_string(), "2001:db8:e1:1:0:1:0:fa");
        assert_eq!(v6_delayed(0).to_string(), "2001:db8:e1:1:0:1::");
        let plan = TrialKind::FirstOfTwoAaaaDead.plan();
        assert_eq!(plan.aaaa, [V6_BLACKHOLE, v6_delayed(0)]);
        assert_eq!(
            TrialKind::AaaaLate { ms: 50 }.plan().aaaa_answer.delay,
            Duration::from_millis(50)
        );
    }
}
