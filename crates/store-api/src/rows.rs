//! The rows the store takes and gives back. Fields with a fixed set of
//! values are enums; each has the text form the backends store.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use v6scope_model::{DomainObservation, Family, Status, Target, Verdict};

/// A run as stored, with its target and result counts.
#[derive(Debug, Clone, PartialEq)]
pub struct RunInfo {
    pub id: i64,
    pub started_at: String,
    pub finished_at: Option<String>,
    pub source: String,
    pub profiles: Vec<String>,
    pub config: String,
    pub targets: i64,
    pub done: i64,
}

/// A run as listed, without counting its targets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRow {
    pub id: i64,
    pub started_at: String,
    pub finished_at: Option<String>,
    pub source: String,
    pub profiles: Vec<String>,
}

/// One target's results, written together.
pub struct TargetResult<'a> {
    pub idx: i64,
    pub observation: &'a DomainObservation,
    pub verdicts: &'a [Verdict],
}

/// Totals of one period and family.
#[derive(Debug, Clone, PartialEq)]
pub struct TrafficTotal {
    pub period: String,
    /// The group's value (empty without a group).
    pub group: String,
    pub family: Family,
    pub bytes: i64,
    pub packets: i64,
    pub records: i64,
}

/// Traffic counters of one interval and group, added to what is stored.
#[derive(Debug, Clone, PartialEq)]
pub struct TrafficRow {
    pub start: i64,
    pub seconds: i64,
    /// `udp://...`, `pcap:FILE` or `log:FILE`.
    pub source: String,
    pub exporter: String,
    pub interface: i64,
    pub asn: i64,
    pub organisation: String,
    pub region: String,
    pub family: Family,
    pub bytes: i64,
    pub packets: i64,
    pub records: i64,
    /// False for records whose sampling rate is unknown (not scaled).
    pub scaled: bool,
}

/// The period traffic totals are summed over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Period {
    Minute,
    Hour,
    Day,
    Month,
}

impl Period {
    /// `minute`, `hour`, `day` or `month`; anything else is a day.
    pub fn parse(text: &str) -> Period {
        match text {
            "minute" => Period::Minute,
            "hour" => Period::Hour,
            "month" => Period::Month,
            _ => Period::Day,
        }
    }
}

/// What traffic totals are grouped by, besides period and family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrafficGroup {
    Exporter,
    Interface,
    Asn,
    Organisation,
    Region,
    Source,
}

impl TrafficGroup {
    /// The group of a request's text; none for anything not in the list.
    pub fn parse(text: &str) -> Option<TrafficGroup> {
        Some(match text {
            "exporter" => TrafficGroup::Exporter,
            "interface" => TrafficGroup::Interface,
            "asn" => TrafficGroup::Asn,
            "organisation" => TrafficGroup::Organisation,
            "region" => TrafficGroup::Region,
            "source" => TrafficGroup::Source,
            _ => return None,
        })
    }
}

/// The family as backends store it: 4 or 6.
pub fn family_number(family: Family) -> i64 {
    match family {
        Family::Ipv4 => 4,
        Family::Ipv6 => 6,
    }
}

/// The family of a stored 4 or 6; anything else is a corrupt row.
pub fn family_from_number(number: i64) -> Result<Family, String> {
    match number {
        4 => Ok(Family::Ipv4),
        6 => Ok(Family::Ipv6),
        other => Err(format!("address family {other}")),
    }
}

/// Targets and passes of one slice of a run (all, a category, a region, a
/// provider ...), under one profile.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Slice {
    pub dimension: String,
    pub key: String,
    pub targets: i64,
    pub pass: i64,
    /// Mean score (0-100).
    pub score: f64,
}

/// A provider's part in one target, as attributed at the end of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProviderUseRow {
    pub idx: i64,
    pub provider: String,
    pub role: String,
    pub ipv6: bool,
    pub evidence: String,
}

/// A transition of a target between two runs of a campaign.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Change {
    pub run_id: i64,
    pub previous_run: i64,
    pub domain: String,
    pub profile: String,
    pub kind: ChangeKind,
    /// The check that changed, or `verdict` for the domain's verdict.
    pub check_id: String,
    pub from_status: Status,
    pub to_status: Status,
    pub text: String,
}

/// Changes of one kind and check over a set of runs, with the first few
/// domains.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChangeGroupRow {
    pub kind: ChangeKind,
    pub check_id: String,
    /// Transitions counted (a domain may change in several runs).
    pub changes: i64,
    /// Distinct domains.
    pub domains: i64,
    /// The text, from and to status of the first change (for the check's title).
    pub sample_text: String,
    pub sample_from: Status,
    pub sample_to: Status,
    /// Up to the requested number of distinct domains, first changed first.
    pub examples: Vec<String>,
}

