//! The monthly report built from a store with a campaign and runs in three
//! months: rates per month and category, changes, worst sites, plan
//! judgements, labels, CSV, errors and (when Chromium is installed) PDF.

use std::collections::BTreeMap;
use std::path::Path;
use v6scope_assess::providers::Providers;
use v6scope_model::{CheckResult, Status, Target, Verdict};
use v6scope_report::history::summarise_run;
use v6scope_report::monthly::{self, MonthlyReport, ReportError, ReportRequest};
use v6scope_report::plan::{Plan, PlanSet};
use v6scope_store::prelude::*;
use v6scope_store::{Slice, Store, TrafficRow};

const PROFILE: &str = "internetnl";
const A: &str = "省部级政府网站";
const B: &str = "市地级政府网站";
const C: &str = "中央企业";

fn targets() -> Vec<Target> {
    let mut out = Vec::new();
    for (prefix, category, region, organisation) in [
        ("a", A, Some("North"), "Org A"),
        ("b", B, Some("South"), "Org B"),
        ("c", C, None, "Org C"),
    ] {
        for i in 0..4 {
            out.push(Target {
                domain: format!("{prefix}{i}.test"),
                category: Some(category.into()),
                organisation: Some(organisation.into()),
                region: region.map(String::from),
            });
        }
    }
    out
}

fn verdict(domain: &str, pass: bool) -> Verdict {
    let i: f64 = domain[1..2].parse().unwrap();
    let base = match &domain[..1] {
        "a" => 40.0,
        "b" => 20.0,
        _ => 30.0,
    };
    let web = CheckResult {
        id: "web_v6".into(),
        title: "Web server reachable over IPv6".into(),
        status: if pass { Status::Pass } else { Status::Fail },
        points: None,
        max_points: None,
        evidence: vec!["2001:db8::80 timeout".into()],
        remedy: (!pass).then(|| "Give the web server a working AAAA record".into()),
        title_zh: None,
        remedy_zh: None,
        counts: None,
    };
    let mut checks = vec![
        web,
        CheckResult {
            id: "mx_info".into(),
            title: "Mail".into(),
            status: Status::Info,
            points: None,
            max_points: None,
            evidence: vec![],
            remedy: None,
            title_zh: None,
            remedy_zh: None,
            counts: None,
        },
    ];
    if domain.starts_with('c') {
        // Stable across runs: never a change, but something to fix.
        checks.push(CheckResult {
            id: "ns_v6".into(),
            title: "Name servers over IPv6".into(),
            status: Status::Warn,
            points: None,
            max_points: None,
            evidence: vec![],
            remedy: Some("Add IPv6 name servers".into()),
            title_zh: None,
            remedy_zh: None,
            counts: None,
        });
    }
    Verdict {
        schema_version: 1,
        domain: domain.into(),
        profile: PROFILE.into(),
        status: if pass { Status::Pass } else { Status::Fail },
        label: String::new(),
        score: if pass { 90.0 + i } else { base + i },
        categories: Default::default(),
        checks,
    }
}

/// Creates, judges, finishes, dates and summarises a run in which the
/// listed domains pass.
fn run(store: &mut dyn Store, campaign: &str, started_at: &str, passing: &[&str], summarise: bool) -> i64 {
    let targets = targets();
    let id = store
        .create_run(&format!("campaign:{campaign}"), &[PROFILE.into()], "{}")
        .unwrap();
    store.add_targets(id, &targets).unwrap();
    let verdicts: Vec<(i64, Verdict)> = targets
        .iter()
        .enumerate()
        .map(|(i, t)| (i as i64, verdict(&t.domain, passing.contains(&t.domain.as_str()))))
        .collect();
    store.save_verdicts(id, &verdicts).unwrap();
    store.finish_run(id).unwrap();
    store.set_run_started_at(id, started_at).unwrap();
    if summarise {
        summarise_run(store, id, &Providers::default(), &|_| None).unwrap();
    }
    id
}

fn month_start(day: &str) -> i64 {
    v6scope_model::days::parse(day).unwrap() * 86_400
}

