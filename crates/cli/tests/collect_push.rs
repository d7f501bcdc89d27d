//! Federated collectors: carriers' `v6scope collect --push` with real
//! exporters (softflowd, pmacct) on loopback push into one server. Shared
//! subscribers count once; an outage of the server and a `kill -9` of a
//! collector lose nothing and duplicate nothing. Traffic goes to 127.0.0.1 only.

mod common;

use common::captures::captures;
use common::repo_root;
use common::server::Server;
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn v6scope(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_v6scope")).args(args).output().unwrap()
}

fn add_collector(db: &Path, name: &str, operator: &str, dir: &Path) -> PathBuf {
    let token = dir.join(format!("{name}.token"));
    let out = v6scope(&[
        "collectors",
        "add",
        name,
        "--operator",
        operator,
        "--token-file",
        token.to_str().unwrap(),
        "--db",
        db.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    token
}

/// A pushing collector listening on a free loopback port.
struct Collector {
    child: Child,
    port: u16,
}

fn start_collector(server: &str, token: &Path, spool: &Path, extra: &[&str]) -> Collector {
    let dir = captures();
    let mut child = Command::new(env!("CARGO_BIN_EXE_v6scope"))
        .args([
            "collect",
            "--json",
            "--listen",
            "udp://127.0.0.1:0",
            "--duration",
            "240",
        ])
        .arg("--prefixes")
        .arg(dir.join("prefixes.csv"))
        .args(["--push", server, "--token"])
        .arg(token)
        .arg("--spool")
        .arg(spool)
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    while !line.contains("listening on udp://") {
        line.clear();
        assert!(
            stderr.read_line(&mut line).unwrap() > 0,
            "the collector ended before listening"
        );
    }
    let port = line.trim().rsplit(':').next().and_then(|p| p.parse().ok()).unwrap();
    // Keep reading its log so it never blocks on a full pipe.
    std::thread::spawn(move || for _ in stderr.lines() {});
    Collector { child, port }
}

fn export(mode: &str, port: u16) {
    let out = Command::new(repo_root().join("lab/flows/export"))
        .args(["-q", mode])
        .arg(captures().join("mix.pcap"))
        .arg(port.to_string())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "lab/flows/export {mode}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn signal(child: &Child, name: &str) {
    assert!(
        Command::new("kill")
            .args([name, &child.id().to_string()])
            .status()
            .unwrap()
            .success()
    );
}

/// Stops a collector with SIGTERM and returns its summary.
fn stop(mut collector: Collector) -> Value {
    std::thread::sleep(Duration::from_millis(500));
    signal(&collector.child, "-TERM");
    let mut stdout = String::new();
    std::io::Read::read_to_string(collector.child.stdout.as_mut().unwrap(), &mut stdout).unwrap();
    let status = collector.child.wait().unwrap();
    assert_eq!(status.code(), Some(0), "collector: {stdout}");
    serde_json::from_str(&stdout).unwrap()
}

fn spooled(spool: &Path) -> usize {
    std::fs::read_dir(spool)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .filter(|e| e.file_name().to_string_lossy().ends_with(".json"))
                .count()
        })
        .unwrap_or(0)
}

fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn json_lines(out: std::process::Output) -> Vec<Value> {
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// [IPv4 bytes, IPv4 packets, IPv6 bytes, IPv6 packets] per source.
fn traffic_by_source(db: &Path) -> std::collections::BTreeMap<String, [u64; 4]> {
    let rows = json_lines(v6scope(&[
        "traffic",
        "--by",
        "month",
        "--group",
        "source",
        "--json",
        "--db",
        db.to_str().unwrap(),
    ]));
    let mut out = std::collections::BTreeMap::new();
    for r in rows {
        let n = |k: &str| r[k].as_u64().unwrap();
        let entry: &mut [u64; 4] = out.entry(r["source"].as_str().unwrap().to_string()).or_default();
        for (slot, k) in ["ipv4_bytes", "ipv4_packets", "ipv6_bytes", "ipv6_packets"]
            .iter()
            .enumerate()
        {
            entry[slot] += n(k);
        }
    }
    out
}

fn truth() -> (Value, [u64; 4]) {
    let t: Value = serde_json::from_str(&std::fs::read_to_string(captures().join("mix.truth.json")).unwrap()).unwrap();
    let n = |k: &str| t["totals"][k].as_u64().unwrap();
    (
        t.clone(),
        [n("ipv4_bytes"), n("ipv4_packets"), n("ipv6_bytes"), n("ipv6_packets")],
    )
}

fn users(db: &Path) -> Value {
    json_lines(v6scope(&["users", "--json", "--db", db.to_str().unwrap()])).remove(0)
}

/// The truth's distinct subscribers and addresses over all organisations.
fn truth_users(truth: &Value) -> (u64, u64) {
    truth["orgs"].as_object().unwrap().values().fold((0, 0), |(s, a), o| {
        (
            s + o["active_subscribers"].as_u64().unwrap(),
            a + o["active_addresses"].as_u64().unwrap(),
        )
    })
}

fn users_of(users: &Value, list: &str, key: &str, name: &str) -> (u64, u64) {
    let row = users[list]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r[key] == name)
        .unwrap_or_else(|| panic!("no {name} in {users}"));
    (row["subscribers"].as_u64().unwrap(), row["addresses"].as_u64().unwrap())
}

