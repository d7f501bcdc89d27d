//! Templates kept across restarts (`--state-dir`): data datagrams that come
//! after a restart, without their template, still decode. Uses softflowd's
//! recorded IPFIX export (crates/flow/testdata), no network.

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
