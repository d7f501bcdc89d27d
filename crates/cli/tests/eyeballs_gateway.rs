//! `v6scope eyeballs --gateway`: the bench as the router of a device. The
//! device is a namespace the test creates, its LAN link a veth whose other
//! end the gateway takes; it runs curl against the bench's names while the
//! gateway goes through its phases. Needs root, as CI has.

use serde_json::Value;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The device's namespace and the gateway's end of its link; removed when dropped.
struct Device {
    namespace: String,
    lan: String,
}

fn ip(args: &str) {
    let status = Command::new("ip").args(args.split_whitespace()).status().unwrap();
    assert!(status.success(), "ip {args}");
}

impl Device {
    fn new() -> Device {
        let id = std::process::id();
        let device = Device {
            namespace: format!("v6ebdev{id}"),
            lan: format!("v6gwlan{id}"),
        };
        let (ns, lan) = (&device.namespace, &device.lan);
        ip(&format!("netns add {ns}"));
        ip(&format!("link add {lan} type veth peer dev0 netns {ns}"));
        ip(&format!("-n {ns} link set lo up"));
        // Static addresses in the gateway's LAN prefixes (a phone would take
        // them from DHCPv4 and SLAAC).
        ip(&format!("-n {ns} addr add 198.51.100.10/26 dev dev0"));
        ip(&format!("-n {ns} addr add 2001:db8:e7::10/64 dev dev0 nodad"));
        ip(&format!("-n {ns} link set dev0 up"));
        ip(&format!("-n {ns} route add default via 198.51.100.1"));
        ip(&format!("-n {ns} -6 route add default via 2001:db8:e7::1"));
        std::fs::create_dir_all(format!("/etc/netns/{ns}")).unwrap();
        std::fs::write(format!("/etc/netns/{ns}/resolv.conf"), "nameserver 198.51.100.1\n").unwrap();
        device
    }

    fn curl(&self, url: &str) {
        let _ = Command::new("ip")
            .args([
                "netns",
                "exec",
                &self.namespace,
                "curl",
                "-s",
                "-m",
                "2",
                "-o",
                "/dev/null",
                url,
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

impl Drop for Device {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.namespace]).status();
        let _ = Command::new("ip")
            .args(["link", "del", &self.lan])
            .stderr(Stdio::null())
            .status();
        let _ = std::fs::remove_dir_all(format!("/etc/netns/{}", self.namespace));
    }
}

fn host<'a>(phase: &'a Value, name: &str) -> &'a Value {
    phase["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["host"] == name)
        .unwrap_or_else(|| panic!("no {name} in {phase}"))
}

#[test]
fn a_device_behind_the_gateway_prefers_ipv6_and_falls_back_when_it_breaks() {
    // SAFETY: geteuid has no preconditions.
    assert_eq!(
        unsafe { libc::geteuid() },
        0,
        "the gateway creates namespaces: run the tests as root"
    );
    let device = Device::new();
    let mut gateway = Command::new(env!("CARGO_BIN_EXE_v6scope"))
        .args([
            "eyeballs",
            "--quiet",
            "--json",
            "--gateway",
            &device.lan,
            "--gateway-upstream",
            "bench",
            "--condition",
            "none",
            "--condition",
            "ipv6-blackhole",
            "--phase-seconds",
            "6",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The app under test: fetches a dual-stack and an IPv4-only name, over
    // and over, for as long as the gateway runs.
    let started = Instant::now();
    while gateway.try_wait().unwrap().is_none() {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "the gateway did not finish"
        );
        device.curl("http://dual.gw.eyeballs.test/");
        device.curl("http://v4.gw.eyeballs.test/");
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = gateway.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "gateway failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["partial"], false);
    let phases = report["phases"].as_array().unwrap();
    assert_eq!(phases.len(), 2);

    // Normal network: curl uses IPv6 to the dual-stack name, IPv4 to the
    // IPv4-only one; the IPv6 concentration is the IPv6 share of the bytes.
    let normal = &phases[0];
    let dual = host(normal, "dual.gw.eyeballs.test");
    assert_eq!(dual["dual_stack"], true);
    assert_eq!(dual["attempts_ipv4"], 0, "{dual}");
    assert!(dual["attempts_ipv6"].as_u64().unwrap() > 3, "{dual}");
    let v4 = host(normal, "v4.gw.eyeballs.test");
    assert_eq!(
        (&v4["dual_stack"], &v4["attempts_ipv6"], &v4["bytes_ipv6"]),
        (&Value::Bool(false), &Value::from(0), &Value::from(0))
    );
    assert!(v4["attempts_ipv4"].as_u64().unwrap() > 3, "{v4}");
    let concentration = normal["ipv6_concentration"].as_f64().unwrap();
    let (b4, b6) = (
        normal["bytes_ipv4"].as_f64().unwrap(),
        normal["bytes_ipv6"].as_f64().unwrap(),
    );
    assert!((concentration - b6 / (b4 + b6)).abs() < 1e-9 && concentration > 0.2 && concentration < 0.8);
    assert_eq!(report["prefers_ipv6"], "yes", "{}", report["evidence"]);
    assert_eq!(normal["dual_stack_ipv6_attempt_share"], 1.0);

    // IPv6 blackholed: curl still tries IPv6 first and falls back, so the
    // dual-stack name's bytes move to IPv4.
    let broken = &phases[1];
    let dual = host(broken, "dual.gw.eyeballs.test");
    assert!(dual["attempts_ipv6"].as_u64().unwrap() > 0, "{dual}");
    assert!(dual["attempts_ipv4"].as_u64().unwrap() > 0, "{dual}");
    assert!(
        dual["bytes_ipv4"].as_u64().unwrap() > dual["bytes_ipv6"].as_u64().unwrap(),
        "{dual}"
    );
    assert!(broken["ipv6_concentration"].as_f64().unwrap() < 0.2, "{broken}");
}
