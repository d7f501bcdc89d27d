//! Templates kept across restarts (`--state-dir`): data datagrams that come
//! after a restart, without their template, still decode. Uses softflowd's
//! recorded IPFIX export (crates/flow/testdata), no network.

mod common;

use serde_json::Value;
use std::path::Path;
use std::process::Command;

fn datagrams(path: &Path) -> Vec<Vec<u8>> {
    let bytes = std::fs::read(path).unwrap();
    let mut out = Vec::new();
    let mut at = 0;
    while at + 4 <= bytes.len() {
        let len = u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
        out.push(bytes[at..at + 4 + len].to_vec());
        at += 4 + len;
    }
    out
}

fn collect(file: &Path, state: Option<&Path>, db: &Path) -> Value {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_v6scope"));
    cmd.args(["collect", "--json", "--count-egress", "--db"])
        .arg(db)
        .arg("--datagrams")
        .arg(file);
    if let Some(dir) = state {
        cmd.arg("--state-dir").arg(dir);
    }
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    v[format!("datagrams:{}", file.display())].clone()
}

#[test]
fn templates_survive_a_restart_of_the_collector() {
    let dir = std::env::temp_dir().join(format!("v6scope-state-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("../flow/testdata/softflowd-ipfix.bin");
    let all = datagrams(&fixture);
    // softflowd sends its templates in the first datagram (then every 16th):
    // the 13 after it (the whole export is 14) carry data only.
    let data_only = dir.join("data-only.bin");
    std::fs::write(&data_only, all[1..].concat()).unwrap();
    let first = dir.join("first.bin");
    std::fs::write(&first, all[..1].concat()).unwrap();
    let state = dir.join("state");
    let db = dir.join("v6scope.db");

    let without = collect(&data_only, None, &db);
    assert_eq!(without["records"], 0, "no template, no records: {without}");

    let seeded = collect(&first, Some(&state), &db);
    assert!(seeded["templates"].as_u64().unwrap() > 0, "{seeded}");
    assert!(state.join("templates.json").exists());
    let restarted = collect(&data_only, Some(&state), &db);
    assert!(restarted["records"].as_u64().unwrap() > 100, "{restarted}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// SIGTERM (what systemd, Docker and Kubernetes send) stops the listening
/// collector like Ctrl-C: the interval in progress is stored and it exits 0.
/// The datagrams are softflowd's own IPFIX export, sent over UDP.
#[test]
fn sigterm_flushes_the_interval_in_progress_and_exits_0() {
    let dir = std::env::temp_dir().join(format!("v6scope-sigterm-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let db = dir.join("v6scope.db");
    let port = 20_000 + (std::process::id() % 20_000) as u16;
    let child = Command::new(env!("CARGO_BIN_EXE_v6scope"))
        .args(["collect", "--json", "--count-egress", "--interval", "60", "--listen"])
        .arg(format!("udp://127.0.0.1:{port}"))
        .arg("--db")
        .arg(&db)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(700));
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("../flow/testdata/softflowd-ipfix.bin");
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    for d in datagrams(&fixture) {
        socket.send_to(&d[4..], ("127.0.0.1", port)).unwrap();
    }
    std::thread::sleep(std::time::Duration::from_millis(700));
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let traffic = Command::new(env!("CARGO_BIN_EXE_v6scope"))
        .args(["traffic", "--by", "day", "--json", "--db"])
        .arg(&db)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&traffic.stdout);
    let bytes: u64 = text
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .map(|v| v["ipv4_bytes"].as_u64().unwrap_or(0) + v["ipv6_bytes"].as_u64().unwrap_or(0))
        .sum();
    assert!(bytes > 0, "nothing of the interval was stored: {text}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Records whose exporter states no sampling rate are not shown as volumes,
/// but their IPv6 share is, per exporter, flagged unscaled, with the flag
/// that gives the rate (issue 10 §5). Mikrotik's real IPFIX export states none.
#[test]
fn records_without_a_sampling_rate_show_their_share_flagged_unscaled() {
    let dir = std::env::temp_dir().join(format!("v6scope-unscaled-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let db = dir.join("v6scope.db");
    let captures = [
        std::env::var_os("V6SCOPE_FLOW_CAPTURES").map(std::path::PathBuf::from),
        Some(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/reference/flow-captures")),
        Some(std::path::PathBuf::from("/work/shared/reference/flow-captures")),
    ]
    .into_iter()
    .flatten()
    .find(|d| d.join("truth.tsv").exists())
    .expect("the real exporter captures (shared/reference/flow-captures; or set V6SCOPE_FLOW_CAPTURES)");
    let fixture = captures.join("ls-ipfix-mikrotik.bin");
    let out = Command::new(env!("CARGO_BIN_EXE_v6scope"))
        .args(["collect", "--quiet", "--count-egress", "--db"])
        .arg(&db)
        .arg("--datagrams")
        .arg(&fixture)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let traffic = Command::new(env!("CARGO_BIN_EXE_v6scope"))
        .args(["traffic", "--by", "day", "--json", "--db"])
        .arg(&db)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&traffic.stderr);
    let rows: Vec<Value> = String::from_utf8_lossy(&traffic.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let unscaled: Vec<&Value> = rows.iter().filter(|r| r["scaled"] == false).collect();
    assert_eq!(unscaled.len(), 1, "{rows:?}");
    assert!(
        stderr.contains("wait for a sampling rate") && stderr.contains("--sampling-default"),
        "{stderr}"
    );
    let r = unscaled[0];
    assert!(r.get("ipv4_bytes").is_none(), "an unscaled row shows a volume: {r}");
    // The exporter's own counters: 8 225 IPv6 bytes of 103 235.
    assert_eq!(r["ipv6_byte_share"].as_f64(), Some(0.0797), "{r}");
    assert_eq!(
        (r["ipv4_records"].as_u64(), r["ipv6_records"].as_u64()),
        (Some(28), Some(18))
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
