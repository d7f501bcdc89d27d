//! Check logic, one function per check id.

use crate::{Kind, Outcome, Profile, Severity};
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use v6scope_model::{
    CheckResult, DomainObservation, ErrorKind, Family, HttpFetch, MxStatus, NameResolution, NameRole, ProbeError,
    Scheme, ServiceCounts, Status, Transport, WebObservation,
};

const INTERNETNL_CHECKS: [&str; 14] = [
    "ns_aaaa",
    "ns_reach",
    "ns_tcp_v6",
    "ns_delegation",
    "ns_serial",
    "ns_diversity",
    "web_aaaa",
    "www_ipv6",
    "web_reach",
    "web_tls_v6",
    "web_pmtu_v6",
    "web_ipv46",
    "mx_aaaa",
    "mx_reach",
];
const NIST_CHECKS: [&str; 3] = ["dns_service", "web_service", "mail_service"];

pub(crate) fn known(kind: Kind) -> &'static [&'static str] {
    match kind {
        Kind::Internetnl => &INTERNETNL_CHECKS,
        Kind::Nist => &NIST_CHECKS,
        Kind::CnWebsite => &crate::cn::CHECKS,
    }
}

pub(crate) fn max_points(id: &str, profile: &Profile) -> f64 {
    match id {
        // cn-website checks earn a fraction (a rate), weighted by the profile.
        _ if id.starts_with("cn_") => 1.0,
        "web_ipv46" => profile.thresholds.less_points,
        _ => profile.thresholds.full_points,
    }
}

pub(crate) fn run(id: &str, o: &DomainObservation, p: &Profile) -> Outcome {
    match id {
        "ns_aaaa" => ns_aaaa(o, p),
        "ns_reach" => ns_reach(o, p),
        "ns_tcp_v6" => ns_tcp_v6(o),
        "ns_delegation" => ns_delegation(o),
        "ns_serial" => ns_serial(o),
        "ns_diversity" => ns_diversity(o),
        "web_aaaa" => web_aaaa(o),
        "www_ipv6" => www_ipv6(o),
        "web_reach" => web_reach(o, p),
        "web_tls_v6" => web_tls_v6(o),
        "web_pmtu_v6" => web_pmtu_v6(o),
        "web_ipv46" => web_ipv46(o, p),
        "mx_aaaa" => mx_aaaa(o),
        "mx_reach" => mx_reach(o, p),
        "dns_service" => dns_service(o),
        "web_service" => web_service(o),
        "mail_service" => mail_service(o),
        "cn_aaaa" => crate::cn::aaaa(o),
        "cn_ns_v6" => crate::cn::ns_v6(o),
        "cn_homepage_v6" => crate::cn::homepage(o),
        "cn_level2_v6" => crate::cn::level_rate(o, 2, p.thresholds.level2_rate),
        "cn_level3_v6" => crate::cn::level_rate(o, 3, p.thresholds.level3_rate),
        "cn_resources_v6" => crate::cn::resources(o),
        "cn_consistency" => crate::cn::consistency(o, p.thresholds.similarity),
        "cn_performance" => {
            crate::cn::performance(o, p.thresholds.performance_ratio, p.thresholds.performance_floor_ms)
        }
        "cn_success_rate" => crate::cn::success_rate(o, p.thresholds.success_rate),
        "cn_latency_diff" => crate::cn::latency_difference(o, p.thresholds.latency_difference_ms),
        "cn_pmtu_v6" => crate::cn::pmtu(o),
        other => Outcome::new(Status::Error, vec![format!("no logic for check '{other}'")]),
    }
}

/// What the zone's own servers said about a negative answer.
pub(crate) fn confirmation_evidence(r: &NameResolution) -> Option<String> {
    let c = r.confirmation.as_ref()?;
    Some(if c.resolver_disagreed {
        format!(
            "the resolver's answer for {} was negative, but its authoritative server {} answered {}: judged on the authoritative answer",
            r.name, c.server, c.answer
        )
    } else {
        format!("confirmed at the authoritative server {}: {}", c.server, c.answer)
    })
}

fn not_testable_v6(o: &DomainObservation) -> Option<Outcome> {
    (!o.vantage.ipv6).then(|| {
        let mut evidence = vec!["the vantage point has no working IPv6; the target is not blamed".to_string()];
        evidence.extend(o.vantage.detail.iter().cloned());
        Outcome::new(Status::NotTestable, evidence)
    })
}

/// A resolver timeout is transient (error); anything else is the target's.
fn dns_failure_status(e: &ProbeError) -> Status {
    if e.kind == ErrorKind::Timeout || e.kind == ErrorKind::NotTestable {
        Status::Error
    } else {
        Status::Fail
    }
}

fn v6_addresses(r: &NameResolution) -> Vec<IpAddr> {
    r.usable_v6().map(|a| a.address).collect()
}

fn describe_unusable(r: &NameResolution) -> Vec<String> {
    r.aaaa
        .iter()
        .filter(|a| !a.usable)
        .map(|a| format!("{}: AAAA {} is {:?}, not a global address", r.name, a.address, a.class))
        .collect()
}

// ---------------------------------------------------------------- name servers

