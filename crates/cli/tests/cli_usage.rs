//! Usage and input errors exit with code 2 and say why; no lab needed.

use std::process::Command;

fn v6scope(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_v6scope")).args(args).output().unwrap()
}

#[test]
fn bad_domain_is_a_usage_error() {
    let out = v6scope(&["check", "bad..name", "--resolver", "127.0.0.1:1"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("bad..name"));
}

#[test]
fn unknown_profile_is_a_usage_error() {
    let out = v6scope(&[
        "check",
        "example.test",
        "--profile",
        "no-such",
        "--resolver",
        "127.0.0.1:1",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown profile"));
}

#[test]
fn missing_targets_file_and_empty_list_are_usage_errors() {
    let out = v6scope(&["scan", "/nonexistent/targets.txt", "--db", "/tmp/v6scope-usage-test.db"]);
    assert_eq!(out.status.code(), Some(2));
    let dir = std::env::temp_dir().join(format!("v6scope-usage-{}", std::process::id()));
    std::fs::write(&dir, "not a domain\n\n# only junk\n").unwrap();
    let out = v6scope(&["scan", dir.to_str().unwrap(), "--db", "/tmp/v6scope-usage-test.db"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(":1: skipped"), "{stderr}");
    assert!(stderr.contains("no valid targets"), "{stderr}");
    let _ = std::fs::remove_file(&dir);
    let _ = std::fs::remove_file("/tmp/v6scope-usage-test.db");
}

#[test]
fn resuming_an_unknown_run_is_a_usage_error() {
    let db = std::env::temp_dir().join(format!("v6scope-usage-resume-{}.db", std::process::id()));
    let out = v6scope(&["scan", "--resume", "42", "--db", db.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("run 42 does not exist"));
    let _ = std::fs::remove_file(&db);
}

#[test]
fn unreachable_resolver_gives_recorded_errors_not_a_hang() {
    // Nothing listens on 127.0.0.1:9; every lookup fails fast and the
    // verdict says why, instead of hanging or panicking: the resolver
    // self-test finds it dead, so the result is not testable (exit 4),
    // never a pass or a fail.
    let out = v6scope(&[
        "check",
        "example.test",
        "--resolver",
        "127.0.0.1:9",
        "--vantage-probe",
        "127.0.0.1",
        "--dns-timeout",
        "200",
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(4), "{}", String::from_utf8_lossy(&out.stderr));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["domain"], "example.test");
    assert_eq!(doc["observation"]["vantage"]["ipv6"], false);
    assert_eq!(doc["verdicts"][0]["status"], "not_testable");
    let problems = doc["observation"]["vantage"]["resolver_problems"].to_string();
    assert!(problems.contains("resolver 127.0.0.1"), "{problems}");
}

#[test]
fn config_file_sets_defaults_and_rejects_unknown_keys() {
    let dir = std::env::temp_dir().join(format!("v6scope-config-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let good = dir.join("good.toml");
    std::fs::write(
        &good,
        "profile = \"no-such-profile-from-config\"\nresolver = [\"127.0.0.1:9\"]\n",
    )
    .unwrap();
    let out = v6scope(&["check", "example.test", "--config", good.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no-such-profile-from-config"));
    // A flag overrides the file.
    let out = v6scope(&[
        "check",
        "bad..name",
        "--config",
        good.to_str().unwrap(),
        "--profile",
        "internetnl",
    ]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("bad..name"));
    // The environment overrides the file too.
    let out = Command::new(env!("CARGO_BIN_EXE_v6scope"))
        .args(["check", "bad..name", "--config", good.to_str().unwrap()])
        .env("V6SCOPE_PROFILE", "internetnl")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("bad..name") && !stderr.contains("no-such-profile"),
        "{stderr}"
    );
    // Any flag with a V6SCOPE_* variable is a key: booleans, and keys of
    // other commands (`prefixes` is collect's) are accepted.
    let wide = dir.join("wide.toml");
    std::fs::write(
        &wide,
        "iterative = true\nprefixes = \"p.csv\"\nroot_hints = \"/nonexistent/root.hints\"\n",
    )
    .unwrap();
    let out = v6scope(&["check", "example.test", "--config", wide.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("/nonexistent/root.hints"),
        "iterative and root-hints from the file: {stderr}"
    );
    let bad = dir.join("bad.toml");
    std::fs::write(&bad, "resolvr = \"127.0.0.1\"\n").unwrap();
    let out = v6scope(&["check", "example.test", "--config", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown key 'resolvr'"));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn plans_list_their_milestones_in_either_language_and_unknown_plans_are_usage_errors() {
    let out = v6scope(&["plans"]);
    assert_eq!(out.status.code(), Some(0));
    let list = String::from_utf8_lossy(&out.stdout);
    assert!(
        list.contains("cn-2017-action-plan") && list.contains("cn-2024-work-plan"),
        "{list}"
    );
    let out = v6scope(&["plans", "cn-2017-action-plan", "--lang", "zh-CN"]);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("2018-12-31") && text.contains("IPv6活跃用户数达到2亿"),
        "{text}"
    );
    let out = v6scope(&["plans", "cn-2024-work-plan", "--json"]);
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(plan["milestone"][1]["indicator"], "mobile_traffic_share");
    assert_eq!(plan["milestone"][1]["target"], 0.65);
    let out = v6scope(&["plans", "no-such-plan"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no built-in plan"));
}
