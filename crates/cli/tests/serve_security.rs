//! `v6scope serve` as hostile-input territory (issue 10 §1–2), each item
//! against the real server on loopback: no request parameter names a file,
//! connections are capped and idle ones closed, writes are authorised
//! before their bodies are read, webhooks obey the scan policy, the Host
//! header is checked, responses carry the security headers, imports refuse
//! hidden controls, and `/metrics` passes `promtool check metrics`.

mod common;

use common::server::{Server, synth_store};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

const TOKEN: &str = "security-token-0123456789";

fn setup(name: &str, serve_extra: &str) -> (tempfile::TempDir, std::path::PathBuf, std::path::PathBuf) {
    let dir = tempfile::Builder::new().prefix(name).tempdir().unwrap();
    let db = dir.path().join("v6scope.db");
    std::fs::write(dir.path().join("token"), format!("{TOKEN}\n")).unwrap();
    let config = dir.path().join("v6scope.toml");
    std::fs::write(
        &config,
        format!(
            "resolver = [\"127.0.0.1:9\"]\nvantage-probe = [\"127.0.0.1\"]\n\n[serve]\ntoken_file = \"{}\"\n{serve_extra}\n",
            dir.path().join("token").display()
        ),
    )
    .unwrap();
    (dir, db, config)
}

/// One raw HTTP/1.1 exchange; the answer as text (empty if the server
/// closed the connection without one).
fn raw(addr: &str, request: &[u8]) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s.write_all(request).unwrap();
    let mut answer = Vec::new();
    let _ = s.read_to_end(&mut answer);
    String::from_utf8_lossy(&answer).into_owned()
}

fn get(addr: &str, path: &str, extra: &str) -> String {
    raw(
        addr,
        format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{extra}Connection: close\r\n\r\n").as_bytes(),
    )
}

fn status(answer: &str) -> u16 {
    answer.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0)
}

fn body(answer: &str) -> &str {
    answer.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("")
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next().and_then(|n| n.parse().ok()))
        .unwrap()
}

#[test]
fn no_request_parameter_makes_the_server_read_a_file() {
    let (dir, db, config) = setup("sec-files", "");
    synth_store(&db, "gen", 50, 2);
    let secret = dir.path().join("secret.toml");
    std::fs::write(&secret, "first line of a secret\n").unwrap();
    let server = Server::start(&db, &["--config", config.to_str().unwrap()], &[]);
    let addr = server.base.trim_start_matches("http://").to_string();
    let token_file = dir.path().join("token");
    let probes = [
        secret.display().to_string(),
        token_file.display().to_string(),
        "/etc/passwd".into(),
        "/proc/self/environ".into(),
        "/dev/zero".into(),
        "../../etc/passwd".into(),
        "plans/cn-2017-action-plan.toml".into(),
    ];
    let before = rss_kib(server.child.id());
    for path in &probes {
        let q = path.replace('/', "%2F");
        for param in ["plan", "profile", "lang", "format", "campaign", "period"] {
            let answer = get(&addr, &format!("/api/report?campaign=gen&{param}={q}"), "");
            assert!(matches!(status(&answer), 400 | 404 | 422), "{param}={path}: {answer}");
            assert!(!answer.contains("first line of a secret"), "{param}={path}: {answer}");
            assert!(!answer.contains(TOKEN), "{param}={path}: {answer}");
            assert!(!answer.contains("root:"), "{param}={path}: {answer}");
        }
        for route in [
            "/",
            "/api/overview",
            "/campaigns/gen",
            "/api/campaigns/gen/targets",
            "/traffic",
        ] {
            let answer = get(&addr, &format!("{route}?plan={q}&profile={q}&lang=en"), "");
            assert!(!answer.contains("first line of a secret"), "{route}: {answer}");
            assert!(!answer.contains(TOKEN), "{route}: {answer}");
        }
    }
    // `/dev/zero` was never read: the server did not grow.
    let after = rss_kib(server.child.id());
    assert!(after < before + 100 * 1024, "RSS {before} KiB -> {after} KiB");
    // Plans are chosen by name, from the shipped set.
    let answer = get(&addr, "/api/report?campaign=gen&plan=cn-2024-work-plan&format=json", "");
    assert_eq!(status(&answer), 200, "{answer}");
    let answer = get(&addr, "/api/report?campaign=gen&plan=no-such-plan", "");
    assert_eq!(status(&answer), 404, "{answer}");
    assert!(body(&answer).contains("cn-2017-action-plan"), "{answer}");
}

