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
