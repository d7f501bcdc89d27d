//! Plans (`plans/*.toml`): national targets an indicator is judged against.
//! The shipped plans are embedded; users may load their own files.

use serde::{Deserialize, Serialize};

/// What a milestone is measured with (docs/METHODS.md §10).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Indicator {
    /// Distinct active IPv6 users (a count).
    ActiveUsers,
    /// Active IPv6 users ÷ internet users (a share).
    ActiveUserShare,
    /// IPv6 bytes ÷ all bytes on mobile networks.
    MobileTrafficShare,
    /// IPv6 bytes ÷ all bytes on fixed networks.
    FixedTrafficShare,
    /// Targets of a category that pass their profile ÷ targets of the category.
    SiteSupport,
    /// Listed in reports, not measured.
    Qualitative,
}

impl Indicator {
    /// Whether the indicator is a share in [0, 1].
    pub fn is_share(self) -> bool {
        !matches!(self, Indicator::ActiveUsers | Indicator::Qualitative)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Milestone {
    pub indicator: Indicator,
    /// Campaign category the indicator is computed over (site_support), as
    /// the plan names it. Campaign categories match it by [`category_key`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    /// The category key, when the label alone does not give it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category_key: Option<String>,
    /// At least this value (none for qualitative milestones).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<f64>,
    /// "YYYY-MM-DD", the last day of the milestone.
    pub deadline: String,
    pub zh: String,
    pub en: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Plan {
    pub name: String,
    pub title_zh: String,
    pub title_en: String,
    pub issued: String,
    pub source: String,
    #[serde(rename = "milestone")]
    pub milestones: Vec<Milestone>,
}

#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error("no built-in plan '{0}' (built in: cn-2017-action-plan, cn-2024-work-plan)")]
    Unknown(String),
    #[error("plan '{name}': one of {offered}")]
    NotOffered { name: String, offered: String },
    #[error("reading plan {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("plan {name}: {reason}")]
    Invalid { name: String, reason: String },
}

const BUILTIN: [(&str, &str); 2] = [
    (
        "cn-2017-action-plan",
        include_str!("../../../plans/cn-2017-action-plan.toml"),
    ),
    (
        "cn-2024-work-plan",
        include_str!("../../../plans/cn-2024-work-plan.toml"),
    ),
];

/// Names of the built-in plans.
pub fn builtin_names() -> impl Iterator<Item = &'static str> {
    BUILTIN.iter().map(|(name, _)| *name)
}

/// Category keys and the campaign labels that mean them (docs/METHODS.md
/// §10). Labels are compared after [`normalise_category`], so "CDN Top 5",
/// "cdn" and "内容分发网络（CDN）前10名" are all `cdn`.
pub const CATEGORY_KEYS: &[(&str, &[&str])] = &[
    (
        "commercial",
        &[
            "commercial",
            "商业网站",
            "商业网站及应用",
            "商业应用",
            "商业网站和应用",
            "互联网应用",
            "commercialsites",
            "commercialwebsites",
            "apps",
        ],
    ),
    (
        "gov-provincial",
        &[
            "省部级政府网站",
            "省部级政府",
            "省部级",
            "省级政府网站",
            "部委网站",
            "provincialgovernment",
            "ministries",
        ],
    ),
    (
        "gov-municipal",
        &[
            "市地级政府网站",
            "地市级政府网站",
            "市级政府网站",
            "市地级",
            "municipalgovernment",
        ],
    ),
    (
        "central-enterprise",
        &["中央企业", "央企", "centralenterprises", "centralenterprise", "soe"],
    ),
    (
        "central-media",
        &[
            "中央媒体",
            "中央和省部级媒体",
            "新闻媒体",
            "媒体",
            "centralmedia",
            "media",
            "news",
        ],
    ),
    (
        "dns",
        &["域名服务", "域名托管", "域名", "dns", "dnshosting", "nameservers"],
    ),
    ("cdn", &["cdn", "内容分发网络", "内容分发网络cdn", "内容分发"]),
    (
        "cloud",
        &["云服务", "云服务平台", "云", "云产品", "cloud", "cloudservices"],
    ),
];

/// A category label as compared: lower case, without spaces, punctuation
/// and rank qualifiers ("Top 50", "前10位").
pub fn normalise_category(label: &str) -> String {
    let lower = label.to_lowercase();
    let mut s: String = lower.chars().filter(|c| c.is_alphanumeric()).collect();
    for (prefix, suffixes) in [("top", &[][..]), ("前", &["位", "名", ""][..])] {
        while let Some(at) = s.find(prefix) {
            let digits_from = at + prefix.len();
            let digits = s[digits_from..].chars().take_while(char::is_ascii_digit).count();
            if digits == 0 {
                break;
            }
            let mut end = digits_from + digits;
            if let Some(sfx) = suffixes.iter().find(|x| !x.is_empty() && s[end..].starts_with(**x)) {
                end += sfx.len();
            }
            s.replace_range(at..end, "");
        }
    }
    s
}

/// The key a category label stands for: a key of [`CATEGORY_KEYS`] (or the
/// key itself), else the normalised label.
pub fn category_key(label: &str) -> String {
    let n = normalise_category(label);
    CATEGORY_KEYS
        .iter()
        .find(|(key, names)| normalise_category(key) == n || names.iter().any(|x| normalise_category(x) == n))
        .map(|(key, _)| key.to_string())
        .unwrap_or(n)
}

impl Milestone {
    /// The key campaign categories are matched by (site_support).
    pub fn key(&self) -> Option<String> {
        self.category_key
            .clone()
            .or_else(|| self.category.as_deref().map(category_key))
    }
}

/// The plans a server offers, by name: the shipped ones and the files its
/// operator configured at start. Requests choose from it by name only, so no
/// request can make the server read a file.
#[derive(Debug, Clone, Default)]
pub struct PlanSet {
    plans: std::collections::BTreeMap<String, Plan>,
}

impl PlanSet {
    /// The shipped plans plus `files` (each a TOML plan; its `name` is how
    /// requests choose it, and it may replace a shipped plan of that name).
    pub fn load(files: &[std::path::PathBuf]) -> Result<PlanSet, PlanError> {
        let mut plans = std::collections::BTreeMap::new();
        for (name, text) in BUILTIN {
            plans.insert(name.to_string(), Plan::parse(name, text)?);
        }
        for path in files {
            let shown = path.display().to_string();
            let text = std::fs::read_to_string(path).map_err(|source| PlanError::Read {
                path: shown.clone(),
                source,
            })?;
            let plan = Plan::parse(&shown, &text)?;
            plans.insert(plan.name.clone(), plan);
        }
        Ok(PlanSet { plans })
    }

