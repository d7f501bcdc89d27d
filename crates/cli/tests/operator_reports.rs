//! The operator reporting interface: carriers submit measurement-point
//! figures as CSV or JSON with their collector tokens; bad submissions are
//! refused whole with their rows named; a correction supersedes the earlier
//! figure and the history stays; the national shares are computed as the
//! definitions state them, beside the same shares from a pushing flow
//! collector, and the monthly report measures the plan's traffic milestones
//! with them. Loopback only.

mod common;

use common::captures::captures;
use common::server::Server;
use serde_json::{Value, json};
use std::path::Path;
use std::process::Command;

fn v6scope(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_v6scope")).args(args).output().unwrap()
}

fn token(db: &Path, name: &str, operator: &str, point: Option<&str>) -> String {
    let mut args = vec![
        "collectors",
        "add",
        name,
        "--operator",
        operator,
        "--db",
        db.to_str().unwrap(),
    ];
    if let Some(p) = point {
        args.extend(["--point", p]);
    }
    let out = v6scope(&args);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

fn client() -> reqwest::blocking::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::blocking::Client::new()
}

fn post(server: &Server, token: Option<&str>, content_type: &str, body: &str) -> (u16, Value) {
    let mut request = client()
        .post(server.url("/api/operator-reports"))
        .header("Content-Type", content_type)
        .body(body.to_string());
    if let Some(t) = token {
        request = request.bearer_auth(t);
    }
    let response = request.send().unwrap();
    let status = response.status().as_u16();
    (status, response.json().unwrap_or(Value::Null))
}

fn get(server: &Server, path: &str) -> Value {
    client().get(server.url(path)).send().unwrap().json().unwrap()
}

fn month<'a>(indicators: &'a Value, operator: &str, period: &str) -> &'a Value {
    indicators["months"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["operator"] == operator && m["period"] == period)
        .unwrap_or_else(|| panic!("no {operator:?} {period} in {indicators}"))
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9
}

