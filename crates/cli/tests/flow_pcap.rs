//! `v6scope collect --pcap` against captures with a known ground truth,
//! written by lab/flows/gen_pcaps.py (Debian's python3-scapy): totals,
//! per-minute counters, active users per organisation under the Chinese
//! definition, the app IPv6 concentration over three runs, and damaged
//! files. No network is used.

mod common;

use common::captures::{captures, read_json};
use serde_json::Value;
use std::path::Path;
use std::process::Command;

fn v6scope(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_v6scope")).args(args).output().unwrap()
}

fn collect(dir: &Path, db: &Path, pcaps: &[&str]) -> Value {
    let mut args = vec![
        "collect".to_string(),
        "--json".into(),
        "--db".into(),
        db.display().to_string(),
        "--prefixes".into(),
        dir.join("prefixes.csv").display().to_string(),
    ];
    for p in pcaps {
        args.extend(["--pcap".to_string(), dir.join(p).display().to_string()]);
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let output = v6scope(&args);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

#[test]
fn capture_totals_minutes_and_active_users_equal_the_ground_truth() {
    let dir = captures();
    let db = dir.join("mix.db");
    let _ = std::fs::remove_file(&db);
    let out = collect(&dir, &db, &["mix.pcap"]);
    let truth = read_json(&dir.join("mix.truth.json"));
    let got = &out[format!("pcap:{}", dir.join("mix.pcap").display())];
    let t = &truth["totals"];
    assert_eq!(got["traffic"]["ipv4"]["bytes"], t["ipv4_bytes"]);
    assert_eq!(got["traffic"]["ipv4"]["packets"], t["ipv4_packets"]);
    assert_eq!(got["traffic"]["ipv6"]["bytes"], t["ipv6_bytes"]);
    assert_eq!(got["traffic"]["ipv6"]["packets"], t["ipv6_packets"]);
    assert_eq!(got["capture"]["other_frames"], 0);

    // Active users per organisation: subscriber prefixes (length per
    // organisation) and /128 addresses, ICMPv6-only and DNS-only excluded.
    for org in truth["orgs"].as_object().unwrap().values() {
        let Some(expected) = org["active_subscribers"].as_u64().filter(|&n| n > 0) else {
            continue;
        };
        let found = got["users"]
            .as_array()
            .unwrap()
            .iter()
            .find(|u| u["organisation"] == org["name"])
            .unwrap_or_else(|| panic!("no users for {}", org["name"]));
        assert_eq!(found["subscribers"].as_u64(), Some(expected), "{}", org["name"]);
        assert_eq!(found["addresses"], org["active_addresses"], "{}", org["name"]);
    }

    // Per organisation (the subscriber side of each packet): every packet
    // once, so the groups add up to the totals; the capture's IPv4 traffic
    // never crosses organisations, so each one's IPv4 bytes are the truth's.
    let output = v6scope(&[
        "traffic",
        "--group",
        "organisation",
        "--json",
        "--db",
        db.to_str().unwrap(),
    ]);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let groups: Vec<Value> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let sum = |k: &str| groups.iter().map(|g| g[k].as_u64().unwrap()).sum::<u64>();
    assert_eq!(sum("ipv4_bytes"), t["ipv4_bytes"].as_u64().unwrap());
    assert_eq!(sum("ipv6_bytes"), t["ipv6_bytes"].as_u64().unwrap());
    for org in truth["orgs"].as_object().unwrap().values() {
        if org["subscriber_prefix_len"].is_null() {
            continue;
        }
        let row = groups.iter().find(|g| g["organisation"] == org["name"]).unwrap();
        assert_eq!(row["ipv4_bytes"], org["ipv4_bytes"], "{}", org["name"]);
    }

    // Collecting the same capture again (a second collector, or a rerun)
    // merges the day's sketches: the same users, not twice as many.
    collect(&dir, &db, &["mix.pcap"]);
    let output = v6scope(&["users", "--days", "30", "--json", "--db", db.to_str().unwrap()]);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let users: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(users["last_day"], "2026-01-15");
    let all = users["organisations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["organisation"] == "(all)")
        .unwrap();
    let expected: u64 = truth["orgs"]
        .as_object()
        .unwrap()
        .values()
        .filter_map(|o| o["active_subscribers"].as_u64())
        .sum();
    assert_eq!(all["subscribers"].as_u64(), Some(expected));

    // The per-minute counters in the store (the capture counted twice now).
    let output = v6scope(&["traffic", "--by", "minute", "--json", "--db", db.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(0));
    let minutes: Vec<Value> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let expected = truth["per_minute"].as_array().unwrap();
    assert_eq!(minutes.len(), expected.len());
    for (m, e) in minutes.iter().zip(expected) {
        assert_eq!(
            format!("{}:00Z", m["period"].as_str().unwrap()),
            e["start_utc"].as_str().unwrap()
        );
        let twice = |v: &Value| v.as_u64().unwrap() * 2;
        assert_eq!(m["ipv4_bytes"].as_u64().unwrap(), twice(&e["ipv4_bytes"]));
        assert_eq!(m["ipv6_bytes"].as_u64().unwrap(), twice(&e["ipv6_bytes"]));
        assert_eq!(m["ipv6_packets"].as_u64().unwrap(), twice(&e["ipv6_packets"]));
    }
}

#[test]
fn app_concentration_over_three_runs_names_the_ipv4_hosts() {
    let dir = captures();
    let db = dir.join("app.db");
    let runs = ["app-run1.pcap", "app-run2.pcapng", "app-run3.pcap"];
    let out = collect(&dir, &db, &runs);
    let manifest = read_json(&dir.join("manifest.json"));
    for (i, run) in runs.iter().enumerate() {
        let got = &out[format!("pcap:{}", dir.join(run).display())];
        let truth = read_json(&dir.join(run.replace(".pcapng", ".truth.json").replace(".pcap", ".truth.json")));
        let share = got["ipv6_concentration"].as_f64().unwrap();
        let expected = manifest["app_runs"]["ipv6_share_bytes"][i].as_f64().unwrap();
        assert!((share - expected).abs() < 1e-4, "{run}: {share} vs {expected}");
        // The IPv4-only hosts, largest first, named by SNI or DNS.
        let hosts: Vec<(Option<&str>, u64)> = got["ipv4_hosts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| (h["host"].as_str(), h["ipv4_bytes"].as_u64().unwrap()))
            .collect();
        let expected: Vec<(Option<&str>, u64)> = truth["app"]["hosts_with_ipv4_bytes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| {
                let name = h["name"].as_str().or_else(|| h["addresses"][0].as_str());
                (name, h["ipv4_bytes"].as_u64().unwrap())
            })
            .collect();
        assert_eq!(hosts, expected, "{run}");
    }
    let mean = out["ipv6_concentration_mean"]["mean"].as_f64().unwrap();
    let expected = manifest["app_runs"]["ipv6_share_bytes_mean"].as_f64().unwrap();
    assert!((mean - expected).abs() < 1e-4, "{mean} vs {expected}");
}

#[test]
fn damaged_captures_count_what_is_whole_and_garbage_is_a_usage_error() {
    let dir = captures();
    let whole = std::fs::read(dir.join("mix.pcap")).unwrap();
    let cut = dir.join("cut.pcap");
    std::fs::write(&cut, &whole[..whole.len() / 2 + 7]).unwrap();
    let db = dir.join("cut.db");
    let output = v6scope(&[
        "collect",
        "--json",
        "--db",
        db.to_str().unwrap(),
        "--pcap",
        cut.to_str().unwrap(),
    ]);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(String::from_utf8_lossy(&output.stderr).contains("ends mid-packet"));
    let out: Value = serde_json::from_slice(&output.stdout).unwrap();
    let packets = out[format!("pcap:{}", cut.display())]["capture"]["ip_packets"]
        .as_u64()
        .unwrap();
    assert!(packets > 100 && packets < 1000, "{packets}");

    let garbage = dir.join("garbage.pcap");
    std::fs::write(&garbage, b"this is not a capture at all, just text\n".repeat(100)).unwrap();
    let output = v6scope(&[
        "collect",
        "--db",
        db.to_str().unwrap(),
        "--pcap",
        garbage.to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("not a pcap or pcapng file"));
}