fn ns_aaaa(o: &DomainObservation, p: &Profile) -> Outcome {
    let hosts = &o.zone.hosts;
    if hosts.is_empty() {
        let mut evidence = vec![format!("no NS records found for zone {}", o.zone.zone)];
        evidence.extend(o.zone.errors.iter().map(|e| e.message.clone()));
        return Outcome::new(Status::Fail, evidence);
    }
    let mut evidence = Vec::new();
    let mut with = 0;
    for host in hosts {
        let v6 = v6_addresses(&host.resolution);
        if v6.is_empty() {
            evidence.push(format!("{}: no global AAAA", host.name));
            evidence.extend(describe_unusable(&host.resolution));
        } else {
            with += 1;
            evidence.push(format!("{}: AAAA {}", host.name, join(&v6)));
        }
    }
    let min = p.thresholds.min_ns_with_aaaa;
    let transient = hosts.iter().any(|h| {
        h.resolution
            .aaaa_error
            .as_ref()
            .is_some_and(|e| dns_failure_status(e) == Status::Error)
    });
    let status = if with >= min {
        Status::Pass
    } else if transient {
        Status::Error
    } else {
        Status::Fail
    };
    evidence.insert(
        0,
        format!("{with} of {} name servers have a global AAAA (need {min})", hosts.len()),
    );
    Outcome::new(status, evidence)
}

fn ns_reach(o: &DomainObservation, p: &Profile) -> Outcome {
    if let Some(nt) = not_testable_v6(o) {
        return nt;
    }
    let t = &p.thresholds;
    let mut evidence = Vec::new();
    let mut failed = false;
    let mut scores = Vec::new();
    let mut any_aaaa = false;
    let with_aaaa = o.zone.hosts.iter().filter(|h| h.resolution.has_usable_v6()).count();
    for host in &o.zone.hosts {
        let v6 = v6_addresses(&host.resolution);
        if v6.is_empty() {
            // internet.nl drops IPv4-only name servers from the denominator
            // once two or more have IPv6.
            if with_aaaa < 2 {
                scores.push(0.0);
            }
            continue;
        }
        any_aaaa = true;
        let good = judge_addresses(&host.name, &v6, &mut evidence, &mut failed, |address| {
            let udp = host
                .probes
                .iter()
                .find(|pr| pr.address == address && pr.transport == Transport::Udp)?;
            Some(if udp.answered {
                Ok(format!(
                    "answered SOA over UDP (AA, {:.1} ms)",
                    udp.rtt_ms.unwrap_or_default()
                ))
            } else {
                Err(format!("no authoritative answer over UDP: {}", error_text(&udp.error)))
            })
        });
        scores.push(tier_points(good, v6.len(), t));
    }
    if !any_aaaa {
        failed = true;
        evidence.push("no name server has a global IPv6 address".into());
    }
    let mut points = if scores.is_empty() {
        0.0
    } else {
        scores.iter().sum::<f64>() / scores.len() as f64
    };
    if scores.len() == 1 {
        points = points.min(t.single_ns_cap);
    }
    let mut outcome = Outcome::new(if failed { Status::Fail } else { Status::Pass }, evidence);
    outcome.points = Some(round2(points));
    outcome
}

fn ns_tcp_v6(o: &DomainObservation) -> Outcome {
    if let Some(nt) = not_testable_v6(o) {
        return nt;
    }
    let mut evidence = Vec::new();
    let mut udp_only = false;
    let mut any = false;
    for host in &o.zone.hosts {
        for address in v6_addresses(&host.resolution) {
            let by = |t: Transport| {
                host.probes
                    .iter()
                    .find(|pr| pr.address == address && pr.transport == t)
                    .is_some_and(|pr| pr.answered)
            };
            let (udp, tcp) = (by(Transport::Udp), by(Transport::Tcp));
            if udp {
                any = true;
                if tcp {
                    evidence.push(format!("{} {address}: UDP and TCP answer", host.name));
                } else {
                    udp_only = true;
                    let why = host
                        .probes
                        .iter()
                        .find(|pr| pr.address == address && pr.transport == Transport::Tcp)
                        .and_then(|pr| pr.error.as_ref())
                        .map(|e| e.message.clone())
                        .unwrap_or_default();
                    evidence.push(format!(
                        "{} {address}: answers over UDP but not over TCP: {why}",
                        host.name
                    ));
                }
            }
        }
    }
    let status = if !any {
        Status::NotApplicable
    } else if udp_only {
        Status::Fail
    } else {
        Status::Pass
    };
    Outcome::new(status, evidence)
}

