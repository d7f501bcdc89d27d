//! The client beacon end to end: `v6scope serve --beacon-zone beacon.test`
//! in the lab's world (the lab's knot serves the wildcard zone and, over
//! IPv6 only, its v6ns delegation), headless chromium loading /beacon from
//! four client networks (lab/beacon): dual stack, IPv6 blackholed, IPv4
//! only, IPv6 with a path-MTU blackhole. Each client has an organisation of
//! its own in the prefix table, so the day's aggregates show each
//! classification, and their sum must equal the truth.

mod common;

use common::lab_env;
use common::server::Server;
use serde_json::Value;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const WORLD_NS: &str = "v6lab-world";

fn day(server: &Server) -> Value {
    let out = Command::new("ip")
        .args(["netns", "exec", WORLD_NS, "curl", "-s", "-m", "5"])
        .arg(server.url("/api/beacon"))
        .output()
        .unwrap();
    serde_json::from_slice(&out.stdout).unwrap_or(Value::Null)
}

fn group(day: &Value, name: &str) -> Option<Value> {
    day["groups"].as_array()?.iter().find(|g| g["group"] == name).cloned()
}

/// Loads the beacon page in headless chromium inside `ns` until its result
/// is counted for `org` (or 40 s pass); the browser is stopped by its PID.
fn run_browser(ns: &str, server: &Server, org: &str, profile: &std::path::Path) {
    let mut browser = Command::new("ip")
        .args([
            "netns",
            "exec",
            ns,
            "chromium",
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
        ])
        .args([
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--disable-background-networking",
        ])
        // The lab's IPv6 addresses are documentation ones, which Chromium's
        // Local Network Access counts as "local" (its IPv4 ones as public):
        // a public page's fetches to them would be blocked. A real beacon's
        // addresses are global, where the check does not apply.
        .arg(
            "--disable-features=HttpsUpgrades,HttpsFirstBalancedModeAutoEnable,BlockInsecurePrivateNetworkRequests,\
             PrivateNetworkAccessSendPreflights,PrivateNetworkAccessRespectPreflightResults,LocalNetworkAccessChecks",
        )
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(server.url("/beacon"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .expect("chromium (apt-get install chromium)");
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(40) {
        if group(&day(server), &format!("org:{org}")).is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    // SAFETY: signalling the process group we created.
    unsafe {
        libc::kill(-(browser.id() as libc::pid_t), libc::SIGKILL);
    }
    let _ = browser.wait();
}

fn counts(g: &Value) -> [u64; 6] {
    [
        "tested",
        "capable",
        "preferred",
        "broken",
        "mtu_trouble",
        "resolver_without_ipv6",
    ]
    .map(|k| g[k].as_u64().unwrap())
}

#[test]
fn four_client_networks_are_classified_right_and_the_aggregates_equal_the_truth() {
    let env = lab_env();
    let (v4, v6, mtu) = (
        &env["V6LAB_BEACON_V4"],
        &env["V6LAB_BEACON_V6"],
        &env["V6LAB_BEACON_MTU_V6"],
    );
    let dir = tempfile::tempdir().unwrap();
    let prefixes = dir.path().join("prefixes.csv");
    std::fs::write(
        &prefixes,
        "prefix,organisation,region\n\
         192.0.2.160/30,b1,north\n2001:db8:ffb1::/64,b1,north\n\
         192.0.2.164/30,b2,north\n2001:db8:ffb2::/64,b2,north\n\
         192.0.2.168/30,b3,south\n\
         192.0.2.172/30,b4,south\n2001:db8:ffb4::/64,b4,south\n",
    )
    .unwrap();
    // Short thresholds keep the test quick (the defaults are 5 s and 15 s).
    let config = dir.path().join("v6scope.toml");
    std::fs::write(
        &config,
        format!(
            "[serve]\nbeacon_zone = \"beacon.test\"\nbeacon_slow_ms = 2000\nbeacon_timeout_ms = 5000\nbeacon_prefixes = \"{}\"\n",
            prefixes.display()
        ),
    )
    .unwrap();
    let store = format!("sqlite:{}", dir.path().join("beacon.db").display());
    let listen = format!("{v4}:80");
    let (l6, lm) = (format!("[{v6}]:80"), format!("[{mtu}]:80"));
    let server = Server::start_listening(
        Some(WORLD_NS),
        &store,
        &["--config", config.to_str().unwrap()],
        &listen,
        &["--listen", &l6, "--listen", &lm],
    );
    for (k, ns) in ["v6lab-b1", "v6lab-b2", "v6lab-b3", "v6lab-b4"].iter().enumerate() {
        run_browser(
            ns,
            &server,
            &format!("b{}", k + 1),
            &dir.path().join(format!("profile-{k}")),
        );
    }
    let day = day(&server);
    let of = |name: &str| counts(&group(&day, name).unwrap_or_else(|| panic!("no {name} in {day}")));
    //                        tested capable preferred broken mtu resolver
    assert_eq!(of("org:b1"), [1, 1, 1, 0, 0, 0], "dual stack: {day}");
    assert_eq!(of("org:b2"), [1, 0, 0, 1, 0, 0], "IPv6 blackholed: {day}");
    assert_eq!(of("org:b3"), [1, 0, 0, 0, 0, 0], "IPv4 only: {day}");
    assert_eq!(of("org:b4"), [1, 1, 1, 0, 1, 0], "IPv6 path-MTU blackhole: {day}");
    assert_eq!(of("region:north"), [2, 1, 1, 1, 0, 0], "{day}");
    assert_eq!(of("region:south"), [2, 1, 1, 0, 1, 0], "{day}");
    assert_eq!(of("all"), [4, 2, 2, 1, 1, 0], "{day}");
    let all = group(&day, "all").unwrap();
    assert_eq!(all["capable_share"], 0.5);
    assert_eq!(all["preferred_share"], 0.5);
}
