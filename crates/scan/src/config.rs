//! The run configuration: typed, versioned, and stored with the run.

use serde::{Deserialize, Serialize};
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::path::PathBuf;
use std::time::Duration;

/// Version of [`RunConfig`]'s stored form. Stores made before it was
/// versioned hold only the vantage settings and the crawl; they read as
/// version 0 (see [`RunConfig::from_stored`]).
pub const RUN_CONFIG_VERSION: u32 = 1;

/// What a run is: how its targets are probed and judged. Stored with the
/// run, so a resumed run and every agent of a fleet run probe the same way.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RunConfig {
    pub version: u32,
    /// Profiles the run is judged under (names, or files the operator gave).
    pub profiles: Vec<String>,
    pub probe: ProbeSettings,
    pub crawl: CrawlSettings,
    /// The probing machine's settings, kept for `--resume` of a local run.
    /// A fleet run leaves them empty: each agent uses its own.
    pub vantage: VantageSettings,
    /// Set when agents evaluate the run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fleet: Option<FleetSettings>,
}

impl Default for RunConfig {
    fn default() -> Self {
        RunConfig {
            version: RUN_CONFIG_VERSION,
            profiles: Vec::new(),
            probe: ProbeSettings::default(),
            crawl: CrawlSettings::default(),
            vantage: VantageSettings::default(),
            fleet: None,
        }
    }
}

/// Why a stored configuration could not be read.
#[derive(Debug, thiserror::Error)]
#[error("the run's stored configuration: {0}")]
pub struct ConfigError(String);

impl RunConfig {
    /// The stored form (JSON).
    pub fn to_stored(&self) -> String {
        serde_json::to_string(self).expect("a RunConfig always serializes")
    }

    /// Reads a stored configuration. Version 0 (before versioning) had the
    /// vantage settings at the top level and the crawl; its probe limits
    /// were not kept, so they are the defaults (`legacy` is then true and a
    /// resumed run takes them from the command line, as it did).
    pub fn from_stored(text: &str) -> Result<(RunConfig, bool), ConfigError> {
        let value: serde_json::Value = serde_json::from_str(text).map_err(|e| ConfigError(e.to_string()))?;
        match value.get("version").and_then(|v| v.as_u64()) {
            Some(v) if v > RUN_CONFIG_VERSION as u64 => Err(ConfigError(format!(
                "version {v} is newer than this program's {RUN_CONFIG_VERSION}: upgrade v6scope"
            ))),
            Some(_) => serde_json::from_value(value)
                .map(|c| (c, false))
                .map_err(|e| ConfigError(e.to_string())),
            None => {
                let vantage: VantageSettings =
                    serde_json::from_value(value.clone()).map_err(|e| ConfigError(e.to_string()))?;
                let crawl = serde_json::from_value(value["crawl"].clone()).unwrap_or_default();
                Ok((
                    RunConfig {
                        version: 0,
                        crawl,
                        vantage,
                        ..RunConfig::default()
                    },
                    true,
                ))
            }
        }
    }

    /// What an agent is sent: the run without the server's own vantage.
    pub fn for_agents(&self) -> RunConfig {
        RunConfig {
            vantage: VantageSettings::default(),
            ..self.clone()
        }
    }
}

/// Timeouts, caps and rates of the probes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ProbeSettings {
    pub dns_timeout_ms: u64,
    pub connect_timeout_ms: u64,
    pub fetch_timeout_secs: u64,
    pub smtp_timeout_secs: u64,
    pub body_cap: usize,
    pub helo_name: String,
    pub rate: Option<NonZeroU32>,
    pub dns_in_flight: usize,
    /// Deadline for one whole target.
    pub deadline_secs: u64,
}

impl Default for ProbeSettings {
    fn default() -> Self {
        ProbeSettings {
            dns_timeout_ms: 2000,
            connect_timeout_ms: 4000,
            fetch_timeout_secs: 10,
            smtp_timeout_secs: 10,
            body_cap: 2 * 1024 * 1024,
            helo_name: "v6scope.invalid".into(),
            rate: None,
            dns_in_flight: 512,
            deadline_secs: 60,
        }
    }
}

impl ProbeSettings {
    pub fn deadline(&self) -> Duration {
        Duration::from_secs(self.deadline_secs)
    }
}

/// The whole-site crawl (homepage, 二级 and 三级 links, sub-resources).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct CrawlSettings {
    pub crawl: bool,
    pub pages_per_level: usize,
    pub max_pages: usize,
    pub max_resources: usize,
    pub crawl_concurrency: usize,
    pub per_host: usize,
    pub crawl_delay: u64,
    pub crawl_deadline: u64,
    pub samples: usize,
    pub interval: f64,
    pub ignore_robots: bool,
}

