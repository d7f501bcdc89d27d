//! From a client's observations to its Happy Eyeballs parameters, set
//! against RFC 8305, and the Action Plan's verdict: does it prefer IPv6
//! under dual stack?

use crate::bench::{Family, Observation};
use crate::client::Client;
use crate::trial::{Failure, TrialKind, failure_text};
use serde::Serialize;

/// RFC 8305 §5: the recommended Connection Attempt Delay, and its bounds.
pub const RFC_CAD_MS: f64 = 250.0;
pub const RFC_CAD_MIN_MS: f64 = 100.0;
pub const RFC_CAD_MAX_MS: f64 = 2000.0;
/// RFC 8305 §3: how long to wait for AAAA once A has come.
pub const RFC_RESOLUTION_DELAY_MS: f64 = 50.0;

#[derive(Debug, Clone, Serialize)]
pub struct ClientReport {
    pub client: Client,
    pub parameters: Parameters,
    pub verdict: Verdict,
    pub observations: Vec<Observation>,
}

/// The Action Plan's question: "在IPv4/IPv6双栈连接的情况下 … 优先采用IPv6连接访问".
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "prefers_ipv6", rename_all = "snake_case")]
pub enum Verdict {
    /// IPv6 every time both work, however slow IPv6 was in the sweep.
    Yes { evidence: String },
    /// IPv6 unless it is slower than this (the client's Happy Eyeballs).
    WhenNotSlowerThan { ms: u32, evidence: String },
    /// IPv4 although both work equally.
    No { evidence: String },
    /// The client did not fetch the page when both worked.
    NotTestable { reason: String },
}

impl Verdict {
    pub fn text(&self) -> String {
        match self {
            Verdict::Yes { .. } => "yes".into(),
            Verdict::WhenNotSlowerThan { ms, .. } => format!("only when IPv6 is not slower than {ms} ms"),
            Verdict::No { .. } => "no".into(),
            Verdict::NotTestable { .. } => "not testable".into(),
        }
    }

    pub fn evidence(&self) -> &str {
        match self {
            Verdict::Yes { evidence } | Verdict::WhenNotSlowerThan { evidence, .. } | Verdict::No { evidence } => {
                evidence
            }
            Verdict::NotTestable { reason } => reason,
        }
    }
}

