//! `v6scope serve` over a generated store: every route of the OpenAPI
//! document answers as documented (status and JSON schema), writes need the
//! bearer token, bad input gets a clear 4xx, and a queued job runs.
//!
//! Scans the server starts here are pointed at a closed loopback port
//! (resolver and vantage probe 127.0.0.1), so no packet leaves the machine.

mod common;

use common::server::{Server, synth_store};
use serde_json::Value;
use std::time::{Duration, Instant};
use v6scope_store::prelude::*;

/// reqwest here is built without a TLS provider of its own (the server's
/// choice); loopback HTTP needs none, but the builder wants one installed.
fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
}

const TOKEN: &str = "test-token-0123456789abcdef";

fn setup(name: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::Builder::new().prefix(name).tempdir().unwrap();
    let db = dir.path().join("v6scope.db");
    (dir, db)
}

/// A config whose scans can only reach a closed port on loopback.
fn write_config(dir: &std::path::Path) -> std::path::PathBuf {
    std::fs::write(dir.join("token"), format!("{TOKEN}\n")).unwrap();
    let config = dir.join("v6scope.toml");
    std::fs::write(
        &config,
        format!(
            "resolver = [\"127.0.0.1:9\"]\nvantage-probe = [\"127.0.0.1\"]\n\n[serve]\ntoken_file = \"{}\"\nprofile = \"cn-website\"\ntick_seconds = 1\n",
            dir.join("token").display()
        ),
    )
    .unwrap();
    config
}

/// A validator for one response schema of the document (refs resolved
/// against the document's components).
fn validator(doc: &Value, schema: &Value) -> jsonschema::Validator {
    let mut wrapped = schema.clone();
    if let Value::Object(map) = &mut wrapped {
        map.insert("components".into(), doc["components"].clone());
    }
    jsonschema::validator_for(&wrapped).expect("schema compiles")
}

fn check_json(doc: &Value, op: &Value, status: u16, body: &str, what: &str) {
    let schema = &op["responses"][status.to_string()]["content"]["application/json"]["schema"];
    assert!(
        !schema.is_null(),
        "{what}: status {status} is not documented with a JSON body"
    );
    let value: Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("{what}: not JSON ({e}): {body}"));
    let v = validator(doc, schema);
    let errors: Vec<String> = v
        .iter_errors(&value)
        .map(|e| format!("{e} at {}", e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "{what}: {errors:?}\n{body}");
}