impl Default for CrawlSettings {
    fn default() -> Self {
        CrawlSettings {
            crawl: false,
            pages_per_level: 300,
            max_pages: 1000,
            max_resources: 500,
            crawl_concurrency: 16,
            per_host: 8,
            crawl_delay: 0,
            crawl_deadline: 300,
            samples: 3,
            interval: 1.0,
            ignore_robots: false,
        }
    }
}

impl CrawlSettings {
    pub fn limits(&self) -> v6scope_probe::crawl::CrawlLimits {
        v6scope_probe::crawl::CrawlLimits {
            pages_per_level: self.pages_per_level,
            total_pages: self.max_pages,
            resources: self.max_resources,
            concurrency: self.crawl_concurrency,
            per_host: self.per_host,
            delay: Duration::from_millis(self.crawl_delay),
            deadline: Duration::from_secs(self.crawl_deadline),
            samples: self.samples,
            interval: Duration::from_secs_f64(self.interval.max(0.0)),
            respect_robots: !self.ignore_robots,
        }
    }
}

/// What belongs to the machine that probes, not to the run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct VantageSettings {
    /// Recursive resolvers (ADDR or ADDR:PORT); none: /etc/resolv.conf.
    pub resolvers: Vec<String>,
    /// Prefixes treated as global (a lab's 2001:db8::/32).
    pub allow_prefixes: Vec<ipnet::IpNet>,
    pub ca_files: Vec<PathBuf>,
    /// Addresses queried directly to prove the vantage's IPv4 and IPv6.
    pub vantage_probes: Vec<IpAddr>,
    /// Names that must resolve with A and AAAA (resolver self-test).
    pub canaries: Vec<String>,
    /// Resolve from the roots with the built-in iterative resolver.
    pub iterative: bool,
    pub root_hints: Option<PathBuf>,
}

impl VantageSettings {
    /// These settings, with what `self` leaves empty taken from `stored`
    /// (a resumed run probes the way it started unless told otherwise).
    pub fn or(mut self, stored: &VantageSettings) -> VantageSettings {
        if self.resolvers.is_empty() && !self.iterative {
            self.resolvers = stored.resolvers.clone();
            self.iterative = stored.iterative;
        }
        if self.allow_prefixes.is_empty() {
            self.allow_prefixes = stored.allow_prefixes.clone();
        }
        if self.ca_files.is_empty() {
            self.ca_files = stored.ca_files.clone();
        }
        if self.vantage_probes.is_empty() {
            self.vantage_probes = stored.vantage_probes.clone();
        }
        if self.canaries.is_empty() {
            self.canaries = stored.canaries.clone();
        }
        if self.root_hints.is_none() {
            self.root_hints = stored.root_hints.clone();
        }
        self
    }
}

/// A run evaluated by agents: from which vantages, and how their verdicts
/// combine into the run's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FleetSettings {
    /// The vantages that evaluate every target (fixed when the run starts).
    pub vantages: Vec<String>,
    #[serde(default)]
    pub rule: CombineRule,
}

/// How per-vantage verdicts combine into a target's verdict. Vantages whose
/// result is not_testable or error do not vote; with none left, the target
/// is not_testable.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CombineRule {
    /// Every vantage must pass (the worst verdict counts).
    #[default]
    All,
    /// More than half of the vantages decide.
    Majority,
    /// One passing vantage is enough (the best verdict counts).
    Any,
}

impl std::str::FromStr for CombineRule {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "all" => Ok(CombineRule::All),
            "majority" => Ok(CombineRule::Majority),
            "any" => Ok(CombineRule::Any),
            other => Err(format!("'{other}' is not a rule: all, majority or any")),
        }
    }
}

impl std::fmt::Display for CombineRule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            CombineRule::All => "all",
            CombineRule::Majority => "majority",
            CombineRule::Any => "any",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_config_survives_the_store_and_old_stores_still_read() {
        let mut config = RunConfig {
            profiles: vec!["internetnl".into()],
            ..RunConfig::default()
        };
        config.vantage.resolvers = vec!["192.0.2.53".into()];
        config.crawl.crawl = true;
        let (back, legacy) = RunConfig::from_stored(&config.to_stored()).unwrap();
        assert_eq!(back, config);
        assert!(!legacy);
        let old = r#"{"resolvers":["198.51.100.53:53"],"allow_prefixes":["2001:db8::/32"],"ca_files":[],"vantage_probes":[],"canaries":[],"crawl":{"crawl":true,"pages_per_level":5,"max_pages":10,"max_resources":5,"crawl_concurrency":2,"per_host":2,"crawl_delay":0,"crawl_deadline":30,"samples":1,"interval":0.0,"ignore_robots":false}}"#;
        let (back, legacy) = RunConfig::from_stored(old).unwrap();
        assert!(legacy);
        assert_eq!(back.vantage.resolvers, ["198.51.100.53:53"]);
        assert_eq!(back.crawl.pages_per_level, 5);
        assert!(RunConfig::from_stored(r#"{"version":99}"#).is_err());
        assert!(RunConfig::from_stored("not json").is_err());
    }
}
