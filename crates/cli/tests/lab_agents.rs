//! A fleet in the lab: one server on PostgreSQL and agents in three client
//! networks (`lab/vantages`), each with its own path into the world. On
//! vb's path IPv6 to dual-stack-good's web server is dropped, so that
//! target passes from isp-a and isp-c and fails from isp-b only.
//!
//! The stories: per-vantage verdicts, the recorded difference and the
//! combined verdict under each rule; tokens (wrong, revoked, the admin's);
//! an agent killed with `kill -9` mid-run whose targets another agent
//! finishes, a server restarted mid-run, an agent that claims and never
//! reports, and results for targets an agent was not given — with every
//! target evaluated exactly once per vantage.

mod common;

use common::fleet::{ADMIN_TOKEN, Fleet, wait_output};
use common::repo_root;
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use v6scope_store::prelude::*;

/// One story at a time: they share the vantage namespaces and the port.
static SERIAL: Mutex<()> = Mutex::new(());

fn verdict_of(store: &dyn Store, run: i64, domain: &str) -> v6scope_model::Verdict {
    let idx = store.target_index(run, domain).unwrap().unwrap();
    store.verdict(run, idx, "internetnl").unwrap().unwrap()
}

fn scenario_domains(limit: usize) -> Vec<String> {
    let plan: Value = serde_json::from_str(&std::fs::read_to_string("/tmp/v6lab/scenarios.json").unwrap()).unwrap();
    plan.as_array()
        .unwrap()
        .iter()
        .filter(|s| s["tree"].is_null() && s["delegate"] == true)
        .filter(|s| matches!(s["expect"]["internetnl"].as_str(), Some("pass" | "fail")))
        .map(|s| s["domain"].as_str().unwrap().trim_end_matches('.').to_string())
        .take(limit)
        .collect()
}

