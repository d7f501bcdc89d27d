//! The Chinese website method (YD/T 3118-2016 and the rules built on it):
//! gating checks, then the IPv6 support rates of 二级 and 三级 links,
//! sub-resource coverage and content consistency, from a site crawl.

use crate::Outcome;
use v6scope_model::{DomainObservation, NameRole, SiteObservation, Status, UrlFetch};

pub(crate) const CHECKS: [&str; 11] = [
    "cn_aaaa",
    "cn_ns_v6",
    "cn_homepage_v6",
    "cn_level2_v6",
    "cn_level3_v6",
    "cn_resources_v6",
    "cn_consistency",
    "cn_performance",
    "cn_success_rate",
    "cn_latency_diff",
    "cn_pmtu_v6",
];

fn ok(f: &Option<UrlFetch>) -> bool {
    f.as_ref().is_some_and(|f| f.ok)
}

fn no_crawl() -> Outcome {
    Outcome::new(
        Status::NotTestable,
        vec!["no site crawl in this observation: run `v6scope check --crawl`".into()],
    )
}

fn why(f: &Option<UrlFetch>) -> String {
    match f {
        None => "not fetched".into(),
        Some(f) => f
            .error
            .as_ref()
            .map(|e| e.message.clone())
            .or(f.final_status.map(|s| format!("status {s}")))
            .unwrap_or_else(|| "no response".into()),
    }
}

/// AAAA解析: the site's host has a global AAAA.
pub(crate) fn aaaa(o: &DomainObservation) -> Outcome {
    let Some(apex) = o.name(NameRole::Apex) else {
        return Outcome::new(Status::Error, vec!["apex not resolved".into()]);
    };
    let v6: Vec<String> = apex.usable_v6().map(|a| a.address.to_string()).collect();
    if v6.is_empty() {
        Outcome::new(Status::Fail, vec![format!("{} has no global AAAA", apex.name)])
    } else {
        Outcome::new(Status::Pass, vec![format!("{} AAAA {}", apex.name, v6.join(", "))])
    }
}

/// 域名授权体系: every name server has a global AAAA and answers
/// authoritatively over IPv6.
pub(crate) fn ns_v6(o: &DomainObservation) -> Outcome {
    if !o.vantage.ipv6 {
        return Outcome::new(
            Status::NotTestable,
            vec!["the vantage point has no working IPv6".into()],
        );
    }
    if o.zone.hosts.is_empty() {
        return Outcome::new(Status::Fail, vec![format!("no name servers found for {}", o.zone.zone)]);
    }
    let mut evidence = Vec::new();
    let mut fail = false;
    for host in &o.zone.hosts {
        let v6: Vec<_> = host.resolution.usable_v6().map(|a| a.address).collect();
        if v6.is_empty() {
            fail = true;
            evidence.push(format!("{}: no global AAAA", host.name));
            continue;
        }
        for address in v6 {
            let answered = host.probes.iter().any(|p| p.address == address && p.answered);
            if !answered {
                fail = true;
            }
            evidence.push(format!(
                "{} {address}: {}",
                host.name,
                if answered {
                    "answers authoritatively"
                } else {
                    "no authoritative answer"
                }
            ));
        }
    }
    match &o.zone.v6_delegation {
        Some(path) if path.complete => {
            let chain: Vec<String> = path
                .steps
                .iter()
                .map(|s| format!("{} ({})", s.zone, s.server))
                .collect();
            evidence.push(format!(
                "delegation followed from the root over IPv6 only: {} → authoritative answer (roots from {})",
                chain.join(" → "),
                path.roots_from
            ));
        }
        Some(path) => {
            fail = true;
            let reached: Vec<String> = path
                .steps
                .iter()
                .map(|s| format!("{} ({})", s.zone, s.server))
                .collect();
            evidence.push(format!(
                "the delegation cannot be followed from the root over IPv6 only{}: {} (roots from {})",
                if reached.is_empty() {
                    String::new()
                } else {
                    format!(" (reached {})", reached.join(" → "))
                },
                path.error
                    .as_ref()
                    .map(|e| e.message.as_str())
                    .unwrap_or("no authoritative answer"),
                path.roots_from
            ));
        }
        None => evidence.push("delegation over IPv6-only transport not checked in this observation".into()),
    }
    Outcome::new(if fail { Status::Fail } else { Status::Pass }, evidence)
}

pub(crate) fn homepage(o: &DomainObservation) -> Outcome {
    let Some(site) = &o.site else { return no_crawl() };
    let Some(home) = site.pages.iter().find(|p| p.level == 1) else {
        return Outcome::new(Status::Error, vec!["the crawl recorded no homepage".into()]);
    };
    if !o.vantage.ipv6 {
        return Outcome::new(
            Status::NotTestable,
            vec!["the vantage point has no working IPv6".into()],
        );
    }
    if ok(&home.v6) {
        Outcome::new(Status::Pass, vec![format!("{} answers over IPv6", home.url)])
    } else {
        Outcome::new(Status::Fail, vec![format!("{} over IPv6: {}", home.url, why(&home.v6))])
    }
}

