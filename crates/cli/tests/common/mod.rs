//! Shared helpers for tests that run v6scope inside the network-namespace lab.
#![allow(dead_code)]

pub mod captures;
pub mod fleet;
pub mod server;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Command, Output};

pub const CLIENT_NS: &str = "v6lab-client";

/// The lab's facts from /tmp/v6lab/lab.env, or a panic that says how to get them.
pub fn lab_env() -> BTreeMap<String, String> {
    let path = std::env::var("V6LAB_ENV").unwrap_or_else(|_| "/tmp/v6lab/lab.env".into());
    let text = std::fs::read_to_string(&path).unwrap_or_else(|_| {
        panic!(
            "lab tests need the network-namespace lab: run as root `lab/install-deps && lab/up` \
             (or `bash .ci/run`), then `cargo test`. {path} is missing."
        )
    });
    let env: BTreeMap<String, String> = text
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.trim().trim_matches('"').to_string()))
        .collect();
    let namespaces = Command::new("ip")
        .args(["netns", "list"])
        .output()
        .expect("running `ip netns list`");
    assert!(
        String::from_utf8_lossy(&namespaces.stdout).contains(CLIENT_NS),
        "lab namespace {CLIENT_NS} is not up: run `lab/up` as root"
    );
    env
}

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Flags that point v6scope at the lab's resolver, CA and address space.
pub fn lab_flags(env: &BTreeMap<String, String>) -> Vec<String> {
    vec![
        "--resolver".into(),
        env["V6LAB_RESOLVER_V4"].clone(),
        "--resolver".into(),
        env["V6LAB_RESOLVER_V6"].clone(),
        "--ca-file".into(),
        env["V6LAB_CA_FILE"].clone(),
        "--allow-prefix".into(),
        "2001:db8::/32".into(),
        "--allow-prefix".into(),
        "203.0.113.0/24".into(),
        "--allow-prefix".into(),
        "198.51.100.0/24".into(),
        "--vantage-probe".into(),
        env["V6LAB_ROOT_V4"].clone(),
        "--vantage-probe".into(),
        env["V6LAB_ROOT_V6"].clone(),
    ]
}

/// Runs the v6scope binary inside the lab's client namespace.
pub fn v6scope_in_lab(args: &[String]) -> Output {
    Command::new("ip")
        .args(["netns", "exec", CLIENT_NS, env!("CARGO_BIN_EXE_v6scope")])
        .args(args)
        .output()
        .expect("running v6scope in the lab namespace")
}

/// An nftables table in the world namespace that drops IPv6 to one
/// address; removed when dropped.
pub struct Blackhole;

impl Blackhole {
    pub fn v6(address: &str) -> Blackhole {
        let rules = format!(
            "table inet v6scope_test {{\n chain input {{\n  type filter hook input priority -5; policy accept;\n  ip6 daddr {address} drop\n }}\n}}\n"
        );
        let _ = std::process::Command::new("ip")
            .args([
                "netns",
                "exec",
                "v6lab-world",
                "nft",
                "delete",
                "table",
                "inet",
                "v6scope_test",
            ])
            .stderr(std::process::Stdio::null())
            .status();
        let mut nft = std::process::Command::new("ip")
            .args(["netns", "exec", "v6lab-world", "nft", "-f", "-"])
            .stdin(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        std::io::Write::write_all(&mut nft.stdin.take().unwrap(), rules.as_bytes()).unwrap();
        let status = nft.wait().unwrap();
        assert!(status.success(), "adding the nft blackhole");
        Blackhole
    }
}

impl Drop for Blackhole {
    fn drop(&mut self) {
        let _ = std::process::Command::new("ip")
            .args([
                "netns",
                "exec",
                "v6lab-world",
                "nft",
                "delete",
                "table",
                "inet",
                "v6scope_test",
            ])
            .status();
    }
}