/// `family` as people write it: 4 or 6.
fn traffic(start: i64, family: u8, bytes: i64, scaled: bool) -> TrafficRow {
    let family = if family == 6 {
        v6scope_model::Family::Ipv6
    } else {
        v6scope_model::Family::Ipv4
    };
    TrafficRow {
        start,
        seconds: 60,
        source: "pcap:test".into(),
        exporter: String::new(),
        interface: 0,
        asn: 0,
        organisation: String::new(),
        region: String::new(),
        family,
        bytes,
        packets: 1,
        records: 1,
        scaled,
    }
}

struct Fixture {
    _dir: tempfile::TempDir,
    store: v6scope_store::SqliteStore,
    plan: Plan,
    runs: [i64; 4],
}

/// Runs in 2026-08, 2026-09 and two in 2026-10:
///
/// | run | A passing | B passing | C passing |
/// |---|---|---|---|
/// | 1 (08-10) | a0 a1 | b0 | c0 c1 c2 |
/// | 2 (09-15) | a0 a1 a2 | b0 | c0 c1 c2 |
/// | 3 (10-03) | all | none | c0 c1 |
/// | 4 (10-20) | all | b0 b1 | c0 c1 |
fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let mut store = v6scope_store::SqliteStore::open(dir.path().join("v6scope.db")).unwrap();
    store.put_campaign("gov", &targets()).unwrap();
    let r1 = run(
        &mut store,
        "gov",
        "2026-08-10T03:00:00Z",
        &["a0.test", "a1.test", "b0.test", "c0.test", "c1.test", "c2.test"],
        true,
    );
    let r2 = run(
        &mut store,
        "gov",
        "2026-09-15T03:00:00Z",
        &[
            "a0.test", "a1.test", "a2.test", "b0.test", "c0.test", "c1.test", "c2.test",
        ],
        true,
    );
    let r3 = run(
        &mut store,
        "gov",
        "2026-10-03T03:00:00Z",
        &["a0.test", "a1.test", "a2.test", "a3.test", "c0.test", "c1.test"],
        true,
    );
    let r4 = run(
        &mut store,
        "gov",
        "2026-10-20T03:00:00Z",
        &[
            "a0.test", "a1.test", "a2.test", "a3.test", "b0.test", "b1.test", "c0.test", "c1.test",
        ],
        true,
    );
    // Provider figures as summarise_run writes them for attributed targets.
    let mut slices = store.summary(r4, PROFILE, None).unwrap();
    for (dimension, targets, pass) in [("provider:dns", 5, 3), ("provider_v4only:dns", 2, 0)] {
        slices.push(Slice {
            dimension: dimension.into(),
            key: "ExampleDNS".into(),
            targets,
            pass,
            score: 60.0,
        });
    }
    store.put_summary(r4, PROFILE, &slices, &[]).unwrap();
    // Traffic: 10 % IPv6 in September, 40 % in October; unscaled rows never count.
    store
        .add_traffic(&[
            traffic(month_start("2026-09-15"), 4, 900, true),
            traffic(month_start("2026-09-15"), 6, 100, true),
            traffic(month_start("2026-10-15"), 4, 600, true),
            traffic(month_start("2026-10-15"), 6, 400, true),
            traffic(month_start("2026-10-16"), 6, 10_000, false),
        ])
        .unwrap();
    // 1000 active subscribers seen on 2026-10-10.
    let mut sketch = v6scope_flow::users::Sketch::default();
    for i in 0..1000u128 {
        sketch.insert(0x2001_0db8_0000_0000_0000_0000_0000_0000 + (i << 64));
    }
    store
        .merge_sketch("2026-10-10", "Org A", "subscribers", &mut |_| Ok(sketch.to_bytes()))
        .unwrap();
    let plan = dir.path().join("plan.toml");
    std::fs::write(
        &plan,
        format!(
            r#"name = "test-plan"
title_zh = "测试规划"
title_en = "Test plan"
issued = "2026-01"
source = "test"

[[milestone]]
indicator = "site_support"
category = "{A}"
target = 1.0
deadline = "2027-12-31"
zh = "A 类全面支持"
en = "A fully supports"

[[milestone]]
indicator = "site_support"
category = "{B}"
target = 0.9
deadline = "2026-12-31"
zh = "B 类达到 90%"
en = "B reaches 90 %"

[[milestone]]
indicator = "site_support"
category = "{C}"
target = 0.9
deadline = "2026-12-31"
zh = "C 类达到 90%"
en = "C reaches 90 %"

[[milestone]]
indicator = "active_users"
target = 5000
deadline = "2027-12-31"
zh = "活跃用户达到 5000"
en = "5000 active users"
"#
        ),
    )
    .unwrap();
    Fixture {
        plan: Plan::load(&plan.display().to_string()).unwrap(),
        _dir: dir,
        store,
        runs: [r1, r2, r3, r4],
    }
}

