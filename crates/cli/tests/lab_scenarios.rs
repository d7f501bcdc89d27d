//! Every scenario of lab/scenarios.toml, judged under every shipped profile,
//! must reach the verdict the catalogue names. Adding a scenario adds a case.
//! `internetnl` and `nist-usgv6` judge one `check` of every scenario;
//! `cn-website` judges a `check --crawl` of the scenarios that name it.

mod common;

use common::*;
use serde_json::Value;
use std::collections::BTreeMap;

#[derive(serde::Deserialize)]
struct Catalogue {
    scenario: Vec<Scenario>,
}

#[derive(serde::Deserialize)]
struct Scenario {
    name: String,
    expect: BTreeMap<String, toml::Value>,
    /// Judged with the shipped speed thresholds (a scenario built to be slow).
    #[serde(default)]
    judge_speed: bool,
    /// Timing samples the crawl takes (default 3).
    samples: Option<usize>,
}

/// Runs `check --json` over `scenarios` with `profiles` (and `extra` flags)
/// and returns the mismatches against the catalogue for those profiles.
fn judge(
    env: &BTreeMap<String, String>,
    scenarios: &[&Scenario],
    profiles: &[&str],
    extra: &[&str],
) -> (usize, Vec<String>) {
    let mut args: Vec<String> = vec!["check".into(), "--json".into()];
    for p in profiles {
        // A profile also given as a file in `extra` is not loaded by name.
        if !extra.iter().any(|e| e.ends_with(&format!("{p}.toml"))) {
            args.extend(["--profile".to_string(), p.to_string()]);
        }
    }
    args.extend(extra.iter().map(|s| s.to_string()));
    args.extend(lab_flags(env));
    args.extend(scenarios.iter().map(|s| format!("{}.test", s.name)));
    let output = v6scope_in_lab(&args);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let code = output.status.code();
    assert!(
        matches!(code, Some(0) | Some(1)),
        "v6scope check exited {code:?}: {stderr}"
    );
    let documents: Vec<Value> = match serde_json::from_slice(&output.stdout).expect("check --json prints JSON") {
        Value::Array(docs) => docs,
        doc => vec![doc],
    };
    assert_eq!(documents.len(), scenarios.len());

    let mut mismatches = Vec::new();
    let mut compared = 0;
    for (scenario, document) in scenarios.iter().zip(&documents) {
        assert_eq!(document["domain"], format!("{}.test", scenario.name));
        let verdicts: BTreeMap<String, &Value> = document["verdicts"]
            .as_array()
            .expect("verdicts array")
            .iter()
            .map(|v| (v["profile"].as_str().unwrap_or_default().to_string(), v))
            .collect();
        for (key, expected) in &scenario.expect {
            match expected {
                toml::Value::String(status) if profiles.contains(&key.as_str()) => {
                    let got = verdicts
                        .get(key)
                        .map(|v| v["status"].as_str().unwrap_or_default())
                        .unwrap_or("missing");
                    compared += 1;
                    if got != status {
                        mismatches.push(format!(
                            "{}: profile {key}: expected {status}, got {got}",
                            scenario.name
                        ));
                    }
                }
                toml::Value::String(_) => {}
                toml::Value::Table(per_profile) if key == "checks" => {
                    for (profile, checks) in per_profile.iter().filter(|(p, _)| profiles.contains(&p.as_str())) {
                        let Some(verdict) = verdicts.get(profile) else {
                            mismatches.push(format!("{}: no verdict for profile {profile}", scenario.name));
                            continue;
                        };
                        for (check, status) in checks.as_table().into_iter().flatten() {
                            let status = status.as_str().unwrap_or_default();
                            let found = verdict["checks"]
                                .as_array()
                                .into_iter()
                                .flatten()
                                .find(|c| c["id"] == check.as_str());
                            let got = found
                                .map(|c| c["status"].as_str().unwrap_or_default())
                                .unwrap_or("missing");
                            compared += 1;
                            if got != status {
                                let evidence = found.map(|c| c["evidence"].to_string()).unwrap_or_default();
                                mismatches.push(format!(
                                    "{}: {profile}.{check}: expected {status}, got {got} {evidence}",
                                    scenario.name
                                ));
                            }
                        }
                    }
                }
                other => panic!("{}: unexpected expectation {key} = {other}", scenario.name),
            }
        }
    }
    (compared, mismatches)
}

