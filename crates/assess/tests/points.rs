//! Judging recorded lab observations (fixtures captured from real servers in
//! the lab with `v6scope check --json`): internet.nl points and percentages,
//! NIST colours, and re-judging without probing.

use v6scope_assess::{Profile, assess};
use v6scope_model::{DomainObservation, Status, Vantage, Verdict};

fn fixture(name: &str) -> DomainObservation {
    let path = format!("{}/tests/fixtures/{name}.json", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

fn judge(name: &str, profile: &str) -> Verdict {
    assess(&fixture(name), &Profile::load(profile).unwrap())
}

fn points(v: &Verdict, id: &str) -> Option<f64> {
    v.check(id).unwrap().points
}

#[test]
fn good_domain_scores_full_marks() {
    let v = judge("dual-stack-good", "internetnl");
    assert_eq!(v.status, Status::Pass);
    assert_eq!(v.categories["web"], 100.0);
    assert_eq!(v.categories["mail"], 100.0);
}

#[test]
fn one_dead_aaaa_earns_partial_reach_points() {
    let v = judge("two-aaaa-one-dead", "internetnl");
    assert_eq!(v.check("web_reach").unwrap().status, Status::Fail);
    assert_eq!(points(&v, "web_reach"), Some(2.0));
    assert_eq!(points(&v, "web_ipv46"), Some(0.0));
    // int(100 / 22 * (10 + 2 + 0)) = 54
    assert_eq!(v.categories["web"], 54.0);
}

#[test]
fn ipv4_only_name_servers_count_when_fewer_than_two_have_ipv6() {
    let v = judge("one-ns-aaaa", "internetnl");
    assert_eq!(v.check("ns_aaaa").unwrap().status, Status::Fail);
    assert_eq!(v.check("ns_reach").unwrap().status, Status::Pass);
    assert_eq!(points(&v, "ns_reach"), Some(5.0));
    assert_eq!(v.status, Status::Fail);
}

#[test]
fn unreachable_ipv6_name_server_fails_reach() {
    let v = judge("ns-aaaa-unreachable", "internetnl");
    let check = v.check("ns_reach").unwrap();
    assert_eq!(check.status, Status::Fail);
    assert_eq!(check.points, Some(5.0));
    assert!(check.remedy.is_some());
    assert!(check.evidence.iter().any(|e| e.contains("no authoritative answer")));
}

#[test]
fn closed_port_25_on_ipv6_fails_mail() {
    let v = judge("mx-port25-closed-v6", "internetnl");
    assert_eq!(v.check("mx_aaaa").unwrap().status, Status::Pass);
    assert_eq!(v.check("mx_reach").unwrap().status, Status::Fail);
    assert_eq!(v.categories["mail"], 50.0);
    let nist = judge("mx-port25-closed-v6", "nist-usgv6");
    let mail = nist.check("mail_service").unwrap();
    assert_eq!(mail.counts.as_ref().unwrap().colour, "yellow");
    assert_eq!(nist.label, "progress");
}

#[test]
fn content_difference_is_a_notice_that_costs_the_two_points() {
    let v = judge("content-differs-v6", "internetnl");
    assert_eq!(v.check("web_ipv46").unwrap().status, Status::Warn);
    assert_eq!(v.status, Status::Warn);
    assert_eq!(v.categories["web"], 90.0);
}

#[test]
fn nist_counts_interfaces_per_service() {
    let v = judge("mx-good", "nist-usgv6");
    assert_eq!(v.status, Status::Pass);
    assert_eq!(v.label, "operational");
    let dns = v.check("dns_service").unwrap().counts.clone().unwrap();
    assert_eq!(
        (dns.ipv4_interfaces, dns.ipv6_assigned, dns.ipv6_operational),
        (2, 2, 2)
    );
    assert_eq!(
        v.check("mail_service").unwrap().counts.as_ref().unwrap().colour,
        "green"
    );
}

#[test]
fn missing_ipv6_at_the_vantage_is_never_blamed_on_the_target() {
    let mut o = fixture("ns-aaaa-unreachable");
    o.vantage = Vantage {
        ipv4: true,
        ipv6: false,
        detail: vec!["no IPv6 route".into()],
    };
    for profile in Profile::builtin() {
        let v = assess(&o, &profile);
        assert_eq!(v.status, Status::NotTestable, "{}", profile.name);
        assert!(v.checks.iter().all(|c| c.status != Status::Fail), "{}", profile.name);
    }
}

#[test]
fn a_profile_file_changes_thresholds_without_new_probing() {
    let text = include_str!("../../../profiles/internetnl.toml").replace("similarity = 0.9", "similarity = 0.1");
    let lenient = Profile::parse("lenient", &text).unwrap();
    let v = assess(&fixture("content-differs-v6"), &lenient);
    assert_eq!(v.check("web_ipv46").unwrap().status, Status::Pass);
}

#[test]
fn an_evaluation_cut_short_is_an_error_not_a_fail() {
    let mut o = fixture("ns-aaaa-unreachable");
    o.error = Some(v6scope_model::ProbeError::new(
        v6scope_model::ErrorKind::Timeout,
        "target deadline of 60 s reached",
    ));
    for profile in Profile::builtin() {
        let v = assess(&o, &profile);
        assert_eq!(v.status, Status::Error, "{}", profile.name);
        assert!(v.checks.iter().all(|c| c.status == Status::Error), "{}", profile.name);
    }
}

#[test]
fn a_vantage_without_ipv4_cannot_compare_families() {
    let mut o = fixture("dual-stack-good");
    o.vantage.ipv4 = false;
    let v = assess(&o, &Profile::load("internetnl").unwrap());
    assert_eq!(v.check("web_ipv46").unwrap().status, Status::NotTestable);
    assert_eq!(v.status, Status::NotTestable);
}
