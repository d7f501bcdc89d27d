//! `v6scope eyeballs` against real clients (curl, wget, python3's urllib,
//! headless chromium and v6scope's own HTTP client) in the bench's own
//! namespaces. The expected parameters are the published ones (Lazy Eye
//! Inspection, IMC 2025: curl ≈ 200 ms CAD, Chrome ≈ 300 ms, wget no Happy
//! Eyeballs) and the libraries' documented defaults (python's
//! `socket.create_connection` tries addresses in order; hyper-util's
//! connector, under reqwest, falls back after 300 ms). Needs root, as CI has.

use serde_json::Value;
use std::process::Command;

fn client<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["clients"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["client"]["name"] == name)
        .unwrap_or_else(|| panic!("no {name} in the report"))
}

fn fallback<'a>(client: &'a Value, failure: &str) -> &'a Value {
    client["parameters"]["fallback"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["failure"] == failure)
        .unwrap()
}

fn ms(value: &Value) -> f64 {
    value.as_f64().unwrap_or_else(|| panic!("not a number: {value}"))
}

#[test]
fn five_clients_side_by_side_match_the_published_parameters() {
    // SAFETY: geteuid has no preconditions.
    assert_eq!(
        unsafe { libc::geteuid() },
        0,
        "the eyeballs bench creates network namespaces: run the tests as root (CI does)"
    );
    let dir = tempfile::tempdir().unwrap();
    let html = dir.path().join("eyeballs.html");
    let out = Command::new(env!("CARGO_BIN_EXE_v6scope"))
        .args([
            "eyeballs",
            "--quiet",
            "--json",
            "--cad-step",
            "50",
            "--cad-max",
            "400",
            "--trial-timeout",
            "3",
            "--client",
            "curl",
            "--client",
            "wget",
            "--client",
            "python",
            "--client",
            "chromium",
            "--client",
            "v6scope",
            "--out",
        ])
        .arg(&html)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "eyeballs failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["partial"], false);

    // Every client used IPv6 when both families were equal.
    for name in ["curl", "wget", "python", "chromium", "v6scope"] {
        let c = client(&report, name);
        let at_zero = &c["observations"][0];
        assert_eq!(at_zero["trial"]["ipv6_delay_ms"], 0);
        assert_eq!(at_zero["family_used"], "ipv6", "{name} at equal delay: {at_zero}");
        // A refused or unreachable IPv6 is left at once, by every client.
        for failure in ["reset", "unreachable"] {
            let f = fallback(c, failure);
            assert_eq!(f["fell_back"], true, "{name}, IPv6 {failure}: {f}");
            assert!(ms(&f["fallback_ms"]) < 100.0, "{name}, IPv6 {failure}: {f}");
        }
        // An empty or failed AAAA goes to IPv4.
        assert_eq!(c["parameters"]["aaaa_servfail"][0], "ipv4", "{name}");
        assert_eq!(c["parameters"]["aaaa_empty"][0], "ipv4", "{name}");
    }

    // Happy Eyeballs clients: the switch point brackets their CAD, the
    // capture measures it, and a blackholed IPv6 is left after it.
    for (name, cad) in [("curl", 200.0), ("chromium", 300.0), ("v6scope", 300.0)] {
        let c = client(&report, name);
        let p = &c["parameters"];
        assert_eq!(p["happy_eyeballs"], true, "{name}: {p}");
        let measured = ms(&p["cad_ms"]);
        assert!(
            (measured - cad).abs() < 30.0,
            "{name}: CAD {measured} ms, expected ≈ {cad}"
        );
        assert!(
            ms(&p["last_ipv6_ms"]) < cad + 50.0 && ms(&p["first_ipv4_ms"]) > cad - 50.0,
            "{name}: {p}"
        );
        assert_eq!(c["verdict"]["prefers_ipv6"], "when_not_slower_than", "{name}");
        let blackhole = fallback(c, "blackhole");
        assert_eq!(blackhole["fell_back"], true, "{name}: {blackhole}");
        assert!(
            (ms(&blackhole["fallback_ms"]) - cad).abs() < 30.0,
            "{name}: {blackhole}"
        );
        assert_eq!(p["several_addresses_family"], "ipv4", "{name}: {p}");
    }

    // No Happy Eyeballs: IPv6 however slow, and stuck on a blackholed one.
    for name in ["wget", "python"] {
        let c = client(&report, name);
        let p = &c["parameters"];
        assert_eq!(p["happy_eyeballs"], false, "{name}: {p}");
        assert_eq!(p["first_ipv4_ms"], Value::Null, "{name}: {p}");
        assert_eq!(c["verdict"]["prefers_ipv6"], "yes", "{name}");
        assert!(
            c["verdict"]["evidence"].as_str().unwrap().contains("never falls back"),
            "{name}: {}",
            c["verdict"]
        );
        let blackhole = fallback(c, "blackhole");
        assert_eq!(
            (&blackhole["fell_back"], &blackhole["timed_out"]),
            (&Value::Bool(false), &Value::Bool(true))
        );
    }

    // glibc's getaddrinfo waits for both answers: a late AAAA is waited for
    // and a late A holds back the working IPv6.
    let curl = &client(&report, "curl")["parameters"];
    assert_eq!(curl["waits_for_aaaa"], true);
    let stall = ms(&curl["a_late_stall_ms"][0][1]);
    assert!(stall > 400.0, "curl: A 500 ms late held IPv6 back {stall} ms");

    // A 1280-byte path-MTU blackhole after the handshake: IPv6 won the race,
    // then the large page never arrives (HEv3's known gap), for every client.
    for name in ["curl", "wget", "python", "chromium", "v6scope"] {
        let m = &client(&report, name)["parameters"]["pmtu_blackhole"];
        assert_eq!(
            (&m["family_used"], &m["completed"]),
            (&Value::from("ipv6"), &Value::Bool(false)),
            "{name}: {m}"
        );
    }
    // Chromium asks for the HTTPS record and then goes to port 443 (the
    // record makes the name HTTPS-only); curl 7.88 does not ask.
    let https = &client(&report, "chromium")["parameters"]["https_record"];
    assert_eq!(
        (&https["asked"], &https["tried_443"]),
        (&Value::Bool(true), &Value::Bool(true)),
        "chromium: {https}"
    );
    assert_eq!(client(&report, "curl")["parameters"]["https_record"]["asked"], false);

    // HTTPS works with both families (the bench's CA is trusted), and with
    // IPv6's TLS handshake 1 s late every one of them waits for it on the
    // first TCP connection: none races to the handshake.
    for name in ["curl", "wget", "python", "chromium", "v6scope"] {
        let tls = &client(&report, name)["parameters"]["tls"];
        assert_eq!(tls["https_family"], "ipv6", "{name}: {tls}");
        assert_eq!(tls["slow_tls_family"], "ipv6", "{name}: {tls}");
        assert!(ms(&tls["slow_tls_request_ms"]) >= 1000.0, "{name}: {tls}");
    }

    // IPv6-only behind DNS64/NAT64 (unbound, tayga): an IPv4-only name is
    // reached through NAT64, a dual-stack one over native IPv6, an IPv4
    // literal not at all (no CLAT on the client).
    for name in ["curl", "wget", "python", "chromium", "v6scope"] {
        let cases = client(&report, name)["parameters"]["ipv6_only"]
            .as_array()
            .unwrap()
            .clone();
        let case = |kind: &str| cases.iter().find(|c| c["case"]["kind"] == kind).unwrap().clone();
        let site = case("ipv6_only_ipv4_site");
        assert_eq!(
            (&site["reached"], &site["via_nat64"]),
            (&Value::Bool(true), &Value::Bool(true)),
            "{name}: {site}"
        );
        let dual = case("ipv6_only_dual_stack");
        assert_eq!(
            (&dual["reached"], &dual["via_nat64"]),
            (&Value::Bool(true), &Value::Bool(false)),
            "{name}: {dual}"
        );
        assert_eq!(case("ipv6_only_ipv4_literal")["reached"], false, "{name}");
    }

    let page = std::fs::read_to_string(&html).unwrap();
    for needle in [
        "<table class=\"parameters\"",
        "<th>chromium</th>",
        "<svg",
        "RFC 8305",
        "Every trial",
    ] {
        assert!(page.contains(needle), "the HTML report lacks {needle}");
    }
}

#[test]
fn a_client_that_is_not_installed_is_a_usage_error() {
    let out = Command::new(env!("CARGO_BIN_EXE_v6scope"))
        .args(["eyeballs", "--client", "/nonexistent/fetcher {url}"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not installed"));
    let out = Command::new(env!("CARGO_BIN_EXE_v6scope"))
        .args(["eyeballs", "--client", "firefox"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("{url}"));
}
