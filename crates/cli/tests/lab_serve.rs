//! `v6scope serve` in the lab's client namespace, scanning real lab servers:
//! a campaign imported through the API, a schedule that fires a run,
//! provider attribution, a regression made with nftables reported in the
//! changelog and to a webhook, a server killed mid-run that resumes the run
//! at restart, and the scan policy that keeps scans off special-purpose
//! addresses unless they are allowed.

mod common;

use common::server::Server;
use common::*;
use serde_json::Value;
use std::process::Command;
use std::time::{Duration, Instant};

const TOKEN: &str = "lab-token-0123456789abcdef";
const LAB_PREFIXES: [&str; 3] = ["2001:db8::/32", "203.0.113.0/24", "198.51.100.0/24"];

/// HTTP from inside the client namespace (where the server listens).
fn curl(method: &str, url: &str, body: Option<&str>) -> (u16, String) {
    let mut c = Command::new("ip");
    c.args(["netns", "exec", CLIENT_NS, "curl", "-sS", "-m", "30", "-X", method])
        .args(["-H", &format!("Authorization: Bearer {TOKEN}")])
        .args(["-w", "\n%{http_code}", url]);
    if let Some(b) = body {
        c.args(["--data-binary", b]);
    }
    let out = c.output().expect("running curl in the lab");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
    (code.trim().parse().unwrap_or(0), body.to_string())
}

fn get(server: &Server, path: &str) -> Value {
    let (status, body) = curl("GET", &server.url(path), None);
    assert_eq!(status, 200, "GET {path}: {body}");
    serde_json::from_str(&body).unwrap()
}

/// Waits until job `id` is done or failed, and returns it.
fn wait_job(server: &Server, id: i64, limit: Duration) -> Value {
    let deadline = Instant::now() + limit;
    loop {
        let jobs = get(server, "/api/jobs");
        if let Some(job) = jobs.as_array().unwrap().iter().find(|j| j["id"] == id)
            && (job["state"] == "done" || job["state"] == "failed")
        {
            return job.clone();
        }
        assert!(
            Instant::now() < deadline,
            "job {id} did not finish: {jobs}\n{}",
            server.log.lock().unwrap()
        );
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// A webhook receiver inside the client namespace that appends each
/// request body to a file.
struct Receiver {
    child: std::process::Child,
    file: std::path::PathBuf,
}

impl Receiver {
    fn start(dir: &std::path::Path, port: u16) -> Receiver {
        let file = dir.join("webhook.jsonl");
        let script = format!(
            r#"
import http.server
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get('Content-Length', 0)))
        with open({file:?}, 'ab') as f:
            f.write(body + b'\n')
        self.send_response(204); self.end_headers()
    def log_message(self, *a): pass
http.server.HTTPServer(('127.0.0.1', {port}), H).serve_forever()
"#,
            file = file.display().to_string()
        );
        let child = Command::new("ip")
            .args(["netns", "exec", CLIENT_NS, "python3", "-c", &script])
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(500));
        Receiver { child, file }
    }

    fn bodies(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.file)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn lab_config(dir: &std::path::Path, env: &std::collections::BTreeMap<String, String>) -> std::path::PathBuf {
    std::fs::write(dir.join("token"), TOKEN).unwrap();
    let quote = |v: &[&str]| v.iter().map(|s| format!("\"{s}\"")).collect::<Vec<_>>().join(", ");
    let config = dir.join("v6scope.toml");
    std::fs::write(
        &config,
        format!(
            "resolver = [\"{}\", \"{}\"]\nca-file = [\"{}\"]\nallow-prefix = [{}]\nvantage-probe = [\"{}\", \"{}\"]\n\n\
             [serve]\ntoken_file = \"{}\"\ntick_seconds = 1\nallow_targets = [{}]\nproviders = \"{}\"\nwebhook_allow = [\"127.0.0.0/8\"]\n",
            env["V6LAB_RESOLVER_V4"],
            env["V6LAB_RESOLVER_V6"],
            env["V6LAB_CA_FILE"],
            quote(&LAB_PREFIXES),
            env["V6LAB_ROOT_V4"],
            env["V6LAB_ROOT_V6"],
            dir.join("token").display(),
            quote(&LAB_PREFIXES),
            repo_root().join("lab/providers.toml").display(),
        ),
    )
    .unwrap();
    config
}

#[test]
fn a_scheduled_campaign_runs_reports_regressions_and_survives_a_restart() {
    let dir = tempfile::Builder::new().prefix("lab-serve").tempdir().unwrap();
    let store = v6scope_store::Location::Sqlite(dir.path().join("v6scope.db"));
    scheduled_campaign_story(&dir, &store);
}