/// One point of a target's timeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimelinePoint {
    pub run_id: i64,
    pub started_at: String,
    pub profile: String,
    pub status: Status,
    pub score: f64,
}

/// A target row of a run with its verdict under a profile (none when the
/// target has no verdict yet).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TargetRow {
    pub idx: i64,
    pub domain: String,
    pub category: Option<String>,
    pub organisation: Option<String>,
    pub region: Option<String>,
    pub status: Option<Status>,
    pub score: Option<f64>,
}

/// Filters of a run's target list; fields are compared for equality.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TargetFilter {
    pub category: Option<String>,
    pub region: Option<String>,
    pub organisation: Option<String>,
    pub status: Option<Status>,
}

impl TargetFilter {
    /// The run-summary slice (dimension, key) whose count is the number of
    /// targets this filter matches: the whole run, or the one category,
    /// region or organisation filtered on; none for other filters.
    pub fn summary_slice(&self) -> Option<(&'static str, String)> {
        let single = [
            ("category", &self.category),
            ("region", &self.region),
            ("organisation", &self.organisation),
        ];
        let set: Vec<_> = single.iter().filter(|(_, v)| v.is_some()).collect();
        match (set.as_slice(), &self.status) {
            ([], None) => Some(("all", String::new())),
            ([(dimension, Some(key))], None) => Some((*dimension, key.clone())),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Schedule {
    pub id: i64,
    pub campaign: String,
    pub cron: String,
    /// Extra `scan` arguments (profiles, crawl settings).
    pub args: Vec<String>,
    /// Unix seconds of the last time it fired.
    pub last_fired: Option<i64>,
}

/// Which way a change between two runs went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChangeKind {
    Regression,
    Improvement,
}

impl ChangeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeKind::Regression => "regression",
            ChangeKind::Improvement => "improvement",
        }
    }
}

impl std::str::FromStr for ChangeKind {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        match text {
            "regression" => Ok(ChangeKind::Regression),
            "improvement" => Ok(ChangeKind::Improvement),
            other => Err(format!("change kind '{other}'")),
        }
    }
}

/// Where a job is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobState {
    Queued,
    Running,
    Done,
    Failed,
}

impl JobState {
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Queued => "queued",
            JobState::Running => "running",
            JobState::Done => "done",
            JobState::Failed => "failed",
        }
    }

    /// Done or failed: nothing more will happen to the job.
    pub fn finished(self) -> bool {
        matches!(self, JobState::Done | JobState::Failed)
    }
}

impl std::str::FromStr for JobState {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        [JobState::Queued, JobState::Running, JobState::Done, JobState::Failed]
            .into_iter()
            .find(|s| s.as_str() == text)
            .ok_or_else(|| format!("job state '{text}'"))
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Job {
    pub id: i64,
    pub campaign: String,
    pub args: Vec<String>,
    /// `schedule N`, `api`, ...
    pub reason: String,
    pub state: JobState,
    pub run_id: Option<i64>,
    pub requested_at: String,
    pub finished_at: Option<String>,
    pub error: Option<String>,
}

/// A campaign as listed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CampaignRow {
    pub name: String,
    pub created_at: String,
    pub targets: i64,
}

/// Counts for the metrics endpoint that cost nothing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    pub runs: i64,
    pub runs_finished: i64,
    pub jobs_queued: i64,
    pub jobs_running: i64,
}

/// Per run: targets, observations stored and error verdicts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RunCounts {
    pub targets: i64,
    pub observations: i64,
    pub errors: i64,
}

/// A stored sketch with its day and organisation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SketchRow {
    pub day: String,
    pub organisation: String,
    pub sketch: Vec<u8>,
}

/// An agent: a token holder that evaluates targets from one vantage.
#[derive(Debug, Clone, PartialEq)]
pub struct AgentRow {
    pub id: i64,
    pub name: String,
    pub created_at: String,
    pub revoked: bool,
    /// What the agent declared when it last registered.
    pub vantage: Option<String>,
    pub labels: BTreeMap<String, String>,
    pub concurrency: i64,
    pub version: Option<String>,
    /// The self-test it reported (JSON of the vantage: families, resolver faults).
    pub selftest: Option<String>,
    /// Unix seconds of its last request.
    pub last_seen: Option<i64>,
    /// Results it delivered, and how many of them were probe errors.
    pub results: i64,
    pub errors: i64,
    /// Targets it holds under a live lease.
    pub leased: i64,
}

