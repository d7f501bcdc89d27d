//! Every scenario of lab/scenarios.toml, judged under every shipped profile,
//! must reach the verdict the catalogue names. Adding a scenario adds a case.

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
    expect: Expect,
}

#[derive(serde::Deserialize)]
struct Expect {
    #[serde(flatten)]
    domain: BTreeMap<String, toml::Value>,
}

#[test]
fn every_scenario_reaches_its_expected_verdicts() {
    let env = lab_env();
    let text = std::fs::read_to_string(repo_root().join("lab/scenarios.toml")).expect("reading lab/scenarios.toml");
    let catalogue: Catalogue = toml::from_str(&text).expect("parsing lab/scenarios.toml");
    assert!(
        catalogue.scenario.len() >= 30,
        "the catalogue must hold at least 30 scenarios"
    );

    let mut args: Vec<String> = vec![
        "check".into(),
        "--json".into(),
        "--profile".into(),
        "internetnl".into(),
        "--profile".into(),
        "nist-usgv6".into(),
    ];
    args.extend(lab_flags(&env));
    args.extend(catalogue.scenario.iter().map(|s| format!("{}.test", s.name)));
    let output = v6scope_in_lab(&args);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let code = output.status.code();
    assert!(
        matches!(code, Some(0) | Some(1)),
        "v6scope check exited {code:?}: {stderr}"
    );
    let documents: Vec<Value> = serde_json::from_slice(&output.stdout).expect("check --json prints a JSON array");
    assert_eq!(documents.len(), catalogue.scenario.len());

    let mut mismatches = Vec::new();
    let mut compared = 0;
    for (scenario, document) in catalogue.scenario.iter().zip(&documents) {
        assert_eq!(document["domain"], format!("{}.test", scenario.name));
        let verdicts: BTreeMap<String, &Value> = document["verdicts"]
            .as_array()
            .expect("verdicts array")
            .iter()
            .map(|v| (v["profile"].as_str().unwrap_or_default().to_string(), v))
            .collect();
        for (key, expected) in &scenario.expect.domain {
            match expected {
                toml::Value::String(status) => {
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
                toml::Value::Table(per_profile) if key == "checks" => {
                    for (profile, checks) in per_profile {
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
    println!(
        "{compared} expectations compared over {} scenarios",
        catalogue.scenario.len()
    );
    assert!(
        mismatches.is_empty(),
        "{} mismatches:\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
}