#[tokio::test(flavor = "multi_thread")]
async fn every_documented_route_answers_as_documented() {
    let (dir, db) = setup("serve-api");
    synth_store(&db, "gen", 3000, 3);
    let config = write_config(dir.path());
    let server = Server::start(&db, &["--config", config.to_str().unwrap()], &[]);
    let http = client();
    let doc: Value = http
        .get(server.url("/api/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    // A domain known to regress in the generated store.
    let campaign: Value = http
        .get(server.url("/api/campaigns/gen"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let changed = campaign["changes"][0]["domain"]
        .as_str()
        .expect("the generated store has changes")
        .to_string();
    let mut answered = 0;
    for (path, ops) in doc["paths"].as_object().unwrap() {
        let Some(op) = ops.get("get") else { continue };
        let concrete = path.replace("{name}", "gen").replace("{domain}", &changed);
        let response = http.get(server.url(&concrete)).send().await.unwrap();
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default();
        let body = response.text().await.unwrap();
        assert_eq!(status, 200, "GET {concrete}: {body}");
        let documented = &op["responses"]["200"]["content"];
        let media = content_type.split(';').next().unwrap().trim();
        assert!(
            documented.get(media).is_some(),
            "GET {concrete}: {media} is not among the documented types {documented}"
        );
        if media == "application/json" {
            check_json(&doc, op, 200, &body, &format!("GET {concrete}"));
        }
        // Documented 404s: an unknown name answers 404 with an error body.
        if op["responses"].get("404").is_some() {
            let missing = if path == "/api/report" {
                "/api/report?campaign=no-such-campaign".to_string()
            } else {
                path.replace("{name}", "no-such-campaign")
                    .replace("{domain}", "absent.example.test")
            };
            let r = http.get(server.url(&missing)).send().await.unwrap();
            assert_eq!(r.status().as_u16(), 404, "GET {missing}");
            check_json(&doc, op, 404, &r.text().await.unwrap(), &format!("GET {missing}"));
        }
        answered += 1;
    }
    assert!(answered >= 13, "only {answered} GET routes in the document");

    // The campaign page's figures agree with the store's summary.
    let total: i64 = campaign["by_category"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["targets"].as_i64().unwrap())
        .sum();
    assert_eq!(total, 3000);
    assert_eq!(campaign["runs"].as_array().unwrap().len(), 3);

    // Filters: every returned target is in the region asked for.
    let page: Value = http
        .get(server.url("/api/campaigns/gen/targets?region=%E5%9B%9B%E5%B7%9D&limit=50"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let rows = page["targets"].as_array().unwrap();
    assert_eq!(rows.len(), 50);
    assert!(rows.iter().all(|t| t["region"] == "四川"));
    assert!(page["total"].as_i64().unwrap() < 3000);
    let bad = http
        .get(server.url("/api/campaigns/gen/targets?limit=0"))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status().as_u16(), 400);
    let bad = http.get(server.url("/api/traffic?by=week")).send().await.unwrap();
    assert_eq!(bad.status().as_u16(), 400);
    let bad = http.get(server.url("/api/overview?lang=fr")).send().await.unwrap();
    assert_eq!(bad.status().as_u16(), 400);

    // The monthly report in each format, and in Chinese.
    for (format, media) in [
        ("html", "text/html"),
        ("md", "text/markdown"),
        ("json", "application/json"),
        ("csv", "text/csv"),
    ] {
        let r = http
            .get(server.url(&format!(
                "/api/report?campaign=gen&period=2026-10&format={format}&lang=zh-CN"
            )))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200, "report {format}");
        assert!(r.headers()["content-type"].to_str().unwrap().starts_with(media));
        let text = r.text().await.unwrap();
        // The CSV has no campaign column: it names the campaign's sites.
        let named = if format == "csv" { ".example.test" } else { "gen" };
        assert!(text.contains(named), "report {format} names the campaign or its sites");
        assert!(
            !text.contains("no targets of this category"),
            "report {format}: categories match by key"
        );
    }
    // Check titles and remedies in Chinese where the profile has them.
    let report = |lang: &'static str| {
        let (http, url) = (
            http.clone(),
            server.url(&format!(
                "/api/report?campaign=gen&period=2026-10&format=html&lang={lang}"
            )),
        );
        async move { http.get(url).send().await.unwrap().text().await.unwrap() }
    };
    let (zh, en) = (report("zh-CN").await, report("en").await);
    assert!(zh.contains("网站IPv6可达") || zh.contains("域名服务器IPv6可达"), "{zh}");
    assert!(!en.contains("IPv6可达"));
    let domain = rows[0]["domain"].as_str().unwrap();
    let site = http
        .get(server.url(&format!("/sites/{domain}?campaign=gen&lang=zh-CN")))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(site.contains("域名服务器IPv6可达"), "{site}");
    let r = http
        .get(server.url("/api/report?campaign=gen&period=2026-13"))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_client_error(), "a bad period is the client's error");

    // Metrics in the Prometheus text format.
    let metrics = http
        .get(server.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("v6scope_runs 3"), "{metrics}");
    assert!(
        metrics.contains("v6scope_http_requests_total{kind=\"api\",status=\"200\"}"),
        "{metrics}"
    );
    drop(server);
}

#[tokio::test(flavor = "multi_thread")]
async fn writes_need_the_token_and_inputs_are_validated() {
    let (dir, db) = setup("serve-writes");
    let config = write_config(dir.path());
    let server = Server::start(&db, &["--config", config.to_str().unwrap()], &[]);
    let doc: Value = serde_json::from_str(
        &client()
            .get(server.url("/api/openapi.json"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
    )
    .unwrap();
    let op = |path: &str, method: &str| doc["paths"][path][method].clone();
    let http = client();
    let csv = "domain,category,organisation,region\nalpha.example.test,中央媒体,媒体甲,北京\nbeta.example.test,商业网站,公司乙,上海\n";

    // No token, a wrong token: 401 with the documented error body.
    for auth in [None, Some("Bearer wrong-token-wrong-token")] {
        let mut r = http.put(server.url("/api/campaigns/media")).body(csv);
        if let Some(a) = auth {
            r = r.header("authorization", a);
        }
        let r = r.send().await.unwrap();
        assert_eq!(r.status().as_u16(), 401);
        assert_eq!(r.headers()["www-authenticate"], "Bearer");
        check_json(
            &doc,
            &op("/api/campaigns/{name}", "put"),
            401,
            &r.text().await.unwrap(),
            "put unauthorised",
        );
    }
    let auth = format!("Bearer {TOKEN}");
    let put = |name: &str, body: &'static str| {
        http.put(server.url(&format!("/api/campaigns/{name}")))
            .header("authorization", &auth)
            .header("content-type", "text/csv")
            .body(body)
            .send()
    };
    let r = put("media", csv).await.unwrap();
    assert_eq!(r.status().as_u16(), 201);
    check_json(
        &doc,
        &op("/api/campaigns/{name}", "put"),
        201,
        &r.text().await.unwrap(),
        "put created",
    );
    let r = put("media", csv).await.unwrap();
    assert_eq!(r.status().as_u16(), 200, "replacing is not creating");
    // Bad lines reject the whole upload, by line number.
    let r = put(
        "broken",
        "domain,category\nok.example.test,x\nhttp://not a domain/,x\n192.0.2.1,x\n",
    )
    .await
    .unwrap();
    assert_eq!(r.status().as_u16(), 422);
    let text = r.text().await.unwrap();
    assert!(text.contains("line 3") && text.contains("line 4"), "{text}");
    let r = http.get(server.url("/api/campaigns/broken")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 404, "nothing of a rejected upload is kept");
    let r = put("bad%20name%21", csv).await.unwrap();
    assert_eq!(r.status().as_u16(), 400);

    // Schedules: a bad cron is a 400, a good one is listed and deletable.
    let post = |path: &str, body: &str| {
        http.post(server.url(path))
            .header("authorization", &auth)
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
    };
    let r = post("/api/campaigns/media/schedules", r#"{"cron":"61 * * * *"}"#)
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    let r = post(
        "/api/campaigns/media/schedules",
        r#"{"cron":"0 3 * * *","profiles":["nope"]}"#,
    )
    .await
    .unwrap();
    assert_eq!(r.status().as_u16(), 400, "unknown profiles are refused");
    let r = post(
        "/api/campaigns/media/schedules",
        r#"{"cron":"0 3 * * *","profiles":["cn-website"],"extra":1}"#,
    )
    .await
    .unwrap();
    assert_eq!(r.status().as_u16(), 400, "unknown fields are refused");
    let r = post(
        "/api/campaigns/media/schedules",
        r#"{"cron":"0 3 * * *","profiles":["cn-website"]}"#,
    )
    .await
    .unwrap();
    assert_eq!(r.status().as_u16(), 201);
    let body = r.text().await.unwrap();
    check_json(
        &doc,
        &op("/api/campaigns/{name}/schedules", "post"),
        201,
        &body,
        "schedule",
    );
    let id = serde_json::from_str::<Value>(&body).unwrap()["id"].as_i64().unwrap();
    let r = http
        .delete(server.url(&format!("/api/schedules/{id}")))
        .header("authorization", &auth)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 204);

    // Webhook: only http(s) URLs.
    let r = http
        .put(server.url("/api/campaigns/media/webhook"))
        .header("authorization", &auth)
        .body(r#"{"url":"file:///etc/passwd"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);

    // A triggered run is queued (202), runs, and finishes with a run id.
    let r = post("/api/campaigns/media/runs", r#"{"profiles":["internetnl"]}"#)
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 202);
    let body = r.text().await.unwrap();
    check_json(&doc, &op("/api/campaigns/{name}/runs", "post"), 202, &body, "trigger");
    let job = serde_json::from_str::<Value>(&body).unwrap()["id"].as_i64().unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    let finished = loop {
        let jobs: Value = http
            .get(server.url("/api/jobs"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let j = jobs
            .as_array()
            .unwrap()
            .iter()
            .find(|j| j["id"] == job)
            .unwrap()
            .clone();
        if j["state"] == "done" || j["state"] == "failed" {
            break j;
        }
        assert!(
            Instant::now() < deadline,
            "job {job} did not finish: {j}\n{}",
            server.log.lock().unwrap()
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    // The scans here can reach only a closed port: the resolver self-test
    // fails, so the job fails with the reason and its run is never judged
    // (rule 1: no target is blamed for a dead resolver).
    assert_eq!(
        finished["state"],
        "failed",
        "{finished}\n{}",
        server.log.lock().unwrap()
    );
    assert!(
        finished["error"]
            .as_str()
            .unwrap_or("")
            .contains("resolver self-test failed"),
        "{finished}"
    );
    let run = finished["run_id"].as_i64().expect("the job records its run");
    let runs: Value = http
        .get(server.url("/api/runs"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let r = runs.as_array().unwrap().iter().find(|r| r["id"] == run).unwrap();
    assert_eq!(r["source"], "campaign:media");
    assert_eq!(r["done"], 0, "nothing judged against a dead resolver: {r}");
    assert!(r["finished_at"].is_null(), "the run stays open for --resume: {r}");

    // The page's import form: the same checks, then a redirect to the campaign.
    let form = |token: &str| {
        http.post(server.url("/campaigns"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!(
                "name=viaform&csv=gamma.example.test%0Adelta.example.test%0A&token={token}&lang=zh-CN"
            ))
            .send()
    };
    let r = form("wrong-token-wrong-token").await.unwrap();
    assert_eq!(r.status().as_u16(), 401);
    let r = form(TOKEN).await.unwrap();
    assert_eq!(r.status().as_u16(), 200, "followed the redirect");
    assert!(r.url().path().ends_with("/campaigns/viaform"), "{}", r.url());
    assert!(
        r.text().await.unwrap().contains("监测任务"),
        "the campaign page, in Chinese"
    );

    let r = http
        .delete(server.url("/api/campaigns/media"))
        .header("authorization", &auth)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 204);
    drop(server);

    // Without a token the server is read-only: writes are 403.
    let server = Server::start(&db, &[], &[]);
    let r = client()
        .put(server.url("/api/campaigns/media"))
        .header("authorization", &auth)
        .body(csv)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 403);
}

#[test]
fn a_slowloris_client_is_cut_off_and_others_are_served_meanwhile() {
    use std::io::{Read, Write};
    let (_dir, db) = setup("serve-slow");
    let server = Server::start(&db, &[], &[]);
    let addr = server.base.trim_start_matches("http://").to_string();
    let mut slow = std::net::TcpStream::connect(&addr).unwrap();
    slow.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let started = Instant::now();
    // Headers a little at a time, never finished.
    for part in ["GET / HTTP/1.1\r\n", "Host: 127.0.0.1\r\n", "X-a: b\r\n"] {
        slow.write_all(part.as_bytes()).unwrap();
        std::thread::sleep(Duration::from_millis(500));
        // Meanwhile another client is answered.
        let mut other = std::net::TcpStream::connect(&addr).unwrap();
        other
            .write_all(b"GET /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            .unwrap();
        let mut answer = String::new();
        other.read_to_string(&mut answer).unwrap();
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    }
    let mut rest = Vec::new();
    let _ = slow.read_to_end(&mut rest);
    let waited = started.elapsed();
    assert!(
        waited < Duration::from_secs(25),
        "the server closed the slow connection after {waited:?}"
    );
    assert!(
        rest.is_empty() || String::from_utf8_lossy(&rest).starts_with("HTTP/1.1 408"),
        "{}",
        String::from_utf8_lossy(&rest)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_schedule_missed_while_the_server_was_down_runs_once() {
    let (dir, db) = setup("serve-missed");
    let config = write_config(dir.path());
    {
        let mut store = v6scope_store::SqliteStore::open(&db).unwrap();
        let targets = vec![v6scope_model_target("missed.example.test")];
        store.put_campaign("missed", &targets).unwrap();
        // Daily at 03:00, last fired a week ago: seven times missed.
        let week_ago = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64
            - 7 * 86_400;
        store.add_schedule("missed", "0 3 * * *", &[], week_ago).unwrap();
    }
    let server = Server::start(&db, &["--config", config.to_str().unwrap()], &[]);
    let http = client();
    // Several scheduler ticks (tick_seconds = 1).
    tokio::time::sleep(Duration::from_secs(4)).await;
    let jobs: Value = http
        .get(server.url("/api/jobs"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let jobs = jobs.as_array().unwrap();
    assert_eq!(jobs.len(), 1, "one job for a week of missed runs: {jobs:?}");
    assert_eq!(jobs[0]["reason"], "schedule 1");
    let schedules: Value = http
        .get(server.url("/api/campaigns/missed/schedules"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let last_fired = schedules[0]["last_fired"].as_i64().unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    assert!(now - last_fired < 60, "last_fired moved to the firing time");
}

fn v6scope_model_target(domain: &str) -> v6scope_model::Target {
    v6scope_model::Target {
        domain: domain.into(),
        ..Default::default()
    }
}