fn catalogue() -> Catalogue {
    let text = std::fs::read_to_string(repo_root().join("lab/scenarios.toml")).expect("reading lab/scenarios.toml");
    toml::from_str(&text).expect("parsing lab/scenarios.toml")
}

#[test]
fn every_scenario_reaches_its_expected_verdicts() {
    let env = lab_env();
    let catalogue = catalogue();
    assert!(
        catalogue.scenario.len() >= 30,
        "the catalogue must hold at least 30 scenarios"
    );
    // Scenarios judged only under the cn profiles (e.g. a flapping address
    // whose connection counter other probes must not move) are left out.
    let all: Vec<&Scenario> = catalogue
        .scenario
        .iter()
        .filter(|s| s.expect.contains_key("internetnl") || s.expect.contains_key("nist-usgv6"))
        .collect();
    let (compared, mismatches) = judge(&env, &all, &["internetnl", "nist-usgv6"], &[]);
    println!("{compared} expectations compared over {} scenarios", all.len());
    assert!(
        mismatches.is_empty(),
        "{} mismatches:\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
}

#[test]
fn site_scenarios_reach_their_cn_verdicts_after_a_crawl() {
    let env = lab_env();
    let catalogue = catalogue();
    let (slow, sites): (Vec<&Scenario>, Vec<&Scenario>) = catalogue
        .scenario
        .iter()
        .filter(|s| s.expect.contains_key("cn-website") || s.expect.contains_key("cn-finance"))
        .partition(|s| s.judge_speed);
    // A stalled IPv6 object costs one fetch deadline per sample: keep it short.
    let crawl_flags = ["--crawl", "--interval", "0.1", "--fetch-timeout", "4"];
    assert!(sites.len() >= 7, "the catalogue must hold the crawl scenarios");
    assert!(!slow.is_empty(), "the catalogue must hold a slow-IPv6 site");
    let mut flags: Vec<&str> = crawl_flags.to_vec();
    flags.extend(["--samples", "3"]);
    let (compared, mismatches) = judge(&env, &slow, &["cn-website", "cn-finance"], &flags);
    println!("{compared} expectations compared over {} slow sites", slow.len());
    assert!(
        mismatches.is_empty(),
        "{} mismatches:\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
    // Lab times are sub-millisecond and jitter under load; these scenarios
    // are not about speed, so the speed rule is given a 1 s floor here (the
    // profile is data: same checks, same name, one threshold changed).
    let dir = std::env::temp_dir().join(format!("v6scope-cn-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let profile = dir.join("cn-website.toml");
    let text = std::fs::read_to_string(repo_root().join("profiles/cn-website.toml")).unwrap();
    assert!(text.contains("performance_floor_ms = 10.0"));
    std::fs::write(
        &profile,
        text.replace("performance_floor_ms = 10.0", "performance_floor_ms = 1000.0"),
    )
    .unwrap();
    let profile = profile.display().to_string();
    // One run per sample count (a stability scenario asks for more).
    let mut by_samples: BTreeMap<usize, Vec<&Scenario>> = BTreeMap::new();
    for site in &sites {
        by_samples.entry(site.samples.unwrap_or(3)).or_default().push(site);
    }
    let mut mismatches = Vec::new();
    for (samples, group) in &by_samples {
        let samples = samples.to_string();
        let mut flags: Vec<&str> = crawl_flags.to_vec();
        flags.extend(["--samples", &samples, "--profile", &profile]);
        let (compared, found) = judge(&env, group, &["cn-website", "cn-finance"], &flags);
        println!(
            "{compared} expectations compared over {} crawled sites ({samples} samples)",
            group.len()
        );
        mismatches.extend(found);
    }
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(
        mismatches.is_empty(),
        "{} mismatches:\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
}
