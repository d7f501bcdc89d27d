//! `--traffic-store clickhouse://…`: the same capture collected into SQLite,
//! PostgreSQL and ClickHouse gives the same totals at every period and
//! grouping; a server with a ClickHouse traffic store takes collectors'
//! pushes into it; expired resolutions are dropped while the daily rollup
//! keeps the totals. ClickHouse comes from `V6SCOPE_TEST_CLICKHOUSE`
//! (`lab/clickhouse start` prints it); without it these tests fail, saying
//! so. Loopback only.

mod common;

use common::captures::captures;
use common::server::Server;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

/// A ClickHouse database of its own, dropped with the value.
struct ScratchClickHouse {
    http: String,
    name: String,
}

impl ScratchClickHouse {
    fn create() -> ScratchClickHouse {
        static N: AtomicUsize = AtomicUsize::new(0);
        let url = std::env::var("V6SCOPE_TEST_CLICKHOUSE").unwrap_or_else(|_| {
            panic!(
                "V6SCOPE_TEST_CLICKHOUSE is not set: these tests need a ClickHouse server. Start a throw-away one \
                 with `lab/clickhouse start` and export the URL it prints:\n  \
                 export V6SCOPE_TEST_CLICKHOUSE=$(lab/clickhouse start)"
            )
        });
        let host = url
            .trim_start_matches("clickhouse://")
            .split('/')
            .next()
            .unwrap()
            .to_string();
        ScratchClickHouse {
            http: format!("http://{host}/"),
            name: format!("v6test_{}_{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed)),
        }
    }

    fn url(&self, params: &str) -> String {
        let host = self.http.trim_start_matches("http://").trim_end_matches('/');
        format!("clickhouse://{host}/{}{params}", self.name)
    }
}

impl Drop for ScratchClickHouse {
    fn drop(&mut self) {
        let _ = Command::new("curl")
            .args([
                "-s",
                "--data-binary",
                &format!("DROP DATABASE IF EXISTS {}", self.name),
                &self.http,
            ])
            .output();
    }
}

fn v6scope(args: &[&str]) -> std::process::Output {
    let out = Command::new(env!("CARGO_BIN_EXE_v6scope")).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "v6scope {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn collect(store: &[&str]) {
    let dir = captures();
    let mut args = vec![
        "collect".to_string(),
        "--pcap".into(),
        dir.join("mix.pcap").display().to_string(),
        "--prefixes".into(),
        dir.join("prefixes.csv").display().to_string(),
    ];
    args.extend(store.iter().map(|s| s.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    v6scope(&args);
}

/// `traffic --json` lines for every period and grouping.
fn every_view(store: &[&str]) -> Vec<String> {
    let mut out = Vec::new();
    for by in ["minute", "hour", "day", "month"] {
        for group in [
            None,
            Some("exporter"),
            Some("interface"),
            Some("asn"),
            Some("organisation"),
            Some("region"),
            Some("source"),
        ] {
            let mut args = vec!["traffic", "--json", "--by", by];
            if let Some(g) = group {
                args.extend(["--group", g]);
            }
            args.extend(store);
            let text = String::from_utf8(v6scope(&args).stdout).unwrap();
            out.push(format!("--by {by} --group {group:?}\n{text}"));
        }
    }
    out
}

#[test]
fn clickhouse_postgresql_and_sqlite_give_the_same_totals() {
    let work = tempfile::tempdir().unwrap();
    let sqlite = work.path().join("a.db");
    let beside = work.path().join("b.db");
    let clickhouse = ScratchClickHouse::create();
    let pg = v6scope_store::testing::ScratchPostgres::create();
    let pg_url = pg.location.to_url();
    // Keep every resolution: the capture is from January 2026.
    let ch = clickhouse.url("?minutes_days=0&hours_days=0");
    collect(&["--db", sqlite.to_str().unwrap()]);
    collect(&["--store", &pg_url]);
    collect(&["--db", beside.to_str().unwrap(), "--traffic-store", &ch]);
    let reference = every_view(&["--db", sqlite.to_str().unwrap()]);
    assert!(
        reference.iter().all(|v| v.lines().count() > 1),
        "every view has rows: {reference:?}"
    );
    assert_eq!(every_view(&["--store", &pg_url]), reference, "PostgreSQL");
    assert_eq!(
        every_view(&["--db", beside.to_str().unwrap(), "--traffic-store", &ch]),
        reference,
        "ClickHouse"
    );
    // The sketches stayed in the store beside ClickHouse.
    let users =
        |db: &Path| String::from_utf8(v6scope(&["users", "--json", "--db", db.to_str().unwrap()]).stdout).unwrap();
    assert_eq!(users(&beside), users(&sqlite));
    // The report's trend reads the months from the same place.
    let report = |store: &[&str]| {
        let mut args = vec![
            "report",
            "--format",
            "json",
            "--plan",
            "cn-2024-work-plan",
            "--period",
            "2026-01",
        ];
        args.extend(store);
        let v: serde_json::Value = serde_json::from_slice(&v6scope(&args).stdout).unwrap();
        v["trend"].to_string()
    };
    assert_eq!(
        report(&["--db", beside.to_str().unwrap(), "--traffic-store", &ch]),
        report(&["--db", sqlite.to_str().unwrap()])
    );
}

#[test]
fn a_server_with_clickhouse_takes_pushes_and_expires_old_resolutions() {
    let work = tempfile::tempdir().unwrap();
    let db = work.path().join("platform.db");
    let clickhouse = ScratchClickHouse::create();
    // Default retention: minutes 7 days, hours 90 days; the January
    // capture's minutes and hours are older than that.
    let ch = clickhouse.url("");
    let token = work.path().join("a.token");
    v6scope(&[
        "collectors",
        "add",
        "a",
        "--operator",
        "CMCC",
        "--token-file",
        token.to_str().unwrap(),
        "--db",
        db.to_str().unwrap(),
    ]);
    let server = Server::start(&db, &[], &["--traffic-store", &ch]);
    let dir = captures();
    v6scope(&[
        "collect",
        "--pcap",
        dir.join("mix.pcap").to_str().unwrap(),
        "--prefixes",
        dir.join("prefixes.csv").to_str().unwrap(),
        "--push",
        &server.url("/"),
        "--token",
        token.to_str().unwrap(),
        "--spool",
        work.path().join("spool").to_str().unwrap(),
    ]);
    let truth: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("mix.truth.json")).unwrap()).unwrap();
    let view = |by: &str| -> Vec<serde_json::Value> {
        String::from_utf8(
            v6scope(&[
                "traffic",
                "--json",
                "--by",
                by,
                "--group",
                "source",
                "--db",
                db.to_str().unwrap(),
                "--traffic-store",
                &ch,
            ])
            .stdout,
        )
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
    };
    // A second write runs the expiry (the first one's ran before its rows existed).
    v6scope(&[
        "collect",
        "--pcap",
        dir.join("app-run1.pcap").to_str().unwrap(),
        "--db",
        work.path().join("other.db").to_str().unwrap(),
        "--traffic-store",
        &ch,
    ]);
    let days = view("day");
    let pushed: Vec<&serde_json::Value> = days.iter().filter(|r| r["source"] == "collector:a").collect();
    assert_eq!(pushed.len(), 1, "{days:?}");
    assert_eq!(pushed[0]["ipv4_bytes"], truth["totals"]["ipv4_bytes"]);
    assert_eq!(pushed[0]["ipv6_bytes"], truth["totals"]["ipv6_bytes"]);
    assert!(
        view("minute").iter().all(|r| r["source"] != "collector:a"),
        "expired minutes are gone"
    );
    assert!(
        view("hour").iter().all(|r| r["source"] != "collector:a"),
        "expired hours are gone"
    );
    // The server's API reads ClickHouse too.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let api: serde_json::Value = reqwest::blocking::get(server.url("/api/traffic?by=day&group=source"))
        .unwrap()
        .json()
        .unwrap();
    assert!(api.to_string().contains("collector:a"), "{api}");
}
