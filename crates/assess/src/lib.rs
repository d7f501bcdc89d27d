//! Turns observations into verdicts under a profile.
//!
//! A profile (TOML, see `profiles/`) names the checks, their titles,
//! remedies, severities, points and thresholds; the check logic lives here,
//! keyed by check id. Judging never probes: a stored run can be re-judged.

mod checks;
mod cn;
pub mod products;
pub mod providers;

use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::Path;
use v6scope_model::{CheckResult, DomainObservation, ErrorKind, SCHEMA_VERSION, Status, Verdict};

/// Profiles shipped inside the binary.
pub const BUILTIN_PROFILES: [(&str, &str); 4] = [
    ("internetnl", include_str!("../../../profiles/internetnl.toml")),
    ("nist-usgv6", include_str!("../../../profiles/nist-usgv6.toml")),
    ("cn-website", include_str!("../../../profiles/cn-website.toml")),
    ("cn-finance", include_str!("../../../profiles/cn-finance.toml")),
];

#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    #[error("reading profile {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("parsing profile {name}: {source}")]
    Parse { name: String, source: toml::de::Error },
    #[error("profile {name}: unknown check '{check}' (known: {known})")]
    UnknownCheck { name: String, check: String, known: String },
    #[error("unknown profile '{0}': not a built-in profile ({1}) nor a readable file")]
    Unknown(String, String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Internetnl,
    Nist,
    /// The Chinese website method, from a site crawl.
    CnWebsite,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// A fail fails the domain.
    Mandatory,
    /// A fail is reported as a warning.
    Optional,
    /// Never more than info.
    Informational,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckDef {
    pub title: String,
    pub severity: Severity,
    #[serde(default)]
    pub remedy: Option<String>,
    /// Simplified Chinese title and remedy, shown on zh-CN pages and reports.
    #[serde(default)]
    pub title_zh: Option<String>,
    #[serde(default)]
    pub remedy_zh: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Thresholds {
    pub min_ns_with_aaaa: usize,
    pub similarity: f64,
    pub full_points: f64,
    pub partial_points: f64,
    pub less_points: f64,
    pub single_ns_cap: f64,
    /// cn-website: 二级 and 三级 link support rates required.
    pub level2_rate: f64,
    pub level3_rate: f64,
    /// cn-website: the weighted score a site needs to pass.
    pub pass_score: f64,
    /// r = mean_v6 / mean_v4 − 1 allowed, and the difference below which r is noise.
    pub performance_ratio: f64,
    pub performance_floor_ms: f64,
    /// Share of IPv6 homepage loads that must succeed.
    pub success_rate: f64,
    /// cn-finance: mean IPv6 − IPv4 page time allowed.
    pub latency_difference_ms: f64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            min_ns_with_aaaa: 2,
            similarity: 0.9,
            full_points: 10.0,
            partial_points: 2.0,
            less_points: 2.0,
            single_ns_cap: 5.0,
            level2_rate: 0.85,
            level3_rate: 0.80,
            pass_score: 90.0,
            performance_ratio: 0.2,
            performance_floor_ms: 10.0,
            success_rate: 0.95,
            latency_difference_ms: 75.0,
        }
    }
}

/// A regulator's typo (`severty`, `pass_scor`) is an error, never a
/// silently ignored key.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    pub name: String,
    pub title: String,
    pub kind: Kind,
    #[serde(default)]
    pub thresholds: Thresholds,
    #[serde(default)]
    pub categories: BTreeMap<String, Vec<String>>,
    pub checks: BTreeMap<String, CheckDef>,
    /// cn-website: check id → weight in the 0–100 score.
    #[serde(default)]
    pub weights: BTreeMap<String, f64>,
}

impl Profile {
    pub fn parse(name: &str, text: &str) -> Result<Profile, ProfileError> {
        let profile: Profile = toml::from_str(text).map_err(|source| ProfileError::Parse {
            name: name.to_string(),
            source,
        })?;
        let known = checks::known(profile.kind);
        for id in profile.checks.keys().chain(profile.categories.values().flatten()) {
            if !known.contains(&id.as_str()) {
                return Err(ProfileError::UnknownCheck {
                    name: profile.name.clone(),
                    check: id.clone(),
                    known: known.join(", "),
                });
            }
        }
        Ok(profile)
    }

