//! The delay line in the running lab (`sudo lab/up` first): `lab/delay`
//! with this crate's binary gives the client's path the asked-for delay per
//! family and per prefix, drops what the loss rule says, and leaves no trace
//! when turned off. Delays are checked from below (a packet can never come
//! back sooner than the delay line holds it), with a generous ceiling for a
//! loaded machine.

use std::path::PathBuf;
use std::process::Command;

fn lab_script() -> PathBuf {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    assert!(
        std::path::Path::new("/tmp/v6lab/lab.env").exists(),
        "the lab is not up: run `sudo lab/up` (lab/install-deps installs its packages)"
    );
    root.join("lab/delay")
}

fn delay(args: &[&str]) -> String {
    let out = Command::new(lab_script())
        .args(args)
        .env("V6SCOPE_NETEM", env!("CARGO_BIN_EXE_v6scope-netem"))
        .output()
        .expect("running lab/delay");
    assert!(
        out.status.success(),
        "lab/delay {args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Median TCP connect time to ADDR:53 from the client, or None when no
/// connection could be made.
fn rtt(address: &str) -> Option<f64> {
    delay(&["--rtt", address]).parse().ok()
}

/// Turns the delay line off however the test ends.
struct Off;
impl Drop for Off {
    fn drop(&mut self) {
        let _ = Command::new(lab_script())
            .arg("--off")
            .env("V6SCOPE_NETEM", env!("CARGO_BIN_EXE_v6scope-netem"))
            .output();
    }
}

#[test]
fn delay_loss_and_prefix_rules_on_the_client_path() {
    let _off = Off;
    let (root4, root6, tld6) = ("198.51.100.1", "2001:db8:1::1", "2001:db8:1::2");

    delay(&["--off"]);
    let base4 = rtt(root4).expect("IPv4 root reachable without delay");
    let base6 = rtt(root6).expect("IPv6 root reachable without delay");
    assert!(base4 < 20.0 && base6 < 20.0, "without delay: {base4} / {base6} ms");

    // One-way 40 / 60 ms in each direction: RTT 80 / 120 ms.
    delay(&["--v4", "40", "--v6", "60"]);
    let v4 = rtt(root4).expect("IPv4 through the delay line");
    let v6 = rtt(root6).expect("IPv6 through the delay line");
    assert!((80.0..160.0).contains(&v4), "IPv4 RTT {v4} ms, want 80 ms");
    assert!((120.0..200.0).contains(&v6), "IPv6 RTT {v6} ms, want 120 ms");

    // A prefix rule comes first: the root's /128 waits 100 ms each way,
    // the rest of IPv6 30 ms.
    delay(&["--v6", "30", "--rule", "2001:db8:1::1/128 delay=100"]);
    let root = rtt(root6).expect("IPv6 root under the prefix rule");
    let tld = rtt(tld6).expect("IPv6 TLD under the family rule");
    assert!(
        (200.0..280.0).contains(&root),
        "prefix rule: RTT {root} ms, want 200 ms"
    );
    assert!((60.0..140.0).contains(&tld), "family rule: RTT {tld} ms, want 60 ms");
    let v4 = rtt(root4).expect("IPv4 without a delay");
    assert!(v4 < 20.0, "IPv4 has no rule left: RTT {v4} ms");

    // Total loss on IPv6 only: no IPv6 connection, IPv4 untouched.
    delay(&["--loss-v6", "100"]);
    assert_eq!(rtt(root6), None, "IPv6 with 100 % loss answered");
    assert!(rtt(root4).is_some_and(|ms| ms < 20.0));

    // Off: nothing left in the path.
    delay(&["--off"]);
    let v6 = rtt(root6).expect("IPv6 after --off");
    assert!(v6 < 20.0, "after --off: RTT {v6} ms");
    let status = delay(&["--status"]);
    assert!(
        status.contains("v6lab-client: off") && status.contains("v6lab-world: off"),
        "{status}"
    );
}
