//! `v6scope collect --listen` receiving real exporters on loopback: Debian's
//! softflowd (NetFlow v9, IPFIX), pmacct's pmacctd (nfprobe IPFIX, sfprobe
//! sFlow) and nfdump's nfpcapd + nfreplay (v9), each replaying
//! lab/flows/gen_pcaps.py's mix.pcap through lab/flows/export. Unsampled
//! totals must equal the capture's ground truth (nfreplay's: what nfdump
//! itself counts, as nfpcapd reassembles IPv4 fragments), and the active
//! users those of the truth. Traffic goes to 127.0.0.1 only.

mod common;

use common::captures::captures;
use common::repo_root;
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

/// Runs a collector on a free loopback port, replays mix.pcap through
/// `mode`, and returns the collector's JSON summary of the UDP listener.
fn collect_from(mode: &str, extra: &[&str]) -> Value {
    collect_until(mode, extra, Stop::Idle)
}

/// How the collector is stopped once the exporter is done.
#[derive(PartialEq, Debug)]
enum Stop {
    /// `--idle-exit 3`: it stops by itself.
    Idle,
    /// `kill -TERM` (what systemd, Docker and Kubernetes send).
    Term,
}

fn collect_until(mode: &str, extra: &[&str], stop: Stop) -> Value {
    let dir = captures();
    let db = dir.join(format!("{mode}-{stop:?}.db"));
    let _ = std::fs::remove_file(&db);
    let idle: &[&str] = if stop == Stop::Idle { &["--idle-exit", "3"] } else { &[] };
    let mut collector = Command::new(env!("CARGO_BIN_EXE_v6scope"))
        .args(["collect", "--json", "--listen", "udp://127.0.0.1:0"])
        .args(idle)
        .args(["--duration", "240", "--db"])
        .arg(&db)
        .arg("--prefixes")
        .arg(dir.join("prefixes.csv"))
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(collector.stderr.take().unwrap());
    let mut line = String::new();
    stderr.read_line(&mut line).unwrap();
    let port = line
        .trim()
        .rsplit(':')
        .next()
        .and_then(|p| p.parse::<u16>().ok())
        .unwrap_or_else(|| panic!("collector did not say where it listens: {line}"));
    let export = Command::new(repo_root().join("lab/flows/export"))
        .args(["-q", mode])
        .arg(dir.join("mix.pcap"))
        .arg(port.to_string())
        .output()
        .unwrap();
    assert!(
        export.status.success(),
        "lab/flows/export {mode}: {}{}",
        String::from_utf8_lossy(&export.stdout),
        String::from_utf8_lossy(&export.stderr)
    );
    if stop == Stop::Term {
        // The last datagrams have left softflowd; give the socket a moment.
        std::thread::sleep(std::time::Duration::from_millis(500));
        let killed = Command::new("kill")
            .args(["-TERM", &collector.id().to_string()])
            .status()
            .unwrap();
        assert!(killed.success());
    }
    let output = collector.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(0), "collector for {mode} failed");
    let summary: Value = serde_json::from_slice(&output.stdout).unwrap();
    summary["udp"].clone()
}

fn totals(udp: &Value) -> [u64; 4] {
    let t = &udp["traffic"];
    [
        t["ipv4"]["bytes"].as_u64().unwrap(),
        t["ipv4"]["packets"].as_u64().unwrap(),
        t["ipv6"]["bytes"].as_u64().unwrap(),
        t["ipv6"]["packets"].as_u64().unwrap(),
    ]
}

fn truth() -> (Value, [u64; 4]) {
    let t: Value = serde_json::from_str(&std::fs::read_to_string(captures().join("mix.truth.json")).unwrap()).unwrap();
    let n = |k: &str| t["totals"][k].as_u64().unwrap();
    let totals = [n("ipv4_bytes"), n("ipv4_packets"), n("ipv6_bytes"), n("ipv6_packets")];
    (t, totals)
}

fn assert_users_match(udp: &Value, truth: &Value, mode: &str) {
    for org in truth["orgs"].as_object().unwrap().values() {
        let Some(expected) = org["active_subscribers"].as_u64().filter(|&n| n > 0) else {
            continue;
        };
        let found = udp["users"]
            .as_array()
            .unwrap()
            .iter()
            .find(|u| u["organisation"] == org["name"])
            .unwrap_or_else(|| panic!("{mode}: no users for {}", org["name"]));
        assert_eq!(found["subscribers"].as_u64(), Some(expected), "{mode}: {}", org["name"]);
        assert_eq!(found["addresses"], org["active_addresses"], "{mode}: {}", org["name"]);
    }
}

#[test]
fn softflowd_netflow_v9_and_ipfix_equal_the_ground_truth() {
    let (truth, expected) = truth();
    for mode in ["softflowd-v9", "softflowd-ipfix"] {
        // softflowd states its (1 in 1) sampling in an options record; it
        // marks the reverse half of each conversation egress, and a capture
        // sees each packet once, so both halves count.
        let udp = collect_from(mode, &["--count-egress"]);
        assert_eq!(totals(&udp), expected, "{mode}: {udp}");
        assert_eq!(udp["unknown_sampling_records"], 0, "{mode}");
        assert_eq!(udp["drops"], serde_json::json!({}), "{mode}");
        assert_users_match(&udp, &truth, mode);
    }
}