fn ns_delegation(o: &DomainObservation) -> Outcome {
    let z = &o.zone;
    if z.parent_ns.is_empty() {
        let mut evidence = vec![format!("no referral for {} obtained from the parent", z.zone)];
        evidence.extend(z.errors.iter().map(|e| e.message.clone()));
        return Outcome::new(Status::Info, evidence);
    }
    let evidence = vec![
        format!("parent delegation: {}", z.parent_ns.join(", ")),
        format!("zone's own NS set: {}", z.child_ns.join(", ")),
        format!(
            "glue: {}",
            z.glue
                .iter()
                .map(|(n, a)| format!("{n} {a}"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    ];
    Outcome::new(if z.ns_mismatch { Status::Fail } else { Status::Pass }, evidence)
}

fn ns_serial(o: &DomainObservation) -> Outcome {
    let serials = &o.zone.serials;
    match serials.len() {
        0 => Outcome::new(Status::NotApplicable, vec!["no server answered with a SOA".into()]),
        1 => Outcome::new(
            Status::Pass,
            vec![format!("all answering servers serve serial {}", serials[0])],
        ),
        _ => Outcome::new(
            Status::Fail,
            vec![format!(
                "serial skew: {}",
                serials.iter().map(u32::to_string).collect::<Vec<_>>().join(", ")
            )],
        ),
    }
}

fn ns_diversity(o: &DomainObservation) -> Outcome {
    let n = o.zone.distinct_v6_48s;
    Outcome::new(
        Status::Info,
        vec![format!("IPv6 name-server addresses span {n} distinct /48 prefix(es)")],
    )
}

// ---------------------------------------------------------------- web

fn web_aaaa(o: &DomainObservation) -> Outcome {
    let Some(apex) = o.name(NameRole::Apex) else {
        return Outcome::new(Status::Error, vec!["apex not resolved".into()]);
    };
    if let Some(e) = &apex.aaaa_error {
        return Outcome::new(
            dns_failure_status(e),
            vec![format!("{} AAAA: {}", apex.name, e.message)],
        );
    }
    let mut evidence = Vec::new();
    if !apex.cname_chain.is_empty() {
        evidence.push(format!("{} CNAME chain: {}", apex.name, apex.cname_chain.join(" -> ")));
    }
    evidence.extend(confirmation_evidence(apex));
    if !apex.exists {
        evidence.insert(0, format!("{} does not exist (NXDOMAIN)", apex.name));
        return Outcome::new(Status::Fail, evidence);
    }
    let v6 = v6_addresses(apex);
    evidence.extend(describe_unusable(apex));
    if v6.is_empty() {
        evidence.insert(0, format!("{} has no global AAAA", apex.name));
        Outcome::new(Status::Fail, evidence)
    } else {
        evidence.insert(0, format!("{} AAAA {}", apex.name, join(&v6)));
        Outcome::new(Status::Pass, evidence)
    }
}

fn www_ipv6(o: &DomainObservation) -> Outcome {
    let (Some(apex), Some(www)) = (o.name(NameRole::Apex), o.name(NameRole::Www)) else {
        return Outcome::new(Status::Error, vec!["names not resolved".into()]);
    };
    if let Some(e) = &www.aaaa_error
        && dns_failure_status(e) == Status::Error
    {
        return Outcome::new(Status::Error, vec![format!("{} AAAA: {}", www.name, e.message)]);
    }
    if !www.exists || (www.a.is_empty() && www.aaaa.is_empty() && www.aaaa_error.is_none()) {
        return Outcome::new(Status::NotApplicable, vec![format!("{} has no addresses", www.name)]);
    }
    let (a6, w6) = (apex.has_usable_v6(), www.has_usable_v6());
    let evidence = vec![
        format!("{}: {}", apex.name, if a6 { "global AAAA" } else { "no global AAAA" }),
        format!("{}: {}", www.name, if w6 { "global AAAA" } else { "no global AAAA" }),
    ];
    Outcome::new(if a6 == w6 { Status::Pass } else { Status::Fail }, evidence)
}

fn fetches_of<'a>(web: &'a WebObservation, family: Family) -> impl Iterator<Item = &'a HttpFetch> + 'a {
    web.fetches.iter().filter(move |f| f.family == family)
}

fn web_reach(o: &DomainObservation, p: &Profile) -> Outcome {
    let Some(apex) = o.name(NameRole::Apex) else {
        return Outcome::new(Status::Error, vec!["apex not resolved".into()]);
    };
    let v6 = v6_addresses(apex);
    if v6.is_empty() {
        let mut outcome = Outcome::new(Status::NotApplicable, vec![format!("{} has no global AAAA", apex.name)]);
        outcome.points = Some(0.0);
        return outcome;
    }
    if let Some(nt) = not_testable_v6(o) {
        return nt;
    }
    let Some(web) = o.web_for(NameRole::Apex) else {
        return Outcome::new(Status::Error, vec!["no web observation".into()]);
    };
    let ports_on = |family: Family, address: Option<IpAddr>| -> BTreeSet<u16> {
        fetches_of(web, family)
            .filter(|f| f.tcp_connected && address.is_none_or(|a| a == f.address))
            .map(|f| f.port)
            .collect()
    };
    let v4_ports = ports_on(Family::Ipv4, None);
    let mut evidence = Vec::new();
    let mut good = 0;
    let mut port_difference = false;
    for address in &v6 {
        let ports = ports_on(Family::Ipv6, Some(*address));
        if ports.is_empty() {
            let why: Vec<String> = fetches_of(web, Family::Ipv6)
                .filter(|f| f.address == *address)
                .filter_map(|f| f.error.as_ref().map(|e| format!("port {}: {}", f.port, e.message)))
                .collect();
            evidence.push(format!(
                "{address}: no TCP connection on 80 or 443 ({})",
                why.join("; ")
            ));
            continue;
        }
        good += 1;
        // Without IPv4 at the vantage there is nothing to compare ports with.
        let missing: Vec<u16> = if o.vantage.ipv4 {
            v4_ports.difference(&ports).copied().collect()
        } else {
            Vec::new()
        };
        if missing.is_empty() {
            evidence.push(format!("{address}: connects on {}", ports_text(&ports)));
        } else {
            port_difference = true;
            evidence.push(format!(
                "{address}: connects on {} but not on {} (open over IPv4)",
                ports_text(&ports),
                ports_text(&missing.into_iter().collect())
            ));
        }
    }
    let t = &p.thresholds;
    let (status, points) = if good == v6.len() && !port_difference {
        (Status::Pass, t.full_points)
    } else if good > 0 {
        (Status::Fail, t.partial_points)
    } else {
        (Status::Fail, 0.0)
    };
    let mut outcome = Outcome::new(status, evidence);
    outcome.points = Some(points);
    outcome
}

fn ports_text(ports: &BTreeSet<u16>) -> String {
    ports.iter().map(u16::to_string).collect::<Vec<_>>().join("/")
}

fn web_tls_v6(o: &DomainObservation) -> Outcome {
    if let Some(nt) = not_testable_v6(o) {
        return nt;
    }
    let mut evidence = Vec::new();
    let mut bad = false;
    let mut any = false;
    for web in &o.web {
        let v4_valid = fetches_of(web, Family::Ipv4).any(|f| f.tls.as_ref().is_some_and(|t| t.verified));
        let v4_tls = fetches_of(web, Family::Ipv4).any(|f| f.tls.is_some());
        for f in fetches_of(web, Family::Ipv6).filter(|f| f.scheme == Scheme::Https) {
            let Some(tls) = &f.tls else { continue };
            any = true;
            if tls.verified {
                evidence.push(format!("{} {}: certificate valid", f.name, f.address));
            } else if v4_valid || !v4_tls {
                bad = true;
                evidence.push(format!(
                    "{} {}: certificate not valid over IPv6 ({}){}",
                    f.name,
                    f.address,
                    tls.verify_error.clone().unwrap_or_default(),
                    if v4_valid {
                        " while valid over IPv4"
                    } else {
                        "; no HTTPS over IPv4 to compare"
                    }
                ));
            } else {
                evidence.push(format!(
                    "{} {}: certificate not valid ({}), same over IPv4",
                    f.name,
                    f.address,
                    tls.verify_error.clone().unwrap_or_default()
                ));
            }
        }
    }
    // Certificates met after a redirect (e.g. http -> https) count too.
    for web in &o.web {
        let mut v4 = fetches_of(web, Family::Ipv4).peekable();
        // No IPv4 fetch means no comparison: a bad certificate is then blamed as is.
        let v4_hops_valid = v4.peek().is_none() || v4.all(|f| f.hops.iter().all(|h| h.tls_error.is_none()));
        for f in fetches_of(web, Family::Ipv6) {
            if let Some(error) = f.hops.iter().skip(1).find_map(|h| h.tls_error.as_ref()) {
                any = true;
                if v4_hops_valid {
                    bad = true;
                    evidence.push(format!(
                        "{} {} ({} redirect): {error}",
                        f.name,
                        f.address,
                        scheme_name(f.scheme)
                    ));
                }
            }
        }
    }
    let status = if !any {
        Status::NotApplicable
    } else if bad {
        Status::Fail
    } else {
        Status::Pass
    };
    Outcome::new(status, evidence)
}

/// Body bytes that fit in one full-size packet: a stall with no more than
/// this is what a Path-MTU blackhole looks like.
pub(crate) const ONE_PACKET: u64 = 1452;

/// A response that stalls over IPv6 after its headers while the same URL
/// completes over IPv4: the "small pages work, big ones hang" fault.
fn web_pmtu_v6(o: &DomainObservation) -> Outcome {
    if let Some(nt) = not_testable_v6(o) {
        return nt;
    }
    let mut evidence = Vec::new();
    let mut stalled = false;
    let mut any = false;
    for web in &o.web {
        for f in fetches_of(web, Family::Ipv6) {
            any = true;
            let stall = f.final_status.is_some()
                && !f.completed
                && f.error.as_ref().is_some_and(|e| e.kind == ErrorKind::Timeout);
            if !stall {
                continue;
            }
            let Some(v4) = fetches_of(web, Family::Ipv4).find(|g| g.scheme == f.scheme && g.completed) else {
                continue;
            };
            stalled = true;
            let v4_bytes = v4.content.as_ref().map(|c| c.bytes).unwrap_or(0);
            evidence.push(format!(
                "{} {} ({}): IPv6 stalled after the headers and {} body bytes; IPv4 {} delivered {v4_bytes} bytes{}",
                f.name,
                f.address,
                scheme_name(f.scheme),
                f.body_received,
                v4.address,
                if f.body_received <= ONE_PACKET {
                    " — typical of a Path-MTU blackhole (large IPv6 packets dropped, ICMPv6 Packet Too Big filtered)"
                } else {
                    " — the IPv6 path stalls or is very slow"
                }
            ));
        }
    }
    let status = if !any {
        Status::NotApplicable
    } else if stalled {
        Status::Fail
    } else {
        Status::Pass
    };
    Outcome::new(status, evidence)
}

/// The response kept per address, as internet.nl does: HTTPS when it
/// completed, otherwise HTTP.
fn best_fetch<'a>(fetches: &[&'a HttpFetch]) -> Option<&'a HttpFetch> {
    fetches
        .iter()
        .filter(|f| f.completed)
        // min_by_key keeps the first of equals: the first completed HTTPS fetch,
        // the same one the content comparison takes as its IPv4 reference.
        .min_by_key(|f| f.scheme != Scheme::Https)
        .copied()
}