#[test]
fn three_vantages_judge_per_vantage_and_combine_under_each_rule() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut fleet = Fleet::new(18931);
    for name in ["a", "b", "c"] {
        fleet.add_agent(name);
    }
    let domains = ["dual-stack-good.test", "ipv4-only.test", "aaaa-blackhole.test"];
    fleet.import("fleet", &domains);
    fleet.start_agent("a", 'a', "isp-a", &["isp=A", "region=north", "access=fixed"], 8);
    fleet.start_agent("b", 'b', "isp-b", &["isp=B", "region=north", "access=fixed"], 8);
    fleet.start_agent("c", 'c', "isp-c", &["isp=C", "region=south", "access=mobile"], 8);
    fleet.wait_registered(&["a", "b", "c"]);

    // Per-vantage verdicts and the difference, rule "all".
    let run = fleet.fleet_scan("fleet", &["--agents", "all", "--rule", "all"]);
    let store = fleet.store();
    assert_eq!(store.run_vantages(run).unwrap(), ["isp-a", "isp-b", "isp-c"]);
    assert_eq!(store.observation_count(run).unwrap(), (3, 3));
    let idx = store.target_index(run, "dual-stack-good.test").unwrap().unwrap();
    let per: BTreeMap<String, v6scope_model::Status> = store
        .vantage_results(run, idx)
        .unwrap()
        .into_iter()
        .map(|r| (r.vantage, r.verdicts[0].status))
        .collect();
    assert_eq!(per["isp-a"], v6scope_model::Status::Pass, "{per:?}");
    assert_eq!(per["isp-c"], v6scope_model::Status::Pass, "{per:?}");
    assert_ne!(per["isp-b"], v6scope_model::Status::Pass, "{per:?}");
    let combined = verdict_of(&*store, run, "dual-stack-good.test");
    assert_eq!(combined.status, per["isp-b"], "rule all: the worst vantage counts");
    let evidence = combined
        .check("vantages")
        .expect("per-vantage evidence")
        .evidence
        .join("\n");
    assert!(evidence.contains("isp-b: "), "{evidence}");
    assert!(
        evidence
            .lines()
            .any(|l| l.starts_with("differs: ") && l.contains("from isp-b") && l.contains("from isp-a, isp-c")),
        "{evidence}"
    );
    // Failing everywhere fails under every rule; the run is finished.
    assert_eq!(
        verdict_of(&*store, run, "ipv4-only.test").status,
        v6scope_model::Status::Fail
    );
    assert!(store.run(run).unwrap().finished_at.is_some());

    // The site's per-vantage verdicts in the API and on its page, by label.
    let site = |query: &str| -> (u16, serde_json::Value) {
        let (status, body) = fleet.http(
            'a',
            "GET",
            &format!("/api/sites/dual-stack-good.test?campaign=fleet{query}"),
            ADMIN_TOKEN,
            None,
        );
        (
            status,
            serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}")),
        )
    };
    let (status, view) = site("");
    assert_eq!(status, 200, "{view}");
    let columns: Vec<(&str, &str)> = view["vantages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| (v["vantage"].as_str().unwrap(), v["labels"]["isp"].as_str().unwrap()))
        .collect();
    assert_eq!(columns, [("isp-a", "A"), ("isp-b", "B"), ("isp-c", "C")]);
    let (_, only_b) = site("&label=isp%3DB");
    assert_eq!(only_b["vantages"].as_array().unwrap().len(), 1, "{only_b}");
    assert_eq!(only_b["vantages"][0]["vantage"], "isp-b");
    let (_, north) = site("&label=region%3Dnorth%2Caccess%3Dfixed");
    assert_eq!(north["vantages"].as_array().unwrap().len(), 2, "{north}");
    assert_eq!(site("&label=isp").0, 400);
    let (status, page) = fleet.http('a', "GET", "/sites/dual-stack-good.test?campaign=fleet", "", None);
    assert_eq!(status, 200);
    assert!(page.contains("class=\"per-vantage\""), "{page}");
    assert!(
        page.contains("class=\"differs\""),
        "a row where the vantages differ: {page}"
    );
    let (_, filtered) = fleet.http('a', "GET", "/vantages?label=access%3Dmobile", "", None);
    assert!(
        filtered.contains("data-agent=\"c\"") && !filtered.contains("data-agent=\"a\""),
        "{filtered}"
    );

    // The monthly report: a table by vantage, ISP, region and access, and
    // the month's differences with their evidence.
    let profile = combined.profile.clone();
    let (status, body) = fleet.http(
        'a',
        "GET",
        &format!("/api/report?campaign=fleet&format=json&profile={profile}"),
        ADMIN_TOKEN,
        None,
    );
    assert_eq!(status, 200, "{body}");
    let report: serde_json::Value = serde_json::from_str(&body).unwrap();
    let row = |dimension: &str, key: &str| -> serde_json::Value {
        report["vantages"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["dimension"] == dimension && r["key"] == key)
            .unwrap_or_else(|| panic!("no {dimension}={key} row: {}", report["vantages"]))
            .clone()
    };
    assert_eq!(row("vantage", "isp-b")["targets"], 3);
    assert!(
        row("isp", "B")["pass"].as_i64() < row("isp", "A")["pass"].as_i64(),
        "{}",
        report["vantages"]
    );
    assert_eq!(
        row("region", "north")["vantages"],
        serde_json::json!(["isp-a", "isp-b"])
    );
    assert_eq!(row("access", "mobile")["vantages"], serde_json::json!(["isp-c"]));
    let differences = &report["vantage_differences"];
    assert_eq!(differences["runs"], serde_json::json!([run]), "{differences}");
    let shown = differences["shown"].as_array().unwrap();
    let good = shown
        .iter()
        .find(|d| d["domain"] == "dual-stack-good.test")
        .unwrap_or_else(|| panic!("{differences}"));
    assert_eq!(good["statuses"]["isp-a"], "pass");
    assert!(
        good["differences"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d.as_str().unwrap().contains("from isp-b")),
        "{good}"
    );
    let (_, markdown) = fleet.http(
        'a',
        "GET",
        &format!("/api/report?campaign=fleet&format=md&profile={profile}"),
        ADMIN_TOKEN,
        None,
    );
    assert!(markdown.contains("By vantage: ISP, region and access"), "{markdown}");
    assert!(
        markdown.contains("Differences between vantages this month"),
        "{markdown}"
    );

    for (rule, expected) in [
        ("majority", v6scope_model::Status::Pass),
        ("any", v6scope_model::Status::Pass),
    ] {
        let run = fleet.fleet_scan("fleet", &["--agents", "all", "--rule", rule]);
        assert_eq!(
            verdict_of(&*store, run, "dual-stack-good.test").status,
            expected,
            "rule {rule}"
        );
        assert_eq!(
            verdict_of(&*store, run, "ipv4-only.test").status,
            v6scope_model::Status::Fail,
            "rule {rule}"
        );
    }
    // Selectors pick vantages by label.
    let run = fleet.fleet_scan("fleet", &["--agents", "access=mobile", "--agents", "isp=B"]);
    assert_eq!(store.run_vantages(run).unwrap(), ["isp-b", "isp-c"]);
    let out = fleet.v6scope(&[
        "scan",
        "--campaign",
        "fleet",
        "--agents",
        "isp=Z",
        "--store",
        &fleet.store_url(),
    ]);
    assert_eq!(out.status.code(), Some(2), "no agent matches: a usage error");

    // The vantages page and the metrics show the agents.
    let (status, page) = fleet.http('a', "GET", "/vantages", "", None);
    assert_eq!(status, 200);
    for needle in ["isp-a", "isp-b", "isp-c", "region=south", "IPv6 ✓"] {
        assert!(page.contains(needle), "{needle}: {page}");
    }
    let (_, metrics) = fleet.http('a', "GET", "/metrics", "", None);
    assert!(
        metrics.contains("v6scope_agent_results{agent=\"b\",vantage=\"isp-b\"}"),
        "{metrics}"
    );
    assert!(
        metrics.contains("v6scope_agent_ipv6{agent=\"a\",vantage=\"isp-a\"} 1"),
        "{metrics}"
    );

    // Tokens: a wrong one, the admin's, and an agent's on the admin API.
    let claim = r#"{"max": 1}"#;
    assert_eq!(
        fleet.http('a', "POST", "/agent/v1/claim", "wrong-token", Some(claim)).0,
        401
    );
    assert_eq!(
        fleet.http('a', "POST", "/agent/v1/claim", ADMIN_TOKEN, Some(claim)).0,
        401
    );
    assert_eq!(
        fleet
            .http('a', "POST", "/agent/v1/claim", &fleet.token("a"), Some(claim))
            .0,
        200
    );
    let agent_on_admin = fleet.http('a', "PUT", "/api/campaigns/x", &fleet.token("a"), Some("x.test"));
    assert_eq!(agent_on_admin.0, 401, "{agent_on_admin:?}");
    // A revoked token is refused and its agent stops, saying why.
    let url = fleet.store_url();
    let out = fleet.v6scope(&["agents", "revoke", "c", "--store", &url]);
    assert!(out.status.success());
    assert_eq!(
        fleet
            .http('c', "POST", "/agent/v1/claim", &fleet.token("c"), Some(claim))
            .0,
        401
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = fleet.agent("c").try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "the revoked agent kept running");
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(!status.success());
    assert!(fleet.agent_log("c").contains("401"), "{}", fleet.agent_log("c"));
}

