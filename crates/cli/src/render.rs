//! Human-readable explanation of verdicts.

use std::fmt::Write;
use v6scope_model::{DomainObservation, Status, Verdict};

fn mark(status: Status) -> &'static str {
    match status {
        Status::Pass => "PASS",
        Status::Fail => "FAIL",
        Status::Warn => "WARN",
        Status::Info => "info",
        Status::NotApplicable => "n/a ",
        Status::NotTestable => "N/T ",
        Status::Error => "ERR ",
    }
}

pub fn explain(observation: &DomainObservation, verdicts: &[Verdict]) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{}", observation.target.domain);
    if !observation.vantage.ipv6 || !observation.vantage.ipv4 {
        let _ = writeln!(
            out,
            "  vantage: IPv4 {} / IPv6 {} — checks in a missing family are not testable",
            if observation.vantage.ipv4 { "ok" } else { "MISSING" },
            if observation.vantage.ipv6 { "ok" } else { "MISSING" }
        );
    }
    if let Some(e) = &observation.error {
        let _ = writeln!(out, "  evaluation cut short: {}", e.message);
    }
    if let Some(site) = &observation.site {
        crawl_summary(&mut out, site);
    }
    for verdict in verdicts {
        let categories = verdict
            .categories
            .iter()
            .map(|(k, v)| format!("{k} {v:.0} %"))
            .collect::<Vec<_>>()
            .join(", ");
        let _ = writeln!(
            out,
            "  profile {}: {} ({}), score {:.0}{}",
            verdict.profile,
            mark(verdict.status).trim(),
            verdict.label,
            verdict.score,
            if categories.is_empty() {
                String::new()
            } else {
                format!(" [{categories}]")
            }
        );
        for check in &verdict.checks {
            let points = match (check.points, check.max_points) {
                (Some(p), Some(m)) => format!(" ({p}/{m})"),
                _ => String::new(),
            };
            let _ = writeln!(
                out,
                "    [{}] {:<14} {}{}",
                mark(check.status),
                check.id,
                check.title,
                points
            );
            for line in check.evidence.iter().take(12) {
                let _ = writeln!(out, "           - {line}");
            }
            if check.evidence.len() > 12 {
                let _ = writeln!(out, "           - … {} more (see --json)", check.evidence.len() - 12);
            }
            if let Some(remedy) = &check.remedy {
                let _ = writeln!(out, "           fix: {remedy}");
            }
        }
    }
    out
}

/// Crawl facts per level: pages reachable over each family, and the hosts
/// that serve content over IPv4 only (the "IPv6 天窗").
fn crawl_summary(out: &mut String, site: &v6scope_model::SiteObservation) {
    let ok = |f: &Option<v6scope_model::UrlFetch>| f.as_ref().is_some_and(|f| f.ok);
    let _ = writeln!(
        out,
        "  crawl of {} (site {}), {:.1} s:",
        site.start_url,
        site.site,
        site.duration_ms / 1000.0
    );
    for level in 1..=3u8 {
        let pages: Vec<_> = site.pages.iter().filter(|p| p.level == level).collect();
        if pages.is_empty() {
            continue;
        }
        let v4 = pages.iter().filter(|p| ok(&p.v4)).count();
        let v6 = pages.iter().filter(|p| ok(&p.v6)).count();
        let _ = writeln!(
            out,
            "    level {level}: {} page(s), {v6} reachable over IPv6, {v4} over IPv4",
            pages.len()
        );
        for p in pages.iter().filter(|p| !ok(&p.v6)).take(5) {
            let why =
                p.v6.as_ref()
                    .and_then(|f| {
                        f.error
                            .as_ref()
                            .map(|e| e.message.clone())
                            .or(f.final_status.map(|s| format!("status {s}")))
                    })
                    .unwrap_or_else(|| "not fetched".into());
            let _ = writeln!(out, "           - {} over IPv6: {why}", p.url);
        }
    }
    let total = site.resources.len();
    let v6 = site.resources.iter().filter(|r| ok(&r.v6)).count();
    let _ = writeln!(out, "    sub-resources: {total}, {v6} served over IPv6");
    let mut v4_only: Vec<&str> = site
        .resources
        .iter()
        .filter(|r| ok(&r.v4) && !ok(&r.v6))
        .map(|r| r.host.as_str())
        .collect();
    v4_only.sort();
    v4_only.dedup();
    if !v4_only.is_empty() {
        let _ = writeln!(out, "    IPv4-only hosts holding content: {}", v4_only.join(", "));
    }
    for limit in &site.limits_reached {
        let _ = writeln!(out, "    limit reached: {limit}");
    }
}