    /// A plan by name; the error lists the names offered.
    pub fn get(&self, name: &str) -> Result<&Plan, PlanError> {
        self.plans.get(name).ok_or_else(|| PlanError::NotOffered {
            name: name.chars().take(64).collect(),
            offered: self.names().collect::<Vec<_>>().join(", "),
        })
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.plans.keys().map(String::as_str)
    }
}

impl Plan {
    /// A built-in plan by name, or a TOML file by path (the command line
    /// only: a server chooses from a [`PlanSet`]).
    pub fn load(name_or_path: &str) -> Result<Plan, PlanError> {
        if let Some((_, text)) = BUILTIN.iter().find(|(n, _)| *n == name_or_path) {
            return Plan::parse(name_or_path, text);
        }
        if name_or_path.ends_with(".toml") || name_or_path.contains('/') {
            let text = std::fs::read_to_string(name_or_path).map_err(|source| PlanError::Read {
                path: name_or_path.into(),
                source,
            })?;
            return Plan::parse(name_or_path, &text);
        }
        Err(PlanError::Unknown(name_or_path.into()))
    }

    pub fn parse(name: &str, text: &str) -> Result<Plan, PlanError> {
        let invalid = |reason: String| PlanError::Invalid {
            name: name.into(),
            reason,
        };
        let plan: Plan = toml::from_str(text).map_err(|e| invalid(e.to_string()))?;
        for (i, m) in plan.milestones.iter().enumerate() {
            let at = format!("milestone {} ({})", i + 1, m.en);
            parse_day(&m.deadline)
                .ok_or_else(|| invalid(format!("{at}: deadline '{}' is not YYYY-MM-DD", m.deadline)))?;
            match (m.indicator, m.target) {
                (Indicator::Qualitative, Some(_)) => {
                    return Err(invalid(format!("{at}: a qualitative milestone has no target")));
                }
                (Indicator::Qualitative, None) => {}
                (_, None) => return Err(invalid(format!("{at}: no target"))),
                (i, Some(t)) if i.is_share() && !(0.0..=1.0).contains(&t) => {
                    return Err(invalid(format!("{at}: a share's target must be in 0..=1, not {t}")));
                }
                (_, Some(t)) if t < 0.0 || !t.is_finite() => return Err(invalid(format!("{at}: target {t}"))),
                _ => {}
            }
            if (m.indicator == Indicator::SiteSupport) != m.category.is_some() {
                return Err(invalid(format!(
                    "{at}: site_support needs a category, and only it takes one"
                )));
            }
        }
        Ok(plan)
    }
}

pub use v6scope_model::days::parse as parse_day;

/// Where a measured indicator stands against a milestone.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Standing {
    /// The latest value reaches the target.
    Met,
    /// Not yet, but the trend of the last two measurements reaches the
    /// target by the deadline.
    OnTrack,
    /// Not reached, and the deadline has passed or the trend falls short.
    Behind,
    /// Not reached, before the deadline, with a single measurement: no trend.
    NoTrend,
}