    /// A built-in profile by name, or a TOML file by path.
    pub fn load(name_or_path: &str) -> Result<Profile, ProfileError> {
        if let Some((name, text)) = BUILTIN_PROFILES.iter().find(|(n, _)| *n == name_or_path) {
            return Profile::parse(name, text);
        }
        let path = Path::new(name_or_path);
        if path.exists() {
            let text = std::fs::read_to_string(path).map_err(|source| ProfileError::Read {
                path: name_or_path.to_string(),
                source,
            })?;
            return Profile::parse(name_or_path, &text);
        }
        Err(ProfileError::Unknown(
            name_or_path.to_string(),
            BUILTIN_PROFILES.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", "),
        ))
    }

    pub fn builtin() -> Vec<Profile> {
        BUILTIN_PROFILES
            .iter()
            .map(|(n, t)| Profile::parse(n, t).expect("built-in profiles parse"))
            .collect()
    }
}

/// A shipped profile's Chinese title for a check, for texts stored without
/// one (change records name the check by its English title).
pub fn builtin_title_zh(profile: &str, check: &str) -> Option<&'static str> {
    static BUILTIN: std::sync::LazyLock<Vec<Profile>> = std::sync::LazyLock::new(Profile::builtin);
    BUILTIN
        .iter()
        .find(|p| p.name == profile)?
        .checks
        .get(check)?
        .title_zh
        .as_deref()
}

/// What a check function returns before the profile's severity applies.
pub(crate) struct Outcome {
    pub status: Status,
    pub evidence: Vec<String>,
    /// Fraction of the check's points earned, where it carries points.
    pub points: Option<f64>,
    pub counts: Option<v6scope_model::ServiceCounts>,
}

impl Outcome {
    pub fn new(status: Status, evidence: Vec<String>) -> Self {
        Outcome {
            status,
            evidence,
            points: None,
            counts: None,
        }
    }
}

