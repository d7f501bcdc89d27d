//! The client beacon's server side on loopback: fetches recorded by the
//! family they arrived on, named by the `Host` a browser sends for the
//! beacon's names; results classified; only per-day sketches kept (they
//! survive a restart); CORS for embedding; hostile results refused. The
//! browser test from the lab's client networks is in browser.rs.

mod common;

use common::server::Server;
use serde_json::Value;
use std::time::Duration;

fn client() -> reqwest::blocking::Client {
    client_from(None)
}

/// A client whose connections come from `source` (another loopback
/// address: another user).
fn client_from(source: Option<&str>) -> reqwest::blocking::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut builder = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(10))
        .no_proxy();
    if let Some(source) = source {
        builder = builder.local_address(source.parse::<std::net::IpAddr>().unwrap());
    }
    builder.build().unwrap()
}

/// GET /beacon/hit/KIND on `via` (an address of the server) with the Host a
/// browser would send for `{test}.{kind}.beacon.test`.
fn hit(via: &str, port: &str, test: &str, kind: &str) -> reqwest::blocking::Response {
    hit_from(None, via, port, test, kind)
}

fn hit_from(source: Option<&str>, via: &str, port: &str, test: &str, kind: &str) -> reqwest::blocking::Response {
    client_from(source)
        .get(format!("http://{via}:{port}/beacon/hit/{kind}"))
        .header("host", format!("{test}.{kind}.beacon.test:{port}"))
        .header("origin", "https://partner.example")
        .send()
        .unwrap()
}

fn post_result(base: &str, body: &str) -> reqwest::blocking::Response {
    client()
        .post(format!("{base}/beacon/result"))
        .header("content-type", "text/plain")
        .body(body.to_string())
        .send()
        .unwrap()
}

fn result_body(test: &str, ok: [bool; 5]) -> String {
    let kinds = ["v4", "v6", "ds", "v6ns", "mtu"];
    let results: Vec<String> = kinds
        .iter()
        .zip(ok)
        .map(|(k, ok)| format!("\"{k}\":{{\"ok\":{ok},\"ms\":{}}}", if ok { 30 } else { 15000 }))
        .collect();
    format!("{{\"test\":\"{test}\",\"results\":{{{}}}}}", results.join(","))
}