/// The judgement of measurements against a milestone, with the gap
/// (target − latest; positive while short).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Judgement {
    pub standing: Standing,
    pub gap: f64,
    /// The value the trend reaches at the deadline, when there is a trend.
    pub projected: Option<f64>,
}

/// Judges `latest` (day, value) and optionally an `earlier` measurement
/// against `target` due on `deadline` (days since 1970-01-01).
pub fn judge(target: f64, deadline: i64, latest: (i64, f64), earlier: Option<(i64, f64)>) -> Judgement {
    let (day, value) = latest;
    let gap = target - value;
    if value >= target {
        return Judgement {
            standing: Standing::Met,
            gap,
            projected: None,
        };
    }
    let projected = earlier
        .filter(|(d, _)| *d < day)
        .map(|(d, v)| value + (value - v) / (day - d) as f64 * (deadline - day) as f64);
    let standing = if day > deadline {
        Standing::Behind
    } else {
        match projected {
            Some(p) if p >= target => Standing::OnTrack,
            Some(_) => Standing::Behind,
            None => Standing::NoTrend,
        }
    };
    Judgement {
        standing,
        gap,
        projected,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_plans_load_and_say_what_the_documents_say() {
        let plan = Plan::load("cn-2017-action-plan").unwrap();
        let users: Vec<(f64, &str)> = plan
            .milestones
            .iter()
            .filter(|m| m.indicator == Indicator::ActiveUsers)
            .map(|m| (m.target.unwrap(), m.deadline.as_str()))
            .collect();
        assert_eq!(users, [(2e8, "2018-12-31"), (5e8, "2020-12-31")]);
        let plan = Plan::load("cn-2024-work-plan").unwrap();
        let mobile = plan
            .milestones
            .iter()
            .find(|m| m.indicator == Indicator::MobileTrafficShare)
            .unwrap();
        assert_eq!(mobile.target, Some(0.65));
        assert_eq!(builtin_names().count(), 2);
        assert!(matches!(Plan::load("no-such-plan"), Err(PlanError::Unknown(_))));
    }

    #[test]
    fn sources_cite_the_documents_not_a_path() {
        for name in builtin_names() {
            let plan = Plan::load(name).unwrap();
            assert!(!plan.source.contains('/'), "{name}: {}", plan.source);
            assert!(plan.source.contains('《'), "{name}: {}", plan.source);
        }
    }

    #[test]
    fn campaign_categories_match_milestones_by_key() {
        for (label, key) in [
            ("CDN Top 5", "cdn"),
            ("cdn", "cdn"),
            ("CDN", "cdn"),
            ("内容分发网络（CDN）", "cdn"),
            ("云服务 Top 10", "cloud"),
            ("Cloud", "cloud"),
            ("商业网站及应用 Top 100", "commercial"),
            ("商业网站", "commercial"),
            ("国内用户量排名前50位的商业网站", "国内用户量排名的商业网站"),
            ("省部级政府网站", "gov-provincial"),
            ("central-media", "central-media"),
            ("中央媒体", "central-media"),
        ] {
            assert_eq!(category_key(label), key, "{label}");
        }
        // Every site-support milestone of the shipped plans has a known key.
        for name in builtin_names() {
            for m in Plan::load(name).unwrap().milestones {
                if m.indicator == Indicator::SiteSupport {
                    let key = m.key().unwrap();
                    assert!(
                        CATEGORY_KEYS.iter().any(|(k, _)| *k == key),
                        "{name}: {:?} -> {key}",
                        m.category
                    );
                }
            }
        }
    }

    #[test]
    fn bad_plans_are_refused_with_the_reason() {
        let base = "name = \"x\"\ntitle_zh = \"x\"\ntitle_en = \"x\"\nissued = \"2024-01-01\"\nsource = \"x\"\n";
        let bad = [
            (
                "[[milestone]]\nindicator = \"mobile_traffic_share\"\ntarget = 65.0\ndeadline = \"2024-12-31\"\nzh = \"\"\nen = \"m\"\n",
                "0..=1",
            ),
            (
                "[[milestone]]\nindicator = \"site_support\"\ntarget = 1.0\ndeadline = \"2024-12-31\"\nzh = \"\"\nen = \"s\"\n",
                "category",
            ),
            (
                "[[milestone]]\nindicator = \"active_users\"\ntarget = 1.0\ndeadline = \"2024-13-01\"\nzh = \"\"\nen = \"u\"\n",
                "YYYY-MM-DD",
            ),
            (
                "[[milestone]]\nindicator = \"active_users\"\ndeadline = \"2024-12-01\"\nzh = \"\"\nen = \"u\"\n",
                "no target",
            ),
            (
                "[[milestone]]\nindicator = \"speed\"\ntarget = 1.0\ndeadline = \"2024-12-01\"\nzh = \"\"\nen = \"u\"\n",
                "unknown variant",
            ),
        ];
        for (milestone, reason) in bad {
            let err = Plan::parse("x", &format!("{base}{milestone}")).unwrap_err().to_string();
            assert!(err.contains(reason), "{err}");
        }
    }

    #[test]
    fn judgement_is_met_on_track_behind_or_without_trend() {
        let deadline = parse_day("2024-12-31").unwrap();
        let june = parse_day("2024-06-30").unwrap();
        let january = parse_day("2024-01-01").unwrap();
        assert_eq!(judge(0.65, deadline, (june, 0.66), None).standing, Standing::Met);
        // 0.50 → 0.60 in half a year: 0.70 by the end of the year.
        let j = judge(0.65, deadline, (june, 0.60), Some((january, 0.50)));
        assert_eq!(j.standing, Standing::OnTrack);
        assert!((j.gap - 0.05).abs() < 1e-9);
        assert!(j.projected.unwrap() > 0.69);
        assert_eq!(
            judge(0.65, deadline, (june, 0.52), Some((january, 0.50))).standing,
            Standing::Behind
        );
        assert_eq!(judge(0.65, deadline, (june, 0.60), None).standing, Standing::NoTrend);
        let after = parse_day("2025-01-15").unwrap();
        assert_eq!(
            judge(0.65, deadline, (after, 0.64), Some((june, 0.5))).standing,
            Standing::Behind
        );
        assert_eq!(parse_day("1970-01-01"), Some(0));
    }
}