#[test]
fn carriers_report_figures_corrections_supersede_and_bad_rows_are_named() {
    let work = tempfile::tempdir().unwrap();
    let db = work.path().join("platform.db");
    let cmcc = token(&db, "cmcc-reports", "CMCC", None);
    let ctcc = token(&db, "ctcc-reports", "CTCC", None);
    let admin = work.path().join("admin.token");
    std::fs::write(&admin, "admin-token-for-this-test\n").unwrap();
    let server = Server::start(&db, &[], &["--token-file", admin.to_str().unwrap()]);

    // The template from the dashboard is a valid submission.
    let template = client()
        .get(server.url("/api/operator-reports/template.csv"))
        .send()
        .unwrap()
        .text()
        .unwrap();
    let (status, receipt) = post(&server, Some(&cmcc), "text/csv", &template);
    assert_eq!(status, 201, "{receipt}");
    assert_eq!(receipt["versions"], json!([1, 1, 1]));
    assert_eq!(receipt["operator"], "CMCC");

    // Bad submissions: every bad row named, nothing stored.
    let bad = "point,period,unit,ipv6_traffic,total_traffic,ipv6_users,users\n\
               mobile-lte,2026-11,gbps,9000,9100,,\n\
               mobile-6g,2026-11,gbps,1,2,,\n\
               mobile-lte,2026-11,gbps,1,2,,\n\
               metro-egress,2026-11,gbps,5,2,,\n\
               metro-egress,2026-11,gbps,1,2,,\n";
    let (status, refused) = post(&server, Some(&cmcc), "text/csv", bad);
    assert_eq!(status, 422, "{refused}");
    let rows: Vec<u64> = refused["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["row"].as_u64().unwrap())
        .collect();
    assert_eq!(rows, [3, 4, 5, 6], "{refused}");
    let units =
        r#"{"rows":[{"point":"mobile-5g","period":"2026-11","unit":"furlongs","ipv6_traffic":1,"total_traffic":2}]}"#;
    let (status, refused) = post(&server, Some(&cmcc), "application/json", units);
    assert_eq!(status, 422);
    assert!(
        refused["rows"][0]["error"].as_str().unwrap().contains("furlongs"),
        "{refused}"
    );
    let (status, _) = post(&server, Some(&cmcc), "application/json", r#"{"rows":[{"point":"x"}]}"#);
    assert_eq!(status, 400, "a row without a period is not even a row");
    let history = get(&server, "/api/operator-reports?from=2026-11&until=2026-11");
    assert_eq!(
        history["rows"].as_array().unwrap().len(),
        3,
        "nothing of the refused ones stored: {history}"
    );

    // No token, the admin token, a wrong type: refused before the body counts.
    assert_eq!(post(&server, None, "text/csv", &template).0, 401);
    assert_eq!(
        post(&server, Some("admin-token-for-this-test"), "text/csv", &template).0,
        401
    );
    assert_eq!(post(&server, Some(&cmcc), "text/plain", &template).0, 415);

    // A correction of CMCC's LTE figure, and CTCC's first report as JSON.
    let fix = "point,period,unit,ipv6_traffic,total_traffic\nmobile-lte,2026-11,gbps,6000,9100\n";
    let (status, receipt) = post(&server, Some(&cmcc), "text/csv", fix);
    assert_eq!(
        (status, receipt["versions"].clone(), receipt["corrections"].clone()),
        (201, json!([2]), json!(1))
    );
    let ctcc_rows = json!({"rows": [
        {"point": "mobile-lte", "period": "2026-11", "unit": "bytes", "ipv6_traffic": 3.0e17, "ipv4_traffic": 1.0e17},
        {"point": "metro-egress", "site": "shanghai", "period": "2026-11", "unit": "bytes",
         "ipv6_traffic": 1.0e17, "total_traffic": 5.0e17, "ipv6_active_connections": 1000}
    ]});
    let (status, receipt) = post(&server, Some(&ctcc), "application/json", &ctcc_rows.to_string());
    assert_eq!(status, 201, "{receipt}");

    let history = get(&server, "/api/operator-reports?from=2026-11&until=2026-11");
    let lte: Vec<&Value> = history["rows"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["operator"] == "CMCC" && r["point"] == "mobile-lte")
        .collect();
    assert_eq!(lte.len(), 2, "both versions are kept: {history}");
    assert_eq!(
        (lte[0]["version"].clone(), lte[0]["current"].clone()),
        (json!(1), json!(false))
    );
    assert_eq!(
        (lte[1]["version"].clone(), lte[1]["current"].clone()),
        (json!(2), json!(true))
    );

    // Mobile share = (LTE + 5G IPv6) / (LTE + 5G): CMCC in Gbps over
    // November's 30 days, CTCC in bytes.
    let gbps = 30.0 * 86_400.0 * 1.0e9 / 8.0;
    let indicators = get(&server, "/api/operators?until=2026-11");
    let cmcc_month = month(&indicators, "CMCC", "2026-11");
    assert!(close(
        cmcc_month["mobile"]["share"].as_f64().unwrap(),
        (6000.0 + 4100.0) / (9100.0 + 5600.0)
    ));
    assert_eq!(cmcc_month["max_version"], 2);
    let national = month(&indicators, "", "2026-11");
    let mobile = ((6000.0 + 4100.0) * gbps + 3.0e17) / ((9100.0 + 5600.0) * gbps + 4.0e17);
    assert!(
        close(national["mobile"]["share"].as_f64().unwrap(), mobile),
        "{national}"
    );
    let fixed = (1900.0 * gbps + 1.0e17) / (8000.0 * gbps + 5.0e17);
    assert!(close(national["fixed"]["share"].as_f64().unwrap(), fixed), "{national}");
    assert_eq!(national["ipv6_active_connections"], 52_000_000 + 1000);
    assert!(
        indicators["targets"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["plan"] == "cn-2024-work-plan"
                && t["indicator"] == "mobile_traffic_share"
                && t["target"] == 0.65)
    );

    // The monthly report measures the plan's milestones with them.
    let out = v6scope(&[
        "report",
        "--db",
        db.to_str().unwrap(),
        "--plan",
        "cn-2024-work-plan",
        "--period",
        "2026-11",
        "--format",
        "json",
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let text = report.to_string();
    let milestone = |indicator: &str| -> Value {
        report["milestones"]
            .as_array()
            .unwrap_or_else(|| panic!("no milestones in {text}"))
            .iter()
            .find(|m| m["indicator"] == indicator)
            .unwrap()
            .clone()
    };
    let m = milestone("mobile_traffic_share");
    assert!(close(m["measurement"]["latest"][1].as_f64().unwrap(), mobile), "{m}");
    assert_eq!(m["judgement"]["standing"], "met", "{m}");
    let f = milestone("fixed_traffic_share");
    assert!(close(f["measurement"]["latest"][1].as_f64().unwrap(), fixed), "{f}");

    // A revoked token submits nothing.
    assert!(
        v6scope(&["collectors", "revoke", "ctcc-reports", "--db", db.to_str().unwrap()])
            .status
            .success()
    );
    assert_eq!(
        post(&server, Some(&ctcc), "application/json", &ctcc_rows.to_string()).0,
        401
    );
}

#[test]
fn flow_collectors_at_a_point_give_the_share_beside_the_reported_one() {
    let work = tempfile::tempdir().unwrap();
    let db = work.path().join("platform.db");
    let flows = token(&db, "cmcc-lte-flows", "CMCC", Some("mobile-lte"));
    let reports = token(&db, "cmcc-reports", "CMCC", None);
    let server = Server::start(&db, &[], &[]);
    let token_file = work.path().join("flows.token");
    std::fs::write(&token_file, &flows).unwrap();
    // The capture's traffic (January 2026) pushed from the LTE core's collector.
    let out = Command::new(env!("CARGO_BIN_EXE_v6scope"))
        .args(["collect", "--json", "--pcap"])
        .arg(captures().join("mix.pcap"))
        .arg("--prefixes")
        .arg(captures().join("prefixes.csv"))
        .args(["--push", &server.url("/"), "--token"])
        .arg(&token_file)
        .arg("--spool")
        .arg(work.path().join("spool"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let rows = "point,period,unit,ipv6_traffic,total_traffic\nmobile-lte,2026-01,gbps,70,100\n";
    assert_eq!(post(&server, Some(&reports), "text/csv", rows).0, 201);
    let truth: Value =
        serde_json::from_str(&std::fs::read_to_string(captures().join("mix.truth.json")).unwrap()).unwrap();
    let (v4, v6) = (
        truth["totals"]["ipv4_bytes"].as_f64().unwrap(),
        truth["totals"]["ipv6_bytes"].as_f64().unwrap(),
    );
    let indicators = get(&server, "/api/operators?from=2026-01&until=2026-01");
    for operator in ["CMCC", ""] {
        let m = month(&indicators, operator, "2026-01");
        assert!(close(m["mobile"]["share"].as_f64().unwrap(), 0.7), "{m}");
        assert!(
            close(m["mobile_flows"]["share"].as_f64().unwrap(), v6 / (v4 + v6)),
            "{m}"
        );
        assert_eq!(m["fixed_flows"]["share"], Value::Null);
    }
}