fn request(f: &Fixture, period: Option<&str>, zh: bool) -> ReportRequest {
    ReportRequest {
        campaign: Some("gov".into()),
        period: period.map(String::from),
        plan: f.plan.clone(),
        profile: PROFILE.into(),
        zh,
    }
}

fn rate_of(r: &MonthlyReport, month: &str, category: &str) -> Option<f64> {
    let t = r.trend.iter().find(|t| t.month == month).unwrap();
    t.categories.get(category).map(|c| c.rate)
}

fn standing(r: &MonthlyReport, i: usize) -> String {
    serde_json::to_value(r.milestones[i].judgement.as_ref().unwrap().standing)
        .unwrap()
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn the_latest_month_has_rates_tables_changes_worst_sites_and_judgements() {
    let f = fixture();
    let r = monthly::build(&f.store, &request(&f, None, false)).unwrap();
    assert_eq!(r.period, "2026-10", "the month of the latest run");
    assert_eq!(r.run.as_ref().unwrap().id, f.runs[3]);
    assert_eq!(r.previous_run.as_ref().unwrap().id, f.runs[2]);
    assert_eq!(
        r.runs_in_period.iter().map(|x| x.id).collect::<Vec<_>>(),
        [f.runs[2], f.runs[3]]
    );
    assert!(r.runs_in_period.iter().all(|x| x.targets == 12));

    // Trend: twelve months ending with the period, the last run of each.
    assert_eq!(r.trend.len(), 12);
    assert_eq!(r.trend[0].month, "2025-11");
    assert!(r.trend[..9].iter().all(|t| t.run.is_none() && t.all.is_none()));
    for (month, a, b, c, all) in [
        ("2026-08", 0.5, 0.25, 0.75, 6),
        ("2026-09", 0.75, 0.25, 0.75, 7),
        ("2026-10", 1.0, 0.5, 0.5, 8),
    ] {
        assert_eq!(rate_of(&r, month, A), Some(a), "{month} A");
        assert_eq!(rate_of(&r, month, B), Some(b), "{month} B");
        assert_eq!(rate_of(&r, month, C), Some(c), "{month} C");
        let t = r.trend.iter().find(|t| t.month == month).unwrap();
        assert_eq!(t.all.as_ref().unwrap().pass, all, "{month}");
        assert_eq!(t.all.as_ref().unwrap().targets, 12);
    }
    let share = |m: &str| {
        r.trend
            .iter()
            .find(|t| t.month == m)
            .unwrap()
            .traffic
            .as_ref()
            .map(|t| t.share)
    };
    assert_eq!(share("2026-08"), None);
    assert_eq!(share("2026-09"), Some(0.1));
    assert_eq!(share("2026-10"), Some(0.4), "unscaled traffic is left out");

    // Tables against run 3: B went from 0 to 50 %, C stayed at 50 %.
    let b = r.categories.iter().find(|c| c.key == B).unwrap();
    assert_eq!((b.targets, b.pass, b.rate), (4, 2, 0.5));
    assert_eq!(b.change_pp, Some(50.0));
    let c = r.categories.iter().find(|c| c.key == C).unwrap();
    assert_eq!(c.change_pp, Some(0.0));
    let overall = r.overall.as_ref().unwrap();
    assert_eq!((overall.targets, overall.pass), (12, 8));
    assert!((overall.change_pp.unwrap() - 100.0 * 2.0 / 12.0).abs() < 1e-9);
    assert_eq!(r.regions.iter().map(|x| x.key.as_str()).collect::<Vec<_>>().len(), 3);
    assert!(
        r.regions.iter().any(|x| x.key.is_empty() && x.targets == 4),
        "no region"
    );
    assert_eq!(r.organisations.len(), 3);
    assert_eq!(r.providers.len(), 1);
    let p = &r.providers[0];
    assert_eq!((p.targets, p.ipv4_only), (5, 2));
    assert_eq!(p.text, "Provider ExampleDNS: IPv4-only name servers for 2 of 5 domains");

    // Changes of runs 3 and 4: b0 and c2 regressed; a3, b0 and b1 improved.
    let ch = &r.changes;
    assert_eq!((ch.verdict_regressions, ch.verdict_improvements), (2, 3));
    assert_eq!(
        (ch.regressions, ch.improvements),
        (4, 6),
        "verdict and web_v6, never info"
    );
    let web = ch.regression_groups.iter().find(|g| g.check_id == "web_v6").unwrap();
    assert_eq!(web.title, "Web server reachable over IPv6");
    assert_eq!(web.examples, ["b0.test", "c2.test"]);
    let improved = ch.improvement_groups.iter().find(|g| g.check_id == "verdict").unwrap();
    assert_eq!((improved.changes, improved.domains), (3, 3));
    assert_eq!(improved.examples, ["a3.test", "b0.test", "b1.test"]);
    assert!(!ch.regression_groups.iter().any(|g| g.check_id == "mx_info"));

    // Worst sites: lowest score first, ties in target order.
    let worst: Vec<&str> = r.worst.iter().map(|w| w.domain.as_str()).collect();
    assert_eq!(worst.len(), 12);
    assert_eq!(
        worst[..7],
        [
            "b2.test", "b3.test", "c2.test", "c3.test", "a0.test", "b0.test", "c0.test"
        ]
    );
    let c2 = &r.worst[2];
    assert_eq!(c2.category.as_deref(), Some(C));
    assert_eq!(
        c2.fixes
            .iter()
            .map(|x| (x.check_id.as_str(), x.status.as_str()))
            .collect::<Vec<_>>(),
        [("web_v6", "fail"), ("ns_v6", "warn")],
        "fail before warn; info is not a fix"
    );
    assert_eq!(
        c2.fixes[0].remedy.as_deref(),
        Some("Give the web server a working AAAA record")
    );

    // The plan: A met; B on track (0 → 50 % in 17 days); C flat: behind;
    // users measured once: no trend.
    assert_eq!(standing(&r, 0), "met");
    assert_eq!(standing(&r, 1), "on_track");
    assert_eq!(standing(&r, 2), "behind");
    assert_eq!(standing(&r, 3), "no_trend");
    let users = r.active_users.as_ref().unwrap();
    assert_eq!(users.last_day, "2026-10-10");
    assert_eq!(users.first_day, "2026-09-11");
    assert!((990..=1010).contains(&users.subscribers), "{}", users.subscribers);
    assert_eq!(r.milestones[1].measurement.population, Some(4));
    assert!(r.notes.is_empty(), "{:?}", r.notes.len());
}

#[test]
fn an_earlier_month_reports_its_own_run_and_nothing_later() {
    let f = fixture();
    let r = monthly::build(&f.store, &request(&f, Some("2026-09"), false)).unwrap();
    assert_eq!(r.run.as_ref().unwrap().id, f.runs[1]);
    assert_eq!(r.previous_run.as_ref().unwrap().id, f.runs[0]);
    assert_eq!(r.trend.last().unwrap().month, "2026-09");
    assert_eq!(rate_of(&r, "2026-09", A), Some(0.75));
    assert!(r.trend.iter().all(|t| t.month.as_str() <= "2026-09"));
    let a = r.categories.iter().find(|c| c.key == A).unwrap();
    assert_eq!(a.change_pp, Some(25.0));
    // a2 improved; nothing regressed.
    assert_eq!((r.changes.regressions, r.changes.verdict_improvements), (0, 1));
    // Users seen on 2026-10-10 are not September's.
    assert!(r.active_users.is_none());
    assert!(r.milestones[3].judgement.is_none());
    assert_eq!(r.worst[0].domain, "b1.test");
}

#[test]
fn bad_requests_say_what_is_wrong() {
    let f = fixture();
    let err = |period: &str| monthly::build(&f.store, &request(&f, Some(period), false)).unwrap_err();
    for bad in ["2026-13", "2026-1", "October", "2026-10-01"] {
        assert!(matches!(err(bad), ReportError::BadPeriod(_)), "{bad}");
    }
    let none = err("2026-07");
    assert!(matches!(none, ReportError::NoRunInPeriod { .. }));
    assert!(none.is_usage());
    assert_eq!(
        none.to_string(),
        "campaign 'gov' has no finished run in 2026-07; months with runs: 2026-08, 2026-09, 2026-10"
    );
    let mut req = request(&f, None, false);
    req.campaign = Some("nope".into());
    assert!(matches!(
        monthly::build(&f.store, &req),
        Err(ReportError::UnknownCampaign(c)) if c == "nope"
    ));
    // A server offers plans by name only: a path is not a name.
    let plans = PlanSet::load(&[]).unwrap();
    assert!(plans.get("no-such-plan").is_err());
    assert!(plans.get("/etc/passwd").is_err());
    assert!(plans.get("cn-2024-work-plan").is_ok());
}

#[test]
fn chinese_and_english_output_carry_their_own_labels() {
    let f = fixture();
    let zh = monthly::build(&f.store, &request(&f, None, true)).unwrap();
    let md = monthly::markdown(&zh);
    for label in [
        "# IPv6 监测报告：gov（2026-10）",
        "| 里程碑 | 期限 | 目标 | 监测值 | 状态 | 差距 | 说明 |",
        "1. 对照规划的总体情况",
        "已达标",
        "按期推进",
        "落后",
        "无趋势",
        "| 省部级政府网站 | 4 | 4 | 100.0 % | 91.5 | +0.0 个百分点 |",
        "服务商 ExampleDNS：5 个域名中有 2 个的域名服务器仅支持 IPv4",
        "6. 方法说明",
        "（未填地区）",
    ] {
        assert!(md.contains(label), "{label} missing in:\n{md}");
    }
    assert!(!md.contains("Milestone"), "{md}");
    let en = monthly::markdown(&monthly::build(&f.store, &request(&f, None, false)).unwrap());
    assert!(en.contains("| Milestone | Deadline |") && en.contains("on track") && !en.contains("里程碑"));
    assert!(
        en.contains("| 市地级政府网站 | 4 | 2 | 50.0 % | 56.5 | +50.0 pp |"),
        "{en}"
    );

    let page = monthly::html(&zh);
    assert!(page.starts_with("<!DOCTYPE html>") && page.contains("<html lang=\"zh-CN\">"));
    assert!(page.contains("@media print") && page.contains("break-before:page"));
    assert_eq!(
        page.matches("<svg").count(),
        3,
        "plan bars, support trend, traffic trend"
    );
    assert!(page.contains("各月 IPv6 支持率") && page.contains("<polyline"));
    for external in ["src=", "href=", "<script", "url("] {
        assert!(!page.contains(external), "{external}: the page must need no network");
    }
    let json: serde_json::Value = serde_json::from_str(&monthly::json(&zh)).unwrap();
    assert_eq!(json["milestones"][0]["judgement"]["standing"], "met");
    assert_eq!(json["schema_version"], 1);
    assert_eq!(json["changes"]["verdict_regressions"], 2);
}

#[test]
fn csv_is_long_format_with_one_figure_per_row() {
    let f = fixture();
    let r = monthly::build(&f.store, &request(&f, None, false)).unwrap();
    let text = monthly::csv(&r);
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    assert_eq!(
        reader.headers().unwrap().iter().collect::<Vec<_>>(),
        [
            "section",
            "dimension",
            "key",
            "period",
            "targets",
            "pass",
            "rate",
            "score",
            "value",
            "note"
        ]
    );
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    let find = |section: &str, dimension: &str, key: &str, period: &str| {
        rows.iter()
            .find(|r| r[0] == *section && r[1] == *dimension && r[2] == *key && r[3] == *period)
            .unwrap_or_else(|| panic!("no row {section},{dimension},{key},{period} in\n{text}"))
    };
    assert_eq!(&find("trend", "category", A, "2026-08")[6], "0.5");
    assert_eq!(&find("trend", "all", "", "2026-09")[5], "7");
    assert_eq!(&find("traffic", "all", "", "2026-10")[8], "0.4");
    let b = find("summary", "category", B, "2026-10");
    assert_eq!((&b[4], &b[5], &b[6], &b[8]), ("4", "2", "0.5", "50"));
    assert_eq!(&find("summary", "region", "", "2026-10")[4], "4");
    assert_eq!(&find("provider", "provider:dns", "ExampleDNS", "2026-10")[8], "2");
    assert_eq!(&find("regression", "check", "verdict", "2026-10")[8], "2");
    assert_eq!(&find("improvement", "check", "web_v6", "2026-10")[8], "3");
    assert_eq!(&find("worst", "site", "b2.test", "2026-10")[7], "22");
    let plan = find("plan", "site_support", B, "2026-10-20");
    assert_eq!(&plan[8], "0.5");
    assert!(plan[9].contains("standing on_track"), "{:?}", plan);
    let sections: BTreeMap<&str, usize> = rows.iter().fold(BTreeMap::new(), |mut m, r| {
        *m.entry(r.get(0).unwrap()).or_default() += 1;
        m
    });
    // 3 months × (all + 3 categories); 2 traffic months; all + 3 + 3 + 3
    // summary rows; 12 worst sites; 4 milestones.
    assert_eq!(sections["trend"], 12);
    assert_eq!(sections["traffic"], 2);
    assert_eq!(sections["summary"], 10);
    assert_eq!(sections["worst"], 12);
    assert_eq!(sections["plan"], 4);
}

#[test]
fn a_run_without_a_summary_is_computed_from_its_verdicts_and_said_so() {
    let f = fixture();
    let mut store = f.store;
    store.put_campaign("legacy", &targets()).unwrap();
    run(
        &mut store,
        "legacy",
        "2026-10-05T00:00:00Z",
        &["a0.test", "b0.test"],
        false,
    );
    let mut req = ReportRequest {
        campaign: Some("legacy".into()),
        period: Some("2026-10".into()),
        plan: Plan::load("cn-2017-action-plan").unwrap(),
        profile: PROFILE.into(),
        zh: false,
    };
    let r = monthly::build(&store, &req).unwrap();
    assert_eq!(rate_of(&r, "2026-10", A), Some(0.25));
    assert_eq!(r.overall.as_ref().unwrap().pass, 2);
    assert!(r.providers.is_empty());
    assert_eq!(
        r.notes.iter().filter(|n| n.contains("no stored summary")).count(),
        1,
        "once, though the run is read for the tables and the trend: {:?}",
        r.notes
    );
    // Campaign-less: only what flows say, in the month asked for.
    req.campaign = None;
    let r = monthly::build(&store, &req).unwrap();
    assert!(r.run.is_none() && r.worst.is_empty());
    assert!(r.active_users.is_some());
}

#[test]
fn pdf_is_printed_by_chromium_when_installed() {
    let chromium = std::env::var("V6SCOPE_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    if !Path::new(&chromium).exists() {
        println!("skipped: no Chromium at {chromium} (apt-get install chromium)");
        return;
    }
    let f = fixture();
    let r = monthly::build(&f.store, &request(&f, None, true)).unwrap();
    let out = f._dir.path().join("report.pdf");
    monthly::pdf(&monthly::html(&r), &out).unwrap();
    let bytes = std::fs::read(&out).unwrap();
    assert!(bytes.starts_with(b"%PDF"), "not a PDF");
    assert!(bytes.len() > 10_000, "{} bytes", bytes.len());
}

/// `cargo test -p v6scope-report --release -- --ignored --nocapture`: a
/// 100 000-target campaign with two summarised runs.
#[test]
#[ignore]
fn a_100k_target_campaign_reports_quickly() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = v6scope_store::SqliteStore::open(dir.path().join("big.db")).unwrap();
    let n = 100_000;
    let targets: Vec<Target> = (0..n)
        .map(|i| Target {
            domain: format!("d{i}.test"),
            category: Some(format!("category {}", i % 12)),
            organisation: Some(format!("organisation {}", i % 3000)),
            region: Some(format!("region {}", i % 34)),
        })
        .collect();
    store.put_campaign("big", &targets).unwrap();
    let started = std::time::Instant::now();
    for (month, modulus) in [("2026-09", 3), ("2026-10", 2)] {
        let id = store.create_run("campaign:big", &[PROFILE.into()], "{}").unwrap();
        store.add_targets(id, &targets).unwrap();
        let verdicts: Vec<(i64, Verdict)> = (0..n)
            .map(|i| {
                let mut v = verdict(&format!("a{}.test", i % 4), i % modulus == 0);
                v.domain = format!("d{i}.test");
                (i as i64, v)
            })
            .collect();
        store.save_verdicts(id, &verdicts).unwrap();
        store.finish_run(id).unwrap();
        store.set_run_started_at(id, &format!("{month}-01T00:00:00Z")).unwrap();
        summarise_run(&mut store, id, &Providers::default(), &|_| None).unwrap();
    }
    println!("generated in {:?}", started.elapsed());
    let started = std::time::Instant::now();
    let req = ReportRequest {
        campaign: Some("big".into()),
        period: None,
        plan: Plan::load("cn-2017-action-plan").unwrap(),
        profile: PROFILE.into(),
        zh: true,
    };
    let r = monthly::build(&store, &req).unwrap();
    let built = started.elapsed();
    let page = monthly::html(&r);
    let csv = monthly::csv(&r);
    println!(
        "built in {built:?}, rendered in {:?}: {} organisations, {} regressions, html {} bytes, csv {} bytes",
        started.elapsed() - built,
        r.organisations.len(),
        r.changes.regressions,
        page.len(),
        csv.len()
    );
    assert_eq!(r.overall.as_ref().unwrap().targets, n as i64);
    assert_eq!(r.worst.len(), 20);
    assert!(built.as_secs_f64() < 2.0, "{built:?}");
}

