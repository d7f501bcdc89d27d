//! The store's story: every operation of every trait, run against both
//! backends with the same assertions, so SQLite and PostgreSQL answer alike.
//!
//! PostgreSQL comes from `V6SCOPE_TEST_POSTGRES` (a URL of a server where
//! the test may create databases); `lab/postgres start` starts a throw-away
//! one and prints that URL. Without it the PostgreSQL tests fail, saying so:
//! they never skip.

use v6scope_model::*;
use v6scope_store::*;

/// A fresh store of one backend, removed when dropped.
struct Fixture {
    location: Location,
    _dir: Option<tempfile::TempDir>,
    _database: Option<testing::ScratchPostgres>,
}

impl Fixture {
    fn open(&self) -> Box<dyn Store> {
        open(&self.location).unwrap()
    }
}

fn sqlite() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    Fixture {
        location: Location::Sqlite(dir.path().join("story.db")),
        _dir: Some(dir),
        _database: None,
    }
}

fn postgres() -> Fixture {
    let database = testing::ScratchPostgres::create();
    Fixture {
        location: database.location.clone(),
        _dir: None,
        _database: Some(database),
    }
}

/// Each story once per backend.
macro_rules! stories {
    ($($name:ident),* $(,)?) => {
        mod on_sqlite { $(#[test] fn $name() { super::$name(super::sqlite()) })* }
        mod on_postgres { $(#[test] fn $name() { super::$name(super::postgres()) })* }
    };
}

stories!(
    runs_targets_and_results,
    campaigns_and_webhooks,
    history_pages_changes_and_timelines,
    schedules_and_jobs,
    traffic_and_sketches,
    concurrent_sketch_merges_lose_nothing,
    streams_may_use_the_store_between_rows,
    agents_leases_and_per_vantage_results,
    concurrent_claims_never_hand_out_a_target_twice,
    collectors_and_their_batches,
);

fn target(domain: &str, category: Option<&str>) -> Target {
    Target {
        domain: domain.into(),
        category: category.map(str::to_string),
        organisation: Some("Org".into()),
        region: None,
    }
}

fn observation(domain: &str) -> DomainObservation {
    DomainObservation {
        schema_version: SCHEMA_VERSION,
        target: Target {
            domain: domain.into(),
            ..Default::default()
        },
        started_at_ms: 0,
        duration_ms: 1.0,
        vantage: Vantage {
            ipv4: true,
            ipv6: true,
            detail: vec![],
            resolver_problems: vec![],
        },
        names: vec![],
        zone: ZoneObservation::default(),
        mail: MailObservation {
            status: MxStatus::NoMx,
            hosts: vec![],
            error: None,
        },
        web: vec![],
        site: None,
        error: None,
    }
}

fn verdict(domain: &str, profile: &str, status: Status, score: f64) -> Verdict {
    Verdict {
        schema_version: 1,
        domain: domain.into(),
        profile: profile.into(),
        status,
        label: status.as_str().into(),
        score,
        categories: Default::default(),
        checks: vec![],
    }
}

/// Saves one target's observation and its verdicts.
fn save(store: &mut dyn Store, run: i64, idx: i64, domain: &str, verdicts: &[Verdict]) {
    let o = observation(domain);
    store
        .save_results(
            run,
            &[TargetResult {
                idx,
                observation: &o,
                verdicts,
            }],
        )
        .unwrap();
}

fn domains(targets: &[(i64, Target)]) -> Vec<&str> {
    targets.iter().map(|(_, t)| t.domain.as_str()).collect()
}

fn runs_targets_and_results(fixture: Fixture) {
    let mut store = fixture.open();
    let profiles = vec!["internetnl".to_string(), "cn".to_string()];
    let run = store.create_run("list.txt", &profiles, "{\"v\":1}").unwrap();
    let targets = [
        target("a.test", Some("gov")),
        target("b.test", Some("gov")),
        target("c.test", None),
    ];
    store.add_targets(run, &targets).unwrap();
    // Adding the same targets again changes nothing.
    store.add_targets(run, &targets).unwrap();
    assert_eq!(
        domains(&store.pending_targets(run).unwrap()),
        ["a.test", "b.test", "c.test"]
    );
    save(
        &mut *store,
        run,
        1,
        "b.test",
        &[verdict("b.test", "internetnl", Status::Pass, 100.0)],
    );
    // Saving a target again replaces it: never a duplicate.
    save(
        &mut *store,
        run,
        1,
        "b.test",
        &[verdict("b.test", "internetnl", Status::Fail, 40.0)],
    );
    assert_eq!(store.observation_count(run).unwrap(), (1, 1));
    assert_eq!(domains(&store.pending_targets(run).unwrap()), ["a.test", "c.test"]);
    drop(store);

    // What was written survives reopening.
    let mut store = fixture.open();
    let info = store.run(run).unwrap();
    assert_eq!((info.targets, info.done), (3, 1));
    assert_eq!(info.profiles, profiles);
    assert_eq!(info.source, "list.txt");
    assert_eq!(info.config, "{\"v\":1}");
    assert!(info.finished_at.is_none());
    assert_eq!(info.started_at.len(), "2026-01-01T00:00:00Z".len());
    assert_eq!(store.run_profiles(run).unwrap(), profiles);
    assert!(matches!(store.run(999), Err(StoreError::NotFound(_))));
    assert!(matches!(store.run_profiles(999), Err(StoreError::NotFound(_))));
    assert!(matches!(store.pending_targets(999), Err(StoreError::NotFound(_))));

    save(
        &mut *store,
        run,
        0,
        "a.test",
        &[
            verdict("a.test", "internetnl", Status::Pass, 90.0),
            verdict("a.test", "cn", Status::Error, 0.0),
        ],
    );
    save(
        &mut *store,
        run,
        2,
        "c.test",
        &[verdict("c.test", "internetnl", Status::NotTestable, 0.0)],
    );
    assert_eq!(
        store.run_counts(run).unwrap(),
        RunCounts {
            targets: 3,
            observations: 3,
            errors: 1
        }
    );
    assert_eq!(store.verdict(run, 1, "internetnl").unwrap().unwrap().score, 40.0);
    assert!(store.verdict(run, 1, "cn").unwrap().is_none());
    assert_eq!(store.observation(run, 2).unwrap().unwrap().target.domain, "c.test");
    assert!(store.observation(run, 7).unwrap().is_none());
    let v: Vec<(i64, f64)> = store
        .verdicts(run, "internetnl")
        .unwrap()
        .into_iter()
        .map(|(i, v)| (i, v.score))
        .collect();
    assert_eq!(v, [(0, 90.0), (1, 40.0), (2, 0.0)]);
    let mut seen = Vec::new();
    store
        .for_each_observation(run, &mut |idx, o| seen.push((idx, o.target.domain)))
        .unwrap();
    assert_eq!(
        seen,
        [(0, "a.test".to_string()), (1, "b.test".into()), (2, "c.test".into())]
    );
    assert_eq!(
        store.support_by_category(run, "internetnl").unwrap(),
        [("".to_string(), 1, 0), ("gov".to_string(), 2, 1)]
    );
    assert_eq!(store.target_index(run, "c.test").unwrap(), Some(2));
    assert_eq!(store.target_index(run, "zzz.test").unwrap(), None);

    // Re-judging replaces verdicts of a run.
    store
        .save_verdicts(run, &[(1, verdict("b.test", "internetnl", Status::Pass, 75.0))])
        .unwrap();
    assert_eq!(store.verdict(run, 1, "internetnl").unwrap().unwrap().score, 75.0);

    assert_eq!(store.unfinished_runs().unwrap(), [(run, "list.txt".to_string())]);
    let second = store.create_run("list.txt", &profiles, "{}").unwrap();
    assert!(second > run);
    assert_eq!(
        store.previous_run(second).unwrap(),
        None,
        "the first run is not finished"
    );
    store.finish_run(run).unwrap();
    assert!(store.run(run).unwrap().finished_at.is_some());
    assert_eq!(store.previous_run(second).unwrap(), Some(run));
    store.set_run_started_at(run, "2026-01-31T00:00:00Z").unwrap();
    assert_eq!(
        store.finished_runs_of("list.txt", 10).unwrap(),
        [(run, "2026-01-31T00:00:00Z".to_string())]
    );
    assert!(matches!(
        store.set_run_started_at(999, "2026-01-31T00:00:00Z"),
        Err(StoreError::NotFound(_))
    ));
    let listed: Vec<i64> = store.run_list(10).unwrap().iter().map(|r| r.id).collect();
    assert_eq!(listed, [second, run]);
    assert_eq!(store.run_list(1).unwrap().len(), 1);
    let all: Vec<(i64, i64)> = store.runs().unwrap().iter().map(|r| (r.id, r.targets)).collect();
    assert_eq!(all, [(run, 3), (second, 0)]);
    assert_eq!(store.unfinished_runs().unwrap(), [(second, "list.txt".to_string())]);
    assert!(!store.describe().is_empty());
}

fn campaigns_and_webhooks(fixture: Fixture) {
    let mut store = fixture.open();
    assert!(store.campaigns().unwrap().is_empty());
    assert!(store.campaign_targets("gov").unwrap().is_none());
    store
        .put_campaign("gov", &[target("a.test", Some("x")), target("b.test", None)])
        .unwrap();
    store.put_campaign("banks", &[target("bank.test", None)]).unwrap();
    let listed = store.campaigns().unwrap();
    assert_eq!(
        listed.iter().map(|c| (c.name.as_str(), c.targets)).collect::<Vec<_>>(),
        [("banks", 1), ("gov", 2)]
    );
    let created = listed[1].created_at.clone();
    // Replacing keeps the campaign (and when it was made), with the new list.
    store.put_campaign("gov", &[target("c.test", None)]).unwrap();
    let gov = store.campaign_targets("gov").unwrap().unwrap();
    assert_eq!(gov, [target("c.test", None)]);
    let listed = store.campaigns().unwrap();
    assert_eq!((listed[1].targets, listed[1].created_at.clone()), (1, created));
    assert!(store.campaign_exists("gov").unwrap());
    assert!(!store.campaign_exists("nope").unwrap());

    assert_eq!(store.webhook("gov").unwrap(), None);
    store.set_webhook("gov", Some("https://hooks.example/a")).unwrap();
    store.set_webhook("gov", Some("https://hooks.example/b")).unwrap();
    assert_eq!(
        store.webhook("gov").unwrap().as_deref(),
        Some("https://hooks.example/b")
    );
    store.set_webhook("gov", None).unwrap();
    assert_eq!(store.webhook("gov").unwrap(), None);

    store.set_webhook("gov", Some("https://hooks.example/c")).unwrap();
    let schedule = store.add_schedule("gov", "0 3 * * *", &[], 0).unwrap();
    assert!(store.delete_campaign("gov").unwrap());
    assert!(!store.delete_campaign("gov").unwrap());
    assert!(store.campaign_targets("gov").unwrap().is_none());
    assert_eq!(store.webhook("gov").unwrap(), None);
    assert!(store.schedules().unwrap().iter().all(|s| s.id != schedule));
    assert_eq!(store.campaigns().unwrap().len(), 1);
}

fn history_pages_changes_and_timelines(fixture: Fixture) {
    let mut store = fixture.open();
    let profiles = vec!["internetnl".to_string()];
    let source = "campaign:gov";
    let first = store.create_run(source, &profiles, "{}").unwrap();
    let targets = [
        target("a.test", Some("gov")),
        target("b.test", Some("bank")),
        target("c.test", Some("gov")),
        target("d.test", Some("gov")),
    ];
    store.add_targets(first, &targets).unwrap();
    for (idx, (d, status, score)) in [
        ("a.test", Status::Pass, 100.0),
        ("b.test", Status::Pass, 80.0),
        ("c.test", Status::Fail, 20.0),
    ]
    .into_iter()
    .enumerate()
    {
        save(
            &mut *store,
            first,
            idx as i64,
            d,
            &[verdict(d, "internetnl", status, score)],
        );
    }
    store.finish_run(first).unwrap();
    let second = store.create_run(source, &profiles, "{}").unwrap();
    store.add_targets(second, &targets).unwrap();
    for (idx, (d, status, score)) in [
        ("a.test", Status::Fail, 20.0),
        ("b.test", Status::Pass, 80.0),
        ("c.test", Status::Pass, 90.0),
        ("d.test", Status::Fail, 20.0),
    ]
    .into_iter()
    .enumerate()
    {
        save(
            &mut *store,
            second,
            idx as i64,
            d,
            &[verdict(d, "internetnl", status, score)],
        );
    }

    // Every target with its verdict, in order; one without has none.
    let mut rows = Vec::new();
    store
        .for_each_target_verdict(first, "internetnl", &mut |t| rows.push((t.domain, t.status, t.score)))
        .unwrap();
    assert_eq!(rows[2], ("c.test".to_string(), Some(Status::Fail), Some(20.0)));
    assert_eq!(rows[3], ("d.test".to_string(), None, None));

    // A page is worst first, ties by target order; totals are counted ...
    let all = TargetFilter::default();
    let (page, total) = store.targets_page(second, "internetnl", &all, 2, 0).unwrap();
    let names: Vec<&str> = page.iter().map(|t| t.domain.as_str()).collect();
    assert_eq!((names, total), (vec!["a.test", "d.test"], 4));
    let (page, _) = store.targets_page(second, "internetnl", &all, 2, 2).unwrap();
    assert_eq!(
        page.iter().map(|t| t.domain.as_str()).collect::<Vec<_>>(),
        ["b.test", "c.test"]
    );
    let failing = TargetFilter {
        status: Some(Status::Fail),
        category: Some("gov".into()),
        ..Default::default()
    };
    let (page, total) = store.targets_page(second, "internetnl", &failing, 10, 0).unwrap();
    assert_eq!((page.len(), total), (2, 2));
    assert_eq!(page[0].status, Some(Status::Fail));
    // ... or come from the summary once there is one.
    let slices = [
        Slice {
            dimension: "all".into(),
            key: String::new(),
            targets: 4,
            pass: 2,
            score: 52.5,
        },
        Slice {
            dimension: "category".into(),
            key: "gov".into(),
            targets: 3,
            pass: 1,
            score: 43.3,
        },
        Slice {
            dimension: "category".into(),
            key: "bank".into(),
            targets: 1,
            pass: 1,
            score: 80.0,
        },
    ];
    let uses = [ProviderUseRow {
        idx: 1,
        provider: "ExampleCDN".into(),
        role: "web".into(),
        ipv6: false,
        evidence: "CNAME x.cdn.example".into(),
    }];
    store.put_summary(second, "internetnl", &slices, &uses).unwrap();
    store.put_summary(second, "internetnl", &slices, &[]).unwrap();
    let gov = TargetFilter {
        category: Some("gov".into()),
        ..Default::default()
    };
    assert_eq!(store.targets_page(second, "internetnl", &gov, 1, 0).unwrap().1, 3);
    let none = TargetFilter {
        region: Some("nowhere".into()),
        ..Default::default()
    };
    assert_eq!(
        store.targets_page(second, "internetnl", &none, 10, 0).unwrap(),
        (vec![], 0)
    );
    let keys: Vec<(String, String)> = store
        .summary(second, "internetnl", None)
        .unwrap()
        .into_iter()
        .map(|s| (s.dimension, s.key))
        .collect();
    assert_eq!(
        keys,
        [
            ("all".to_string(), String::new()),
            ("category".into(), "bank".into()),
            ("category".into(), "gov".into())
        ]
    );
    assert_eq!(store.summary(second, "internetnl", Some("category")).unwrap().len(), 2);
    assert_eq!(store.summary(second, "cn", None).unwrap(), vec![]);
    assert_eq!(store.provider_uses(second).unwrap(), uses);

    let best: Vec<String> = store
        .best_targets(second, "internetnl", 2)
        .unwrap()
        .into_iter()
        .map(|t| t.domain)
        .collect();
    assert_eq!(best, ["c.test", "b.test"]);
    let worst: Vec<(String, f64)> = store
        .worst_targets(second, "internetnl", 2)
        .unwrap()
        .into_iter()
        .map(|(t, v)| (t.domain, v.score))
        .collect();
    assert_eq!(worst, [("a.test".to_string(), 20.0), ("d.test".to_string(), 20.0)]);

    let timeline: Vec<(i64, Status)> = store
        .timeline(source, "a.test")
        .unwrap()
        .into_iter()
        .map(|p| (p.run_id, p.status))
        .collect();
    assert_eq!(timeline, [(first, Status::Pass), (second, Status::Fail)]);
    assert!(store.timeline("campaign:other", "a.test").unwrap().is_empty());

    // Pairs: targets both runs had, matched by domain.
    let mut pairs = Vec::new();
    store
        .for_each_verdict_pair(second, first, "internetnl", &mut |then, now| {
            pairs.push((now.domain, then.status, now.status))
        })
        .unwrap();
    assert_eq!(pairs.len(), 3, "d.test had no verdict before");
    assert_eq!(pairs[0], ("a.test".to_string(), Status::Pass, Status::Fail));

    let change = |domain: &str, kind, check: &str, from, to| Change {
        run_id: second,
        previous_run: first,
        domain: domain.into(),
        profile: "internetnl".into(),
        kind,
        check_id: check.into(),
        from_status: from,
        to_status: to,
        text: format!("{domain} {check}"),
    };
    let changes = [
        change("a.test", ChangeKind::Regression, "web_v6", Status::Pass, Status::Fail),
        change("c.test", ChangeKind::Improvement, "web_v6", Status::Fail, Status::Pass),
        change("a.test", ChangeKind::Regression, "verdict", Status::Pass, Status::Fail),
    ];
    store.put_changes("gov", second, &changes[..1]).unwrap();
    // Replacing a run's changes drops what it had.
    store.put_changes("gov", second, &changes).unwrap();
    assert_eq!(store.changes(Some(second), None, 10).unwrap(), changes);
    assert_eq!(store.changes(None, Some("c.test"), 10).unwrap(), [changes[1].clone()]);
    assert_eq!(
        store.changes(Some(second), Some("a.test"), 1).unwrap(),
        [changes[0].clone()]
    );
    assert_eq!(store.changes(None, None, 10).unwrap().len(), 3);
    assert!(store.changes(Some(first), None, 10).unwrap().is_empty());
    let groups = store.change_groups(&[first, second], "internetnl", 5).unwrap();
    let shape: Vec<(ChangeKind, &str, i64, Vec<String>)> = groups
        .iter()
        .map(|g| (g.kind, g.check_id.as_str(), g.changes, g.examples.clone()))
        .collect();
    assert_eq!(
        shape,
        [
            (ChangeKind::Improvement, "web_v6", 1, vec!["c.test".to_string()]),
            (ChangeKind::Regression, "verdict", 1, vec!["a.test".to_string()]),
            (ChangeKind::Regression, "web_v6", 1, vec!["a.test".to_string()]),
        ]
    );
    assert_eq!(
        (
            groups[0].sample_from,
            groups[0].sample_to,
            groups[0].sample_text.as_str()
        ),
        (Status::Fail, Status::Pass, "c.test web_v6")
    );
    assert!(store.change_groups(&[], "internetnl", 5).unwrap().is_empty());
}

fn schedules_and_jobs(fixture: Fixture) {
    let mut store = fixture.open();
    assert_eq!(store.counters().unwrap(), Counters::default());
    let args = vec!["--profile".to_string(), "cn".to_string()];
    let id = store.add_schedule("gov", "0 3 * * *", &args, 1_700_000_000).unwrap();
    let schedules = store.schedules().unwrap();
    assert_eq!(
        schedules,
        [Schedule {
            id,
            campaign: "gov".into(),
            cron: "0 3 * * *".into(),
            args: args.clone(),
            last_fired: Some(1_700_000_000),
        }]
    );
    let fired = store.fire_schedule(&schedules[0], 1_700_010_000).unwrap();
    assert_eq!(store.schedules().unwrap()[0].last_fired, Some(1_700_010_000));
    let job = store.job(fired).unwrap().unwrap();
    assert_eq!(
        (job.state, job.reason.clone(), job.args.clone(), job.run_id),
        (JobState::Queued, format!("schedule {id}"), args.clone(), None)
    );
    let manual = store.queue_job("gov", &[], "api").unwrap();
    assert!(manual > fired);
    assert_eq!(
        store.jobs(10).unwrap().iter().map(|j| j.id).collect::<Vec<_>>(),
        [manual, fired]
    );
    assert_eq!(
        store.open_jobs().unwrap().iter().map(|j| j.id).collect::<Vec<_>>(),
        [fired, manual]
    );
    let run = store.create_run("campaign:gov", &[], "{}").unwrap();
    store.attach_job(fired, run).unwrap();
    assert!(matches!(store.attach_job(999, run), Err(StoreError::NotFound(_))));
    let job = store.job(fired).unwrap().unwrap();
    assert_eq!(
        (job.state, job.run_id, job.finished_at),
        (JobState::Running, Some(run), None)
    );
    assert_eq!(
        store.counters().unwrap(),
        Counters {
            runs: 1,
            runs_finished: 0,
            jobs_queued: 1,
            jobs_running: 1
        }
    );
    store
        .set_job_state(fired, JobState::Failed, Some("resolver down"))
        .unwrap();
    let job = store.job(fired).unwrap().unwrap();
    assert_eq!(
        (job.state, job.error.as_deref()),
        (JobState::Failed, Some("resolver down"))
    );
    assert!(job.finished_at.is_some());
    assert_eq!(store.open_jobs().unwrap().len(), 1);
    assert!(store.job(999).unwrap().is_none());
    assert!(store.delete_schedule(id).unwrap());
    assert!(!store.delete_schedule(id).unwrap());
}

fn traffic_row(start: i64, exporter: &str, family: Family, bytes: i64, scaled: bool) -> TrafficRow {
    TrafficRow {
        start,
        seconds: 60,
        source: "udp://[::]:2055".into(),
        exporter: exporter.into(),
        interface: 3,
        asn: 64500,
        organisation: "Org A".into(),
        region: "north".into(),
        family,
        bytes,
        packets: bytes / 100,
        records: 1,
        scaled,
    }
}

fn traffic_and_sketches(fixture: Fixture) {
    let mut store = fixture.open();
    // 2026-10-10T10:00:00Z and a minute later, and one in November.
    let t = 1_791_626_400;
    let november = 1_793_577_600;
    store
        .add_traffic(&[
            traffic_row(t, "192.0.2.1", Family::Ipv4, 3000, true),
            traffic_row(t, "192.0.2.1", Family::Ipv6, 1000, true),
            // The same key twice in one call, and again in another: summed.
            traffic_row(t, "192.0.2.1", Family::Ipv6, 500, true),
            traffic_row(t + 60, "192.0.2.2", Family::Ipv6, 700, true),
            traffic_row(t, "192.0.2.3", Family::Ipv6, 9, false),
            traffic_row(november, "192.0.2.1", Family::Ipv4, 100, true),
        ])
        .unwrap();
    store
        .add_traffic(&[traffic_row(t, "192.0.2.1", Family::Ipv6, 500, true)])
        .unwrap();
    let by_day: Vec<(String, Family, i64, i64, i64)> = store
        .traffic_by(Period::Day, None)
        .unwrap()
        .into_iter()
        .map(|r| (r.period, r.family, r.bytes, r.packets, r.records))
        .collect();
    assert_eq!(
        by_day,
        [
            ("2026-10-10".to_string(), Family::Ipv4, 3000, 30, 1),
            ("2026-10-10".into(), Family::Ipv6, 2700, 27, 4),
            ("2026-11-02".into(), Family::Ipv4, 100, 1, 1),
        ]
    );
    let by_minute: Vec<(String, String, i64)> = store
        .traffic_by(Period::Minute, Some(TrafficGroup::Exporter))
        .unwrap()
        .into_iter()
        .filter(|r| r.family == Family::Ipv6)
        .map(|r| (r.period, r.group, r.bytes))
        .collect();
    assert_eq!(
        by_minute,
        [
            ("2026-10-10T10:00".to_string(), "192.0.2.1".to_string(), 2000),
            ("2026-10-10T10:01".into(), "192.0.2.2".into(), 700),
        ]
    );
    for (group, value) in [
        (TrafficGroup::Interface, "3"),
        (TrafficGroup::Asn, "64500"),
        (TrafficGroup::Organisation, "Org A"),
        (TrafficGroup::Region, "north"),
        (TrafficGroup::Source, "udp://[::]:2055"),
    ] {
        let rows = store.traffic_by(Period::Hour, Some(group)).unwrap();
        assert!(rows.iter().all(|r| r.group == value), "{group:?}: {rows:?}");
        assert_eq!(rows[0].period, "2026-10-10T10");
    }
    let month: Vec<(String, i64)> = store
        .traffic_by(Period::Month, None)
        .unwrap()
        .into_iter()
        .map(|r| (r.period, r.bytes))
        .collect();
    assert_eq!(
        month,
        [
            ("2026-10".to_string(), 3000),
            ("2026-10".into(), 2700),
            ("2026-11".into(), 100)
        ]
    );
    let unscaled = store.traffic_unscaled(Period::Day).unwrap();
    assert_eq!(unscaled.len(), 1);
    assert_eq!((unscaled[0].group.as_str(), unscaled[0].bytes), ("192.0.2.3", 9));
    let months = store.traffic_months(t, november).unwrap();
    assert_eq!(months.iter().map(|m| m.bytes).collect::<Vec<_>>(), [3000, 2700]);
    assert!(store.traffic_months(0, 1).unwrap().is_empty());

    // Sketches: merged atomically; a failing merge keeps what was stored.
    let put = |store: &mut dyn Store, day: &str, org: &str, bytes: &[u8]| {
        let bytes = bytes.to_vec();
        store
            .merge_sketch(day, org, "subscribers", &mut |stored| {
                let mut out = stored.map(<[u8]>::to_vec).unwrap_or_default();
                out.extend_from_slice(&bytes);
                Ok(out)
            })
            .unwrap()
    };
    put(&mut *store, "2026-10-10", "Org A", b"ab");
    put(&mut *store, "2026-10-10", "Org A", b"c");
    put(&mut *store, "2026-10-11", "Org A", b"x");
    put(&mut *store, "2026-10-10", "Org B", b"y");
    assert_eq!(
        store.sketch("2026-10-10", "Org A", "subscribers").unwrap().as_deref(),
        Some(&b"abc"[..])
    );
    assert_eq!(store.sketch("2026-10-10", "Org A", "addresses").unwrap(), None);
    let failed = store.merge_sketch("2026-10-10", "Org A", "subscribers", &mut |_| {
        Err("bad precision".into())
    });
    assert!(matches!(failed, Err(StoreError::Corrupt(_))), "{failed:?}");
    assert_eq!(
        store.sketch("2026-10-10", "Org A", "subscribers").unwrap().as_deref(),
        Some(&b"abc"[..])
    );
    let window: Vec<(String, String)> = store
        .sketches("2026-10-10", "2026-10-11", "subscribers")
        .unwrap()
        .into_iter()
        .map(|s| (s.day, s.organisation))
        .collect();
    assert_eq!(
        window,
        [
            ("2026-10-10".to_string(), "Org A".to_string()),
            ("2026-10-10".into(), "Org B".into()),
            ("2026-10-11".into(), "Org A".into())
        ]
    );
    assert_eq!(
        store.latest_sketch_day("subscribers", "2026-10-31").unwrap().as_deref(),
        Some("2026-10-11")
    );
    assert_eq!(store.latest_sketch_day("subscribers", "2026-10-09").unwrap(), None);
}

/// Two writers (each with its own connection, as two collectors have)
/// merge into the same day and organisation at once: every update lands.
fn concurrent_sketch_merges_lose_nothing(fixture: Fixture) {
    const EACH: u32 = 150;
    let writers: Vec<_> = (0..2u32)
        .map(|w| {
            let mut store = fixture.open();
            std::thread::spawn(move || {
                for i in 0..EACH {
                    let item = w * 1000 + i;
                    store
                        .merge_sketch("2026-10-10", "Org A", "subscribers", &mut |stored| {
                            let mut set: Vec<u32> = match stored {
                                Some(b) => number_list(b)?,
                                None => Vec::new(),
                            };
                            set.push(item);
                            // A writer that reads, pauses and writes loses
                            // the other's update unless the merge is atomic.
                            std::thread::yield_now();
                            Ok(set
                                .iter()
                                .map(|n| n.to_string())
                                .collect::<Vec<_>>()
                                .join(",")
                                .into_bytes())
                        })
                        .unwrap();
                }
            })
        })
        .collect();
    for w in writers {
        w.join().unwrap();
    }
    let store = fixture.open();
    let stored = store.sketch("2026-10-10", "Org A", "subscribers").unwrap().unwrap();
    let mut set = number_list(&stored).unwrap();
    set.sort_unstable();
    set.dedup();
    assert_eq!(set.len(), 2 * EACH as usize, "updates were lost");
}

fn number_list(bytes: &[u8]) -> std::result::Result<Vec<u32>, String> {
    std::str::from_utf8(bytes)
        .map_err(|e| e.to_string())?
        .split(',')
        .map(|n| n.parse::<u32>().map_err(|e| e.to_string()))
        .collect()
}

/// A streaming callback may read the store itself (the report does), and
/// a run longer than one read chunk streams whole and in order.
fn streams_may_use_the_store_between_rows(fixture: Fixture) {
    let mut store = fixture.open();
    let run = store.create_run("big.txt", &["internetnl".to_string()], "{}").unwrap();
    let n = 4500;
    let targets: Vec<Target> = (0..n).map(|i| target(&format!("t{i}.test"), None)).collect();
    store.add_targets(run, &targets).unwrap();
    let observations: Vec<DomainObservation> = targets.iter().map(|t| observation(&t.domain)).collect();
    let verdicts: Vec<Vec<Verdict>> = targets
        .iter()
        .map(|t| vec![verdict(&t.domain, "internetnl", Status::Pass, 100.0)])
        .collect();
    let batch: Vec<TargetResult<'_>> = (0..n)
        .map(|i| TargetResult {
            idx: i as i64,
            observation: &observations[i],
            verdicts: &verdicts[i],
        })
        .collect();
    store.save_results(run, &batch).unwrap();
    let store = store;
    let mut seen = 0i64;
    store
        .for_each_target_verdict(run, "internetnl", &mut |t| {
            assert_eq!(t.idx, seen);
            seen += 1;
        })
        .unwrap();
    assert_eq!(seen, n as i64);
    let mut count = 0;
    let reader: &dyn Store = &*store;
    reader
        .for_each_observation(run, &mut |idx, o| {
            if idx % 1000 == 0 {
                // The store, used from inside its own stream.
                assert_eq!(reader.target_index(run, &o.target.domain).unwrap(), Some(idx));
            }
            count += 1;
        })
        .unwrap();
    assert_eq!(count, n);
    let mut pairs = 0;
    reader
        .for_each_verdict_pair(run, run, "internetnl", &mut |_, _| pairs += 1)
        .unwrap();
    assert_eq!(pairs, n);
}

fn register(store: &mut dyn Store, name: &str, vantage: &str) -> i64 {
    let id = store.add_agent(name, &format!("hash-of-{name}")).unwrap();
    let labels = std::collections::BTreeMap::from([("isp".to_string(), vantage.to_string())]);
    store
        .register_agent(
            id,
            &AgentRegistration {
                vantage,
                labels: &labels,
                concurrency: 3,
                version: "test",
                selftest: "{}",
            },
            1000,
        )
        .unwrap();
    id
}

fn agents_leases_and_per_vantage_results(fixture: Fixture) {
    let t0 = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let mut store = fixture.open();
    let store = &mut *store;
    let a = register(store, "agent-a", "isp-a");
    let a2 = register(store, "agent-a2", "isp-a");
    let b = register(store, "agent-b", "isp-b");
    assert!(matches!(
        store.add_agent("agent-a", "other"),
        Err(StoreError::Conflict(_))
    ));
    assert!(matches!(
        store.add_agent("agent-x", "hash-of-agent-a"),
        Err(StoreError::Conflict(_))
    ));
    let found = store.agent_by_token("hash-of-agent-a").unwrap().unwrap();
    assert_eq!(
        (found.id, found.vantage.as_deref(), found.concurrency),
        (a, Some("isp-a"), 3)
    );
    assert_eq!(found.labels["isp"], "isp-a");
    assert!(store.agent_by_token("nothing").unwrap().is_none());

    let run = store
        .create_run("campaign:fleet", &["internetnl".into()], "{}")
        .unwrap();
    let targets: Vec<Target> = (0..5).map(|i| target(&format!("t{i}.example"), None)).collect();
    store.add_targets(run, &targets).unwrap();
    store.set_run_vantages(run, &["isp-b".into(), "isp-a".into()]).unwrap();
    assert_eq!(store.run_vantages(run).unwrap(), ["isp-a", "isp-b"]);

    // Flow control: never more than the declared concurrency at once.
    let first = store.claim(a, "isp-a", 3, t0, t0 + 100).unwrap();
    assert_eq!(first.iter().map(|l| l.idx).collect::<Vec<_>>(), [0, 1, 2]);
    assert_eq!(first[0].target.domain, "t0.example");
    assert!(store.claim(a, "isp-a", 3, t0 + 1, t0 + 101).unwrap().is_empty());
    let other = store.claim(a2, "isp-a", 3, t0 + 1, t0 + 101).unwrap();
    assert_eq!(other.iter().map(|l| l.idx).collect::<Vec<_>>(), [3, 4]);
    assert_eq!(store.agents().unwrap().iter().find(|r| r.id == a).unwrap().leased, 3);

    // Results: stored once, resends are duplicates, targets not given are refused.
    let observations: Vec<DomainObservation> = (0..5).map(|i| observation(&format!("t{i}.example"))).collect();
    let obs = &observations[0];
    let v = [verdict("t0.example", "internetnl", Status::Pass, 100.0)];
    let result = |idx: i64| VantageResult {
        run,
        idx,
        observation: &observations[idx as usize],
        verdicts: &v,
    };
    let acks = store
        .deliver(a, "isp-a", &[result(0), result(0), result(3), result(1)], t0 + 2)
        .unwrap();
    assert_eq!(
        acks,
        [
            Delivery::Stored,
            Delivery::Duplicate,
            Delivery::NotGiven,
            Delivery::Stored
        ]
    );
    assert_eq!(
        store.deliver(a, "isp-a", &[result(0)], t0 + 3).unwrap(),
        [Delivery::Duplicate]
    );
    // An observation of another name under a held lease is refused.
    let other = observation("t9.example");
    let misfiled = VantageResult {
        run,
        idx: 2,
        observation: &other,
        verdicts: &v,
    };
    assert_eq!(
        store.deliver(a, "isp-a", &[misfiled], t0 + 3).unwrap(),
        [Delivery::NotGiven]
    );
    // Not ready until every vantage has delivered.
    assert!(store.ready_targets(run, 10).unwrap().is_empty());
    let bs = store.claim(b, "isp-b", 3, t0 + 3, t0 + 103).unwrap();
    assert_eq!(bs.len(), 3);
    assert_eq!(
        store.deliver(b, "isp-b", &[result(0)], t0 + 4).unwrap(),
        [Delivery::Stored]
    );
    let ready = store.ready_targets(run, 10).unwrap();
    assert_eq!(ready.len(), 1);
    assert_eq!(ready[0].0, 0);
    assert_eq!(
        ready[0]
            .1
            .iter()
            .map(|r| (r.vantage.as_str(), r.agent.as_str()))
            .collect::<Vec<_>>(),
        [("isp-a", "agent-a"), ("isp-b", "agent-b")]
    );
    assert_eq!(ready[0].1[0].verdicts, v);
    store
        .save_combined(
            run,
            &[TargetResult {
                idx: 0,
                observation: obs,
                verdicts: &v,
            }],
        )
        .unwrap();
    assert!(store.ready_targets(run, 10).unwrap().is_empty());
    assert_eq!(store.observation_count(run).unwrap(), (1, 1));
    assert_eq!(store.vantage_results(run, 0).unwrap().len(), 2);

    // Each vantage's status is kept per profile: tallies and differences.
    let failed = [verdict("t1.example", "internetnl", Status::Fail, 40.0)];
    let b_fails = VantageResult {
        run,
        idx: 1,
        observation: &observations[1],
        verdicts: &failed,
    };
    assert_eq!(
        store.deliver(b, "isp-b", &[b_fails], t0 + 5).unwrap(),
        [Delivery::Stored]
    );
    let tallies = store.vantage_tallies(run, "internetnl").unwrap();
    let brief: Vec<(&str, Status, i64)> = tallies
        .iter()
        .map(|t| (t.vantage.as_str(), t.status, t.targets))
        .collect();
    assert_eq!(
        brief,
        [
            ("isp-a", Status::Pass, 2),
            ("isp-b", Status::Fail, 1),
            ("isp-b", Status::Pass, 1)
        ]
    );
    assert!((tallies[1].score - 40.0).abs() < 1e-9);
    assert!(store.vantage_tallies(run, "nist").unwrap().is_empty());
    let (count, differences) = store.vantage_differences(run, "internetnl", 10).unwrap();
    assert_eq!(count, 1);
    assert_eq!(
        differences,
        [VantageDifference {
            idx: 1,
            domain: "t1.example".into(),
            statuses: vec![("isp-a".into(), Status::Pass), ("isp-b".into(), Status::Fail)],
        }]
    );
    assert_eq!(store.vantage_differences(run, "internetnl", 0).unwrap(), (1, vec![]));

    // Edge sightings: kept once per (target, vantage, provider, product, name).
    let edge = |idx: i64, vantage: &str, v6_ok: bool| EdgeRow {
        idx,
        vantage: vantage.into(),
        provider: "lab-cdn".into(),
        kind: "cdn".into(),
        product: String::new(),
        name: format!("t{idx}.example"),
        region: "north".into(),
        isp: vantage.into(),
        v4: Some("192.0.2.1".into()),
        v6: v6_ok.then(|| "2001:db8::1".into()),
        v4_ok: true,
        v6_ok,
    };
    let sightings = [edge(1, "isp-b", false), edge(1, "isp-a", true), edge(0, "isp-a", true)];
    store.save_edges(run, &sightings).unwrap();
    store.save_edges(run, &sightings[..1]).unwrap();
    store.save_edges(run, &[]).unwrap();
    assert_eq!(
        store.edges(run).unwrap(),
        [sightings[2].clone(), sightings[1].clone(), sightings[0].clone()]
    );
    assert!(store.edges(run + 1).unwrap().is_empty());

    // Heartbeats keep leases; a silent agent's run out and go to another.
    store.heartbeat(a, t0 + 90, t0 + 190).unwrap();
    store.heartbeat(a2, t0 + 90, t0 + 190).unwrap();
    assert!(
        store.claim(a2, "isp-a", 3, t0 + 150, t0 + 250).unwrap().is_empty(),
        "a2 still holds 3 and 4"
    );
    let taken = store.claim(a2, "isp-a", 5, t0 + 200, t0 + 300).unwrap();
    assert_eq!(
        taken.iter().map(|l| l.idx).collect::<Vec<_>>(),
        [2, 3, 4],
        "the leases ran out"
    );
    assert_eq!(
        store.deliver(a, "isp-a", &[result(2)], t0 + 201).unwrap(),
        [Delivery::NotGiven]
    );
    assert_eq!(
        store.deliver(a2, "isp-a", &[result(2), result(3)], t0 + 201).unwrap(),
        [Delivery::Stored; 2]
    );
    let progress = store.fleet_progress(run, t0 + 201).unwrap();
    assert_eq!(
        progress,
        [
            VantageProgress {
                vantage: "isp-a".into(),
                done: 4,
                leased: 1
            },
            VantageProgress {
                vantage: "isp-b".into(),
                done: 2,
                leased: 0
            },
        ]
    );
    // A revoked agent's token no longer works and its leases are free.
    assert!(store.revoke_agent("agent-b").unwrap());
    assert!(!store.revoke_agent("nobody").unwrap());
    assert!(store.agent_by_token("hash-of-agent-b").unwrap().is_none());
    assert!(
        store
            .agents()
            .unwrap()
            .iter()
            .find(|r| r.name == "agent-b")
            .unwrap()
            .revoked
    );
    let b2 = register(store, "agent-b2", "isp-b");
    let again = store.claim(b2, "isp-b", 10, t0 + 202, t0 + 302).unwrap();
    assert_eq!(again.iter().map(|l| l.idx).collect::<Vec<_>>(), [2, 3, 4]);
    // A finished run hands out nothing.
    store.finish_run(run).unwrap();
    assert!(store.claim(a2, "isp-a", 10, t0 + 1000, t0 + 1100).unwrap().is_empty());
}

fn concurrent_claims_never_hand_out_a_target_twice(fixture: Fixture) {
    let mut store = fixture.open();
    let run = store
        .create_run("campaign:fleet", &["internetnl".into()], "{}")
        .unwrap();
    let targets: Vec<Target> = (0..400).map(|i| target(&format!("t{i}.example"), None)).collect();
    store.add_targets(run, &targets).unwrap();
    store.set_run_vantages(run, &["isp-a".into()]).unwrap();
    let agents: Vec<i64> = (0..4)
        .map(|i| register(&mut *store, &format!("agent-{i}"), "isp-a"))
        .collect();
    drop(store);
    let location = &fixture.location;
    let claimed: Vec<Vec<i64>> = std::thread::scope(|s| {
        let handles: Vec<_> = agents
            .iter()
            .map(|&agent| {
                s.spawn(move || {
                    let mut store = open(location).unwrap();
                    let mut mine = Vec::new();
                    loop {
                        let leases = store.claim(agent, "isp-a", 7, 1000, 5000).unwrap();
                        if leases.is_empty() {
                            break;
                        }
                        let observations: Vec<DomainObservation> =
                            leases.iter().map(|l| observation(&l.target.domain)).collect();
                        let results: Vec<VantageResult<'_>> = leases
                            .iter()
                            .zip(&observations)
                            .map(|(l, obs)| VantageResult {
                                run,
                                idx: l.idx,
                                observation: obs,
                                verdicts: &[],
                            })
                            .collect();
                        let acks = store.deliver(agent, "isp-a", &results, 1000).unwrap();
                        assert!(acks.iter().all(|a| *a == Delivery::Stored), "{acks:?}");
                        mine.extend(leases.iter().map(|l| l.idx));
                    }
                    mine
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut all: Vec<i64> = claimed.concat();
    all.sort();
    assert_eq!(all, (0..400).collect::<Vec<_>>(), "each target once");
    let store = fixture.open();
    assert_eq!(store.ready_targets(run, 1000).unwrap().len(), 400);
}

fn sketch_of(values: std::ops::Range<u128>) -> v6scope_flow::users::Sketch {
    let mut s = v6scope_flow::users::Sketch::default();
    for v in values {
        s.insert(v);
    }
    s
}

fn union_bytes(stored: Option<&[u8]>, arriving: &[u8]) -> std::result::Result<Vec<u8>, String> {
    use v6scope_flow::users::Sketch;
    let mut merged = Sketch::from_bytes(arriving).map_err(|e| e.to_string())?;
    if let Some(stored) = stored {
        merged
            .merge(&Sketch::from_bytes(stored).map_err(|e| e.to_string())?)
            .map_err(|e| e.to_string())?;
    }
    Ok(merged.to_bytes())
}

/// Two carriers' collectors push batches: each is stored once however
/// often it is sent, under the collector's source; sketches of shared
/// subscribers union; a batch that cannot be merged stores nothing; a
/// revoked token opens nothing. On PostgreSQL the `hll` extension unions
/// the same sketches in SQL to the same count.
fn collectors_and_their_batches(fixture: Fixture) {
    use v6scope_flow::users::Sketch;
    let mut store = fixture.open();
    let a = store
        .add_collector("carrier-a", "CMCC", Some(MeasurementPoint::MetroEgress), "hash-a")
        .unwrap();
    let b = store.add_collector("carrier-b", "CTCC", None, "hash-b").unwrap();
    assert!(matches!(
        store.add_collector("carrier-a", "X", None, "hash-c"),
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(store.collector_by_token("hash-b").unwrap().unwrap().operator, "CTCC");
    let t = 1_791_626_400; // 2026-10-10T10:00:00Z
    let mut row = traffic_row(t, "192.0.2.1", Family::Ipv6, 1000, true);
    row.source = "whatever the collector says".into();
    let traffic = [row.clone(), traffic_row(t, "192.0.2.1", Family::Ipv4, 3000, true)];
    // Dense sketches (100 000 values each, 50 000 shared) and small
    // explicit ones: both representations go through both unions.
    let sketches_a = [
        BatchSketch {
            day: "2026-10-10".into(),
            organisation: "Org A".into(),
            kind: "subscribers".into(),
            sketch: sketch_of(0..100_000).to_bytes(),
        },
        BatchSketch {
            day: "2026-10-11".into(),
            organisation: "Org A".into(),
            kind: "subscribers".into(),
            sketch: sketch_of(0..40).to_bytes(),
        },
    ];
    let sketches_b = [
        BatchSketch {
            day: "2026-10-10".into(),
            organisation: "Org A".into(),
            kind: "subscribers".into(),
            sketch: sketch_of(50_000..150_000).to_bytes(),
        },
        BatchSketch {
            day: "2026-10-11".into(),
            organisation: "Org A".into(),
            kind: "subscribers".into(),
            sketch: sketch_of(20..60).to_bytes(),
        },
    ];
    let batch = |traffic: &'static [TrafficRow], sketches: &'static [BatchSketch], seq| CollectorBatch {
        stream: "s1",
        seq,
        first_start: t,
        last_end: t + 60,
        traffic,
        sketches,
        spool_dropped: 0,
    };
    let traffic: &'static [TrafficRow] = Box::leak(Box::new(traffic));
    let sketches_a: &'static [BatchSketch] = Box::leak(Box::new(sketches_a));
    let sketches_b: &'static [BatchSketch] = Box::leak(Box::new(sketches_b));
    let now = t + 120;
    assert_eq!(
        store
            .store_batch(a, &batch(traffic, sketches_a, 1), &mut union_bytes, now)
            .unwrap(),
        BatchOutcome::Stored
    );
    assert_eq!(
        store
            .store_batch(a, &batch(traffic, sketches_a, 1), &mut union_bytes, now)
            .unwrap(),
        BatchOutcome::Duplicate
    );
    // The same (stream, seq) from another collector is its own batch.
    assert_eq!(
        store
            .store_batch(b, &batch(&traffic[..1], sketches_b, 1), &mut union_bytes, now)
            .unwrap(),
        BatchOutcome::Stored
    );
    let by_source: Vec<(String, Family, i64)> = store
        .traffic_by(Period::Day, Some(TrafficGroup::Source))
        .unwrap()
        .into_iter()
        .map(|r| (r.group, r.family, r.bytes))
        .collect();
    assert_eq!(
        by_source,
        [
            ("collector:carrier-a".to_string(), Family::Ipv4, 3000),
            ("collector:carrier-a".into(), Family::Ipv6, 1000),
            ("collector:carrier-b".into(), Family::Ipv6, 1000),
        ]
    );
    // Shared subscribers count once.
    let stored = |day: &str| Sketch::from_bytes(&store.sketch(day, "Org A", "subscribers").unwrap().unwrap()).unwrap();
    assert_eq!(stored("2026-10-11").count(), 60);
    let dense = stored("2026-10-10").count() as f64;
    assert!((dense - 150_000.0).abs() / 150_000.0 < 0.02, "{dense}");
    let mut program = Sketch::default();
    for row in store.sketches("2026-10-10", "2026-10-11", "subscribers").unwrap() {
        program.merge(&Sketch::from_bytes(&row.sketch).unwrap()).unwrap();
    }
    let in_sql = store.union_sketches("2026-10-10", "2026-10-11", "subscribers").unwrap();
    if fixture.location.sqlite_path().is_some() {
        assert_eq!(in_sql, None, "SQLite has no HyperLogLog extension");
    } else {
        let rows =
            in_sql.expect("PostgreSQL without the hll extension (Debian: postgresql-15-hll); .ci/run installs it");
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].organisation, "Org A");
        let unioned = Sketch::from_bytes(&rows[0].sketch).unwrap();
        assert_eq!(unioned.count(), program.count(), "SQL and program unions differ");
    }
    let listed = store.collectors().unwrap();
    let of = |name: &str| listed.iter().find(|c| c.name == name).unwrap().clone();
    assert_eq!((of("carrier-a").batches, of("carrier-a").duplicates), (1, 1));
    assert_eq!(of("carrier-a").rows, 4);
    assert_eq!(of("carrier-a").last_interval_end, Some(t + 60));
    assert_eq!(of("carrier-b").last_push, Some(now));
    // A merge that fails stores nothing, not even the batch's name: it
    // can be sent again once the cause is fixed.
    let failed = store.store_batch(a, &batch(traffic, sketches_a, 2), &mut |_, _| Err("no".into()), now);
    assert!(failed.is_err());
    assert_eq!(store.collectors().unwrap()[0].batches, 1);
    let ipv4: i64 = store
        .traffic_by(Period::Day, None)
        .unwrap()
        .iter()
        .filter(|r| r.family == Family::Ipv4)
        .map(|r| r.bytes)
        .sum();
    assert_eq!(ipv4, 3000);
    assert_eq!(
        store
            .store_batch(a, &batch(traffic, sketches_a, 2), &mut union_bytes, now)
            .unwrap(),
        BatchOutcome::Stored
    );
    assert!(store.revoke_collector("carrier-a").unwrap());
    assert!(!store.revoke_collector("nobody").unwrap());
    assert_eq!(store.collector_by_token("hash-a").unwrap(), None);
    assert!(store.collectors().unwrap()[0].revoked);
}
