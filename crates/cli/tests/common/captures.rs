//! The ground-truth captures of lab/flows/gen_pcaps.py (Debian's
//! python3-scapy), written once per test process, with the prefix table
//! their truth is computed with.

use serde_json::Value;
use std::path::PathBuf;
use std::process::Command;

/// The directory holding mix.pcap, the app runs, their truths,
/// manifest.json and prefixes.csv.
pub fn captures() -> PathBuf {
    static DIR: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("v6scope-pcaps-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let output = Command::new("/usr/bin/python3")
            .arg(super::repo_root().join("lab/flows/gen_pcaps.py"))
            .arg(&dir)
            .output()
            .expect("running lab/flows/gen_pcaps.py");
        assert!(
            output.status.success(),
            "lab/flows/gen_pcaps.py failed (needs python3-scapy: lab/install-deps): {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let manifest = read_json(&dir.join("manifest.json"));
        let mut csv = String::from("prefix,asn,organisation,region,subscriber_len,role\n");
        for (i, org) in manifest["orgs"].as_array().unwrap().iter().enumerate() {
            for prefix in org["prefixes"].as_array().unwrap() {
                let len = org["subscriber_prefix_len"].as_u64();
                csv += &format!(
                    "{},{},{},{},{},{}\n",
                    prefix.as_str().unwrap(),
                    64500 + i,
                    org["name"].as_str().unwrap(),
                    org["region"].as_str().unwrap(),
                    len.map(|l| l.to_string()).unwrap_or_default(),
                    if len.is_some() { "subscriber" } else { "server" }
                );
            }
        }
        std::fs::write(dir.join("prefixes.csv"), csv).unwrap();
        dir
    })
    .clone()
}

pub fn read_json(path: &std::path::Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}