fn fetch_failure(f: &HttpFetch) -> String {
    match &f.error {
        Some(e) => format!("{}: {}", scheme_name(f.scheme), e.message),
        None => format!("{}: no final response", scheme_name(f.scheme)),
    }
}

fn scheme_name(s: Scheme) -> &'static str {
    match s {
        Scheme::Http => "http",
        Scheme::Https => "https",
    }
}

fn web_ipv46(o: &DomainObservation, p: &Profile) -> Outcome {
    let less = p.thresholds.less_points;
    let Some(apex) = o.name(NameRole::Apex) else {
        return Outcome::new(Status::Error, vec!["apex not resolved".into()]);
    };
    let v6 = v6_addresses(apex);
    if v6.is_empty() {
        let mut outcome = Outcome::new(Status::NotApplicable, vec![format!("{} has no global AAAA", apex.name)]);
        outcome.points = Some(0.0);
        return outcome;
    }
    if let Some(nt) = not_testable_v6(o) {
        return nt;
    }
    let Some(web) = o.web_for(NameRole::Apex) else {
        return Outcome::new(Status::Error, vec!["no web observation".into()]);
    };
    if !o.vantage.ipv4 && apex.a.iter().any(|a| a.usable) {
        return Outcome::new(
            Status::NotTestable,
            vec!["the vantage point has no working IPv4, so IPv4 and IPv6 cannot be compared".into()],
        );
    }
    if let Some(e) = &apex.a_error {
        return Outcome::new(
            dns_failure_status(e),
            vec![format!(
                "{} A lookup failed, nothing to compare with: {}",
                apex.name, e.message
            )],
        );
    }
    if !apex.a.iter().any(|a| a.usable) {
        let mut outcome = Outcome::new(
            Status::Info,
            vec![format!("{} is IPv6-only: nothing to compare", apex.name)],
        );
        outcome.points = Some(less);
        return outcome;
    }
    let mut evidence = Vec::new();
    let mut fail = false;
    let mut notice = false;
    let v4: Vec<&HttpFetch> = fetches_of(web, Family::Ipv4).collect();
    let v4_best = best_fetch(&v4);
    let v4_schemes: BTreeSet<Scheme> = v4.iter().filter(|f| f.completed).map(|f| f.scheme).collect();
    let Some(v4_best) = v4_best else {
        evidence.push("no complete response over IPv4, so the comparison could not be made".into());
        evidence.extend(v4.iter().map(|f| format!("{} {}", f.address, fetch_failure(f))));
        let mut outcome = Outcome::new(Status::Fail, evidence);
        outcome.points = Some(0.0);
        return outcome;
    };
    for address in &v6 {
        let mine: Vec<&HttpFetch> = fetches_of(web, Family::Ipv6)
            .filter(|f| f.address == *address)
            .collect();
        let Some(best) = best_fetch(&mine) else {
            fail = true;
            evidence.push(format!(
                "{address}: no complete response over IPv6 ({})",
                mine.iter().map(|f| fetch_failure(f)).collect::<Vec<_>>().join("; ")
            ));
            continue;
        };
        let schemes: BTreeSet<Scheme> = mine.iter().filter(|f| f.completed).map(|f| f.scheme).collect();
        if schemes != v4_schemes {
            fail = true;
            let names = |set: &BTreeSet<Scheme>| set.iter().map(|s| scheme_name(*s)).collect::<Vec<_>>().join("+");
            let missing: BTreeSet<Scheme> = v4_schemes.difference(&schemes).copied().collect();
            let extra: BTreeSet<Scheme> = schemes.difference(&v4_schemes).copied().collect();
            evidence.push(format!(
                "{address}: answers {} but IPv4 answers {}{}{}",
                names(&schemes),
                names(&v4_schemes),
                if missing.is_empty() {
                    String::new()
                } else {
                    format!(" (missing over IPv6: {})", names(&missing))
                },
                if extra.is_empty() {
                    String::new()
                } else {
                    format!(" (only over IPv6: {})", names(&extra))
                }
            ));
            continue;
        }
        if best.final_status != v4_best.final_status {
            fail = true;
            evidence.push(format!(
                "{address}: status {} over IPv6 but {} over IPv4",
                best.final_status.map(|s| s.to_string()).unwrap_or("-".into()),
                v4_best.final_status.map(|s| s.to_string()).unwrap_or("-".into())
            ));
            continue;
        }
        let parity = web
            .parity
            .iter()
            .find(|c| c.v6_address == *address && c.scheme == best.scheme);
        match parity {
            Some(c) if !c.redirects_equal => {
                notice = true;
                evidence.push(format!(
                    "{address}: redirect chain differs from {} over {}",
                    c.v4_address,
                    scheme_name(c.scheme)
                ));
            }
            Some(c) if c.text_similarity < p.thresholds.similarity => {
                notice = true;
                evidence.push(format!(
                    "{address}: content differs from {} (text similarity {:.0} %, structure {:.0} %; differed: {})",
                    c.v4_address,
                    c.text_similarity * 100.0,
                    c.structure_similarity * 100.0,
                    c.differed.join(", ")
                ));
            }
            Some(c) => evidence.push(format!(
                "{address}: same as {} over {} (status {}, text similarity {:.0} %, structure {:.0} %{})",
                c.v4_address,
                scheme_name(c.scheme),
                best.final_status.unwrap_or_default(),
                c.text_similarity * 100.0,
                c.structure_similarity * 100.0,
                if c.differed.is_empty() {
                    String::new()
                } else {
                    format!("; differed: {}", c.differed.join(", "))
                }
            )),
            None => evidence.push(format!(
                "{address}: status {} (no HTML to compare)",
                best.final_status.unwrap_or_default()
            )),
        }
    }
    let status = if fail {
        Status::Fail
    } else if notice {
        Status::Warn
    } else {
        Status::Pass
    };
    let mut outcome = Outcome::new(status, evidence);
    outcome.points = Some(if status == Status::Pass { less } else { 0.0 });
    outcome
}