#[test]
fn connections_are_capped_and_idle_ones_closed() {
    let (_dir, db, config) = setup(
        "sec-conns",
        "max_connections = 400\nmax_connections_per_ip = 300\nheader_timeout_seconds = 2",
    );
    let server = Server::start(&db, &["--config", config.to_str().unwrap()], &[]);
    let addr = server.base.trim_start_matches("http://").to_string();
    // 350 idle sockets from one address: 300 admitted, the rest closed at once.
    let mut idle: Vec<TcpStream> = (0..350).map(|_| TcpStream::connect(&addr).unwrap()).collect();
    // An HTTP/2 preface that stops there is no way around the timeout.
    let mut h2 = TcpStream::connect(&addr).unwrap();
    h2.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n").unwrap();
    let started = Instant::now();
    let mut closed = 0;
    for s in idle.iter_mut().chain(std::iter::once(&mut h2)) {
        s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
        let mut buf = [0u8; 512];
        // Closed (0 bytes or reset), or answered with an error and closed.
        loop {
            match s.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(_) => continue,
            }
        }
        closed += 1;
    }
    let waited = started.elapsed();
    assert_eq!(closed, 351);
    assert!(
        waited < Duration::from_secs(10),
        "idle connections were closed only after {waited:?}"
    );
    // Meanwhile and afterwards, real requests are served.
    let answer = get(&addr, "/api/health", "");
    assert_eq!(status(&answer), 200, "{answer}");
}