/// The same story with the server on PostgreSQL: its scans reach the store
/// through their environment, and resume after a `kill -9` from it.
#[test]
fn a_scheduled_campaign_runs_reports_regressions_and_survives_a_restart_on_postgres() {
    let dir = tempfile::Builder::new().prefix("lab-serve-pg").tempdir().unwrap();
    let database = v6scope_store::testing::ScratchPostgres::create();
    scheduled_campaign_story(&dir, &database.location);
}

/// One story at a time: both use the same webhook port and blackhole the
/// same lab address.
static ONE_STORY: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn scheduled_campaign_story(dir: &tempfile::TempDir, location: &v6scope_store::Location) {
    let _one = ONE_STORY.lock().unwrap_or_else(|e| e.into_inner());
    let env = lab_env();
    let config = lab_config(dir.path(), &env);
    let leading = ["--config", config.to_str().unwrap()];
    let url = location.to_url();
    let mut server = Server::start_on(Some(CLIENT_NS), &url, &leading, &[]);

    // Import through the API.
    let csv = "domain,category,organisation,region\n\
               dual-stack-good.test,中央媒体,Lab Media,北京\n\
               ipv4-only.test,商业网站,Lab Shop,上海\n\
               aaaa-www-only.test,商业网站,Lab Shop,上海\n";
    let (status, body) = curl("PUT", &server.url("/api/campaigns/lab"), Some(csv));
    assert_eq!(status, 201, "{body}");
    let receiver = Receiver::start(dir.path(), 18_765);
    let (status, body) = curl(
        "PUT",
        &server.url("/api/campaigns/lab/webhook"),
        Some(r#"{"url":"http://127.0.0.1:18765/hook"}"#),
    );
    assert_eq!(status, 204, "{body}");

    // A schedule every second fires once; deleting it stops it.
    let (status, body) = curl(
        "POST",
        &server.url("/api/campaigns/lab/schedules"),
        Some(r#"{"cron":"* * * * * *","profiles":["internetnl"]}"#),
    );
    assert_eq!(status, 201, "{body}");
    let schedule = serde_json::from_str::<Value>(&body).unwrap()["id"].as_i64().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let first_job = loop {
        let jobs = get(&server, "/api/jobs");
        if let Some(j) = jobs.as_array().unwrap().first() {
            break j["id"].as_i64().unwrap();
        }
        assert!(Instant::now() < deadline, "the schedule never fired");
        std::thread::sleep(Duration::from_millis(200));
    };
    let (status, _) = curl("DELETE", &server.url(&format!("/api/schedules/{schedule}")), None);
    assert_eq!(status, 204);
    let job = wait_job(&server, first_job, Duration::from_secs(180));
    assert_eq!(job["state"], "done", "{job}\n{}", server.log.lock().unwrap());
    assert_eq!(job["reason"], format!("schedule {schedule}"));
    // Jobs the schedule queued before it was deleted run too; let them end.
    for j in get(&server, "/api/jobs").as_array().unwrap() {
        wait_job(&server, j["id"].as_i64().unwrap(), Duration::from_secs(180));
    }

    let campaign = get(&server, "/api/campaigns/lab?profile=internetnl");
    let categories: Vec<(String, i64, i64)> = campaign["by_category"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["key"].as_str().unwrap().to_string(),
                s["targets"].as_i64().unwrap(),
                s["pass"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        categories,
        vec![("中央媒体".to_string(), 1, 1), ("商业网站".to_string(), 2, 0)],
        "{campaign}"
    );
    let providers = get(&server, "/api/campaigns/lab/providers?profile=internetnl");
    let lab_dns = providers
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["provider"] == "lab-dns" && p["role"] == "dns")
        .unwrap_or_else(|| panic!("lab-dns is attributed: {providers}"));
    assert_eq!(lab_dns["targets"], 3);

    // IPv6 to dual-stack-good's web server dropped: the next run regresses.
    let hole = Blackhole::v6("2001:db8:101::1");
    let (status, body) = curl(
        "POST",
        &server.url("/api/campaigns/lab/runs"),
        Some(r#"{"profiles":["internetnl"]}"#),
    );
    assert_eq!(status, 202, "{body}");
    let job = serde_json::from_str::<Value>(&body).unwrap()["id"].as_i64().unwrap();
    let done = wait_job(&server, job, Duration::from_secs(180));
    drop(hole);
    assert_eq!(done["state"], "done", "{done}");
    let site = get(&server, "/api/sites/dual-stack-good.test?campaign=lab");
    let changes = site["changes"].as_array().unwrap();
    assert!(
        changes
            .iter()
            .any(|c| c["kind"] == "regression" && c["check_id"] == "verdict"),
        "the changelog records the regression: {changes:?}"
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    let hooks = loop {
        let b = receiver.bodies();
        if !b.is_empty() || Instant::now() > deadline {
            break b;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(hooks.len(), 1, "one webhook delivery for the run with regressions");
    assert_eq!(hooks[0]["campaign"], "lab");
    assert!(
        hooks[0]["regressions"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["domain"] == "dual-stack-good.test"),
        "{}",
        hooks[0]
    );

    // Killed mid-run, the server resumes the run at its next start.
    const SITES: [&str; 8] = [
        "dual-stack-good.test",
        "ipv4-only.test",
        "aaaa-www-only.test",
        "site-good.test",
        "site-l2-v4only.test",
        "site-gbk.test",
        "content-differs-v6.test",
        "status-503-v6.test",
    ];
    let campaign_csv: String = std::iter::once("domain,category,organisation,region\n".to_string())
        .chain(SITES.iter().map(|d| format!("{d},商业网站,Lab,上海\n")))
        .collect();
    let (status, body) = curl("PUT", &server.url("/api/campaigns/big"), Some(&campaign_csv));
    assert_eq!(status, 201, "{body}");
    let (status, body) = curl(
        "POST",
        &server.url("/api/campaigns/big/runs"),
        Some(r#"{"profiles":["internetnl","cn-website"],"crawl":true}"#),
    );
    assert_eq!(status, 202, "{body}");
    let job = serde_json::from_str::<Value>(&body).unwrap()["id"].as_i64().unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let run = loop {
        let jobs = get(&server, "/api/jobs");
        let j = jobs
            .as_array()
            .unwrap()
            .iter()
            .find(|j| j["id"] == job)
            .unwrap()
            .clone();
        if let Some(run) = j["run_id"].as_i64() {
            break run;
        }
        assert!(Instant::now() < deadline, "the job never started: {j}");
        std::thread::sleep(Duration::from_millis(100));
    };
    let _ = Command::new("kill")
        .args(["-9", &server.child.id().to_string()])
        .status();
    let _ = server.child.wait();
    std::thread::sleep(Duration::from_millis(500));
    server = Server::start_on(Some(CLIENT_NS), &url, &leading, &[]);
    let done = wait_job(&server, job, Duration::from_secs(300));
    assert_eq!(done["state"], "done", "{done}\n{}", server.log.lock().unwrap());
    assert_eq!(done["run_id"], run, "the same run was resumed, not a new one");
    let store = v6scope_store::open(location).unwrap();
    let info = store.run(run).unwrap();
    assert!(info.finished_at.is_some());
    assert_eq!(store.observation_count(run).unwrap(), (8, 8), "every target once");
    drop(server);
}

#[test]
fn the_scan_policy_refuses_special_purpose_addresses_unless_allowed() {
    let env = lab_env();
    let dir = tempfile::Builder::new().prefix("lab-policy").tempdir().unwrap();
    let db = dir.path().join("v6scope.db");
    let list = dir.path().join("targets.txt");
    std::fs::write(&list, "dual-stack-good.test\n").unwrap();
    let scan = |extra: &[&str]| {
        let mut args: Vec<String> = [
            "scan",
            list.to_str().unwrap(),
            "--db",
            db.to_str().unwrap(),
            "--jsonl",
            "-",
        ]
        .map(String::from)
        .to_vec();
        args.extend(lab_flags(&env));
        args.extend(extra.iter().map(|s| s.to_string()));
        let out = v6scope_in_lab(&args);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let line: Value = serde_json::from_slice(out.stdout.split(|b| *b == b'\n').next().unwrap()).unwrap();
        line
    };
    // The lab lives in documentation prefixes, which are special-purpose.
    let refused = scan(&["--public-only"]);
    let verdict = &refused["verdicts"][0];
    assert_ne!(verdict["status"], "pass", "{verdict}");
    let text = refused["observation"].to_string();
    assert!(
        text.contains("refused by scan policy: 203.0.113.4 is documentation (TEST-NET-3) (203.0.113.0/24)"),
        "the refusal is recorded with the address and range: {text}"
    );
    let mut allowed = vec!["--public-only"];
    for p in LAB_PREFIXES {
        allowed.extend(["--scan-allow", p]);
    }
    let passed = scan(&allowed);
    assert_eq!(passed["verdicts"][0]["status"], "pass", "{}", passed["verdicts"][0]);
    assert!(!passed["observation"].to_string().contains("refused by scan policy"));
}