// ---------------------------------------------------------------- mail

fn mx_aaaa(o: &DomainObservation) -> Outcome {
    let m = &o.mail;
    match m.status {
        MxStatus::NoMx => return Outcome::new(Status::NotApplicable, vec!["no MX records".into()]),
        MxStatus::NullMx => {
            return Outcome::new(
                Status::NotApplicable,
                vec!["Null MX (RFC 7505): the domain accepts no mail".into()],
            );
        }
        MxStatus::Error => {
            let e = m
                .error
                .clone()
                .unwrap_or(ProbeError::new(ErrorKind::Io, "MX lookup failed"));
            return Outcome::new(dns_failure_status(&e), vec![e.message]);
        }
        MxStatus::Hosts | MxStatus::NullMxWithOthers => {}
    }
    let mut evidence = Vec::new();
    if m.status == MxStatus::NullMxWithOthers {
        evidence.push("Null MX published alongside other MX records".to_string());
    }
    let mut all = true;
    for host in &m.hosts {
        let v6 = v6_addresses(&host.resolution);
        if v6.is_empty() {
            all = false;
            evidence.push(format!("{} (pref {}): no global AAAA", host.name, host.preference));
            evidence.extend(describe_unusable(&host.resolution));
        } else {
            evidence.push(format!("{} (pref {}): AAAA {}", host.name, host.preference, join(&v6)));
        }
    }
    let transient = m.hosts.iter().any(|h| {
        h.resolution
            .aaaa_error
            .as_ref()
            .is_some_and(|e| dns_failure_status(e) == Status::Error)
    });
    let status = match (all, transient) {
        (true, _) => Status::Pass,
        (false, true) => Status::Error,
        (false, false) => Status::Fail,
    };
    Outcome::new(status, evidence)
}