/// The measured parameters. Absent values were not measured (trial not
/// run, or the client failed it).
#[derive(Debug, Clone, Default, Serialize)]
pub struct Parameters {
    /// CAD sweep: the largest IPv6 delay still served over IPv6, and the
    /// smallest served over IPv4 (None: never switched).
    pub last_ipv6_ms: Option<u32>,
    pub first_ipv4_ms: Option<u32>,
    /// The gap between the first IPv6 and the first IPv4 SYN when IPv6 was
    /// slow (median over the sweep's trials where both were tried): the
    /// Connection Attempt Delay as the capture shows it.
    pub cad_ms: Option<f64>,
    /// True when the client raced the families at all in the sweep.
    pub happy_eyeballs: bool,
    /// Resolution Delay: "waits for AAAA" (every late AAAA still used), or
    /// the largest lateness at which AAAA was still used.
    pub waits_for_aaaa: Option<bool>,
    pub resolution_delay_ms: Option<f64>,
    /// A slow A answer held back the working IPv6 by this much (ms from the
    /// AAAA answer to the first IPv6 SYN), per A lateness.
    pub a_late_stall_ms: Vec<(u32, Option<f64>)>,
    /// Per failure: whether IPv4 was used, and after how long (first IPv6
    /// SYN to first IPv4 SYN).
    pub fallback: Vec<FallbackResult>,
    /// Two AAAA (first dead) and an A: the attempts in order.
    pub several_addresses: Option<String>,
    pub several_addresses_family: Option<Family>,
    /// AAAA SERVFAIL / empty: the family used and ms from the first query to
    /// the request.
    pub aaaa_servfail: Option<(Option<Family>, Option<f64>)>,
    pub aaaa_empty: Option<(Option<Family>, Option<f64>)>,
    /// A 1280-byte path-MTU blackhole on IPv6 after the handshake.
    pub pmtu_blackhole: Option<PmtuResult>,
    /// An HTTPS record served beside A and AAAA.
    pub https_record: Option<HttpsRecordResult>,
    /// From an IPv6-only network with DNS64/NAT64.
    pub ipv6_only: Vec<Ipv6OnlyResult>,
    /// HTTPS with both families working, and with IPv6's TLS handshake late.
    pub tls: Option<TlsResult>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct TlsResult {
    /// The family of the HTTPS request with both families working.
    pub https_family: Option<Family>,
    /// The family when IPv6's TCP answered at once but its TLS handshake
    /// came 1 s late: IPv6 means the client took the first TCP connection
    /// and waited for its handshake; IPv4, that it raced to the handshake.
    pub slow_tls_family: Option<Family>,
    pub slow_tls_request_ms: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Ipv6OnlyResult {
    pub case: TrialKind,
    /// The page was fetched.
    pub reached: bool,
    /// Through NAT64 (else over native IPv6).
    pub via_nat64: bool,
    pub request_ms: Option<f64>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub client_error: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct PmtuResult {
    /// The family that carried the request (IPv6 connects: the race is won
    /// before the large packets come).
    pub family_used: Option<Family>,
    /// The client got the whole page and exited 0.
    pub completed: bool,
    pub timed_out: bool,
    pub duration_ms: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct HttpsRecordResult {
    /// The client asked for the HTTPS record.
    pub asked: bool,
    /// It then tried port 443 (an upgrade to https:// the record implies).
    pub tried_443: bool,
    pub family_used: Option<Family>,
}

#[derive(Debug, Clone, Serialize)]
pub struct FallbackResult {
    pub failure: Failure,
    /// False when the client made no IPv6 attempt (the trial tells nothing).
    pub tried_ipv6: bool,
    pub fell_back: bool,
    pub fallback_ms: Option<f64>,
    pub total_ms: Option<f64>,
    pub timed_out: bool,
}

fn median(mut values: Vec<f64>) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let n = values.len();
    Some(if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    })
}

pub fn analyse(client: &Client, observations: Vec<Observation>) -> ClientReport {
    let mut p = Parameters::default();
    let mut sweep: Vec<(u32, &Observation)> = observations
        .iter()
        .filter_map(|o| match o.trial {
            TrialKind::Cad { ipv6_delay_ms } => Some((ipv6_delay_ms, o)),
            _ => None,
        })
        .collect();
    sweep.sort_by_key(|(d, _)| *d);
    for (delay, o) in &sweep {
        match o.family_used {
            Some(Family::Ipv6) if p.first_ipv4_ms.is_none() => p.last_ipv6_ms = Some(*delay),
            Some(Family::Ipv4) if p.first_ipv4_ms.is_none() => p.first_ipv4_ms = Some(*delay),
            _ => {}
        }
    }
    let gaps: Vec<f64> = sweep
        .iter()
        .filter_map(|(_, o)| Some(o.first_attempt(Family::Ipv4)? - o.first_attempt(Family::Ipv6)?))
        .filter(|gap| *gap >= 0.0)
        .collect();
    p.happy_eyeballs = !gaps.is_empty();
    p.cad_ms = median(gaps);

    let late_aaaa: Vec<(u32, &Observation)> = observations
        .iter()
        .filter_map(|o| match o.trial {
            TrialKind::AaaaLate { ms } => Some((ms, o)),
            _ => None,
        })
        .collect();
    let served: Vec<&(u32, &Observation)> = late_aaaa.iter().filter(|(_, o)| o.family_used.is_some()).collect();
    if !served.is_empty() {
        p.waits_for_aaaa = Some(served.iter().all(|(_, o)| o.family_used == Some(Family::Ipv6)));
        // When IPv4 won: the time from the A answer to the first IPv4 SYN.
        p.resolution_delay_ms = median(
            served
                .iter()
                .filter(|(_, o)| o.family_used == Some(Family::Ipv4))
                .filter_map(|(_, o)| Some(o.first_attempt(Family::Ipv4)? - o.answered("A")?))
                .collect(),
        );
    }
    for o in &observations {
        match o.trial {
            TrialKind::ALate { ms } => {
                let stall = o
                    .first_attempt(Family::Ipv6)
                    .zip(o.answered("AAAA"))
                    .map(|(syn, answer)| syn - answer);
                p.a_late_stall_ms.push((ms, stall));
            }
            TrialKind::Ipv6Fails { failure } => p.fallback.push(FallbackResult {
                failure,
                tried_ipv6: o.first_attempt(Family::Ipv6).is_some(),
                fell_back: o.family_used == Some(Family::Ipv4),
                fallback_ms: o
                    .first_attempt(Family::Ipv4)
                    .zip(o.first_attempt(Family::Ipv6))
                    .map(|(v4, v6)| v4 - v6),
                total_ms: o.request_ms,
                timed_out: o.timed_out,
            }),
            TrialKind::FirstOfTwoAaaaDead => {
                let t0 = o.attempts.first().map_or(0.0, |a| a.at_ms);
                let steps: Vec<String> = o
                    .attempts
                    .iter()
                    .map(|a| {
                        let role = if a.address == crate::trial::V6_BLACKHOLE {
                            "IPv6 #1 (dead)"
                        } else if a.family == Family::Ipv6 {
                            "IPv6 #2"
                        } else {
                            "IPv4"
                        };
                        format!("{role} at +{:.0} ms", a.at_ms - t0)
                    })
                    .collect();
                p.several_addresses = Some(if steps.is_empty() {
                    "no attempt".into()
                } else {
                    steps.join(" → ")
                });
                p.several_addresses_family = o.family_used;
            }
            TrialKind::AaaaServfail => p.aaaa_servfail = Some((o.family_used, o.request_ms)),
            TrialKind::AaaaEmpty => p.aaaa_empty = Some((o.family_used, o.request_ms)),
            TrialKind::PmtuBlackhole => {
                p.pmtu_blackhole = Some(PmtuResult {
                    family_used: o.family_used,
                    completed: !o.timed_out && o.exit_code == Some(0),
                    timed_out: o.timed_out,
                    duration_ms: o.duration_ms,
                });
            }
            TrialKind::Ipv6OnlyIpv4Site | TrialKind::Ipv6OnlyDualStack | TrialKind::Ipv6OnlyIpv4Literal => {
                p.ipv6_only.push(Ipv6OnlyResult {
                    case: o.trial,
                    reached: o.family_used.is_some(),
                    via_nat64: o.via_nat64,
                    request_ms: o.request_ms,
                    client_error: o.client_error.clone(),
                });
            }
            TrialKind::Https => p.tls.get_or_insert_with(TlsResult::default).https_family = o.family_used,
            TrialKind::TlsSlowOnIpv6 => {
                let tls = p.tls.get_or_insert_with(TlsResult::default);
                tls.slow_tls_family = o.family_used;
                tls.slow_tls_request_ms = o.request_ms;
            }
            TrialKind::HttpsRecord => {
                p.https_record = Some(HttpsRecordResult {
                    asked: o.queries.iter().any(|q| q.rtype == "HTTPS"),
                    tried_443: o.attempts.iter().any(|a| a.port == 443),
                    family_used: o.family_used,
                });
            }
            _ => {}
        }
    }
    let verdict = verdict(&p, &sweep);
    ClientReport {
        client: client.clone(),
        parameters: p,
        verdict,
        observations,
    }
}

fn verdict(p: &Parameters, sweep: &[(u32, &Observation)]) -> Verdict {
    let Some((_, at_zero)) = sweep.iter().find(|(d, _)| *d == 0) else {
        return Verdict::NotTestable {
            reason: "the sweep did not run the trial with equal families".into(),
        };
    };
    let max = sweep.last().map_or(0, |(d, _)| *d);
    match at_zero.family_used {
        None => Verdict::NotTestable {
            reason: format!(
                "the client fetched nothing with both families working{}",
                if at_zero.client_error.is_empty() {
                    String::new()
                } else {
                    format!(": {}", at_zero.client_error)
                }
            ),
        },
        Some(Family::Ipv4) => Verdict::No {
            evidence: format!(
                "with IPv4 and IPv6 equally fast it connected over IPv4 ({})",
                at_zero.address_used.map_or_else(String::new, |a| a.to_string())
            ),
        },
        Some(Family::Ipv6) => match (p.last_ipv6_ms, p.first_ipv4_ms) {
            (Some(last), Some(first)) => Verdict::WhenNotSlowerThan {
                ms: last,
                evidence: format!(
                    "IPv6 while it was at most {last} ms slower, IPv4 from {first} ms on{}",
                    p.cad_ms.map_or_else(String::new, |c| format!(
                        "; it starts IPv4 {c:.0} ms after IPv6 (capture)"
                    ))
                ),
            },
            _ => Verdict::Yes {
                evidence: format!(
                    "IPv6 in every trial of the sweep, up to {max} ms slower{}",
                    if p.fallback
                        .iter()
                        .any(|f| f.failure == Failure::Blackhole && f.tried_ipv6 && !f.fell_back)
                    {
                        "; but it never falls back to IPv4 when IPv6 is blackholed"
                    } else {
                        ""
                    }
                ),
            },
        },
    }
}

/// One line per parameter for tables: (label, value, RFC 8305's value).
pub fn parameter_rows(report: &ClientReport) -> Vec<(String, String, String)> {
    let p = &report.parameters;
    let ms = |v: Option<f64>| v.map_or("—".to_string(), |v| format!("{v:.0} ms"));
    let family = |f: Option<Family>| match f {
        Some(Family::Ipv6) => "IPv6",
        Some(Family::Ipv4) => "IPv4",
        None => "none",
    };
    let mut rows = vec![
        (
            "prefers IPv6 under dual stack".to_string(),
            report.verdict.text(),
            "yes (within the CAD)".to_string(),
        ),
        (
            "Connection Attempt Delay".into(),
            match (p.cad_ms, p.happy_eyeballs) {
                (Some(c), _) => format!(
                    "{c:.0} ms (switch between {} and {} ms)",
                    p.last_ipv6_ms.map_or("—".into(), |v| v.to_string()),
                    p.first_ipv4_ms.map_or("—".into(), |v| v.to_string())
                ),
                (None, false) => "no Happy Eyeballs (never tried IPv4 while IPv6 was slow)".into(),
                (None, true) => "—".into(),
            },
            format!(
                "{RFC_CAD_MS:.0} ms (within {RFC_CAD_MIN_MS:.0} ms – {:.0} s)",
                RFC_CAD_MAX_MS / 1e3
            ),
        ),
        (
            "Resolution Delay".into(),
            match (p.waits_for_aaaa, p.resolution_delay_ms) {
                (Some(true), _) => "waits for AAAA".into(),
                (Some(false), rd) => format!("goes on without AAAA ({})", ms(rd)),
                (None, _) => "—".into(),
            },
            format!("{RFC_RESOLUTION_DELAY_MS:.0} ms"),
        ),
    ];
    for (late, stall) in &p.a_late_stall_ms {
        rows.push((
            format!("A {late} ms late: IPv6 held back"),
            ms(*stall),
            "0 ms (start with AAAA)".into(),
        ));
    }
    for f in &p.fallback {
        rows.push((
            format!("IPv6 {}: falls back", failure_text(f.failure)),
            if !f.tried_ipv6 && !f.fell_back {
                "—".into()
            } else if f.fell_back {
                format!("yes, IPv4 after {}", ms(f.fallback_ms))
            } else if f.timed_out {
                "no (still waiting when stopped)".into()
            } else {
                "no".into()
            },
            "yes, within the CAD".into(),
        ));
    }
    if let Some(s) = &p.several_addresses {
        rows.push((
            "two AAAA, the first dead".into(),
            format!("{s}; used {}", family(p.several_addresses_family)),
            "next address after the CAD, families interleaved".into(),
        ));
    }
    if let Some((f, t)) = p.aaaa_servfail {
        rows.push((
            "AAAA SERVFAIL".into(),
            format!("{} after {}", family(f), ms(t)),
            "IPv4 at once".into(),
        ));
    }
    if let Some((f, t)) = p.aaaa_empty {
        rows.push((
            "AAAA empty".into(),
            format!("{} after {}", family(f), ms(t)),
            "IPv4 at once".into(),
        ));
    }
    if let Some(m) = &p.pmtu_blackhole {
        rows.push((
            format!(
                "IPv6 path MTU {} blackhole after the handshake",
                crate::trial::PMTU_BLACKHOLE_MTU
            ),
            if m.completed {
                format!(
                    "page complete over {} after {:.0} ms",
                    family(m.family_used),
                    m.duration_ms
                )
            } else if m.timed_out {
                format!("stalled over {} until stopped", family(m.family_used))
            } else {
                format!("failed over {}", family(m.family_used))
            },
            "not covered (HEv3's known gap); PLPMTUD recovers".into(),
        ));
    }
    if let Some(h) = &p.https_record {
        rows.push((
            "HTTPS record served".into(),
            match (h.asked, h.tried_443) {
                (false, _) => format!("not asked for; used {}", family(h.family_used)),
                (true, false) => format!("asked for; used {}", family(h.family_used)),
                (true, true) => format!("asked for, then tried port 443; used {}", family(h.family_used)),
            },
            "asked for with A and AAAA (HEv3)".into(),
        ));
    }
    if let Some(t) = &p.tls {
        rows.push((
            "waits for the TLS handshake".into(),
            match (t.https_family, t.slow_tls_family) {
                (None, _) => "— (HTTPS failed with both families working)".into(),
                (_, Some(Family::Ipv6)) => format!(
                    "yes: took the first TCP connection, IPv6 with its handshake {} ms late (request at {})",
                    crate::trial::TLS_SLOW_MS,
                    ms(t.slow_tls_request_ms)
                ),
                (_, Some(Family::Ipv4)) => "no: raced to the handshake and used IPv4".into(),
                (_, None) => "— (no request)".into(),
            },
            "HEv3 may race to the handshake; RFC 8305 races TCP only".into(),
        ));
    }
    for r in &p.ipv6_only {
        let expected = match r.case {
            TrialKind::Ipv6OnlyIpv4Site => "through NAT64 (RFC 6146, 6147)",
            TrialKind::Ipv6OnlyIpv4Literal => "only with a CLAT (464XLAT, RFC 6877)",
            _ => "native IPv6",
        };
        rows.push((
            r.case.label(),
            match (r.reached, r.via_nat64) {
                (true, true) => format!("reached through NAT64 after {}", ms(r.request_ms)),
                (true, false) => format!("reached over native IPv6 after {}", ms(r.request_ms)),
                (false, _) if r.client_error.is_empty() => "failed".into(),
                (false, _) => format!(
                    "failed: {}",
                    r.client_error
                        .lines()
                        .last()
                        .unwrap_or_default()
                        .chars()
                        .take(80)
                        .collect::<String>()
                ),
            },
            expected.into(),
        ));
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::Attempt;
    use std::net::IpAddr;

    fn observation(trial: TrialKind, used: Option<Family>, attempts: &[(f64, Family)]) -> Observation {
        let address = |f: Family| -> IpAddr {
            match f {
                Family::Ipv4 => crate::trial::V4_PLAIN.into(),
                Family::Ipv6 => crate::trial::v6_delayed(0).into(),
            }
        };
        Observation {
            trial,
            name: "t.eyeballs.test".into(),
            family_used: used,
            address_used: used.map(address),
            via_nat64: false,
            request_ms: used.map(|_| 1.0),
            queries: vec![],
            attempts: attempts
                .iter()
                .map(|&(at_ms, family)| Attempt {
                    at_ms,
                    family,
                    address: address(family),
                    port: 80,
                })
                .collect(),
            duration_ms: 10.0,
            timed_out: false,
            exit_code: Some(0),
            client_error: String::new(),
        }
    }

    fn client() -> Client {
        Client {
            name: "x".into(),
            argv: vec!["x".into(), "{url}".into()],
        }
    }

    fn cad(ms: u32) -> TrialKind {
        TrialKind::Cad { ipv6_delay_ms: ms }
    }

    #[test]
    fn a_client_with_a_250_ms_cad_prefers_ipv6_within_it() {
        let v6 = Some(Family::Ipv6);
        let v4 = Some(Family::Ipv4);
        let report = analyse(
            &client(),
            vec![
                observation(cad(0), v6, &[(0.0, Family::Ipv6)]),
                observation(cad(200), v6, &[(0.0, Family::Ipv6)]),
                observation(cad(300), v4, &[(0.0, Family::Ipv6), (250.0, Family::Ipv4)]),
                observation(cad(400), v4, &[(0.0, Family::Ipv6), (252.0, Family::Ipv4)]),
            ],
        );
        assert_eq!(report.parameters.last_ipv6_ms, Some(200));
        assert_eq!(report.parameters.first_ipv4_ms, Some(300));
        assert_eq!(report.parameters.cad_ms, Some(251.0));
        assert!(matches!(report.verdict, Verdict::WhenNotSlowerThan { ms: 200, .. }));
    }

    #[test]
    fn ipv4_at_equal_delay_is_no_and_nothing_fetched_is_not_testable() {
        let report = analyse(
            &client(),
            vec![observation(cad(0), Some(Family::Ipv4), &[(0.0, Family::Ipv4)])],
        );
        assert!(matches!(report.verdict, Verdict::No { .. }));
        let mut failed = observation(cad(0), None, &[]);
        failed.exit_code = Some(6);
        failed.client_error = "could not resolve".into();
        let report = analyse(&client(), vec![failed]);
        assert!(matches!(&report.verdict, Verdict::NotTestable { reason } if reason.contains("could not resolve")));
        // No trials at all: not testable either, never "yes".
        assert!(matches!(
            analyse(&client(), vec![]).verdict,
            Verdict::NotTestable { .. }
        ));
    }

    #[test]
    fn no_fallback_from_a_blackhole_is_said_beside_yes() {
        let mut stuck = observation(
            TrialKind::Ipv6Fails {
                failure: Failure::Blackhole,
            },
            None,
            &[(0.0, Family::Ipv6)],
        );
        stuck.timed_out = true;
        let report = analyse(
            &client(),
            vec![
                observation(cad(0), Some(Family::Ipv6), &[(0.0, Family::Ipv6)]),
                observation(cad(400), Some(Family::Ipv6), &[(0.0, Family::Ipv6)]),
                stuck,
            ],
        );
        assert!(!report.parameters.happy_eyeballs);
        assert!(matches!(&report.verdict, Verdict::Yes { evidence } if evidence.contains("never falls back")));
        let rows = parameter_rows(&report);
        assert!(
            rows.iter()
                .any(|(label, value, _)| label.contains("blackholed") && value.starts_with("no"))
        );
    }
}