/// Judge one domain under a profile.
pub fn assess(observation: &DomainObservation, profile: &Profile) -> Verdict {
    let mut results = Vec::new();
    for (id, def) in &profile.checks {
        // An evaluation cut short (per-target deadline) proves nothing about
        // the target: every check is a transient error, never a fail.
        let outcome = if !observation.vantage.resolver_problems.is_empty() {
            // The resolver self-test failed: nothing it said can be held
            // against the target.
            let mut evidence = vec!["the vantage's resolver is faulty; the target is not blamed".to_string()];
            evidence.extend(observation.vantage.resolver_problems.iter().cloned());
            Outcome::new(Status::NotTestable, evidence)
        } else {
            match &observation.error {
                Some(e) if e.kind == ErrorKind::NotTestable => {
                    Outcome::new(Status::NotTestable, vec![format!("not testable: {}", e.message)])
                }
                Some(e) => Outcome::new(Status::Error, vec![format!("evaluation incomplete: {}", e.message)]),
                None => checks::run(id, observation, profile),
            }
        };
        let status = match (def.severity, outcome.status) {
            (Severity::Optional, Status::Fail) => Status::Warn,
            (Severity::Informational, Status::Fail | Status::Warn) => Status::Info,
            (_, s) => s,
        };
        results.push(CheckResult {
            id: id.clone(),
            title: def.title.clone(),
            status,
            points: outcome.points,
            max_points: outcome.points.map(|_| checks::max_points(id, profile)),
            evidence: outcome.evidence,
            remedy: matches!(status, Status::Fail | Status::Warn)
                .then(|| def.remedy.clone())
                .flatten(),
            title_zh: def.title_zh.clone(),
            remedy_zh: matches!(status, Status::Fail | Status::Warn)
                .then(|| def.remedy_zh.clone())
                .flatten(),
            counts: outcome.counts,
        });
    }
    // Checks in a stable, reader-friendly order: as the profile file groups them.
    let order = checks::known(profile.kind);
    results.sort_by_key(|c| order.iter().position(|k| *k == c.id).unwrap_or(usize::MAX));
    let (mut status, mut label, score, categories) = match profile.kind {
        Kind::Internetnl => checks::internetnl_rollup(&results, profile),
        Kind::Nist => checks::nist_rollup(&results),
        Kind::CnWebsite => checks::cn_rollup(&results, profile),
    };
    if !observation.vantage.resolver_problems.is_empty()
        || observation
            .error
            .as_ref()
            .is_some_and(|e| e.kind == ErrorKind::NotTestable)
    {
        status = Status::NotTestable;
        label = "not testable".into();
    } else if observation.error.is_some() {
        status = Status::Error;
        label = "error".into();
    }
    Verdict {
        schema_version: SCHEMA_VERSION,
        domain: observation.target.domain.clone(),
        profile: profile.name.clone(),
        status,
        label,
        score,
        categories,
        checks: results,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_profiles_parse() {
        let profiles = Profile::builtin();
        assert_eq!(profiles.len(), 4);
        assert!(profiles[0].checks.contains_key("web_ipv46"));
    }

    #[test]
    fn unknown_check_is_rejected() {
        let text = "name='x'\ntitle='x'\nkind='nist'\n[checks.bogus]\ntitle='b'\nseverity='mandatory'\n";
        assert!(matches!(
            Profile::parse("x", text),
            Err(ProfileError::UnknownCheck { .. })
        ));
    }

    #[test]
    fn unknown_fields_are_errors() {
        let base = "name='x'\ntitle='x'\nkind='nist'\n";
        for typo in [
            "severty_default='x'\n",
            "[thresholds]\npass_scor=80\n",
            "[checks.web_ipv6]\ntitle='b'\nseverity='mandatory'\nremedyy='r'\n",
        ] {
            let text = format!("{base}{typo}");
            assert!(
                matches!(Profile::parse("x", &text), Err(ProfileError::Parse { .. })),
                "{typo}"
            );
        }
    }

    /// The rule for every shipped profile: an optional check that fails
    /// zh-CN pages show every shipped check's title and remedy in Chinese.
    #[test]
    fn every_shipped_check_has_a_chinese_title_and_remedy() {
        for profile in Profile::builtin() {
            for (id, def) in &profile.checks {
                let zh = def
                    .title_zh
                    .as_deref()
                    .unwrap_or_else(|| panic!("{}: {id} has no title_zh", profile.name));
                assert!(zh.chars().any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c)), "{id}: {zh}");
                assert_eq!(def.remedy.is_some(), def.remedy_zh.is_some(), "{}: {id}", profile.name);
                assert_eq!(builtin_title_zh(&profile.name, id), Some(zh));
            }
        }
    }

    /// (a warning) never by itself turns a passing domain into a failing one.
    #[test]
    fn an_optional_check_never_fails_a_passing_domain() {
        for profile in Profile::builtin() {
            let all_pass: Vec<CheckResult> = profile
                .checks
                .iter()
                .map(|(id, def)| CheckResult {
                    id: id.clone(),
                    title: def.title.clone(),
                    status: Status::Pass,
                    points: Some(1.0),
                    max_points: None,
                    evidence: vec![],
                    remedy: None,
                    title_zh: None,
                    remedy_zh: None,
                    counts: Some(v6scope_model::ServiceCounts {
                        colour: "green".into(),
                        ..Default::default()
                    }),
                })
                .collect();
            let rollup = |r: &[CheckResult]| match profile.kind {
                Kind::Internetnl => checks::internetnl_rollup(r, &profile).0,
                Kind::Nist => checks::nist_rollup(r).0,
                Kind::CnWebsite => checks::cn_rollup(r, &profile).0,
            };
            assert_eq!(rollup(&all_pass), Status::Pass, "{}", profile.name);
            for (id, def) in &profile.checks {
                if def.severity == Severity::Mandatory {
                    continue;
                }
                let mut results = all_pass.clone();
                let c = results.iter_mut().find(|c| &c.id == id).unwrap();
                c.status = Status::Warn;
                c.points = Some(0.0);
                let status = rollup(&results);
                assert_ne!(
                    status,
                    Status::Fail,
                    "{}: optional {id} failed the domain",
                    profile.name
                );
            }
        }
    }

    #[test]
    fn unknown_profile_name_is_an_error() {
        assert!(matches!(
            Profile::load("no-such-profile"),
            Err(ProfileError::Unknown(..))
        ));
    }
}