#[test]
fn beacon_hits_results_aggregates_and_hostile_input() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("beacon.db");
    let prefixes = dir.path().join("prefixes.csv");
    std::fs::write(
        &prefixes,
        "prefix,organisation,region\n127.0.0.0/8,Loopback Telecom,Beijing\n::1/128,Loopback Telecom,Beijing\n",
    )
    .unwrap();
    let store = format!("sqlite:{}", db.display());
    let args = [
        "--listen",
        "[::1]:0",
        "--beacon-zone",
        "beacon.test",
        "--beacon-prefixes",
    ];
    let prefixes_arg = prefixes.display().to_string();
    let mut all_args: Vec<&str> = args.to_vec();
    all_args.push(&prefixes_arg);
    let server = Server::start_listening(None, &store, &[], "127.0.0.1:0", &all_args);
    let port = server.base.rsplit(':').next().unwrap().to_string();
    // The IPv6 listener has a port of its own.
    let log = server.log.lock().unwrap().clone();
    let v6_port = log
        .lines()
        .filter_map(|l| l.strip_prefix("v6scope serve: http://[::1]:"))
        .next()
        .map(str::to_string);
    let v6_port = match v6_port {
        Some(p) => p,
        None => {
            std::thread::sleep(Duration::from_millis(500));
            let log = server.log.lock().unwrap().clone();
            log.lines()
                .filter_map(|l| l.strip_prefix("v6scope serve: http://[::1]:"))
                .next()
                .expect("the IPv6 listener")
                .to_string()
        }
    };

    // A dual-stack client that prefers IPv6: IPv4 object over IPv4, the
    // rest over IPv6.
    let test = "0123456789abcdef0123456789abcdef";
    let r = hit("127.0.0.1", &port, test, "v4");
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["access-control-allow-origin"], "*");
    assert_eq!(r.headers()["cache-control"], "no-store");
    for kind in ["v6", "ds", "v6ns"] {
        assert_eq!(hit("[::1]", &v6_port, test, kind).status(), 200, "{kind}");
    }
    let mtu = hit("[::1]", &v6_port, test, "mtu");
    assert!(
        mtu.text().unwrap().len() > 1280,
        "the mtu object fills more than one 1280-byte packet"
    );
    let r = post_result(&server.base, &result_body(test, [true; 5]));
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["access-control-allow-origin"], "*");
    let c: Value = r.json().unwrap();
    assert_eq!(c["summary"], "dualstack:ipv6_preferred", "{c}");
    assert_eq!(
        (&c["capable"], &c["preferred"], &c["broken"]),
        (&Value::Bool(true), &Value::Bool(true), &Value::Bool(false))
    );

    // Another user, IPv4-only, whose script claims the IPv6 objects loaded:
    // the server never saw them over IPv6, so it is not capable.
    let liar = "fedcba9876543210fedcba9876543210";
    for kind in ["v4", "ds", "v6ns"] {
        assert_eq!(
            hit_from(Some("127.0.0.2"), "127.0.0.1", &port, liar, kind).status(),
            200
        );
    }
    let c: Value = post_result(&server.base, &result_body(liar, [true; 5])).json().unwrap();
    assert_eq!(
        (&c["capable"], &c["preferred"]),
        (&Value::Bool(false), &Value::Bool(false)),
        "{c}"
    );
    // A result is counted once.
    assert_eq!(post_result(&server.base, &result_body(liar, [true; 5])).status(), 404);

    // Hostile input: not JSON, unknown fields, absurd times, a bad test id,
    // a body over the limit, a Host that is no beacon name.
    assert_eq!(post_result(&server.base, "{not json").status(), 400);
    assert_eq!(
        post_result(
            &server.base,
            &format!("{{\"test\":\"{test}\",\"results\":{{}},\"x\":1}}")
        )
        .status(),
        400
    );
    let absurd = format!("{{\"test\":\"{test}\",\"results\":{{\"v4\":{{\"ok\":true,\"ms\":1e300}}}}}}");
    assert_eq!(post_result(&server.base, &absurd).status(), 400);
    assert_eq!(
        post_result(&server.base, "{\"test\":\"../../etc\",\"results\":{}}").status(),
        400
    );
    assert_eq!(post_result(&server.base, &"x".repeat(100_000)).status(), 413);
    let r = client()
        .get(format!("{}/beacon/hit/v4", server.base))
        .header("host", "attacker.example")
        .send()
        .unwrap();
    assert_eq!(r.status(), 421);
    assert_eq!(hit("127.0.0.1", &port, "nothex!", "v4").status(), 421);
    // The path's kind must be the name's.
    let r = client()
        .get(format!("{}/beacon/hit/v6", server.base))
        .header("host", format!("{test}.v4.beacon.test"))
        .send()
        .unwrap();
    assert_eq!(r.status(), 400);
    // The preflight a partner's page may send.
    let r = client()
        .request(reqwest::Method::OPTIONS, format!("{}/beacon/result", server.base))
        .header("origin", "https://partner.example")
        .header("access-control-request-method", "POST")
        .send()
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(r.headers()["access-control-allow-origin"], "*");

    // The day's aggregates: both clients tested, one capable and preferred,
    // for all and for the prefix table's organisation and region.
    let day: Value = client().get(server.url("/api/beacon")).send().unwrap().json().unwrap();
    let group = |name: &str| {
        day["groups"]
            .as_array()
            .unwrap()
            .iter()
            .find(|g| g["group"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("no {name} in {day}"))
    };
    for name in ["all", "org:Loopback Telecom", "region:Beijing"] {
        let g = group(name);
        assert_eq!(
            (&g["tested"], &g["capable"], &g["preferred"]),
            (&Value::from(2), &Value::from(1), &Value::from(1)),
            "{g}"
        );
        assert_eq!(g["capable_share"], 0.5);
    }
    // The page shows them; the beacon page and script are served.
    let page = client().get(server.url("/clients")).send().unwrap().text().unwrap();
    assert!(page.contains("Loopback Telecom") && page.contains("50.0 %"), "{page}");
    let r = client().get(server.url("/beacon")).send().unwrap();
    assert!(
        r.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("script-src 'self'")
    );
    let js = client()
        .get(server.url("/beacon/beacon.js"))
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(js.contains("\"zone\":\"beacon.test\"") && !js.contains("/*CONFIG*/"));

    // SIGTERM flushes; the counts are in the store after a restart, and no
    // client address is.
    let day_name = day["day"].as_str().unwrap().to_string();
    // SAFETY: signalling the child we started.
    unsafe {
        libc::kill(server.child.id() as libc::pid_t, libc::SIGTERM);
    }
    let mut server = server;
    let status = server.child.wait().unwrap();
    assert!(status.success(), "serve after SIGTERM: {status}");
    drop(server);
    let server = Server::start_listening(None, &store, &[], "127.0.0.1:0", &["--beacon-zone", "beacon.test"]);
    let again: Value = client()
        .get(server.url(&format!("/api/beacon?day={day_name}")))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let all = again["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["group"] == "all")
        .cloned()
        .unwrap();
    assert_eq!(
        (&all["tested"], &all["capable"]),
        (&Value::from(2), &Value::from(1)),
        "{again}"
    );
    let bytes = std::fs::read(&db).unwrap();
    assert!(!String::from_utf8_lossy(&bytes).contains("127.0.0.1"));
}