/// What an agent declares when it registers.
#[derive(Debug, Clone)]
pub struct AgentRegistration<'a> {
    pub vantage: &'a str,
    pub labels: &'a std::collections::BTreeMap<String, String>,
    pub concurrency: i64,
    pub version: &'a str,
    pub selftest: &'a str,
}

/// A target handed to an agent under a lease.
#[derive(Debug, Clone, PartialEq)]
pub struct Lease {
    pub run: i64,
    pub idx: i64,
    pub target: Target,
}

/// Each vantage's labels: those of its agent seen last.
pub fn vantage_labels(agents: &[AgentRow]) -> BTreeMap<String, BTreeMap<String, String>> {
    let mut seen: BTreeMap<String, (i64, &BTreeMap<String, String>)> = BTreeMap::new();
    for a in agents {
        if let Some(v) = &a.vantage {
            let at = a.last_seen.unwrap_or(0);
            if seen.get(v).is_none_or(|(s, _)| at >= *s) {
                seen.insert(v.clone(), (at, &a.labels));
            }
        }
    }
    seen.into_iter().map(|(v, (_, l))| (v, l.clone())).collect()
}

/// One vantage's result for one target, as delivered.
pub struct VantageResult<'a> {
    pub run: i64,
    pub idx: i64,
    pub observation: &'a DomainObservation,
    pub verdicts: &'a [Verdict],
}

/// What became of a delivered result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// Stored now.
    Stored,
    /// This vantage's result for the target was stored before (a resend).
    Duplicate,
    /// The agent holds no lease on the target (never given, or given to
    /// another agent after its lease ran out): refused.
    NotGiven,
}

/// A stored per-vantage result.
#[derive(Debug, Clone)]
pub struct VantageResultRow {
    pub vantage: String,
    pub agent: String,
    pub observation: DomainObservation,
    pub verdicts: Vec<Verdict>,
}

/// How many of a run's targets one vantage judged with one status.
#[derive(Debug, Clone, PartialEq)]
pub struct VantageTally {
    pub vantage: String,
    pub status: Status,
    pub targets: i64,
    /// Mean score of those targets.
    pub score: f64,
}

/// A target whose status under a profile is not the same from every vantage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VantageDifference {
    pub idx: i64,
    pub domain: String,
    /// Each vantage's status, by vantage name.
    pub statuses: Vec<(String, Status)>,
}

/// Where one vantage was sent for a name a CDN or cloud serves, or for a
/// cloud product's endpoint, and whether the web answered there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EdgeRow {
    pub idx: i64,
    pub vantage: String,
    pub provider: String,
    /// "cdn", "cloud" or "cloud_product".
    pub kind: String,
    /// The cloud product ("" for a name a CDN or cloud serves).
    pub product: String,
    pub name: String,
    /// The vantage's region and ISP labels when the result was combined.
    pub region: String,
    pub isp: String,
    /// The first usable address over each family.
    pub v4: Option<String>,
    pub v6: Option<String>,
    pub v4_ok: bool,
    pub v6_ok: bool,
}

/// How far one vantage has got in a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VantageProgress {
    pub vantage: String,
    pub done: i64,
    pub leased: i64,
}

/// A collector: a carrier's `v6scope collect --push`, holding a token.
#[derive(Debug, Clone, PartialEq)]
pub struct CollectorRow {
    pub id: i64,
    pub name: String,
    /// The carrier the collector's figures are attributed to.
    pub operator: String,
    /// Where its exporters sit, if said.
    pub point: Option<MeasurementPoint>,
    pub created_at: String,
    pub revoked: bool,
    /// When the last batch arrived (Unix seconds).
    pub last_push: Option<i64>,
    /// The end of the newest interval received (Unix seconds).
    pub last_interval_end: Option<i64>,
    pub batches: i64,
    pub rows: i64,
    /// Batches sent again after they had been stored (ignored).
    pub duplicates: i64,
    /// Intervals the collector dropped from a full spool, as it last reported.
    pub spool_dropped: i64,
}

/// A day's sketch in a batch.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchSketch {
    pub day: String,
    pub organisation: String,
    pub kind: String,
    pub sketch: Vec<u8>,
}

