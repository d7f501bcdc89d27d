//! Per-vantage verdicts combined into a target's verdict, with the
//! differences between vantages as evidence.

use crate::config::CombineRule;
use std::collections::BTreeMap;
use std::net::IpAddr;
use v6scope_assess::products::Products;
use v6scope_assess::providers::{Providers, WebReach, edge_sightings, web_reach};
use v6scope_model::{CheckResult, DomainObservation, NameRole, Status, Verdict};
use v6scope_store::EdgeRow;

/// One vantage's result for a target.
pub struct VantageVerdicts<'a> {
    pub vantage: &'a str,
    pub observation: &'a DomainObservation,
    pub verdicts: &'a [Verdict],
}

pub use v6scope_model::VANTAGES_CHECK;

fn rank(status: Status) -> u8 {
    match status {
        Status::Pass => 4,
        Status::Info | Status::NotApplicable => 3,
        Status::Warn => 2,
        Status::Fail => 1,
        Status::NotTestable | Status::Error => 0,
    }
}

fn votes(status: Status) -> bool {
    !matches!(status, Status::NotTestable | Status::Error)
}

/// The target's result from all its vantages: for each profile, the
/// verdict the rule picks (with a `vantages` check saying what each vantage
/// found and where they differ), and the observation of the vantage the
/// first profile's pick came from. Vantages that could not test do not
/// vote; with none left the verdict is theirs (not_testable or error).
pub fn combine(rule: CombineRule, results: &[VantageVerdicts<'_>]) -> Option<(DomainObservation, Vec<Verdict>)> {
    let first = results.first()?;
    let mut observation: Option<&DomainObservation> = None;
    let mut combined = Vec::new();
    for (p, profile_verdict) in first.verdicts.iter().enumerate() {
        let profile = &profile_verdict.profile;
        let mut per: Vec<(usize, &Verdict)> = results
            .iter()
            .enumerate()
            .filter_map(|(i, r)| {
                r.verdicts
                    .get(p)
                    .filter(|v| &v.profile == profile)
                    .or_else(|| r.verdicts.iter().find(|v| &v.profile == profile))
                    .map(|v| (i, v))
            })
            .collect();
        // Best first; ties keep vantage order.
        per.sort_by(|a, b| {
            (rank(b.1.status), b.1.score)
                .partial_cmp(&(rank(a.1.status), a.1.score))
                .unwrap_or(std::cmp::Ordering::Equal)
        });
        let voters: Vec<(usize, &Verdict)> = per.iter().copied().filter(|(_, v)| votes(v.status)).collect();
        let (chosen_at, chosen) = if voters.is_empty() {
            per[0]
        } else {
            match rule {
                CombineRule::Any => voters[0],
                CombineRule::All => voters[voters.len() - 1],
                // The verdict at least half plus one of the voters reach.
                CombineRule::Majority => voters[voters.len() / 2],
            }
        };
        if observation.is_none() {
            observation = Some(results[chosen_at].observation);
        }
        let mut verdict = chosen.clone();
        verdict.checks.push(evidence(rule, results, &per));
        combined.push(verdict);
    }
    Some((observation.unwrap_or(first.observation).clone(), combined))
}

fn evidence(rule: CombineRule, results: &[VantageVerdicts<'_>], per: &[(usize, &Verdict)]) -> CheckResult {
    let mut lines: Vec<String> = Vec::new();
    let mut ordered = per.to_vec();
    ordered.sort_by_key(|(i, _)| *i);
    for (i, v) in &ordered {
        let failing: Vec<&str> = v
            .checks
            .iter()
            .filter(|c| matches!(c.status, Status::Fail | Status::Warn))
            .map(|c| c.id.as_str())
            .collect();
        let mut line = format!("{}: {} ({:.0})", results[*i].vantage, v.status, v.score);
        if !failing.is_empty() {
            line.push_str(&format!(", not passing: {}", failing.join(", ")));
        }
        lines.push(line);
    }
    // Checks whose outcome depends on the vantage.
    let mut ids: Vec<&str> = Vec::new();
    for (_, v) in &ordered {
        for c in &v.checks {
            if !ids.contains(&c.id.as_str()) {
                ids.push(&c.id);
            }
        }
    }
    for id in ids {
        let outcomes: Vec<(&str, &CheckResult)> = ordered
            .iter()
            .filter_map(|(i, v)| v.check(id).map(|c| (results[*i].vantage, c)))
            .collect();
        let differs = outcomes.windows(2).any(|w| w[0].1.status != w[1].1.status);
        if !differs {
            continue;
        }
        let mut by_status: Vec<(Status, Vec<&str>, Option<&str>)> = Vec::new();
        for (vantage, c) in &outcomes {
            match by_status.iter_mut().find(|(s, _, _)| *s == c.status) {
                Some((_, names, _)) => names.push(vantage),
                None => by_status.push((c.status, vec![vantage], c.evidence.first().map(String::as_str))),
            }
        }
        let parts: Vec<String> = by_status
            .iter()
            .map(|(s, names, first)| match first {
                Some(e) if matches!(s, Status::Fail | Status::Warn) => format!("{s} from {} ({e})", names.join(", ")),
                _ => format!("{s} from {}", names.join(", ")),
            })
            .collect();
        lines.push(format!("differs: {id}: {}", parts.join("; ")));
    }
    CheckResult {
        id: VANTAGES_CHECK.into(),
        title: format!("Verdicts per vantage (rule: {rule})"),
        // Evidence only: the verdict's own status is the combined one.
        status: Status::Info,
        points: None,
        max_points: None,
        evidence: lines,
        remedy: None,
        title_zh: Some(format!("各观测点结论（规则：{rule}）")),
        remedy_zh: None,
        counts: None,
    }
}

/// How a run's owner attributes per-vantage results to CDN and cloud
/// providers and to cloud products.
pub struct EdgeAttribution<'a> {
    pub providers: &'a Providers,
    pub asn_of: &'a dyn Fn(IpAddr) -> Option<u32>,
    pub products: Option<&'a Products>,
}

/// The edge sightings of one vantage's result for target `idx`: names a
/// CDN or cloud serves, and the target itself when it is a cloud product's
/// endpoint. The cell the vantage covers is its `region` and `isp` labels
/// (the vantage's name when it has no `isp`).
pub fn edge_rows(
    idx: i64,
    vantage: &str,
    observation: &DomainObservation,
    labels: Option<&BTreeMap<String, String>>,
    attribution: &EdgeAttribution<'_>,
) -> Vec<EdgeRow> {
    let label = |key: &str| labels.and_then(|l| l.get(key)).cloned();
    let region = label("region").unwrap_or_default();
    let isp = label("isp").unwrap_or_else(|| vantage.to_string());
    let row = |provider: &str, kind: &str, product: &str, name: &str, reach: WebReach| EdgeRow {
        idx,
        vantage: vantage.into(),
        provider: provider.into(),
        kind: kind.into(),
        product: product.into(),
        name: name.into(),
        region: region.clone(),
        isp: isp.clone(),
        v4: reach.v4.map(|a| a.to_string()),
        v6: reach.v6.map(|a| a.to_string()),
        v4_ok: reach.v4_ok,
        v6_ok: reach.v6_ok,
    };
    let mut rows: Vec<EdgeRow> = edge_sightings(observation, attribution.providers, attribution.asn_of)
        .into_iter()
        .map(|s| row(&s.provider, s.kind.as_str(), "", &s.name, s.reach))
        .collect();
    let domain = &observation.target.domain;
    if let Some(product) = attribution.products.and_then(|p| p.by_endpoint(domain))
        && let Some(reach) = web_reach(observation, NameRole::Apex)
    {
        rows.push(row(&product.provider, "cloud_product", &product.name, domain, reach));
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;
    use v6scope_model::{Target, Vantage};

    fn verdict(status: Status, score: f64, check: Status, why: &str) -> Verdict {
        Verdict {
            schema_version: 1,
            domain: "x.example".into(),
            profile: "internetnl".into(),
            status,
            label: String::new(),
            score,
            categories: Default::default(),
            checks: vec![CheckResult {
                id: "web_ipv6".into(),
                title: "Web over IPv6".into(),
                status: check,
                points: None,
                max_points: None,
                evidence: vec![why.into()],
                remedy: None,
                title_zh: None,
                remedy_zh: None,
                counts: None,
            }],
        }
    }

    fn observation() -> DomainObservation {
        crate::unprobed(
            Target {
                domain: "x.example".into(),
                ..Default::default()
            },
            &Vantage::both(),
            0.0,
            v6scope_model::ProbeError::new(v6scope_model::ErrorKind::Timeout, "t"),
        )
    }

    #[test]
    fn rules_pick_the_verdict_and_untestable_vantages_do_not_vote() {
        let o = observation();
        let pass = [verdict(
            Status::Pass,
            100.0,
            Status::Pass,
            "2001:db8::1 answers in 40 ms",
        )];
        let fail = [verdict(Status::Fail, 40.0, Status::Fail, "2001:db8::1: timeout")];
        let untested = [verdict(Status::NotTestable, 0.0, Status::NotTestable, "no IPv6 here")];
        let of = |vantage, verdicts| VantageVerdicts {
            vantage,
            observation: &o,
            verdicts,
        };
        let three = [of("isp-a", &pass[..]), of("isp-b", &fail[..]), of("isp-c", &pass[..])];
        let status = |rule, results: &[VantageVerdicts<'_>]| combine(rule, results).unwrap().1[0].status;
        assert_eq!(status(CombineRule::All, &three), Status::Fail);
        assert_eq!(status(CombineRule::Majority, &three), Status::Pass);
        assert_eq!(status(CombineRule::Any, &three), Status::Pass);
        let two = [of("isp-a", &pass[..]), of("isp-b", &fail[..])];
        assert_eq!(
            status(CombineRule::Majority, &two),
            Status::Fail,
            "one of two is no majority"
        );
        // A broken vantage is never a failure of the target.
        let broken = [of("isp-a", &pass[..]), of("isp-x", &untested[..])];
        assert_eq!(status(CombineRule::All, &broken), Status::Pass);
        let only_broken = [of("isp-x", &untested[..])];
        assert_eq!(status(CombineRule::All, &only_broken), Status::NotTestable);
        let (_, verdicts) = combine(CombineRule::All, &three).unwrap();
        let evidence = &verdicts[0].check(VANTAGES_CHECK).unwrap().evidence;
        assert_eq!(evidence[0], "isp-a: pass (100)");
        assert_eq!(evidence[1], "isp-b: fail (40), not passing: web_ipv6");
        assert_eq!(
            evidence[3],
            "differs: web_ipv6: pass from isp-a, isp-c; fail from isp-b (2001:db8::1: timeout)"
        );
        assert!(combine(CombineRule::All, &[]).is_none());
    }
}