#[test]
fn two_carriers_with_real_exporters_count_shared_subscribers_once() {
    let work = tempfile::tempdir().unwrap();
    let db = work.path().join("platform.db");
    let token_a = add_collector(&db, "carrier-a", "CMCC", work.path());
    let token_b = add_collector(&db, "carrier-b", "CTCC", work.path());
    let server = Server::start(&db, &[], &[]);
    let url = server.url("/");
    // Both carriers carry the same subscribers' traffic: carrier A exports
    // with softflowd (NetFlow v9), carrier B with pmacct (IPFIX, which
    // states no sampling rate when unsampled). Both stamp flows with the
    // capture's times, so the subscribers are on the same day.
    let a = start_collector(&url, &token_a, &work.path().join("spool-a"), &["--count-egress"]);
    let b = start_collector(
        &url,
        &token_b,
        &work.path().join("spool-b"),
        &["--sampling-default", "127.0.0.1=1"],
    );
    export("softflowd-v9", a.port);
    export("pmacct-ipfix", b.port);
    for (name, collector) in [("a", a), ("b", b)] {
        let summary = stop(collector);
        assert_eq!(summary["push"]["left_in_spool"], 0, "{name}: {summary}");
        assert_eq!(summary["push"]["rejected"], 0, "{name}: {summary}");
        assert!(summary["push"]["sent"].as_u64().unwrap() >= 1, "{name}: {summary}");
    }
    let (truth, expected) = truth();
    let by_source = traffic_by_source(&db);
    assert_eq!(by_source.get("collector:carrier-a"), Some(&expected), "{by_source:?}");
    assert_eq!(by_source.get("collector:carrier-b"), Some(&expected), "{by_source:?}");
    assert_eq!(by_source.len(), 2, "{by_source:?}");
    let users = users(&db);
    let (subscribers, addresses) = truth_users(&truth);
    // Nationally and per operator, each subscriber once.
    assert_eq!(
        users_of(&users, "organisations", "organisation", "(all)"),
        (subscribers, addresses),
        "{users}"
    );
    assert_eq!(
        users_of(&users, "operators", "operator", "CMCC"),
        (subscribers, addresses)
    );
    assert_eq!(
        users_of(&users, "operators", "operator", "CTCC"),
        (subscribers, addresses)
    );
    for org in truth["orgs"].as_object().unwrap().values() {
        let name = org["name"].as_str().unwrap();
        if org["active_subscribers"].as_u64() > Some(0) {
            assert_eq!(
                users_of(&users, "organisations", "organisation", name),
                (
                    org["active_subscribers"].as_u64().unwrap(),
                    org["active_addresses"].as_u64().unwrap()
                )
            );
        }
    }
    // /metrics shows each collector, its last push and lag.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let metrics = reqwest::blocking::get(server.url("/metrics")).unwrap().text().unwrap();
    for name in ["carrier-a", "carrier-b"] {
        let line = format!("v6scope_collector_batches{{collector=\"{name}\"");
        assert!(metrics.contains(&line), "{line} not in {metrics}");
    }
    assert!(metrics.contains("v6scope_collector_lag_seconds{collector=\"carrier-a\",operator=\"CMCC\"}"));
    // A revoked collector's batches are refused; the batch stays spooled.
    assert!(
        v6scope(&["collectors", "revoke", "carrier-b", "--db", db.to_str().unwrap()])
            .status
            .success()
    );
    let b = start_collector(
        &url,
        &token_b,
        &work.path().join("spool-b"),
        &["--sampling-default", "127.0.0.1=1"],
    );
    export("pmacct-ipfix", b.port);
    let summary = stop(b);
    assert_eq!(summary["push"]["sent"], 0, "{summary}");
    assert!(summary["push"]["left_in_spool"].as_u64().unwrap() >= 1, "{summary}");
    assert_eq!(traffic_by_source(&db).get("collector:carrier-b"), Some(&expected));
}