/// One closed batch of a collector: counters and sketches, never addresses.
/// `(stream, seq)` names it: a batch sent again is recognised and ignored.
#[derive(Debug, Clone, PartialEq)]
pub struct CollectorBatch<'a> {
    /// Random, made when the collector's spool was created: a new spool
    /// starts a new sequence without colliding with the old one.
    pub stream: &'a str,
    pub seq: i64,
    /// The intervals the batch covers (Unix seconds).
    pub first_start: i64,
    pub last_end: i64,
    pub traffic: &'a [TrafficRow],
    pub sketches: &'a [BatchSketch],
    pub spool_dropped: i64,
}

/// What became of a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchOutcome {
    Stored,
    /// Stored before: nothing was added.
    Duplicate,
}

/// A carrier's measurement point, as the national definitions name them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MeasurementPoint {
    /// 城域网出口: the fixed network's share is measured here.
    MetroEgress,
    /// LTE核心网.
    MobileLte,
    /// 5G核心网.
    Mobile5g,
    /// 骨干直联点.
    BackboneExchange,
    /// 国际出入口.
    InternationalGateway,
}

impl MeasurementPoint {
    pub const ALL: [MeasurementPoint; 5] = [
        MeasurementPoint::MetroEgress,
        MeasurementPoint::MobileLte,
        MeasurementPoint::Mobile5g,
        MeasurementPoint::BackboneExchange,
        MeasurementPoint::InternationalGateway,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            MeasurementPoint::MetroEgress => "metro-egress",
            MeasurementPoint::MobileLte => "mobile-lte",
            MeasurementPoint::Mobile5g => "mobile-5g",
            MeasurementPoint::BackboneExchange => "backbone-exchange",
            MeasurementPoint::InternationalGateway => "international-gateway",
        }
    }

    /// The Chinese name used in the national definitions.
    pub fn zh(self) -> &'static str {
        match self {
            MeasurementPoint::MetroEgress => "城域网出口",
            MeasurementPoint::MobileLte => "LTE核心网",
            MeasurementPoint::Mobile5g => "5G核心网",
            MeasurementPoint::BackboneExchange => "骨干直联点",
            MeasurementPoint::InternationalGateway => "国际出入口",
        }
    }

    /// LTE and 5G cores: the mobile network.
    pub fn is_mobile(self) -> bool {
        matches!(self, MeasurementPoint::MobileLte | MeasurementPoint::Mobile5g)
    }
}

impl std::str::FromStr for MeasurementPoint {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        MeasurementPoint::ALL
            .into_iter()
            .find(|p| p.as_str() == text)
            .ok_or_else(|| {
                let names: Vec<&str> = MeasurementPoint::ALL.iter().map(|p| p.as_str()).collect();
                format!(
                    "unknown measurement point '{}' (one of {})",
                    text.chars().take(40).collect::<String>(),
                    names.join(", ")
                )
            })
    }
}

/// How a carrier stated its traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TrafficUnit {
    /// Average gigabits per second over the period.
    Gbps,
    /// Bytes in the period.
    Bytes,
}

impl TrafficUnit {
    pub fn as_str(self) -> &'static str {
        match self {
            TrafficUnit::Gbps => "gbps",
            TrafficUnit::Bytes => "bytes",
        }
    }
}

impl std::str::FromStr for TrafficUnit {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        match text {
            "gbps" => Ok(TrafficUnit::Gbps),
            "bytes" => Ok(TrafficUnit::Bytes),
            other => Err(format!(
                "unit '{}': gbps or bytes",
                other.chars().take(20).collect::<String>()
            )),
        }
    }
}

/// One row a carrier reports: a measurement point's figures for a month.
/// Traffic is kept as stated and in bytes.
#[derive(Debug, Clone, PartialEq)]
pub struct OperatorFigure {
    pub point: MeasurementPoint,
    /// The carrier's own name for the site ("beijing"), or empty.
    pub site: String,
    /// "YYYY-MM".
    pub period: String,
    pub unit: TrafficUnit,
    pub ipv4_value: Option<f64>,
    pub ipv6_value: Option<f64>,
    pub ipv4_bytes: Option<f64>,
    pub ipv6_bytes: Option<f64>,
    pub active_connections: Option<i64>,
    pub ipv6_users: Option<i64>,
    pub users: Option<i64>,
    pub iot_connections: Option<i64>,
}

/// A stored version of a reported row.
#[derive(Debug, Clone, PartialEq)]
pub struct OperatorFigureRow {
    pub operator: String,
    pub version: i64,
    pub submission: i64,
    pub collector: String,
    pub submitted_at: String,
    pub figure: OperatorFigure,
}