#[test]
fn the_client_beacon_month_is_reported_and_measures_the_active_user_share() {
    let mut f = fixture();
    // Ten clients tested on two days of October (six IPv6-capable, four
    // preferring IPv6), the same ten both days; two more in September.
    let clients: Vec<u128> = (0..12u128).map(|i| (4u128 << 120) | (0xc000_0200 + i)).collect();
    let mut put = |day: &str, group: &str, kind: &str, who: &[u128]| {
        let mut sketch = v6scope_flow::users::Sketch::default();
        for c in who {
            sketch.insert(*c);
        }
        f.store
            .merge_sketch(day, group, kind, &mut |_| Ok(sketch.to_bytes()))
            .unwrap();
    };
    for day in ["2026-10-05", "2026-10-06"] {
        for group in ["all", "org:Org A"] {
            put(day, group, "beacon-tested", &clients[..10]);
            put(day, group, "beacon-capable", &clients[..6]);
            put(day, group, "beacon-preferred", &clients[..4]);
            put(day, group, "beacon-broken", &clients[9..10]);
        }
    }
    put("2026-09-20", "all", "beacon-tested", &clients[10..]);
    let dir = tempfile::tempdir().unwrap();
    let plan = dir.path().join("plan.toml");
    std::fs::write(
        &plan,
        r#"name = "users-plan"
title_zh = "用户规划"
title_en = "Users plan"
issued = "2026-01"
source = "test"

[[milestone]]
indicator = "active_user_share"
target = 0.5
deadline = "2027-12-31"
zh = "活跃用户占比 50%"
en = "Active user share 50 %"
"#,
    )
    .unwrap();
    let mut req = request(&f, Some("2026-10"), false);
    req.plan = Plan::load(&plan.display().to_string()).unwrap();
    let r = monthly::build(&f.store, &req).unwrap();
    let c = r.clients.as_ref().expect("the beacon's month");
    assert_eq!(
        (c.first_day.as_str(), c.last_day.as_str()),
        ("2026-10-01", "2026-10-31")
    );
    let all = &c.groups[0];
    assert_eq!(all.group, "all");
    assert_eq!((all.tested, all.capable, all.preferred, all.broken), (10, 6, 4, 1));
    assert_eq!((all.capable_share, all.preferred_share), (Some(0.6), Some(0.4)));
    assert_eq!(c.groups[1].group, "org:Org A");
    // The active-user share milestone is measured by the preferred share.
    let m = &r.milestones[0].measurement;
    assert_eq!(m.latest.map(|(_, v)| v), Some(0.4));
    assert_eq!(m.population, Some(10));
    assert!(m.note.contains("client beacon"), "{}", m.note);
    let md = monthly::markdown(&r);
    assert!(md.contains("Clients: IPv6 capable and preferred"), "{md}");
    assert!(md.contains("| org:Org A | 10 | 6 (60.0 %) | 4 (40.0 %) |"), "{md}");
    let csv = monthly::csv(&r);
    assert!(csv.contains("clients,group,all,2026-10,10,4,0.4,0.6,"), "{csv}");
    // September's report sees only September's client.
    let r = monthly::build(&f.store, &request(&f, Some("2026-09"), false)).unwrap();
    assert_eq!(r.clients.unwrap().groups[0].tested, 2);
}
