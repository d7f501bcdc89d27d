//! Facts recorded for hostile or unusual servers in the lab: each becomes a
//! recorded result for that target, and the others are unaffected.

mod common;

use common::*;
use serde_json::Value;

fn check_json(domains: &[&str]) -> Vec<Value> {
    let env = lab_env();
    let mut args: Vec<String> = vec!["check".into(), "--json".into()];
    args.extend(lab_flags(&env));
    args.extend(domains.iter().map(|d| d.to_string()));
    let output = v6scope_in_lab(&args);
    assert!(
        matches!(output.status.code(), Some(0) | Some(1)),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    match serde_json::from_slice(&output.stdout).unwrap() {
        Value::Array(docs) => docs,
        doc => vec![doc],
    }
}

fn fetches<'a>(doc: &'a Value, name: &'a str) -> impl Iterator<Item = &'a Value> + 'a {
    doc["observation"]["web"]
        .as_array()
        .unwrap()
        .iter()
        .filter(move |w| w["name"] == name)
        .flat_map(|w| w["fetches"].as_array().unwrap().iter())
}

#[test]
fn hostile_web_servers_become_recorded_errors() {
    let docs = check_json(&[
        "gb18030-page.test",
        "huge-body.test",
        "redirect-loop.test",
        "slowloris.test",
        "dual-stack-good.test",
    ]);
    let [gb, huge, redirect_loop, slowloris, good] = &docs[..] else {
        panic!("five documents")
    };

    for f in fetches(gb, "gb18030-page.test") {
        assert_eq!(f["content"]["title"], "政府网站", "{f}");
        assert_eq!(f["content"]["charset"], "gb18030");
    }
    for f in fetches(huge, "huge-body.test") {
        assert_eq!(f["completed"], true);
        assert_eq!(f["content"]["truncated"], true);
        assert_eq!(f["content"]["bytes"], 2 * 1024 * 1024);
    }
    for f in fetches(redirect_loop, "redirect-loop.test") {
        assert_eq!(f["error"]["kind"], "redirect_loop", "{f}");
        assert_eq!(f["final_status"], 301);
    }
    let v6: Vec<&Value> = fetches(slowloris, "slowloris.test")
        .filter(|f| f["family"] == "ipv6")
        .collect();
    assert!(!v6.is_empty());
    for f in v6 {
        assert_eq!(f["error"]["kind"], "timeout", "{f}");
        assert_eq!(f["tcp_connected"], true);
    }
    // The well-behaved domain in the same run is unaffected.
    assert_eq!(good["verdicts"][0]["status"], "pass");
}

#[test]
fn redirect_to_an_ipv4_only_host_fails_over_ipv6_with_the_hop_recorded() {
    let docs = check_json(&["redirect-to-v4only.test"]);
    let v6: Vec<&Value> = fetches(&docs[0], "redirect-to-v4only.test")
        .filter(|f| f["family"] == "ipv6")
        .collect();
    assert!(!v6.is_empty());
    for f in v6 {
        assert_eq!(f["error"]["kind"], "redirect_no_family", "{f}");
        let last = f["hops"].as_array().unwrap().last().unwrap();
        assert_eq!(last["host_has_family"], false);
    }
    let v4 = fetches(&docs[0], "redirect-to-v4only.test")
        .find(|f| f["family"] == "ipv4")
        .unwrap();
    assert_eq!(v4["completed"], true);
}

