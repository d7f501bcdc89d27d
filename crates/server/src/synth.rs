//! A generated store for benchmarks and browser tests: a campaign of N
//! targets judged in M monthly runs, with support rising month by month and
//! some targets regressing. Verdicts only (no observations): enough for
//! every page, the API and the monthly report, at a million targets.

use v6scope_model::{CheckResult, SCHEMA_VERSION, Status, Target, Verdict};
use v6scope_store::{Store, StoreError};

pub const CATEGORIES: [&str; 8] = [
    "省部级政府网站",
    "市地级政府网站",
    "中央媒体",
    "中央企业",
    "商业网站",
    "域名服务",
    "CDN",
    "云服务",
];
pub const REGIONS: [&str; 6] = ["北京", "上海", "广东", "四川", "浙江", "新疆"];

/// A deterministic hash (SplitMix64), so every generated store is the same.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// (id, title, remedy, 标题, 整改建议).
const CHECKS: [(&str, &str, &str, &str, &str); 4] = [
    (
        "ns_v6",
        "Name servers reachable over IPv6",
        "Publish AAAA records for at least two name servers and answer over IPv6.",
        "域名服务器IPv6可达",
        "为至少两台域名服务器发布AAAA记录，并通过IPv6应答。",
    ),
    (
        "web_v6",
        "Website reachable over IPv6",
        "Give the web server an AAAA record and listen on IPv6.",
        "网站IPv6可达",
        "为网站服务器配置AAAA记录并在IPv6上监听。",
    ),
    (
        "web_ipv46",
        "Same website over IPv4 and IPv6",
        "Serve the same content over both families.",
        "IPv4与IPv6网站相同",
        "通过两种协议提供相同的内容。",
    ),
    (
        "mail_v6",
        "Mail servers reachable over IPv6",
        "Give the MX hosts AAAA records.",
        "邮件服务器IPv6可达",
        "为MX主机配置AAAA记录。",
    ),
];

fn verdict(domain: &str, profile: &str, target: usize, month: usize) -> Verdict {
    let h = mix(target as u64);
    // Each target adopts IPv6 in some month; a few regress later.
    let adopted_in = (h % 24) as usize;
    let regresses_in = if h.is_multiple_of(17) {
        Some(adopted_in + 2)
    } else {
        None
    };
    let ok = month >= adopted_in && regresses_in.is_none_or(|r| month < r);
    let checks: Vec<CheckResult> = CHECKS
        .iter()
        .enumerate()
        .map(|(i, (id, title, remedy, title_zh, remedy_zh))| {
            let pass = ok || mix(h ^ i as u64).is_multiple_of(3);
            CheckResult {
                id: id.to_string(),
                title: title.to_string(),
                status: if pass { Status::Pass } else { Status::Fail },
                points: None,
                max_points: None,
                evidence: if pass {
                    vec![]
                } else {
                    vec![format!("{domain}: no working IPv6 address")]
                },
                remedy: (!pass).then(|| remedy.to_string()),
                title_zh: Some(title_zh.to_string()),
                remedy_zh: (!pass).then(|| remedy_zh.to_string()),
                counts: None,
            }
        })
        .collect();
    let passed = checks.iter().filter(|c| c.status == Status::Pass).count();
    Verdict {
        schema_version: SCHEMA_VERSION,
        domain: domain.into(),
        profile: profile.into(),
        status: if ok { Status::Pass } else { Status::Fail },
        label: String::new(),
        score: 100.0 * passed as f64 / checks.len() as f64,
        categories: Default::default(),
        checks,
    }
}

/// Writes campaign `campaign` with `targets` targets and `runs` monthly
/// runs ending in the month of `last_month` ("YYYY-MM"), then summarises
/// each run. Returns the run ids, oldest first.
pub fn generate(
    store: &mut dyn Store,
    campaign: &str,
    targets: usize,
    runs: usize,
    last_month: &str,
    profile: &str,
    mut progress: impl FnMut(&str),
) -> Result<Vec<i64>, StoreError> {
    let list: Vec<Target> = (0..targets)
        .map(|i| {
            let h = mix(i as u64 ^ 0xABCD);
            Target {
                domain: format!("site{i}.example.test"),
                category: Some(CATEGORIES[(h % CATEGORIES.len() as u64) as usize].into()),
                organisation: Some(format!("单位{}", h % 500)),
                region: Some(REGIONS[((h >> 8) % REGIONS.len() as u64) as usize].into()),
            }
        })
        .collect();
    store.put_campaign(campaign, &list)?;
    let (year, month) = last_month
        .split_once('-')
        .and_then(|(y, m)| Some((y.parse::<i64>().ok()?, m.parse::<i64>().ok()?)))
        .unwrap_or((2026, 11));
    let providers = v6scope_assess::providers::Providers::builtin();
    let mut ids = Vec::new();
    for m in 0..runs {
        let back = (runs - 1 - m) as i64;
        let total = year * 12 + (month - 1) - back;
        let started = format!("{:04}-{:02}-15T03:00:00Z", total / 12, total % 12 + 1);
        let run = store.create_run(&format!("campaign:{campaign}"), &[profile.to_string()], "{}")?;
        store.set_run_started_at(run, &started)?;
        store.add_targets(run, &list)?;
        // Months count from the first run; adoption spreads over 24 months.
        let month_index = m + 24usize.saturating_sub(runs);
        for chunk in (0..targets).collect::<Vec<_>>().chunks(20_000) {
            let verdicts: Vec<(i64, Verdict)> = chunk
                .iter()
                .map(|&i| (i as i64, verdict(&list[i].domain, profile, i, month_index)))
                .collect();
            store.save_verdicts(run, &verdicts)?;
        }
        store.finish_run(run)?;
        v6scope_report::history::summarise_run(store, run, &providers, &|_| None)?;
        progress(&format!("run {run} ({started}): {targets} targets"));
        ids.push(run);
    }
    Ok(ids)
}

#[cfg(test)]
mod tests {
    use super::*;
    use v6scope_store::prelude::*;

    #[test]
    fn support_rises_and_regressions_are_recorded() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = v6scope_store::SqliteStore::open(dir.path().join("s.db")).unwrap();
        let runs = generate(&mut store, "gen", 2000, 3, "2026-10", "cn-website", |_| {}).unwrap();
        assert_eq!(runs.len(), 3);
        let rate = |run| {
            let all = store.summary(run, "cn-website", Some("all")).unwrap();
            all[0].pass as f64 / all[0].targets as f64
        };
        assert!(rate(runs[2]) > rate(runs[0]), "adoption grows month by month");
        let regressions = store
            .changes(Some(runs[2]), None, 100_000)
            .unwrap()
            .into_iter()
            .filter(|c| c.kind == v6scope_store::ChangeKind::Regression && c.check_id == "verdict")
            .count();
        assert!(regressions > 0);
        assert_eq!(store.run(runs[0]).unwrap().started_at, "2026-08-15T03:00:00Z");
        let categories = store.summary(runs[2], "cn-website", Some("category")).unwrap();
        assert_eq!(categories.len(), CATEGORIES.len());
        assert_eq!(categories.iter().map(|s| s.targets).sum::<i64>(), 2000);
    }
}