fn mx_reach(o: &DomainObservation, p: &Profile) -> Outcome {
    let t = &p.thresholds;
    let m = &o.mail;
    if matches!(m.status, MxStatus::NoMx | MxStatus::NullMx) {
        let mut outcome = Outcome::new(Status::NotApplicable, vec!["no mail servers to test".into()]);
        outcome.points = Some(t.full_points);
        return outcome;
    }
    if m.status == MxStatus::Error {
        let e = m
            .error
            .clone()
            .unwrap_or(ProbeError::new(ErrorKind::Io, "MX lookup failed"));
        let mut outcome = Outcome::new(dns_failure_status(&e), vec![e.message]);
        outcome.points = Some(0.0);
        return outcome;
    }
    if !m.hosts.iter().any(|h| h.resolution.has_usable_v6()) {
        let mut outcome = Outcome::new(Status::NotApplicable, vec!["no MX host has a global AAAA".into()]);
        outcome.points = Some(0.0);
        return outcome;
    }
    if let Some(nt) = not_testable_v6(o) {
        return nt;
    }
    let mut evidence = Vec::new();
    let mut fail = false;
    let mut scores = Vec::new();
    for host in &m.hosts {
        let v6 = v6_addresses(&host.resolution);
        if v6.is_empty() {
            scores.push(0.0);
            continue;
        }
        let good = judge_addresses(&host.name, &v6, &mut evidence, &mut fail, |address| {
            let pr = host.probes.iter().find(|pr| pr.address == address)?;
            Some(if pr.banner_ok {
                Ok(format!(
                    "{}{}",
                    pr.banner.clone().unwrap_or_default(),
                    if pr.starttls { " (STARTTLS offered)" } else { "" }
                ))
            } else {
                Err(format!("no SMTP greeting: {}", error_text(&pr.error)))
            })
        });
        scores.push(tier_points(good, v6.len(), t));
    }
    let mut outcome = Outcome::new(if fail { Status::Fail } else { Status::Pass }, evidence);
    outcome.points = Some(round2(scores.iter().sum::<f64>() / scores.len().max(1) as f64));
    outcome
}

// ---------------------------------------------------------------- NIST

fn colour_outcome(name: &str, counts: ServiceCounts, mut evidence: Vec<String>, testable: bool) -> Outcome {
    let status = match counts.colour.as_str() {
        "gray" => Status::NotApplicable,
        "red" => Status::Fail,
        _ if !testable => Status::NotTestable,
        "green" => Status::Pass,
        _ => Status::Warn,
    };
    evidence.insert(
        0,
        format!(
            "{name}: {} IPv4 interfaces, {} IPv6 assigned, {} IPv6 operational ({})",
            counts.ipv4_interfaces, counts.ipv6_assigned, counts.ipv6_operational, counts.colour
        ),
    );
    let mut outcome = Outcome::new(status, evidence);
    outcome.counts = Some(counts);
    outcome
}

fn colour(assigned: usize, operational: usize) -> String {
    if assigned == 0 {
        "red"
    } else if operational == assigned {
        "green"
    } else {
        "yellow"
    }
    .to_string()
}

fn dns_service(o: &DomainObservation) -> Outcome {
    let mut v4 = BTreeSet::new();
    let mut v6 = BTreeSet::new();
    let mut operational = BTreeSet::new();
    let mut evidence = Vec::new();
    for host in &o.zone.hosts {
        v4.extend(host.resolution.a.iter().map(|a| a.address));
        for address in v6_addresses(&host.resolution) {
            v6.insert(address);
            let ok = host
                .probes
                .iter()
                .any(|pr| pr.address == address && pr.transport == Transport::Udp && pr.answered);
            if ok {
                operational.insert(address);
            } else {
                evidence.push(format!("{} {address}: not operational", host.name));
            }
        }
    }
    let counts = ServiceCounts {
        ipv4_interfaces: v4.len(),
        ipv6_assigned: v6.len(),
        ipv6_operational: operational.len(),
        colour: colour(v6.len(), operational.len()),
    };
    colour_outcome("DNS", counts, evidence, o.vantage.ipv6)
}

/// Whether a scheme works on a fetch: a final status below 400, and a valid
/// certificate for HTTPS.
fn works(f: &HttpFetch) -> bool {
    f.completed
        && f.final_status.is_some_and(|s| s < 400)
        && (f.scheme == Scheme::Http || f.tls.as_ref().is_some_and(|t| t.verified))
        && f.hops.iter().all(|h| h.tls_error.is_none())
}

