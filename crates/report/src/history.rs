//! What is computed once when a run finishes, so that pages and reports
//! read small tables: support per category, region, organisation and
//! provider; which provider serves which target; and, for campaign runs,
//! the changes against the campaign's previous run.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use v6scope_assess::providers::{Providers, attribute};
use v6scope_model::{Status, Verdict};
use v6scope_store::{Change, ChangeKind, ProviderUseRow, Slice, Store, StoreError};

/// What a run's summary produced.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Summarised {
    pub targets: i64,
    pub provider_uses: usize,
    /// Regressions and improvements against the previous run.
    pub regressions: usize,
    pub improvements: usize,
}

#[derive(Default)]
struct Tally {
    targets: i64,
    pass: i64,
    score: f64,
}

impl Tally {
    fn add(&mut self, pass: bool, score: f64) {
        self.targets += 1;
        self.pass += i64::from(pass);
        self.score += score;
    }
}

/// Summarises a finished run for every profile it was judged under and
/// records its changes against the previous run of the same campaign.
pub fn summarise_run(
    store: &mut dyn Store,
    run: i64,
    providers: &Providers,
    asn_of: &dyn Fn(IpAddr) -> Option<u32>,
) -> Result<Summarised, StoreError> {
    let info = store.run(run)?;
    let mut uses = Vec::new();
    store.for_each_observation(run, &mut |idx, obs| {
        for u in attribute(&obs, providers, asn_of) {
            uses.push(ProviderUseRow {
                idx,
                provider: u.provider,
                role: role_name(&u.role),
                ipv6: u.ipv6,
                evidence: u.evidence,
            });
        }
    })?;
    let mut by_idx: HashMap<i64, Vec<usize>> = HashMap::new();
    for (i, u) in uses.iter().enumerate() {
        by_idx.entry(u.idx).or_default().push(i);
    }
    let mut out = Summarised {
        provider_uses: uses.len(),
        ..Default::default()
    };
    for (n, profile) in info.profiles.iter().enumerate() {
        let mut tallies: BTreeMap<(String, String), Tally> = BTreeMap::new();
        let mut targets = 0;
        store.for_each_target_verdict(run, profile, &mut |t| {
            targets += 1;
            let pass = t.status == Some(Status::Pass);
            let score = t.score.unwrap_or(0.0);
            let mut add = |dimension: &str, key: &str| {
                tallies
                    .entry((dimension.to_string(), key.to_string()))
                    .or_default()
                    .add(pass, score)
            };
            add("all", "");
            add("category", t.category.as_deref().unwrap_or(""));
            add("region", t.region.as_deref().unwrap_or(""));
            add("organisation", t.organisation.as_deref().unwrap_or(""));
            for &i in by_idx.get(&t.idx).into_iter().flatten() {
                let u = &uses[i];
                add(&format!("provider:{}", u.role), &u.provider);
                if !u.ipv6 {
                    // Targets whose part served by this provider has no IPv6.
                    add(&format!("provider_v4only:{}", u.role), &u.provider);
                }
            }
        })?;
        let slices: Vec<Slice> = tallies
            .into_iter()
            .map(|((dimension, key), t)| Slice {
                dimension,
                key,
                targets: t.targets,
                pass: t.pass,
                score: if t.targets > 0 { t.score / t.targets as f64 } else { 0.0 },
            })
            .collect();
        // Provider uses are profile-independent: store them once.
        let profile_uses: &[ProviderUseRow] = if n == 0 { &uses } else { &[] };
        store.put_summary(run, profile, &slices, profile_uses)?;
        out.targets = targets;
    }
    if let Some(campaign) = info.source.strip_prefix("campaign:")
        && let Some(previous) = store.previous_run(run)?
    {
        let mut changes = Vec::new();
        for profile in &info.profiles {
            store.for_each_verdict_pair(run, previous, profile, &mut |then, now| {
                changes.extend(compare(previous, run, &then, &now));
            })?;
        }
        out.regressions = changes.iter().filter(|c| c.kind == ChangeKind::Regression).count();
        out.improvements = changes.len() - out.regressions;
        store.put_changes(campaign, run, &changes)?;
    }
    Ok(out)
}

fn role_name<T: serde::Serialize>(role: &T) -> String {
    serde_json::to_value(role)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

/// Good, bad, or neither (informational statuses do not make a change).
fn polarity(status: Status) -> Option<bool> {
    match status {
        Status::Pass => Some(true),
        Status::Fail | Status::Warn | Status::Error => Some(false),
        Status::Info | Status::NotApplicable | Status::NotTestable => None,
    }
}

/// The transitions of one target between two verdicts under a profile.
pub fn compare(previous_run: i64, run: i64, then: &Verdict, now: &Verdict) -> Vec<Change> {
    let mut out = Vec::new();
    let mut push = |check_id: &str, from: Status, to: Status, text: String| {
        if let (Some(was), Some(is)) = (polarity(from), polarity(to))
            && was != is
        {
            out.push(Change {
                run_id: run,
                previous_run,
                domain: now.domain.clone(),
                profile: now.profile.clone(),
                kind: if is {
                    ChangeKind::Improvement
                } else {
                    ChangeKind::Regression
                },
                check_id: check_id.into(),
                from_status: from,
                to_status: to,
                text,
            });
        }
    };
    push(
        "verdict",
        then.status,
        now.status,
        format!(
            "{}: {} → {} (score {:.0} → {:.0})",
            now.profile,
            then.status.as_str(),
            now.status.as_str(),
            then.score,
            now.score
        ),
    );
    for check in &now.checks {
        if let Some(before) = then.check(&check.id) {
            let why = check.evidence.first().map(|e| format!(": {e}")).unwrap_or_default();
            push(
                &check.id,
                before.status,
                check.status,
                format!(
                    "{}: {} → {}{why}",
                    check.title,
                    before.status.as_str(),
                    check.status.as_str()
                ),
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use v6scope_model::CheckResult;

    fn verdict(status: Status, checks: &[(&str, Status)]) -> Verdict {
        Verdict {
            schema_version: 1,
            domain: "a.test".into(),
            profile: "internetnl".into(),
            status,
            label: String::new(),
            score: if status == Status::Pass { 100.0 } else { 40.0 },
            categories: Default::default(),
            checks: checks
                .iter()
                .map(|(id, s)| CheckResult {
                    id: id.to_string(),
                    title: format!("title of {id}"),
                    status: *s,
                    points: None,
                    max_points: None,
                    evidence: vec![format!("evidence of {id}")],
                    remedy: None,
                    title_zh: None,
                    remedy_zh: None,
                    counts: None,
                })
                .collect(),
        }
    }

    #[test]
    fn regressions_and_improvements_are_told_apart_and_info_is_ignored() {
        let then = verdict(
            Status::Pass,
            &[("ns_v6", Status::Pass), ("web_v6", Status::Fail), ("mx", Status::Info)],
        );
        let now = verdict(
            Status::Fail,
            &[("ns_v6", Status::Fail), ("web_v6", Status::Pass), ("mx", Status::Pass)],
        );
        let changes = compare(1, 2, &then, &now);
        let kinds: Vec<(&str, &str)> = changes.iter().map(|c| (c.check_id.as_str(), c.kind.as_str())).collect();
        assert_eq!(
            kinds,
            vec![
                ("verdict", "regression"),
                ("ns_v6", "regression"),
                ("web_v6", "improvement")
            ]
        );
        assert_eq!(changes[1].text, "title of ns_v6: pass → fail: evidence of ns_v6");
        assert!(changes[0].text.contains("score 100 → 40"));
        assert!(compare(1, 2, &then, &then).is_empty());
    }
}