/// SIGTERM against a live exporter: softflowd exports the capture over
/// IPFIX, the collector is stopped with `kill -TERM` in the middle of its
/// (60 s) interval, and everything it received is stored: the store's
/// totals equal the capture's, and it exits 0.
#[test]
fn sigterm_with_softflowd_live_stores_the_interval_in_progress() {
    let (_, expected) = truth();
    let mode = "softflowd-ipfix";
    let udp = collect_until(mode, &["--count-egress", "--interval", "60"], Stop::Term);
    assert_eq!(totals(&udp), expected, "{udp}");
    let traffic = Command::new(env!("CARGO_BIN_EXE_v6scope"))
        .args(["traffic", "--by", "day", "--json", "--db"])
        .arg(captures().join(format!("{mode}-{:?}.db", Stop::Term)))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&traffic.stdout);
    let stored = text
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .fold([0u64; 2], |acc, v| {
            [
                acc[0] + v["ipv4_bytes"].as_u64().unwrap_or(0),
                acc[1] + v["ipv6_bytes"].as_u64().unwrap_or(0),
            ]
        });
    assert_eq!(stored, [expected[0], expected[2]], "stored: {text}");
}

#[test]
fn pmacct_ipfix_and_sflow_equal_the_ground_truth() {
    let (truth, expected) = truth();
    // pmacct's nfprobe states no rate when unsampled: without a default the
    // records are set apart, not scaled.
    let udp = collect_from("pmacct-ipfix", &[]);
    assert_eq!(totals(&udp), [0; 4]);
    assert!(udp["unknown_sampling_records"].as_u64().unwrap() > 0);
    let udp = collect_from("pmacct-ipfix", &["--sampling-default", "127.0.0.1=1"]);
    assert_eq!(totals(&udp), expected, "{udp}");
    // sFlow: every sample carries its rate; bytes are the sampled packet's
    // IP length, not the frame's.
    let udp = collect_from("pmacct-sflow", &[]);
    assert_eq!(totals(&udp), expected, "{udp}");
    assert_users_match(&udp, &truth, "pmacct-sflow");
}

#[test]
fn nfreplay_stream_agrees_with_nfdump_on_it() {
    let udp = collect_from("nfreplay-v9", &["--sampling-default", "127.0.0.1=1"]);
    let peer = Command::new(repo_root().join("lab/flows/peer-nfdump"))
        .arg(captures().join("mix.pcap"))
        .arg("nfreplay-v9")
        .output()
        .unwrap();
    assert!(peer.status.success(), "{}", String::from_utf8_lossy(&peer.stderr));
    let nfdump: Vec<u64> = String::from_utf8_lossy(&peer.stdout)
        .split_whitespace()
        .map(|x| x.parse().unwrap())
        .collect();
    assert_eq!(totals(&udp).to_vec(), nfdump);
}

#[test]
fn sighup_reloads_the_prefix_table_without_stopping() {
    let dir = captures().join("reload");
    std::fs::create_dir_all(&dir).unwrap();
    let table = dir.join("prefixes.csv");
    std::fs::write(&table, "prefix,organisation\n2001:db8::/32,Before\n").unwrap();
    let mut collector = Command::new(env!("CARGO_BIN_EXE_v6scope"))
        .args(["collect", "--json", "--listen", "udp://127.0.0.1:0", "--idle-exit", "8"])
        .args(["--duration", "120", "--count-egress", "--db"])
        .arg(dir.join("reload.db"))
        .arg("--prefixes")
        .arg(&table)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(collector.stderr.take().unwrap());
    let mut line = String::new();
    stderr.read_line(&mut line).unwrap();
    let port = line.trim().rsplit(':').next().unwrap().to_string();
    let export = || {
        let out = Command::new(repo_root().join("lab/flows/export"))
            .args(["-q", "softflowd-ipfix"])
            .arg(captures().join("mix.pcap"))
            .arg(&port)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    };
    export();
    std::fs::write(&table, "prefix,organisation\n2001:db8::/32,After\n").unwrap();
    let hup = Command::new("kill")
        .args(["-HUP", &collector.id().to_string()])
        .status()
        .unwrap();
    assert!(hup.success());
    line.clear();
    stderr.read_line(&mut line).unwrap();
    assert!(line.contains("prefix tables reloaded"), "{line}");
    export();
    let output = collector.wait_with_output().unwrap();
    assert!(output.status.success());
    let summary: Value = serde_json::from_slice(&output.stdout).unwrap();
    let organisations: Vec<&str> = summary["udp"]["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["organisation"].as_str().unwrap())
        .collect();
    assert!(
        organisations.contains(&"Before") && organisations.contains(&"After"),
        "{organisations:?}"
    );
}