#[test]
fn dead_and_lying_agents_lose_their_targets_and_every_target_is_evaluated_once_per_vantage() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut fleet = Fleet::new(18932);
    for name in ["a1", "a2", "ghost"] {
        fleet.add_agent(name);
    }
    let domains = scenario_domains(24);
    assert!(domains.len() >= 20, "{domains:?}");
    let refs: Vec<&str> = domains.iter().map(String::as_str).collect();
    fleet.import("many", &refs);
    fleet.start_agent("a1", 'a', "isp-a", &["isp=A"], 3);
    fleet.wait_registered(&["a1"]);
    // The ghost registers for the same vantage, claims, and never reports.
    let ghost = fleet.token("ghost");
    let register = r#"{"vantage":"isp-a","labels":{"isp":"A"},"concurrency":2,"version":"ghost","selftest":{"ipv4":true,"ipv6":true,"detail":[]}}"#;
    let (status, body) = fleet.http('a', "POST", "/agent/v1/register", &ghost, Some(register));
    assert_eq!(status, 200, "{body}");
    let mut owner = fleet.spawn_fleet_scan("many", &["--agents", "vantage=isp-a"]);
    let deadline = Instant::now() + Duration::from_secs(30);
    let ghost_leases: Vec<i64> = loop {
        let (status, body) = fleet.http('a', "POST", "/agent/v1/claim", &ghost, Some(r#"{"max": 5}"#));
        assert_eq!(status, 200, "{body}");
        let claimed: Value = serde_json::from_str(&body).unwrap();
        let leases: Vec<i64> = claimed["leases"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["idx"].as_i64().unwrap())
            .collect();
        if !leases.is_empty() {
            assert!(
                leases.len() <= 2,
                "never more than the declared concurrency: {leases:?}"
            );
            break leases;
        }
        assert!(Instant::now() < deadline, "the ghost got nothing to claim");
        std::thread::sleep(Duration::from_millis(100));
    };
    let run = fleet.last_run("many");
    // A result for a target the ghost was not given is refused.
    let foreign = (0..domains.len() as i64).find(|i| !ghost_leases.contains(i)).unwrap();
    let observation = v6scope_scan::unprobed(
        v6scope_model::Target {
            domain: domains[foreign as usize].clone(),
            ..Default::default()
        },
        &v6scope_model::Vantage::both(),
        1.0,
        v6scope_model::ProbeError::new(v6scope_model::ErrorKind::Timeout, "forged"),
    );
    let forged = serde_json::json!({"results": [{"run": run, "idx": foreign, "observation": observation}]}).to_string();
    let (status, body) = fleet.http('a', "POST", "/agent/v1/results", &ghost, Some(&forged));
    assert_eq!(status, 200, "{body}");
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap()["acks"][0], "not_given");

    // a1 is killed with kill -9 once it has delivered some results.
    let deadline = Instant::now() + Duration::from_secs(60);
    while fleet.store().fleet_progress(run, now()).unwrap()[0].done < 3 {
        assert!(
            Instant::now() < deadline,
            "a1 delivered nothing: {}",
            fleet.agent_log("a1")
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    fleet.agent("a1").kill().unwrap();
    let _ = fleet.agent("a1").wait();
    fleet.start_agent("a2", 'a', "isp-a", &["isp=A"], 3);
    // The server goes away and comes back mid-run.
    std::thread::sleep(Duration::from_secs(1));
    fleet.stop_server();
    std::thread::sleep(Duration::from_secs(2));
    fleet.start_server();

    let deadline = Instant::now() + Duration::from_secs(240);
    let out = loop {
        if owner.try_wait().unwrap().is_some() {
            break owner.wait_with_output().unwrap();
        }
        if Instant::now() > deadline {
            let _ = owner.kill();
            panic!("the run did not finish: a2: {}", fleet.agent_log("a2"));
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let store = fleet.store();
    let n = domains.len() as i64;
    assert_eq!(store.observation_count(run).unwrap(), (n, n));
    let progress = store.fleet_progress(run, now()).unwrap();
    assert_eq!(
        (progress[0].done, progress[0].leased),
        (n, 0),
        "each target once for isp-a"
    );
    let mut by_agent: BTreeMap<String, i64> = BTreeMap::new();
    for idx in 0..n {
        let rows = store.vantage_results(run, idx).unwrap();
        assert_eq!(rows.len(), 1, "target {idx}: one result per vantage");
        *by_agent.entry(rows[0].agent.clone()).or_default() += 1;
    }
    assert!(
        by_agent.get("a2").copied().unwrap_or(0) > 0,
        "a2 finished a1's work: {by_agent:?}"
    );
    assert!(!by_agent.contains_key("ghost"), "{by_agent:?}");
    for idx in &ghost_leases {
        let rows = store.vantage_results(run, *idx).unwrap();
        assert_ne!(rows[0].agent, "ghost");
    }
    // The ghost's late result for a target it once held is not stored: the
    // target has its result from another agent.
    let late =
        serde_json::json!({"results": [{"run": run, "idx": ghost_leases[0], "observation": observation}]}).to_string();
    let (_, body) = fleet.http('a', "POST", "/agent/v1/results", &ghost, Some(&late));
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap()["acks"][0], "duplicate");
    let agents = store.agents().unwrap();
    let results: i64 = agents.iter().map(|a| a.results).sum();
    assert_eq!(results, n, "nothing counted twice: {agents:?}");
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// The CDN of scenarios cdn-edge, cdn-edge-2 and site-on-cdn: every
/// resolver sends site-on-cdn.test to node 1, v6lab-vc's own resolver to
/// node 2, whose IPv6 refuses connections. MIIT's two tests, from the three
/// vantages: IPv6 nodes 1 of 2 (50 %, not more than 85 %), IPv6 coverage 2
/// of 3 cells (67 %, under 85 %). The cloud products of
/// lab/cloud-products.toml: one answers over IPv6 from every cell, the
/// other (dual-stack-good, dropped on vb's path) from 2 of 3.
#[test]
fn cdn_nodes_and_coverage_from_three_vantages() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut fleet = Fleet::new(18933);
    for name in ["a", "b", "c"] {
        fleet.add_agent(name);
    }
    fleet.import("cdn", &["site-on-cdn.test", "cdn-edge.test", "dual-stack-good.test"]);
    fleet.start_agent("a", 'a', "isp-a", &["isp=A", "region=north"], 8);
    fleet.start_agent("b", 'b', "isp-b", &["isp=B", "region=north"], 8);
    fleet.start_agent("c", 'c', "isp-c", &["isp=C", "region=south"], 8);
    fleet.wait_registered(&["a", "b", "c"]);
    let root = repo_root();
    let providers = root.join("lab/providers.toml");
    let products = root.join("lab/cloud-products.toml");
    let run = fleet.fleet_scan(
        "cdn",
        &[
            "--agents",
            "all",
            "--profile",
            "internetnl",
            "--providers",
            providers.to_str().unwrap(),
            "--cloud-products",
            products.to_str().unwrap(),
        ],
    );
    let store = fleet.store();
    // Where each vantage was sent for the CDN's names.
    let edges = store.edges(run).unwrap();
    let cdn: Vec<_> = edges.iter().filter(|e| e.provider == "lab-cdn").collect();
    let node_of = |vantage: &str| {
        cdn.iter()
            .find(|e| e.vantage == vantage && e.name == "site-on-cdn.test")
            .unwrap_or_else(|| panic!("no sighting from {vantage}: {edges:?}"))
    };
    assert_eq!(node_of("isp-a").v4, node_of("isp-b").v4, "{edges:?}");
    assert_ne!(
        node_of("isp-a").v4,
        node_of("isp-c").v4,
        "vc's resolver sends it elsewhere: {edges:?}"
    );
    assert!(node_of("isp-a").v6_ok && node_of("isp-b").v6_ok, "{edges:?}");
    assert!(node_of("isp-c").v4_ok && !node_of("isp-c").v6_ok, "{edges:?}");
    assert_eq!(node_of("isp-c").region, "south");

    let (status, body) = fleet.http(
        'a',
        "GET",
        "/api/report?campaign=cdn&format=json&profile=internetnl&plan=cn-2017-action-plan",
        ADMIN_TOKEN,
        None,
    );
    assert_eq!(status, 200, "{body}");
    let report: Value = serde_json::from_str(&body).unwrap();
    let providers = report["edges"]["providers"].as_array().unwrap();
    let lab_cdn = providers
        .iter()
        .find(|p| p["provider"] == "lab-cdn")
        .unwrap_or_else(|| panic!("{}", report["edges"]));
    assert_eq!(lab_cdn["kind"], "cdn");
    assert_eq!(
        (lab_cdn["nodes"].as_i64(), lab_cdn["ipv6_nodes"].as_i64()),
        (Some(2), Some(1))
    );
    assert_eq!(lab_cdn["node_share_met"], false);
    assert_eq!(
        (lab_cdn["v4_cells"].as_i64(), lab_cdn["v6_cells"].as_i64()),
        (Some(3), Some(2))
    );
    assert!((lab_cdn["coverage_ratio"].as_f64().unwrap() - 2.0 / 3.0).abs() < 1e-9);
    assert_eq!(lab_cdn["supports_ipv6"], false);
    assert_eq!(lab_cdn["cells_without_ipv6"], serde_json::json!(["south/C"]));
    let products = report["edges"]["products"].as_array().unwrap();
    let support: BTreeMap<&str, bool> = products
        .iter()
        .map(|p| (p["product"].as_str().unwrap(), p["supports_ipv6"].as_bool().unwrap()))
        .collect();
    assert_eq!(
        support,
        BTreeMap::from([("Load balancer", true), ("Object storage", false)]),
        "{}",
        report["edges"]
    );
    // Against the plan: no CDN supports IPv6 (0 of 1), half the products do.
    let milestones = report["edge_milestones"].as_array().unwrap();
    let of = |key: &str| -> Vec<f64> {
        milestones
            .iter()
            .filter(|m| m["key"] == key)
            .map(|m| m["value"].as_f64().unwrap())
            .collect()
    };
    assert!(
        !of("cdn").is_empty() && of("cdn").iter().all(|v| *v == 0.0),
        "{milestones:?}"
    );
    assert!(
        !of("cloud").is_empty() && of("cloud").iter().all(|v| *v == 0.5),
        "{milestones:?}"
    );
    let (_, markdown) = fleet.http(
        'a',
        "GET",
        "/api/report?campaign=cdn&format=md&profile=internetnl&plan=cn-2017-action-plan",
        ADMIN_TOKEN,
        None,
    );
    assert!(markdown.contains("CDN and cloud: nodes and coverage"), "{markdown}");
    assert!(markdown.contains("no IPv6 coverage in south/C"), "{markdown}");
    // The campaign's providers page shows the same indicators.
    let (status, page) = fleet.http('a', "GET", "/campaigns/cdn/providers", "", None);
    assert_eq!(status, 200);
    assert!(
        page.contains("id=\"edge-providers\"") && page.contains("data-provider=\"lab-cdn\""),
        "{page}"
    );
    assert!(page.contains("50.0 %") && page.contains("66.7 % (2/3)"), "{page}");
    assert!(
        page.contains("id=\"cloud-products\"") && page.contains("Object storage"),
        "{page}"
    );
}

/// An agent whose clock is an hour off: its certificate checks ran on a
/// wrong clock, so what it delivers is not_testable, never a verdict on the
/// target; the vantages page and /metrics say why.
#[test]
fn an_agent_with_a_wrong_clock_gets_not_testable_results() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let fleet = Fleet::new(18934);
    fleet.add_agent("skewed");
    fleet.import("clock", &["dual-stack-good.test"]);
    let token = fleet.token("skewed");
    let register = serde_json::json!({
        "vantage": "isp-s", "labels": {"isp": "S"}, "concurrency": 1, "version": "test",
        "selftest": {"ipv4": true, "ipv6": true, "detail": []}, "clock_unix": now() + 3600,
    })
    .to_string();
    let (status, body) = fleet.http('a', "POST", "/agent/v1/register", &token, Some(&register));
    assert_eq!(status, 200, "{body}");
    let owner = fleet.spawn_fleet_scan("clock", &["--agents", "vantage=isp-s", "--agent-wait", "60"]);
    let deadline = Instant::now() + Duration::from_secs(30);
    let (run, idx) = loop {
        let (_, body) = fleet.http('a', "POST", "/agent/v1/claim", &token, Some(r#"{"max": 1}"#));
        let claimed: Value = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"));
        if let Some(l) = claimed["leases"].as_array().and_then(|l| l.first()) {
            break (l["run"].as_i64().unwrap(), l["idx"].as_i64().unwrap());
        }
        assert!(Instant::now() < deadline, "nothing to claim");
        std::thread::sleep(Duration::from_millis(100));
    };
    // A result that would otherwise be judged (an evaluation that timed out: error).
    let observation = v6scope_scan::unprobed(
        v6scope_model::Target {
            domain: "dual-stack-good.test".into(),
            ..Default::default()
        },
        &v6scope_model::Vantage::both(),
        1.0,
        v6scope_model::ProbeError::new(v6scope_model::ErrorKind::Timeout, "slow"),
    );
    let results = serde_json::json!({"results": [{"run": run, "idx": idx, "observation": observation}]}).to_string();
    let (status, body) = fleet.http('a', "POST", "/agent/v1/results", &token, Some(&results));
    assert_eq!(status, 200, "{body}");
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap()["acks"][0], "stored");
    let out = wait_output(owner, Duration::from_secs(60));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let rows = fleet.store().vantage_results(run, idx).unwrap();
    let verdict = &rows[0].verdicts[0];
    assert_eq!(verdict.status, v6scope_model::Status::NotTestable, "{verdict:?}");
    let evidence = verdict.checks[0].evidence.join(" ");
    assert!(
        evidence.contains("clock is 3600 s off") || evidence.contains("clock is 3599 s off"),
        "{evidence}"
    );
    let (_, page) = fleet.http('a', "GET", "/vantages", "", None);
    assert!(page.contains("clock off by"), "{page}");
    let (_, metrics) = fleet.http('a', "GET", "/metrics", "", None);
    assert!(
        metrics.contains("v6scope_agent_clock_skew_seconds{agent=\"skewed\",vantage=\"isp-s\"} 3"),
        "{metrics}"
    );
}

/// A vantage whose agent registered and then never worked: with
/// --close-silent the run finishes after --agent-wait, each target judged
/// from the vantage that delivered it, the silent one not_testable (it does
/// not vote), never failing the target.
#[test]
fn close_silent_finishes_a_run_without_blaming_targets_for_a_silent_vantage() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut fleet = Fleet::new(18935);
    fleet.add_agent("a");
    fleet.add_agent("silent");
    fleet.import("quiet", &["dual-stack-good.test", "ipv4-only.test"]);
    fleet.start_agent("a", 'a', "isp-a", &["isp=A"], 4);
    let register = r#"{"vantage":"isp-z","labels":{"isp":"Z"},"concurrency":1,"version":"test","selftest":{"ipv4":true,"ipv6":true,"detail":[]}}"#;
    let (status, body) = fleet.http(
        'a',
        "POST",
        "/agent/v1/register",
        &fleet.token("silent"),
        Some(register),
    );
    assert_eq!(status, 200, "{body}");
    fleet.wait_registered(&["a", "silent"]);
    let run = fleet.fleet_scan(
        "quiet",
        &[
            "--agents",
            "all",
            "--profile",
            "internetnl",
            "--agent-wait",
            "8",
            "--close-silent",
        ],
    );
    let store = fleet.store();
    assert!(store.run(run).unwrap().finished_at.is_some());
    assert_eq!(store.observation_count(run).unwrap(), (2, 2));
    let good = verdict_of(&*store, run, "dual-stack-good.test");
    assert_eq!(good.status, v6scope_model::Status::Pass, "{good:?}");
    let evidence = good.check("vantages").unwrap().evidence.join("\n");
    assert!(evidence.contains("isp-z: not_testable"), "{evidence}");
    assert_eq!(
        verdict_of(&*store, run, "ipv4-only.test").status,
        v6scope_model::Status::Fail
    );
    // Without --close-silent the owner stops and keeps the run for --resume.
    let out = fleet.v6scope(&[
        "--quiet",
        "scan",
        "--campaign",
        "quiet",
        "--agents",
        "all",
        "--agent-wait",
        "3",
        "--store",
        &fleet.store_url(),
    ]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--resume"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