/// The share of a level's pages reachable over IPv6, judged against `threshold`.
pub(crate) fn level_rate(o: &DomainObservation, level: u8, threshold: f64) -> Outcome {
    let Some(site) = &o.site else { return no_crawl() };
    if !o.vantage.ipv6 {
        return Outcome::new(
            Status::NotTestable,
            vec!["the vantage point has no working IPv6".into()],
        );
    }
    let pages: Vec<_> = site.pages.iter().filter(|p| p.level == level).collect();
    if pages.is_empty() && cut_short(site) {
        return Outcome::new(
            Status::Error,
            vec![format!("the site deadline cut the crawl short before level {level}")],
        );
    }
    if pages.is_empty() {
        let mut outcome = Outcome::new(Status::NotApplicable, vec![format!("no level-{level} links found")]);
        outcome.points = Some(1.0);
        return outcome;
    }
    let supported = pages.iter().filter(|p| ok(&p.v6)).count();
    let rate = supported as f64 / pages.len() as f64;
    let mut evidence = vec![format!(
        "{supported} of {} level-{level} links work over IPv6 ({:.1} %, threshold {:.0} %)",
        pages.len(),
        rate * 100.0,
        threshold * 100.0
    )];
    // What to fix first: the hosts with the most failing links.
    let mut by_host: std::collections::BTreeMap<String, usize> = Default::default();
    for p in pages.iter().filter(|p| !ok(&p.v6)) {
        let host = url::Url::parse(&p.url)
            .ok()
            .and_then(|u| u.host_str().map(str::to_string))
            .unwrap_or_default();
        *by_host.entry(host).or_default() += 1;
    }
    let mut hosts: Vec<_> = by_host.into_iter().collect();
    hosts.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    if !hosts.is_empty() {
        evidence.push(format!(
            "failing links by host: {}",
            hosts
                .iter()
                .map(|(h, n)| format!("{h} ({n})"))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    evidence.extend(
        pages
            .iter()
            .filter(|p| !ok(&p.v6))
            .map(|p| format!("{} over IPv6: {}", p.url, why(&p.v6))),
    );
    let mut outcome = Outcome::new(if rate >= threshold { Status::Pass } else { Status::Fail }, evidence);
    outcome.points = Some(round3(rate));
    outcome
}

/// Requests and bytes of sub-resources served over IPv6, and the IPv4-only
/// hosts holding content (the "IPv6 天窗").
pub(crate) fn resources(o: &DomainObservation) -> Outcome {
    let Some(site) = &o.site else { return no_crawl() };
    if !o.vantage.ipv6 {
        return Outcome::new(
            Status::NotTestable,
            vec!["the vantage point has no working IPv6".into()],
        );
    }
    coverage(site)
}

fn coverage(site: &SiteObservation) -> Outcome {
    let total = site.resources.len();
    if total == 0 && cut_short(site) {
        return Outcome::new(
            Status::Error,
            vec!["the site deadline cut the crawl short before the sub-resources".into()],
        );
    }
    if total == 0 {
        let mut outcome = Outcome::new(Status::NotApplicable, vec!["the pages load no sub-resources".into()]);
        outcome.points = Some(1.0);
        return outcome;
    }
    let served = site.resources.iter().filter(|r| ok(&r.v6)).count();
    let bytes_all: u64 = site
        .resources
        .iter()
        .map(|r| r.v4.as_ref().or(r.v6.as_ref()).map(|f| f.bytes).unwrap_or(0))
        .sum();
    let bytes_v6: u64 = site
        .resources
        .iter()
        .filter(|r| ok(&r.v6))
        .map(|r| r.v6.as_ref().map(|f| f.bytes).unwrap_or(0))
        .sum();
    let mut by_host: std::collections::BTreeMap<&str, (usize, u64)> = Default::default();
    for r in site.resources.iter().filter(|r| !ok(&r.v6)) {
        let e = by_host.entry(r.host.as_str()).or_default();
        e.0 += 1;
        e.1 += r.v4.as_ref().map(|f| f.bytes).unwrap_or(0);
    }
    let mut hosts: Vec<_> = by_host.into_iter().collect();
    hosts.sort_by(|a, b| b.1.1.cmp(&a.1.1).then(b.1.0.cmp(&a.1.0)));
    let mut evidence = vec![format!(
        "{served} of {total} sub-resource requests served over IPv6; {bytes_v6} of {bytes_all} bytes"
    )];
    evidence.extend(
        hosts
            .iter()
            .map(|(host, (n, bytes))| format!("not over IPv6: {host} ({n} request(s), {bytes} bytes over IPv4)")),
    );
    // A video over IPv4 weighs more than an icon: the smaller of the request
    // and byte shares is earned.
    let request_share = served as f64 / total as f64;
    let byte_share = if bytes_all > 0 {
        bytes_v6 as f64 / bytes_all as f64
    } else {
        request_share
    };
    let mut outcome = Outcome::new(if served == total { Status::Pass } else { Status::Fail }, evidence);
    outcome.points = Some(round3(request_share.min(byte_share)));
    outcome
}

/// Mean text similarity of the page pairs fetched over both families.
pub(crate) fn consistency(o: &DomainObservation, threshold: f64) -> Outcome {
    let Some(site) = &o.site else { return no_crawl() };
    let pairs: Vec<(&str, f64)> = site
        .pages
        .iter()
        .filter_map(|p| p.text_similarity.map(|s| (p.url.as_str(), s)))
        .collect();
    if pairs.is_empty() {
        return Outcome::new(
            Status::NotTestable,
            vec!["no page was fetched over both families".into()],
        );
    }
    let mean = pairs.iter().map(|(_, s)| s).sum::<f64>() / pairs.len() as f64;
    let mut evidence = vec![format!(
        "mean text similarity {:.3} over {} page pair(s) (threshold {threshold})",
        mean,
        pairs.len()
    )];
    evidence.extend(
        pairs
            .iter()
            .filter(|(_, s)| *s < threshold)
            .map(|(url, s)| format!("{url}: similarity {s:.3}")),
    );
    let mut outcome = Outcome::new(if mean >= threshold { Status::Pass } else { Status::Fail }, evidence);
    outcome.points = Some(round3(mean));
    outcome
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

fn mean(values: impl Iterator<Item = f64>) -> Option<f64> {
    let v: Vec<f64> = values.collect();
    (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
}

/// Mean of one timing over the successful samples of one family.
fn mean_of(
    site: &SiteObservation,
    family: v6scope_model::Family,
    pick: fn(&v6scope_model::TimingSample) -> Option<f64>,
) -> Option<f64> {
    mean(
        site.samples
            .iter()
            .filter(|s| s.family == family && s.ok)
            .filter_map(pick),
    )
}

/// Picks one timing out of a sample.
type Pick = fn(&v6scope_model::TimingSample) -> Option<f64>;

const METRICS: [(&str, Pick); 4] = [
    ("DNS resolution", |s| s.dns_ms),
    ("TCP connect", |s| s.connect_ms),
    ("time to first byte", |s| s.ttfb_ms),
    ("full page", |s| s.full_page_ms),
];

/// r = mean_v6 / mean_v4 − 1 per metric; a metric fails only when r exceeds
/// `max_ratio` and the absolute difference exceeds `floor_ms` (tiny times
/// make ratios noise).
pub(crate) fn performance(o: &DomainObservation, max_ratio: f64, floor_ms: f64) -> Outcome {
    let Some(site) = &o.site else { return no_crawl() };
    if !o.vantage.ipv6 || !o.vantage.ipv4 {
        return Outcome::new(Status::NotTestable, vec!["the vantage point lacks a family".into()]);
    }
    let mut evidence = Vec::new();
    let mut fail = false;
    let mut compared = 0;
    for (label, pick) in METRICS {
        let (Some(v4), Some(v6)) = (
            mean_of(site, v6scope_model::Family::Ipv4, pick),
            mean_of(site, v6scope_model::Family::Ipv6, pick),
        ) else {
            evidence.push(format!("{label}: not measured over both families"));
            continue;
        };
        compared += 1;
        let diff = v6 - v4;
        let ratio = if v4 > 0.0 { v6 / v4 - 1.0 } else { 0.0 };
        let floor_applied = diff.abs() <= floor_ms;
        let bad = ratio > max_ratio && !floor_applied;
        fail |= bad;
        evidence.push(format!(
            "{label}: IPv6 {v6:.1} ms, IPv4 {v4:.1} ms, r = {ratio:+.2}, difference {diff:+.1} ms{}",
            if floor_applied && ratio > max_ratio {
                format!(" (difference within the {floor_ms} ms floor: ratio not judged)")
            } else if bad {
                format!(" (r above {max_ratio})")
            } else {
                String::new()
            }
        ));
    }
    if compared == 0 {
        return Outcome::new(Status::NotTestable, evidence);
    }
    Outcome::new(if fail { Status::Fail } else { Status::Pass }, evidence)
}

/// Successful IPv6 homepage loads ÷ attempts.
pub(crate) fn success_rate(o: &DomainObservation, required: f64) -> Outcome {
    let Some(site) = &o.site else { return no_crawl() };
    if !o.vantage.ipv6 {
        return Outcome::new(
            Status::NotTestable,
            vec!["the vantage point has no working IPv6".into()],
        );
    }
    let attempts: Vec<_> = site
        .samples
        .iter()
        .filter(|s| s.family == v6scope_model::Family::Ipv6)
        .collect();
    if attempts.is_empty() {
        return Outcome::new(Status::NotTestable, vec!["no IPv6 samples taken (--samples 0)".into()]);
    }
    let ok = attempts.iter().filter(|s| s.ok).count();
    let rate = ok as f64 / attempts.len() as f64;
    let mut evidence = vec![format!(
        "{ok} of {} IPv6 homepage loads succeeded ({:.0} %, required {:.0} %)",
        attempts.len(),
        rate * 100.0,
        required * 100.0
    )];
    evidence.extend(
        attempts
            .iter()
            .filter(|s| !s.ok)
            .filter_map(|s| s.error.as_ref().map(|e| e.message.clone())),
    );
    let mut outcome = Outcome::new(if rate >= required { Status::Pass } else { Status::Fail }, evidence);
    outcome.points = Some(round3(rate));
    outcome
}

/// The finance-sector rule: mean IPv6 − IPv4 full-page time below `max_ms`.
pub(crate) fn latency_difference(o: &DomainObservation, max_ms: f64) -> Outcome {
    let Some(site) = &o.site else { return no_crawl() };
    let pick: Pick = |s| s.full_page_ms;
    match (
        mean_of(site, v6scope_model::Family::Ipv4, pick),
        mean_of(site, v6scope_model::Family::Ipv6, pick),
    ) {
        (Some(v4), Some(v6)) => {
            let diff = v6 - v4;
            Outcome::new(
                if diff < max_ms { Status::Pass } else { Status::Fail },
                vec![format!(
                    "full page: IPv6 {v6:.1} ms − IPv4 {v4:.1} ms = {diff:+.1} ms (limit {max_ms} ms)"
                )],
            )
        }
        _ => Outcome::new(
            Status::NotTestable,
            vec!["full-page time not measured over both families".into()],
        ),
    }
}

/// Whether the whole-site deadline stopped the crawl.
fn cut_short(site: &SiteObservation) -> bool {
    site.limits_reached.iter().any(|l| l.contains("deadline"))
}

/// Pages and objects whose IPv6 response stalled after its headers while
/// the same URL completed over IPv4: a Path-MTU blackhole on the way to the
/// host (small responses work, large ones hang).
pub(crate) fn pmtu(o: &DomainObservation) -> Outcome {
    let Some(site) = &o.site else { return no_crawl() };
    if !o.vantage.ipv6 {
        return Outcome::new(
            Status::NotTestable,
            vec!["the vantage point has no working IPv6".into()],
        );
    }
    let fetched = site
        .pages
        .iter()
        .map(|p| (p.url.as_str(), &p.v4, &p.v6))
        .chain(site.resources.iter().map(|r| (r.url.as_str(), &r.v4, &r.v6)));
    let mut evidence = Vec::new();
    let mut by_host: std::collections::BTreeMap<String, usize> = Default::default();
    let mut any = false;
    for (url, v4, v6) in fetched {
        let Some(v6) = v6 else { continue };
        any = true;
        let (Some(received), Some(v4)) = (v6.stalled_bytes, v4.as_ref().filter(|f| f.ok)) else {
            continue;
        };
        let host = url::Url::parse(url)
            .ok()
            .and_then(|u| u.host_str().map(str::to_string))
            .unwrap_or_default();
        *by_host.entry(host).or_default() += 1;
        evidence.push(format!(
            "{url}: IPv6 stalled after the headers and {received} body bytes; IPv4 delivered {} bytes{}",
            v4.bytes,
            if received <= crate::checks::ONE_PACKET {
                " — typical of a Path-MTU blackhole (large IPv6 packets dropped, ICMPv6 Packet Too Big filtered)"
            } else {
                " — the IPv6 path stalls or is very slow"
            }
        ));
    }
    if !any {
        return Outcome::new(Status::NotApplicable, vec!["nothing was fetched over IPv6".into()]);
    }
    if by_host.is_empty() {
        return Outcome::new(Status::Pass, vec!["no IPv6 response stalled after its headers".into()]);
    }
    let stalled: usize = by_host.values().sum();
    let mut summary = vec![format!(
        "{stalled} response(s) stalled over IPv6 while complete over IPv4, by host: {}",
        by_host
            .iter()
            .map(|(h, n)| format!("{h} ({n})"))
            .collect::<Vec<_>>()
            .join(", ")
    )];
    summary.extend(evidence);
    Outcome::new(Status::Fail, summary)
}