#[test]
fn writes_are_refused_before_their_bodies_are_read() {
    let (_dir, db, config) = setup("sec-body", "");
    let server = Server::start(&db, &["--config", config.to_str().unwrap()], &[]);
    let addr = server.base.trim_start_matches("http://").to_string();
    let before = rss_kib(server.child.id());
    // Headers announcing 64 MiB, no body byte sent: the answer comes anyway.
    let huge = 64 << 20;
    let mut streams = Vec::new();
    for i in 0..40 {
        let mut s = TcpStream::connect(&addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let request = if i % 2 == 0 {
            format!("PUT /api/campaigns/c{i} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {huge}\r\n\r\n")
        } else {
            // A page form carries its token in the body: bounded instead.
            format!(
                "POST /campaigns HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {huge}\r\n\r\n"
            )
        };
        s.write_all(request.as_bytes()).unwrap();
        // Some body, as an attacker would stream it.
        let _ = s.write_all(&[b'a'; 16 << 10]);
        streams.push((i, s));
    }
    for (i, mut s) in streams {
        let mut head = [0u8; 64];
        let n = s.read(&mut head).unwrap_or(0);
        let text = String::from_utf8_lossy(&head[..n]).to_string();
        let want = if i % 2 == 0 { "HTTP/1.1 401" } else { "HTTP/1.1 413" };
        assert!(text.starts_with(want), "request {i}: {text:?}");
    }
    let after = rss_kib(server.child.id());
    assert!(after < before + 200 * 1024, "RSS {before} KiB -> {after} KiB");
    // The scheme is case-insensitive (RFC 6750).
    for scheme in ["Bearer", "bearer", "BEARER"] {
        let csv = "domain\na.example.com\n";
        let answer = raw(
            &addr,
            format!(
                "PUT /api/campaigns/ok HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: {scheme} {TOKEN}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{csv}",
                csv.len()
            )
            .as_bytes(),
        );
        assert!(matches!(status(&answer), 200 | 201), "{scheme}: {answer}");
        // A header-only campaign is one column `domain`, not a domain.
        assert!(body(&answer).contains("\"targets\":1"), "{answer}");
    }
}

fn put(addr: &str, path: &str, body: &str) -> String {
    raw(
        addr,
        format!(
            "PUT {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {TOKEN}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .as_bytes(),
    )
}

#[test]
fn webhooks_to_internal_addresses_are_refused() {
    let (_dir, db, config) = setup("sec-hooks", "");
    let server = Server::start(&db, &["--config", config.to_str().unwrap()], &[]);
    let addr = server.base.trim_start_matches("http://").to_string();
    let answer = put(&addr, "/api/campaigns/c", "domain\na.example.com\n");
    assert_eq!(status(&answer), 201, "{answer}");
    for url in [
        "http://127.0.0.1:9/",
        "http://169.254.169.254/",
        "http://[::1]:9/",
        "http://10.0.0.1/",
        "http://localhost:9/",
        "http://[::ffff:10.1.2.3]/",
        "file:///etc/passwd",
    ] {
        let answer = put(&addr, "/api/campaigns/c/webhook", &format!("{{\"url\":\"{url}\"}}"));
        assert_eq!(status(&answer), 400, "{url}: {answer}");
        assert!(body(&answer).starts_with("{\"error\":"), "{answer}");
    }
    // An empty body is an error, not a silent delete.
    let answer = put(&addr, "/api/campaigns/c/webhook", "");
    assert_eq!(status(&answer), 400, "{answer}");
    let answer = put(&addr, "/api/campaigns/c/webhook", "{}");
    assert_eq!(status(&answer), 400, "{answer}");
    let answer = put(&addr, "/api/campaigns/c/webhook", "{\"url\":null}");
    assert_eq!(status(&answer), 204, "{answer}");
}

#[test]
fn webhooks_may_reach_prefixes_the_operator_allows() {
    let (_dir, db, config) = setup("sec-hooks-allow", "webhook_allow = [\"127.0.0.0/8\"]");
    let server = Server::start(&db, &["--config", config.to_str().unwrap()], &[]);
    let addr = server.base.trim_start_matches("http://").to_string();
    assert_eq!(status(&put(&addr, "/api/campaigns/c", "domain\na.example.com\n")), 201);
    let answer = put(
        &addr,
        "/api/campaigns/c/webhook",
        "{\"url\":\"http://127.0.0.1:9/hook\"}",
    );
    assert_eq!(status(&answer), 204, "{answer}");
    let answer = put(&addr, "/api/campaigns/c/webhook", "{\"url\":\"http://10.0.0.1/hook\"}");
    assert_eq!(status(&answer), 400, "{answer}");
}

#[test]
fn host_headers_security_headers_json_errors_and_hidden_controls() {
    let (_dir, db, config) = setup("sec-host", "allowed_hosts = [\"v6scope.example.net\"]");
    let server = Server::start(&db, &["--config", config.to_str().unwrap()], &[]);
    let addr = server.base.trim_start_matches("http://").to_string();
    // DNS rebinding: a foreign name in Host is refused; ours are served.
    for (host, want) in [
        ("rebind.attacker.example", 421),
        ("127.0.0.1", 200),
        ("localhost:8080", 200),
        ("v6scope.example.net", 200),
    ] {
        let answer = raw(
            &addr,
            format!("GET /api/health HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").as_bytes(),
        );
        assert_eq!(status(&answer), want, "{host}: {answer}");
    }
    // Security headers on pages and the API.
    for path in ["/", "/api/health", "/no-such-page"] {
        let answer = get(&addr, path, "").to_ascii_lowercase();
        assert!(
            answer.contains("content-security-policy: default-src 'none'"),
            "{path}: {answer}"
        );
        assert!(answer.contains("frame-ancestors 'none'"), "{path}");
        assert!(answer.contains("x-content-type-options: nosniff"), "{path}");
    }
    // Extractor rejections are the JSON error schema too.
    for (request, want) in [
        ("DELETE /api/schedules/abc HTTP/1.1", 400),
        ("DELETE /api/schedules/99999999999999999999 HTTP/1.1", 400),
        ("POST /api/overview HTTP/1.1", 405),
        ("GET /api/campaigns/x/targets?offset=-x HTTP/1.1", 400),
    ] {
        let answer = raw(
            &addr,
            format!("{request}\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {TOKEN}\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        );
        let lower = answer.to_ascii_lowercase();
        assert_eq!(status(&answer), want, "{request}: {answer}");
        assert!(lower.contains("content-type: application/json"), "{request}: {answer}");
        assert!(body(&answer).starts_with("{\"error\":"), "{request}: {answer}");
    }
    // Bidirectional overrides in an imported name are refused with the line.
    let csv = "domain,category,organisation,region\na.example.com,gov,\u{202e}lanigiro,x\n";
    let answer = put(&addr, "/api/campaigns/bidi", csv);
    assert_eq!(status(&answer), 422, "{answer}");
    assert!(
        body(&answer).contains("line 2") && body(&answer).contains("U+202E"),
        "{answer}"
    );
}

#[test]
fn metrics_pass_promtool_and_every_counter_exists_from_the_start() {
    let (_dir, db, config) = setup("sec-metrics", "");
    let server = Server::start(&db, &["--config", config.to_str().unwrap()], &[]);
    let addr = server.base.trim_start_matches("http://").to_string();
    let text = body(&get(&addr, "/metrics", "")).to_string();
    for series in [
        "v6scope_jobs_total{outcome=\"done\"} 0",
        "v6scope_jobs_total{outcome=\"failed\"} 0",
        "v6scope_webhooks_total{outcome=\"delivered\"} 0",
        "v6scope_webhooks_total{outcome=\"refused\"} 0",
        "v6scope_schedule_fired_total 0",
    ] {
        assert!(text.contains(series), "{series} missing:\n{text}");
    }
    let promtool = std::env::var("PROMTOOL").unwrap_or_else(|_| "promtool".into());
    let mut child = std::process::Command::new(&promtool)
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{promtool}: {e} (apt-get install prometheus; .ci/run installs it)"));
    child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool: {}{}\n{text}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // Prometheus itself asks for OpenMetrics and gets it.
    let om = get(
        &addr,
        "/metrics",
        "Accept: application/openmetrics-text; version=1.0.0\r\n",
    );
    assert!(om.to_ascii_lowercase().contains("application/openmetrics-text"), "{om}");
    assert!(body(&om).contains("# EOF"), "{om}");
}