fn web_service(o: &DomainObservation) -> Outcome {
    let mut v4 = BTreeSet::new();
    let mut v6 = BTreeSet::new();
    let mut failing = BTreeSet::new();
    let mut evidence = Vec::new();
    for web in &o.web {
        let Some(resolution) = o.names.iter().find(|n| n.role == web.role) else {
            continue;
        };
        v4.extend(resolution.a.iter().map(|a| a.address));
        // What works over IPv4 sets the bar for IPv6.
        let v4_working: BTreeSet<Scheme> = fetches_of(web, Family::Ipv4)
            .filter(|f| works(f))
            .map(|f| f.scheme)
            .collect();
        for address in v6_addresses(resolution) {
            v6.insert(address);
            let mine: Vec<&HttpFetch> = fetches_of(web, Family::Ipv6).filter(|f| f.address == address).collect();
            let working: BTreeSet<Scheme> = mine.iter().filter(|f| works(f)).map(|f| f.scheme).collect();
            let ok = if v4_working.is_empty() {
                !working.is_empty()
            } else {
                v4_working.is_subset(&working)
            };
            if !ok {
                // An address shared by apex and www must work for both.
                failing.insert(address);
                evidence.push(format!(
                    "{} {address}: not operational ({})",
                    web.name,
                    mine.iter()
                        .filter(|f| !works(f))
                        .map(|f| match (&f.error, f.final_status, &f.tls) {
                            (Some(e), _, _) => format!("{}: {}", scheme_name(f.scheme), e.message),
                            _ if f.hops.iter().any(|h| h.tls_error.is_some()) => format!(
                                "{}: {}",
                                scheme_name(f.scheme),
                                f.hops.iter().find_map(|h| h.tls_error.clone()).unwrap_or_default()
                            ),
                            (None, _, Some(t)) if !t.verified => format!(
                                "{}: certificate not valid: {}",
                                scheme_name(f.scheme),
                                t.verify_error.clone().unwrap_or_default()
                            ),
                            (None, Some(s), _) => format!("{}: status {s}", scheme_name(f.scheme)),
                            _ => fetch_failure(f),
                        })
                        .collect::<Vec<_>>()
                        .join("; ")
                ));
            }
        }
    }
    let operational = v6.difference(&failing).count();
    let counts = ServiceCounts {
        ipv4_interfaces: v4.len(),
        ipv6_assigned: v6.len(),
        ipv6_operational: operational,
        colour: if v4.is_empty() && v6.is_empty() {
            "gray".into()
        } else {
            colour(v6.len(), operational)
        },
    };
    colour_outcome("Web", counts, evidence, o.vantage.ipv6)
}

fn mail_service(o: &DomainObservation) -> Outcome {
    let m = &o.mail;
    if m.status == MxStatus::Error {
        // A resolver timeout is transient (error); SERVFAIL and the like are
        // the domain's own broken DNS (red).
        let e = m
            .error
            .clone()
            .unwrap_or(ProbeError::new(ErrorKind::Io, "MX lookup failed"));
        let status = dns_failure_status(&e);
        let mut outcome = Outcome::new(status, vec![format!("Mail: MX lookup failed: {}", e.message)]);
        outcome.counts = Some(ServiceCounts {
            colour: if status == Status::Error { "unknown" } else { "red" }.into(),
            ..Default::default()
        });
        return outcome;
    }
    if matches!(m.status, MxStatus::NoMx | MxStatus::NullMx) {
        let counts = ServiceCounts {
            colour: "gray".into(),
            ..Default::default()
        };
        return colour_outcome("Mail", counts, vec!["no mail service published".into()], o.vantage.ipv6);
    }
    let mut v4 = BTreeSet::new();
    let mut v6 = BTreeSet::new();
    let mut operational = BTreeSet::new();
    let mut evidence = Vec::new();
    for host in &m.hosts {
        v4.extend(host.resolution.a.iter().map(|a| a.address));
        for address in v6_addresses(&host.resolution) {
            v6.insert(address);
            let ok = host
                .probes
                .iter()
                .any(|pr| pr.address == address && pr.banner_ok && pr.ehlo_ok);
            if ok {
                operational.insert(address);
            } else {
                evidence.push(format!("{} {address}: not operational", host.name));
            }
        }
    }
    let counts = ServiceCounts {
        ipv4_interfaces: v4.len(),
        ipv6_assigned: v6.len(),
        ipv6_operational: operational.len(),
        colour: colour(v6.len(), operational.len()),
    };
    colour_outcome("Mail", counts, evidence, o.vantage.ipv6)
}

// ---------------------------------------------------------------- roll-ups

pub(crate) fn internetnl_rollup(
    results: &[CheckResult],
    profile: &Profile,
) -> (Status, String, f64, BTreeMap<String, f64>) {
    let mut categories = BTreeMap::new();
    for (category, ids) in &profile.categories {
        let (mut got, mut max) = (0.0, 0.0);
        for id in ids {
            // Only tested checks count: a not_testable or error result says
            // nothing about the target's score.
            if let Some(c) = results
                .iter()
                .find(|c| &c.id == id && !matches!(c.status, Status::NotTestable | Status::Error))
            {
                got += c.points.unwrap_or(0.0);
                max += max_points(id, profile);
            }
        }
        if max > 0.0 {
            // internet.nl: int(100 / max_score * points).
            categories.insert(category.clone(), (100.0 / max * got).floor());
        }
    }
    let score = if categories.is_empty() {
        0.0
    } else {
        round2(categories.values().sum::<f64>() / categories.len() as f64)
    };
    let mandatory_failed = results.iter().any(|c| {
        c.status == Status::Fail
            && profile
                .checks
                .get(&c.id)
                .is_some_and(|d| d.severity == Severity::Mandatory)
    });
    let mandatory_untestable = results.iter().any(|c| {
        c.status == Status::NotTestable
            && profile
                .checks
                .get(&c.id)
                .is_some_and(|d| d.severity == Severity::Mandatory)
    });
    let status = if mandatory_failed {
        Status::Fail
    } else if mandatory_untestable {
        // A vantage without IPv6 cannot vouch for the target either way.
        Status::NotTestable
    } else if results.iter().any(|c| c.status == Status::Error) {
        Status::Error
    } else if results.iter().any(|c| c.status == Status::Warn) {
        Status::Warn
    } else {
        Status::Pass
    };
    let label = match status {
        Status::Pass => "passed",
        Status::Fail => "failed",
        Status::Warn => "warning",
        Status::NotTestable => "not testable",
        _ => "error",
    };
    (status, label.to_string(), score, categories)
}