#[test]
fn an_outage_and_a_killed_collector_lose_nothing_and_duplicate_nothing() {
    let work = tempfile::tempdir().unwrap();
    let db = work.path().join("platform.db");
    let token = add_collector(&db, "carrier-a", "CMCC", work.path());
    let spool = work.path().join("spool");
    let server = Server::start(&db, &[], &[]);
    let listen = server.base.trim_start_matches("http://").to_string();
    let url = server.url("/");
    let collector = start_collector(&url, &token, &spool, &["--count-egress", "--interval", "2"]);
    let batches = || -> u64 {
        json_lines(v6scope(&["collectors", "list", "--json", "--db", db.to_str().unwrap()]))[0]["batches"]
            .as_u64()
            .unwrap()
    };
    // 1: the server takes the first export.
    export("softflowd-v9", collector.port);
    wait_for("the first batch at the server", || batches() >= 1);
    // 2: the server goes away; the second export waits in the spool.
    drop(server);
    export("softflowd-ipfix", collector.port);
    wait_for("a batch in the spool", || spooled(&spool) >= 1);
    let kept = std::fs::read_dir(&spool)
        .unwrap()
        .filter_map(|e| e.ok())
        .find(|e| e.file_name().to_string_lossy().ends_with(".json"))
        .unwrap()
        .path();
    let copy = std::fs::read(&kept).unwrap();
    // 3: the collector is killed outright, and a new one starts on the
    // same spool and takes a third export while the server is still away.
    let mut killed = collector.child;
    signal(&killed, "-KILL");
    let _ = killed.wait();
    let collector = start_collector(&url, &token, &spool, &["--count-egress", "--interval", "2"]);
    export("softflowd-v9", collector.port);
    wait_for("the third export in the spool", || spooled(&spool) >= 2);
    // 4: the server is back on the same address; the spool drains.
    let server = Server::start_listening(None, &format!("sqlite:{}", db.display()), &[], &listen, &[]);
    wait_for("the spool to drain", || spooled(&spool) == 0);
    let summary = stop(collector);
    assert_eq!(summary["push"]["left_in_spool"], 0, "{summary}");
    // 5: a batch sent again (as after a lost acknowledgement) is a duplicate.
    std::fs::write(&kept, &copy).unwrap();
    let out = v6scope(&[
        "collect",
        "--json",
        "--push",
        &url,
        "--token",
        token.to_str().unwrap(),
        "--spool",
        spool.to_str().unwrap(),
    ]);
    let drained: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(drained["push"]["duplicates"], 1, "{drained}");
    assert_eq!(drained["push"]["sent"], 0, "{drained}");
    let (truth, expected) = truth();
    let three: [u64; 4] = expected.map(|n| n * 3);
    assert_eq!(traffic_by_source(&db).get("collector:carrier-a"), Some(&three));
    let listed = &json_lines(v6scope(&["collectors", "list", "--json", "--db", db.to_str().unwrap()]))[0];
    assert_eq!(listed["duplicates"], 1, "{listed}");
    assert_eq!(listed["spool_dropped"], 0, "{listed}");
    let users = users(&db);
    assert_eq!(
        users_of(&users, "organisations", "organisation", "(all)"),
        truth_users(&truth)
    );
    drop(server);
}

#[test]
fn a_full_spool_drops_new_batches_loudly_and_keeps_the_oldest() {
    let work = tempfile::tempdir().unwrap();
    let spool = work.path().join("spool");
    let token = work.path().join("token");
    std::fs::write(&token, "v6collector_nothing\n").unwrap();
    // Nobody listens on this port: every batch stays spooled.
    let nowhere = "http://127.0.0.1:9/";
    let pcap = captures().join("mix.pcap");
    let run = || {
        let out = Command::new(env!("CARGO_BIN_EXE_v6scope"))
            .args(["collect", "--json", "--pcap"])
            .arg(&pcap)
            .args(["--push", nowhere, "--token"])
            .arg(&token)
            .arg("--spool")
            .arg(&spool)
            .args(["--spool-max-mib", "1"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        (
            serde_json::from_slice::<Value>(&out.stdout).unwrap(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    let (first, _) = run();
    assert_eq!(first["push"]["spool_dropped"], 0, "{first}");
    let oldest = std::fs::read_dir(&spool)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name())
        .min();
    // Fill the spool past 1 MiB with padding a batch never has.
    std::fs::write(spool.join("00000000000000000000.json"), vec![b' '; 1 << 20]).unwrap();
    let (second, stderr) = run();
    assert_eq!(second["push"]["spool_dropped"], 1, "{second}");
    assert!(stderr.contains("spool full"), "{stderr}");
    let names: Vec<_> = std::fs::read_dir(&spool)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name())
        .collect();
    assert!(
        names.iter().any(|n| Some(n) == oldest.as_ref()),
        "the oldest batch was kept"
    );
}
