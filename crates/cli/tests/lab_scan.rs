//! `v6scope scan` against the lab: targets files with bad lines, JSON Lines
//! and CSV outputs, the store, resuming after `kill -9`, and re-judging.

mod common;

use common::*;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use v6scope_store::prelude::*;

fn scratch(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("v6scope-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn scan_reports_bad_lines_streams_outputs_and_rejudges() {
    let env = lab_env();
    let dir = scratch("scan");
    let targets = dir.join("targets.csv");
    std::fs::write(
        &targets,
        "domain,category,organisation,region\n\
         dual-stack-good.test,government,Lab Ministry,North\n\
         ipv4-only.test,government,Lab Ministry,South\n\
         bad..name,x,y,z\n\
         mx-good.test,enterprise,Lab Corp,North\n\
         http://not-a-domain.test/,x,y,z\n\
         null-mx.test,enterprise,Lab Corp,South\n",
    )
    .unwrap();
    let db = dir.join("v6scope.db");
    let jsonl = dir.join("out.jsonl");
    let csv = dir.join("out.csv");
    let mut args: Vec<String> = vec![
        "scan".into(),
        targets.display().to_string(),
        "--db".into(),
        db.display().to_string(),
        "--jsonl".into(),
        jsonl.display().to_string(),
        "--csv".into(),
        csv.display().to_string(),
        "--profile".into(),
        "internetnl".into(),
        "--profile".into(),
        "nist-usgv6".into(),
    ];
    args.extend(lab_flags(&env));
    let output = v6scope_in_lab(&args);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "scan failed: {stderr}");
    assert!(stderr.contains(":4: skipped"), "bad line 4 reported: {stderr}");
    assert!(stderr.contains(":6: skipped"), "bad line 6 reported: {stderr}");

    let lines: Vec<serde_json::Value> = std::fs::read_to_string(&jsonl)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is JSON"))
        .collect();
    assert_eq!(lines.len(), 4);
    for line in &lines {
        assert_eq!(line["schema_version"], 1);
        assert_eq!(line["verdicts"].as_array().unwrap().len(), 2);
    }
    let good = lines.iter().find(|l| l["domain"] == "dual-stack-good.test").unwrap();
    assert_eq!(good["observation"]["target"]["region"], "North");
    assert_eq!(good["verdicts"][0]["status"], "pass");

    let csv_text = std::fs::read_to_string(&csv).unwrap();
    assert!(csv_text.starts_with(
        "domain,category,organisation,region,internetnl_status,internetnl_score,nist-usgv6_status,nist-usgv6_score"
    ));
    assert!(csv_text.contains("ipv4-only.test,government,Lab Ministry,South,fail,"));
    assert_eq!(csv_text.lines().count(), 5);

    let store = v6scope_store::SqliteStore::open(&db).unwrap();
    let runs = store.runs().unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!((runs[0].targets, runs[0].done), (4, 4));
    assert!(runs[0].finished_at.is_some());

    // Re-judge under another profile without probing: no lab flags needed.
    let output = Command::new(env!("CARGO_BIN_EXE_v6scope"))
        .args([
            "assess",
            "--run",
            &runs[0].id.to_string(),
            "--profile",
            "nist-usgv6",
            "--json",
            "--db",
        ])
        .arg(&db)
        .output()
        .unwrap();
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let rejudged: Vec<serde_json::Value> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rejudged.len(), 4);
    assert!(rejudged.iter().all(|v| v["profile"] == "nist-usgv6"));
    let v4only = rejudged.iter().find(|v| v["domain"] == "ipv4-only.test").unwrap();
    assert_eq!(v4only["label"], "progress");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn scan_killed_with_sigkill_resumes_without_loss_or_duplicates() {
    let env = lab_env();
    let dir = scratch("resume");
    // Slow targets (timeouts) interleaved with quick ones, one at a time, so
    // the kill lands mid-run.
    let domains = [
        "dual-stack-good.test",
        "aaaa-blackhole.test",
        "ipv4-only.test",
        "slowloris.test",
        "mx-good.test",
        "ns-aaaa-unreachable.test",
        "no-mx.test",
        "aaaa-ula.test",
        "redirect-loop.test",
        "null-mx.test",
    ];
    let targets = dir.join("targets.txt");
    std::fs::write(&targets, domains.join("\n")).unwrap();
    let db = dir.join("v6scope.db");
    let mut args: Vec<String> = vec![
        "scan".into(),
        targets.display().to_string(),
        "--db".into(),
        db.display().to_string(),
        "--concurrency".into(),
        "1".into(),
    ];
    args.extend(lab_flags(&env));
    let mut child = Command::new("ip")
        .args(["netns", "exec", CLIENT_NS, env!("CARGO_BIN_EXE_v6scope")])
        .args(&args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Wait until some, not all, targets are stored, then kill -9.
    let started = Instant::now();
    let run = loop {
        assert!(started.elapsed() < Duration::from_secs(120), "no progress within 120 s");
        std::thread::sleep(Duration::from_millis(200));
        if let Ok(store) = v6scope_store::SqliteStore::open(&db)
            && let Ok(runs) = store.runs()
            && let Some(r) = runs.first()
            && r.done >= 2
        {
            break r.id;
        }
    };
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let before = v6scope_store::SqliteStore::open(&db).unwrap().run(run).unwrap();
    assert!(
        before.done < before.targets,
        "the kill must land mid-run ({} of {})",
        before.done,
        before.targets
    );
    assert!(before.finished_at.is_none());

    let resume: Vec<String> = vec![
        "scan".into(),
        "--resume".into(),
        run.to_string(),
        "--db".into(),
        db.display().to_string(),
        "--concurrency".into(),
        "4".into(),
    ];
    // No lab flags: a resumed run reuses the resolver, CA, prefixes and
    // vantage probes it started with.
    let output = v6scope_in_lab(&resume);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let store = v6scope_store::SqliteStore::open(&db).unwrap();
    let after = store.run(run).unwrap();
    assert_eq!((after.targets, after.done), (10, 10));
    assert_eq!(store.observation_count(run).unwrap(), (10, 10), "no duplicates");
    assert_eq!(store.verdicts(run, "internetnl").unwrap().len(), 10);
    let mut stored = Vec::new();
    store
        .for_each_observation(run, &mut |_, o| stored.push(o.target.domain))
        .unwrap();
    let mut expected: Vec<String> = domains.iter().map(|d| d.to_string()).collect();
    stored.sort();
    expected.sort();
    assert_eq!(stored, expected, "nothing lost");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn scan_crawls_sites_for_the_cn_profiles_and_keeps_the_crawl_settings() {
    let env = lab_env();
    let dir = scratch("scan-crawl");
    let targets = dir.join("sites.txt");
    std::fs::write(&targets, "site-good.test\nsite-stub-v6.test\n").unwrap();
    let db = dir.join("v6scope.db");
    let jsonl = dir.join("out.jsonl");
    let mut args: Vec<String> = vec![
        "scan".into(),
        targets.display().to_string(),
        "--db".into(),
        db.display().to_string(),
        "--jsonl".into(),
        jsonl.display().to_string(),
        "--profile".into(),
        "cn-website".into(),
        "--samples".into(),
        "1".into(),
        "--pages-per-level".into(),
        "7".into(),
    ];
    args.extend(lab_flags(&env));
    let output = v6scope_in_lab(&args);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(&jsonl)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    for line in &lines {
        let site = &line["observation"]["site"];
        // The homepage, 7 level-2 and 7 level-3 pages (the limit applied).
        assert_eq!(site["pages"].as_array().unwrap().len(), 15, "{}", line["domain"]);
        assert_eq!(line["verdicts"][0]["profile"], "cn-website");
    }
    let status = |domain: &str| {
        lines.iter().find(|l| l["domain"] == domain).unwrap()["verdicts"][0]["status"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert_eq!(status("site-stub-v6.test"), "fail");
    // The crawl settings are kept with the run for --resume.
    let store = v6scope_store::SqliteStore::open(&db).unwrap();
    let run = &store.runs().unwrap()[0];
    let info = store.run(run.id).unwrap();
    let config: serde_json::Value = serde_json::from_str(&info.config).unwrap();
    assert_eq!(config["crawl"]["pages_per_level"], 7);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_campaign_is_imported_once_and_scanned_by_name() {
    let env = lab_env();
    let dir = scratch("campaign");
    let targets = dir.join("gov.csv");
    std::fs::write(
        &targets,
        "domain,category,organisation,region\n\
         dual-stack-good.test,省部级政府网站,Lab Ministry,North\n\
         not a domain,x,y,z\n\
         ipv4-only.test,市地级政府网站,Lab City,South\n",
    )
    .unwrap();
    let db = dir.join("v6scope.db");
    let db_arg = db.display().to_string();
    let import = Command::new(env!("CARGO_BIN_EXE_v6scope"))
        .args([
            "campaign",
            "import",
            "gov-2026",
            targets.to_str().unwrap(),
            "--db",
            &db_arg,
        ])
        .output()
        .unwrap();
    assert_eq!(
        import.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&import.stderr)
    );
    assert!(String::from_utf8_lossy(&import.stderr).contains(":3: skipped"));
    assert!(String::from_utf8_lossy(&import.stdout).contains("campaign gov-2026: 2 targets"));
    let mut args: Vec<String> = ["scan", "--campaign", "gov-2026", "--db", &db_arg]
        .map(String::from)
        .to_vec();
    args.extend(lab_flags(&env));
    let output = v6scope_in_lab(&args);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let store = v6scope_store::SqliteStore::open(&db).unwrap();
    let runs = store.runs().unwrap();
    assert_eq!(runs[0].source, "campaign:gov-2026");
    assert_eq!((runs[0].targets, runs[0].done), (2, 2));
    // The campaign against the 2017 plan: support per category from the run.
    let report = Command::new(env!("CARGO_BIN_EXE_v6scope"))
        .args([
            "report",
            "--campaign",
            "gov-2026",
            "--plan",
            "cn-2017-action-plan",
            "--format",
            "json",
        ])
        .args(["--db", &db_arg])
        .output()
        .unwrap();
    assert_eq!(
        report.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&report.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&report.stdout).unwrap();
    let milestone = |category: &str| {
        report["milestones"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["category"] == category)
            .unwrap()
            .clone()
    };
    let provincial = milestone("省部级政府网站");
    assert_eq!(provincial["measurement"]["latest"][1], 1.0);
    assert_eq!(provincial["judgement"]["standing"], "met");
    let municipal = milestone("市地级政府网站");
    assert_eq!(municipal["measurement"]["latest"][1], 0.0);
    assert_eq!(municipal["judgement"]["standing"], "behind");
    let markdown = Command::new(env!("CARGO_BIN_EXE_v6scope"))
        .args(["report", "--campaign", "gov-2026", "--lang", "zh-CN", "--db", &db_arg])
        .output()
        .unwrap();
    let markdown = String::from_utf8_lossy(&markdown.stdout);
    let page = dir.join("report.html");
    let html = Command::new(env!("CARGO_BIN_EXE_v6scope"))
        .args([
            "report",
            "--campaign",
            "gov-2026",
            "--format",
            "html",
            "--out",
            page.to_str().unwrap(),
        ])
        .args(["--db", &db_arg])
        .output()
        .unwrap();
    assert_eq!(html.status.code(), Some(0), "{}", String::from_utf8_lossy(&html.stderr));
    let page = std::fs::read_to_string(&page).unwrap();
    assert!(page.contains("<svg") && page.contains("省部级政府网站"), "{page}");
    assert!(
        markdown.contains("| 里程碑 |") && markdown.contains("省部级以上政府外网网站系统全面支持IPv6"),
        "{markdown}"
    );

    let unknown = Command::new(env!("CARGO_BIN_EXE_v6scope"))
        .args([
            "scan",
            "--campaign",
            "no-such",
            "--db",
            &db_arg,
            "--resolver",
            "127.0.0.1:1",
        ])
        .output()
        .unwrap();
    assert_eq!(unknown.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("no campaign 'no-such'"));
    std::fs::remove_dir_all(&dir).unwrap();
}