pub(crate) fn nist_rollup(results: &[CheckResult]) -> (Status, String, f64, BTreeMap<String, f64>) {
    let present: Vec<&CheckResult> = results
        .iter()
        .filter(|c| c.counts.as_ref().is_some_and(|n| n.colour != "gray"))
        .collect();
    let green = present.iter().filter(|c| c.status == Status::Pass).count();
    let any_v6 = present.iter().any(|c| {
        c.counts
            .as_ref()
            .is_some_and(|n| n.ipv6_assigned > 0 || n.ipv6_operational > 0)
    });
    let score = if present.is_empty() {
        0.0
    } else {
        round2(100.0 * green as f64 / present.len() as f64)
    };
    let (status, label) = if present.is_empty() {
        (Status::NotApplicable, "none")
    } else if present.iter().any(|c| c.status == Status::Error) && green < present.len() {
        (Status::Error, "error")
    } else if present.iter().any(|c| c.status == Status::NotTestable) && green < present.len() {
        (Status::NotTestable, "not testable")
    } else if green == present.len() {
        (Status::Pass, "operational")
    } else if any_v6 {
        (Status::Warn, "progress")
    } else {
        (Status::Fail, "none")
    };
    (status, label.to_string(), score, BTreeMap::new())
}

/// Judges each address of one host: `Some(Ok(note))` is good, `Some(Err(why))`
/// bad, `None` not probed (also bad). Adds one evidence line per address and
/// returns how many were good.
fn judge_addresses(
    host: &str,
    addresses: &[IpAddr],
    evidence: &mut Vec<String>,
    failed: &mut bool,
    look: impl Fn(IpAddr) -> Option<Result<String, String>>,
) -> usize {
    let mut good = 0;
    for &address in addresses {
        let line = match look(address) {
            Some(Ok(note)) => {
                good += 1;
                note
            }
            Some(Err(why)) => {
                *failed = true;
                why
            }
            None => {
                *failed = true;
                "not probed".to_string()
            }
        };
        evidence.push(format!("{host} {address}: {line}"));
    }
    good
}

fn error_text(error: &Option<ProbeError>) -> &str {
    error.as_ref().map(|e| e.message.as_str()).unwrap_or("unknown")
}

/// internet.nl's 10/2/0: all addresses good, some good, none good.
fn tier_points(good: usize, total: usize, t: &crate::Thresholds) -> f64 {
    if good == total {
        t.full_points
    } else if good > 0 {
        t.partial_points
    } else {
        0.0
    }
}

/// cn-website: gating checks must pass; the score is the weighted sum of
/// each weighted check's earned fraction; the site passes at `pass_score`.
pub(crate) fn cn_rollup(results: &[CheckResult], profile: &Profile) -> (Status, String, f64, BTreeMap<String, f64>) {
    let gate_failed = results.iter().any(|c| {
        c.status == Status::Fail
            && profile
                .checks
                .get(&c.id)
                .is_some_and(|d| d.severity == Severity::Mandatory)
    });
    let untestable = results.iter().any(|c| {
        matches!(c.status, Status::NotTestable | Status::Error)
            && profile
                .checks
                .get(&c.id)
                .is_some_and(|d| d.severity == Severity::Mandatory)
    });
    // Two scores: the one that decides, over the checks that may fail the
    // site, and one over every weighted check. An optional check (the 天窗
    // sub-resources, say) lowers only the second: by itself it can warn but
    // never turn a pass into a fail.
    let (mut got, mut max, mut got_all, mut max_all) = (0.0, 0.0, 0.0, 0.0);
    for (id, weight) in &profile.weights {
        let Some(c) = results.iter().find(|c| &c.id == id) else {
            continue;
        };
        if matches!(c.status, Status::NotTestable | Status::Error) {
            continue;
        }
        let fraction = match (c.points, c.status) {
            (Some(p), _) => p.clamp(0.0, 1.0),
            (None, Status::Pass | Status::NotApplicable | Status::Info) => 1.0,
            (None, _) => 0.0,
        };
        got_all += weight * fraction;
        max_all += weight;
        if profile
            .checks
            .get(id)
            .is_some_and(|d| d.severity == Severity::Mandatory)
        {
            got += weight * fraction;
            max += weight;
        }
    }
    let score = if max > 0.0 { round2(100.0 * got / max) } else { 0.0 };
    let mut categories = BTreeMap::new();
    if max_all > 0.0 {
        categories.insert("all_checks".to_string(), round2(100.0 * got_all / max_all));
    }
    let (status, label) = if gate_failed {
        (Status::Fail, "failed")
    } else if untestable {
        (Status::NotTestable, "not testable")
    } else if score >= profile.thresholds.pass_score {
        (Status::Pass, "passed")
    } else {
        (Status::Fail, "below the pass score")
    };
    (status, label.to_string(), score, categories)
}

fn join(addresses: &[IpAddr]) -> String {
    addresses.iter().map(IpAddr::to_string).collect::<Vec<_>>().join(", ")
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}