#[test]
fn smtp_conversation_and_name_server_facts_are_recorded() {
    let docs = check_json(&["mx-good.test", "ns-noaa-v6.test"]);
    let mx = &docs[0]["observation"]["mail"];
    assert_eq!(mx["status"], "hosts");
    for probe in mx["hosts"][0]["probes"].as_array().unwrap() {
        assert_eq!(probe["banner_ok"], true);
        assert_eq!(probe["ehlo_ok"], true);
        assert_eq!(probe["starttls"], true);
    }
    let zone = &docs[1]["observation"]["zone"];
    let lame: Vec<&Value> = zone["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|h| h["probes"].as_array().unwrap().iter())
        .filter(|p| p["family"] == "ipv6" && p["answered"] == false)
        .collect();
    assert!(!lame.is_empty(), "the lame IPv6 name server is recorded: {zone}");
    for p in lame {
        assert_eq!(p["authoritative"], false);
        assert!(p["rtt_ms"].as_f64().is_some());
    }
}

#[test]
fn a_vantage_without_ipv6_makes_ipv6_checks_not_testable_not_failed() {
    let env = lab_env();
    // IPv6 "works" only if the vantage probe answers; 2001:db8:dead::1 is
    // routed nowhere in the lab, so this vantage has no working IPv6.
    let args: Vec<String> = [
        "check",
        "--json",
        "--profile",
        "internetnl",
        "--profile",
        "nist-usgv6",
        "--resolver",
        &env["V6LAB_RESOLVER_V4"],
        "--ca-file",
        &env["V6LAB_CA_FILE"],
        "--allow-prefix",
        "2001:db8::/32",
        "--allow-prefix",
        "203.0.113.0/24",
        "--allow-prefix",
        "198.51.100.0/24",
        "--vantage-probe",
        &env["V6LAB_ROOT_V4"],
        "--vantage-probe",
        "2001:db8:dead::1",
        "--dns-timeout",
        "500",
        "aaaa-blackhole.test",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let output = v6scope_in_lab(&args);
    // Not testable is its own exit code: never "all pass" (0).
    assert_eq!(
        output.status.code(),
        Some(4),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(String::from_utf8_lossy(&output.stderr).contains("no working IPv6"));
    let doc: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(doc["observation"]["vantage"]["ipv6"], false);
    assert_eq!(doc["observation"]["vantage"]["ipv4"], true);
    for verdict in doc["verdicts"].as_array().unwrap() {
        assert_eq!(verdict["status"], "not_testable", "{verdict}");
        for check in verdict["checks"].as_array().unwrap() {
            assert_ne!(check["status"], "fail", "{check}");
        }
    }
    // Nothing was sent over IPv6.
    assert!(fetches(&doc, "aaaa-blackhole.test").all(|f| f["family"] == "ipv4"));
}

#[test]
fn crawl_reports_limits_failing_links_and_ipv4_only_content_hosts() {
    let env = lab_env();
    let mut args: Vec<String> = vec![
        "check".into(),
        "--json".into(),
        "--crawl".into(),
        "--pages-per-level".into(),
        "50".into(),
    ];
    args.extend(lab_flags(&env));
    args.extend(
        [
            "site-many-links.test",
            "site-l2-v4only.test",
            "site-cdn-v4only.test",
            "site-gbk.test",
        ]
        .map(String::from),
    );
    let output = v6scope_in_lab(&args);
    assert!(
        matches!(output.status.code(), Some(0) | Some(1)),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let docs: Vec<Value> = serde_json::from_slice(&output.stdout).unwrap();
    let site = |i: usize| &docs[i]["observation"]["site"];

    let limits = site(0)["limits_reached"].as_array().unwrap();
    assert!(
        limits
            .iter()
            .any(|l| l.as_str().unwrap().contains("10000 pages found, 50 fetched")),
        "{limits:?}"
    );

    let failing: Vec<&str> = site(1)["pages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["level"] == 2 && p["v6"]["ok"] == false)
        .map(|p| p["url"].as_str().unwrap())
        .collect();
    assert_eq!(failing.len(), 4);
    assert!(failing.iter().all(|u| u.starts_with("http://old.site-l2-v4only.test/")));

    let v4_only: Vec<&str> = site(2)["resources"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["v4"]["ok"] == true && r["v6"]["ok"] == false)
        .map(|r| r["host"].as_str().unwrap())
        .collect();
    assert_eq!(v4_only, vec!["img.cdn-v4.test"; 3]);

    let titles: Vec<&str> = site(3)["pages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["level"] == 2)
        .filter_map(|p| p["v6"]["title"].as_str())
        .collect();
    assert!(titles.iter().all(|t| t.starts_with("二级页面")), "{titles:?}");
    // site-gbk's robots.txt disallows /l3/1-*: skipped, and said so.
    let limits = site(3)["limits_reached"].as_array().unwrap();
    assert!(
        limits.iter().any(|l| l
            .as_str()
            .unwrap()
            .starts_with("3 page(s) skipped: disallowed by robots.txt")),
        "{limits:?}"
    );
    let level3 = site(3)["pages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["level"] == 3)
        .count();
    assert_eq!(level3, 27);
}

#[test]
fn delegation_is_followed_from_the_root_over_ipv6_only() {
    let env = lab_env();
    let dir = std::env::temp_dir().join(format!("v6scope-hints-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // The lab root in named.root form: the same walk without a priming query.
    let hints = dir.join("named.root");
    std::fs::write(
        &hints,
        format!(
            ".  3600000  NS  a.root.test.\na.root.test.  3600000  A  {}\na.root.test.  3600000  AAAA  {}\n",
            env["V6LAB_ROOT_V4"], env["V6LAB_ROOT_V6"]
        ),
    )
    .unwrap();
    for roots in [None, Some(hints.display().to_string())] {
        let mut args: Vec<String> = vec![
            "check".into(),
            "--json".into(),
            "--crawl".into(),
            "--samples".into(),
            "0".into(),
        ];
        if let Some(file) = &roots {
            args.extend(["--root-hints".into(), file.clone()]);
        }
        args.extend(lab_flags(&env));
        args.extend(["dual-stack-good.test", "glue-v4only.test"].map(String::from));
        let output = v6scope_in_lab(&args);
        assert!(
            matches!(output.status.code(), Some(0) | Some(1)),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let docs: Vec<Value> = serde_json::from_slice(&output.stdout).unwrap();
        let path = |i: usize| &docs[i]["observation"]["zone"]["v6_delegation"];
        let from = path(0)["roots_from"].as_str().unwrap();
        match &roots {
            Some(file) => assert_eq!(from, format!("root hints {file}")),
            None => assert!(from.starts_with("priming query (. NS) via"), "{from}"),
        }
        assert_eq!(path(0)["complete"], true, "{}", path(0));
        let zones: Vec<&str> = path(0)["steps"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["zone"].as_str().unwrap())
            .collect();
        assert_eq!(zones, [".", "test", "dual-stack-good.test"]);
        assert_eq!(path(0)["steps"][0]["server"], env["V6LAB_ROOT_V6"].as_str());
        // Only IPv4 glue in test. for glue-v4only's in-zone servers: the walk
        // stops at the TLD with the reason.
        assert_eq!(path(1)["complete"], false, "{}", path(1));
        assert_eq!(path(1)["steps"].as_array().unwrap().len(), 2);
        let error = path(1)["error"]["message"].as_str().unwrap();
        assert!(error.contains("ns1.glue-v4only.test: no IPv6 glue"), "{error}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn crawl_records_pmtu_stalls_per_object_and_flapping_samples() {
    let env = lab_env();
    let mut args: Vec<String> = vec![
        "check".into(),
        "--json".into(),
        "--crawl".into(),
        "--samples".into(),
        "10".into(),
        "--interval".into(),
        "0".into(),
        "--fetch-timeout".into(),
        "3".into(),
    ];
    args.extend(lab_flags(&env));
    args.extend(["site-pmtu-v6.test", "site-flap-v6.test"].map(String::from));
    let output = v6scope_in_lab(&args);
    assert!(
        matches!(output.status.code(), Some(0) | Some(1)),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let docs: Vec<Value> = serde_json::from_slice(&output.stdout).unwrap();
    let resources = docs[0]["observation"]["site"]["resources"].as_array().unwrap();
    let photo = resources
        .iter()
        .find(|r| r["url"] == "http://media.site-pmtu-v6.test/static/photo.png")
        .expect("the large object is a sub-resource");
    assert_eq!(photo["v4"]["ok"], true);
    assert!(photo["v4"]["bytes"].as_u64().unwrap() > 60_000);
    assert_eq!(photo["v6"]["ok"], false);
    assert!(photo["v6"]["stalled_bytes"].as_u64().unwrap() < 1280, "{photo}");
    // The small objects on the same host are fine over IPv6.
    assert_eq!(
        resources.iter().filter(|r| r["v6"]["ok"] == true).count(),
        3,
        "{resources:?}"
    );
    // 3 of every 10 new IPv6 connections to site-flap-v6's web address are
    // refused; the 10 samples are 10 consecutive connections to it.
    let samples = docs[1]["observation"]["site"]["samples"].as_array().unwrap();
    let v6: Vec<&Value> = samples.iter().filter(|s| s["family"] == "ipv6").collect();
    assert_eq!(v6.len(), 10);
    assert_eq!(v6.iter().filter(|s| s["ok"] == true).count(), 7, "{v6:?}");
}

#[test]
fn name_servers_are_asked_over_udp_on_both_families_and_over_tcp_on_ipv6() {
    // TCP is what `ns_tcp_v6` judges, so it is asked of IPv6 addresses
    // only; the UDP questions go over the shared sockets and still answer.
    let docs = check_json(&["dual-stack-good.test", "ns-refused-v6.test"]);
    for doc in &docs {
        let zone = &doc["observation"]["zone"];
        let probes: Vec<&Value> = zone["hosts"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|h| h["probes"].as_array().unwrap().iter())
            .collect();
        for family in ["ipv4", "ipv6"] {
            let udp = probes
                .iter()
                .filter(|p| p["family"] == family && p["transport"] == "udp")
                .count();
            assert!(udp >= 2, "{family}: every name-server address asked over UDP: {zone}");
        }
        let tcp: Vec<&&Value> = probes.iter().filter(|p| p["transport"] == "tcp").collect();
        assert!(tcp.iter().all(|p| p["family"] == "ipv6"), "TCP on IPv6 only: {zone}");
        let v6_udp = probes
            .iter()
            .filter(|p| p["family"] == "ipv6" && p["transport"] == "udp")
            .count();
        assert_eq!(tcp.len(), v6_udp, "one TCP question per IPv6 address: {zone}");
    }
    let good = &docs[0]["observation"]["zone"];
    assert!(
        good["hosts"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|h| h["probes"].as_array().unwrap().iter())
            .all(|p| p["answered"] == true),
        "{good}"
    );
    // The REFUSED IPv6 server is recorded with its rcode over both transports.
    let refused: Vec<&Value> = docs[1]["observation"]["zone"]["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|h| h["probes"].as_array().unwrap().iter())
        .filter(|p| p["rcode"] == "REFUSED")
        .collect();
    assert_eq!(refused.len(), 2, "{}", docs[1]["observation"]["zone"]);
    assert!(refused.iter().all(|p| p["family"] == "ipv6"));
}
