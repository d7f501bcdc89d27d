//! The monthly monitoring report: a campaign's figures for one month set
//! against a plan, as Markdown, one self-contained HTML page (inline SVG,
//! print CSS), CSV (long format), JSON or PDF (headless Chromium).
//!
//! Everything is read from the per-run summaries written when a run
//! finished (`history::summarise_run`), the changes table, the traffic
//! table and the user sketches; only the 20 worst verdict bodies are
//! decoded, so a 100 000-target campaign reports as fast as a small one.
//! docs/METHODS.md §10 says where each figure comes from.

use crate::plan::{Indicator, Plan, PlanError, Standing};
use crate::render::{Measurement, Row, escape, rows, share_chart};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use v6scope_flow::users::Sketch;
use v6scope_model::{Status, days};
use v6scope_store::{ChangeGroupRow, Slice, Store, StoreError};

/// Version of the JSON form of [`MonthlyReport`].
pub const SCHEMA_VERSION: u32 = 1;
/// Sites listed in the "worst sites" section.
const WORST: i64 = 20;
/// Domains named per group of changes.
const EXAMPLES: i64 = 5;
/// Months in the trend charts, the report's month included.
const TREND_MONTHS: i64 = 12;
/// Lines in a trend chart besides the overall one (largest categories).
const CHART_CATEGORIES: usize = 8;
/// Rows of the region and organisation tables in Markdown/HTML (CSV and
/// JSON carry all of them).
const TABLE_ROWS: usize = 30;
/// Runs of a campaign considered (a daily campaign for 270 years).
const MAX_RUNS: i64 = 100_000;
/// Differing targets read per fleet run for the month's differences.
const DIFFERENCES_PER_RUN: i64 = 500;
/// Differences listed in the report (JSON has as many).
const DIFFERENCES_SHOWN: usize = 50;
/// Labels the vantage table groups by first, in this order; others follow by name.
const VANTAGE_LABELS: [&str; 3] = ["isp", "region", "access"];
const PDF_TIMEOUT: Duration = Duration::from_secs(60);

/// What to report on (the server may take it from a query string).
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
pub struct ReportRequest {
    pub campaign: Option<String>,
    /// "YYYY-MM"; `None` = the month of the campaign's latest run.
    pub period: Option<String>,
    /// The plan whose milestones are judged.
    pub plan: Plan,
    /// Profile whose verdict "pass" counts as IPv6 support.
    pub profile: String,
    /// Chinese (zh-CN) labels instead of English.
    pub zh: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("no campaign '{0}' in the store")]
    UnknownCampaign(String),
    #[error("period '{0}': give a month as YYYY-MM (e.g. 2026-10)")]
    BadPeriod(String),
    #[error("campaign '{0}' has no finished run yet (run `v6scope scan --campaign {0}`)")]
    NoRuns(String),
    #[error("campaign '{campaign}' has no finished run in {period}; months with runs: {}", months.join(", "))]
    NoRunInPeriod {
        campaign: String,
        period: String,
        months: Vec<String>,
    },
    #[error(transparent)]
    Plan(#[from] PlanError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("user sketch of {day}: {reason}")]
    Sketch { day: String, reason: String },
    #[error("Chromium not found at {0}: install it (apt-get install chromium) or set V6SCOPE_CHROMIUM to its path")]
    NoChromium(String),
    #[error("PDF: {0}")]
    Pdf(String),
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
}

impl ReportError {
    /// Whether the error is in the request (exit code 2 in the CLI, 4xx in
    /// the server) rather than in the store or the machine.
    /// The campaign or the month asked for has nothing to report.
    pub fn is_not_found(&self) -> bool {
        matches!(
            self,
            ReportError::UnknownCampaign(_) | ReportError::NoRuns(_) | ReportError::NoRunInPeriod { .. }
        )
    }

    pub fn is_usage(&self) -> bool {
        matches!(
            self,
            ReportError::UnknownCampaign(_)
                | ReportError::BadPeriod(_)
                | ReportError::NoRuns(_)
                | ReportError::NoRunInPeriod { .. }
                | ReportError::Plan(_)
        )
    }
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> ReportError {
    let what = what.into();
    move |source| ReportError::Io { what, source }
}

/// A run the report draws on.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunRef {
    pub id: i64,
    pub started_at: String,
    pub targets: i64,
}

/// Passing targets of a slice.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Rate {
    pub targets: i64,
    pub pass: i64,
    /// pass ÷ targets.
    pub rate: f64,
    /// Mean score (0–100).
    pub score: f64,
}

impl Rate {
    fn of(s: &Slice) -> Rate {
        Rate {
            targets: s.targets,
            pass: s.pass,
            rate: ratio(s.pass, s.targets),
            score: s.score,
        }
    }
}

fn ratio(a: i64, b: i64) -> f64 {
    if b > 0 { a as f64 / b as f64 } else { 0.0 }
}

/// IPv6 share of the month's collected bytes.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TrafficShare {
    pub ipv6_bytes: i64,
    pub all_bytes: i64,
    pub share: f64,
}

/// One month of the trend.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TrendMonth {
    /// "YYYY-MM".
    pub month: String,
    /// The campaign's last finished run started in the month.
    pub run: Option<RunRef>,
    pub all: Option<Rate>,
    pub categories: BTreeMap<String, Rate>,
    pub traffic: Option<TrafficShare>,
}

/// A row of the category, region or organisation table.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TableRow {
    /// The category, region or organisation ("" when the target has none).
    pub key: String,
    pub targets: i64,
    pub pass: i64,
    pub rate: f64,
    pub score: f64,
    /// The same slice's rate in the previous run, and the change in
    /// percentage points.
    pub previous_rate: Option<f64>,
    pub change_pp: Option<f64>,
}

/// A provider in one role (dns, web, mail).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProviderRow {
    pub role: String,
    pub provider: String,
    /// Targets whose part in this role this provider serves.
    pub targets: i64,
    /// Of those, targets where that part has no working IPv6.
    pub ipv4_only: i64,
    pub pass: i64,
    pub rate: f64,
    pub score: f64,
    pub change_pp: Option<f64>,
    /// "Provider X: IPv4-only name servers for N of M domains".
    pub text: String,
}

/// A vantage's pass rate in the period's run, or that of the vantages
/// sharing a label value (isp=B, region=north, access=mobile).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VantageRow {
    /// "vantage", or the label (isp, region, access, …).
    pub dimension: String,
    /// The vantage's name, or the label's value.
    pub key: String,
    pub vantages: Vec<String>,
    /// Target judgements it could make (targets × vantages; not_testable
    /// and error are left out), and how many of them pass.
    pub targets: i64,
    pub pass: i64,
    pub rate: f64,
    pub score: f64,
    /// Judgements it could not make: faults of the vantage or of the
    /// measurement, never counted against targets.
    pub not_testable: i64,
}

/// A target judged differently from different vantages in the month.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VantageDifferenceRow {
    /// The newest fleet run of the month where it differed.
    pub run: i64,
    pub domain: String,
    /// Each vantage's status in that run.
    pub statuses: BTreeMap<String, Status>,
    /// Check by check, what differs ("web_ipv6: fail from isp-b (…); pass from isp-a, isp-c").
    pub differences: Vec<String>,
    /// In how many of the month's fleet runs it differed.
    pub runs: i64,
}

/// The month's cross-vantage differences.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct VantageDifferences {
    /// The month's runs evaluated from several vantages.
    pub runs: Vec<i64>,
    /// Distinct targets that differed (counted over the first
    /// `DIFFERENCES_PER_RUN` differing targets of each run).
    pub targets: i64,
    /// The first of them, newest run first.
    pub shown: Vec<VantageDifferenceRow>,
}

/// Changes of one check in the month.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChangeGroup {
    /// The check, or `verdict` for the domain's overall verdict.
    pub check_id: String,
    pub title: String,
    /// Transitions (a domain may change in several runs of the month).
    pub changes: i64,
    pub domains: i64,
    pub examples: Vec<String>,
}

/// Regressions and improvements of the month's runs against the runs
/// before them.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ChangeSummary {
    pub runs: Vec<i64>,
    /// Transitions of all checks and verdicts.
    pub regressions: i64,
    pub improvements: i64,
    /// Domains whose overall verdict left or reached "pass".
    pub verdict_regressions: i64,
    pub verdict_improvements: i64,
    pub regression_groups: Vec<ChangeGroup>,
    pub improvement_groups: Vec<ChangeGroup>,
}

/// A failing check of a worst site, with what to do.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Fix {
    pub check_id: String,
    pub title: String,
    pub status: String,
    pub remedy: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WorstSite {
    pub domain: String,
    pub category: Option<String>,
    pub organisation: Option<String>,
    pub region: Option<String>,
    pub status: String,
    pub score: f64,
    pub fixes: Vec<Fix>,
}

/// Active IPv6 users over the 30 days up to the last collected day.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UsersFigure {
    pub first_day: String,
    pub last_day: String,
    pub subscribers: u64,
}

/// The client beacon's sketch kinds, by class (written by `serve`'s beacon,
/// read here): one sketch per day and group (`all`, `org:NAME`, `region:NAME`).
pub const BEACON_KINDS: [(&str, &str); 6] = [
    ("tested", "beacon-tested"),
    ("capable", "beacon-capable"),
    ("preferred", "beacon-preferred"),
    ("broken", "beacon-broken"),
    ("mtu_trouble", "beacon-mtu_trouble"),
    ("resolver_without_ipv6", "beacon-resolver_without_ipv6"),
];

/// The client beacon over the period: distinct clients per group and class.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClientsFigure {
    pub first_day: String,
    pub last_day: String,
    /// `all` first, then organisations and regions by name.
    pub groups: Vec<ClientGroup>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClientGroup {
    pub group: String,
    pub tested: u64,
    pub capable: u64,
    pub preferred: u64,
    pub broken: u64,
    pub mtu_trouble: u64,
    pub resolver_without_ipv6: u64,
    pub capable_share: Option<f64>,
    pub preferred_share: Option<f64>,
}

/// Distinct clients per group and class, from sketches keyed by (group,
/// class): `all` first, then the other groups by name.
pub fn client_groups(merged: &BTreeMap<(String, &str), Sketch>) -> Vec<ClientGroup> {
    let mut names: Vec<String> = merged.keys().map(|(g, _)| g.clone()).collect();
    names.dedup();
    names.sort_by_key(|g| (g != "all", g.clone()));
    let count = |g: &str, class: &str| merged.get(&(g.to_string(), class)).map_or(0, Sketch::count);
    names
        .into_iter()
        .map(|g| {
            let tested = count(&g, "tested");
            let share = |n: u64| (tested > 0).then(|| n as f64 / tested as f64);
            ClientGroup {
                capable: count(&g, "capable"),
                preferred: count(&g, "preferred"),
                broken: count(&g, "broken"),
                mtu_trouble: count(&g, "mtu_trouble"),
                resolver_without_ipv6: count(&g, "resolver_without_ipv6"),
                capable_share: share(count(&g, "capable")),
                preferred_share: share(count(&g, "preferred")),
                tested,
                group: g,
            }
        })
        .collect()
}

/// Merges the beacon's day sketches of [first_day, last_day] per group: a
/// client tested on several days counts once.
pub fn clients(store: &dyn Store, first_day: &str, last_day: &str) -> Result<Option<ClientsFigure>, ReportError> {
    let mut merged: BTreeMap<(String, &str), Sketch> = BTreeMap::new();
    for (class, kind) in BEACON_KINDS {
        for row in store.sketches(first_day, last_day, kind)? {
            let sketch = Sketch::from_bytes(&row.sketch).map_err(|e| ReportError::Sketch {
                day: row.day.clone(),
                reason: e.to_string(),
            })?;
            merged
                .entry((row.organisation, class))
                .or_default()
                .merge(&sketch)
                .map_err(|e| ReportError::Sketch {
                    day: row.day,
                    reason: e.to_string(),
                })?;
        }
    }
    if merged.is_empty() {
        return Ok(None);
    }
    let groups = client_groups(&merged);
    Ok(Some(ClientsFigure {
        first_day: first_day.to_string(),
        last_day: last_day.to_string(),
        groups,
    }))
}

/// How an indicator is defined, over what population, of when, and from
/// which table.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Method {
    pub indicator: String,
    pub definition: String,
    pub population: String,
    pub date: String,
    pub source: String,
}

/// Every figure of the monthly report.
#[derive(Debug, Clone, Serialize)]
pub struct MonthlyReport {
    pub schema_version: u32,
    /// "zh-CN" or "en".
    pub lang: String,
    pub title: String,
    pub plan: String,
    pub plan_title: String,
    pub plan_source: String,
    pub campaign: Option<String>,
    /// "YYYY-MM".
    pub period: String,
    pub profile: String,
    /// "YYYY-MM-DD" (UTC).
    pub generated_on: String,
    /// The campaign's last finished run started in the period.
    pub run: Option<RunRef>,
    /// The finished run before it (changes and trends are against it).
    pub previous_run: Option<RunRef>,
    pub runs_in_period: Vec<RunRef>,
    /// The whole run's pass rate, with the change against the previous run.
    pub overall: Option<TableRow>,
    /// The plan's milestones, measured and judged.
    pub milestones: Vec<Row>,
    pub active_users: Option<UsersFigure>,
    /// The client beacon's month: clients IPv6 capable and preferred.
    pub clients: Option<ClientsFigure>,
    /// Oldest month first; the period is last.
    pub trend: Vec<TrendMonth>,
    pub categories: Vec<TableRow>,
    pub regions: Vec<TableRow>,
    pub organisations: Vec<TableRow>,
    pub providers: Vec<ProviderRow>,
    /// When the period's run was evaluated from several vantages: per
    /// vantage, then per label value (isp, region, access).
    pub vantages: Vec<VantageRow>,
    pub vantage_differences: VantageDifferences,
    /// CDN and cloud providers, and cloud products, by MIIT's CDN method
    /// (from the period's run when it was evaluated from agents).
    pub edges: crate::edges::EdgeIndicators,
    pub edge_milestones: Vec<crate::edges::EdgeMilestone>,
    pub changes: ChangeSummary,
    pub worst: Vec<WorstSite>,
    pub methods: Vec<Method>,
    /// What is missing or approximate.
    pub notes: Vec<String>,
}

impl MonthlyReport {
    fn zh(&self) -> bool {
        self.lang == "zh-CN"
    }
}

/// English or Chinese.
fn tr(zh: bool, en: &'static str, zh_text: &'static str) -> &'static str {
    if zh { zh_text } else { en }
}

// Months as y * 12 + (m - 1), so that arithmetic crosses years.
pub(crate) fn parse_month(s: &str) -> Option<i64> {
    let (y, m) = s.split_once('-')?;
    if y.len() != 4 || m.len() != 2 || !(y.bytes().chain(m.bytes()).all(|b| b.is_ascii_digit())) {
        return None;
    }
    let (y, m): (i64, i64) = (y.parse().ok()?, m.parse().ok()?);
    ((1..=12).contains(&m) && (1900..=9999).contains(&y)).then_some(y * 12 + m - 1)
}

pub(crate) fn month_label(n: i64) -> String {
    format!("{:04}-{:02}", n.div_euclid(12), n.rem_euclid(12) + 1)
}

pub(crate) fn month_first_day(n: i64) -> i64 {
    days::from_civil(n.div_euclid(12), n.rem_euclid(12) + 1, 1)
}

pub(crate) fn today() -> i64 {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    (secs / 86_400) as i64
}

/// A run's slices under a profile: the stored summary, or — for a run that
/// finished before summaries existed — the same figures computed from its
/// verdicts (no providers), which reads every target once.
fn slices(store: &dyn Store, run: i64, profile: &str, dimensions: &[&str]) -> Result<(Vec<Slice>, bool), StoreError> {
    let mut out = Vec::new();
    for d in dimensions {
        out.extend(store.summary(run, profile, Some(d))?);
    }
    if !out.is_empty() {
        return Ok((out, true));
    }
    let mut tallies: BTreeMap<(String, String), (i64, i64, f64)> = BTreeMap::new();
    store.for_each_target_verdict(run, profile, &mut |t| {
        let pass = i64::from(t.status == Some(Status::Pass));
        let score = t.score.unwrap_or(0.0);
        for (d, k) in [
            ("all", None),
            ("category", t.category.as_deref()),
            ("region", t.region.as_deref()),
            ("organisation", t.organisation.as_deref()),
        ] {
            if dimensions.contains(&d) {
                let e = tallies.entry((d.into(), k.unwrap_or("").into())).or_default();
                e.0 += 1;
                e.1 += pass;
                e.2 += score;
            }
        }
    })?;
    let out = tallies
        .into_iter()
        .map(|((dimension, key), (targets, pass, score))| Slice {
            dimension,
            key,
            targets,
            pass,
            score: if targets > 0 { score / targets as f64 } else { 0.0 },
        })
        .collect();
    Ok((out, false))
}

fn slice<'a>(slices: &'a [Slice], dimension: &str, key: &str) -> Option<&'a Slice> {
    slices.iter().find(|s| s.dimension == dimension && s.key == key)
}

fn table(now: &[Slice], before: Option<&[Slice]>, dimension: &str) -> Vec<TableRow> {
    let mut out: Vec<TableRow> = now
        .iter()
        .filter(|s| s.dimension == dimension)
        .map(|s| {
            let previous_rate = before
                .and_then(|b| slice(b, dimension, &s.key))
                .map(|p| ratio(p.pass, p.targets));
            let rate = ratio(s.pass, s.targets);
            TableRow {
                key: s.key.clone(),
                targets: s.targets,
                pass: s.pass,
                rate,
                score: s.score,
                previous_rate,
                change_pp: previous_rate.map(|p| (rate - p) * 100.0),
            }
        })
        .collect();
    out.sort_by(|a, b| b.targets.cmp(&a.targets).then_with(|| a.key.cmp(&b.key)));
    out
}

/// CDN and cloud providers and cloud products by MIIT's CDN method.
fn edge_blocks(r: &MonthlyReport, b: &mut Vec<Block>) {
    let zh = r.zh();
    let e = &r.edges;
    if e.providers.is_empty() && e.products.is_empty() {
        return;
    }
    let yes_no = |v: bool| tr(zh, if v { "yes" } else { "no" }, if v { "是" } else { "否" }).to_string();
    let opt_pct = |v: Option<f64>| v.map(pct).unwrap_or_else(|| "-".into());
    b.push(Block::Heading(
        3,
        tr(
            zh,
            "CDN and cloud: nodes and coverage (MIIT method)",
            "CDN 与云：节点与覆盖（工信部方法）",
        )
        .into(),
    ));
    b.push(Block::Para(
        tr(
            zh,
            "A node is an edge prefix (IPv4 /24) a vantage was sent to; it is IPv6-capable when a vantage sent there also reached it over IPv6. Coverage counts cells (region × ISP) where the provider answered. Supports IPv6: IPv6 nodes more than 85 % of nodes and IPv6 coverage at least 85 % of IPv4 coverage.",
            "节点为观测点被调度到的边缘网段（IPv4 /24）；若被调度到该节点的观测点也能通过IPv6访问，则该节点支持IPv6。覆盖按单元（地区×运营商）统计。支持IPv6：IPv6节点占比超过85%，且IPv6覆盖能力不低于IPv4的85%。",
        )
        .into(),
    ));
    if !r.edge_milestones.is_empty() {
        b.push(Block::Table(
            [
                tr(zh, "Milestone", "目标"),
                tr(zh, "Target", "目标值"),
                tr(zh, "Deadline", "期限"),
                tr(zh, "Supporting", "支持数"),
                tr(zh, "Measured", "测量数"),
                tr(zh, "Value", "实测值"),
                tr(zh, "Standing", "状态"),
            ]
            .map(String::from)
            .to_vec(),
            r.edge_milestones
                .iter()
                .map(|m| {
                    vec![
                        m.text.clone(),
                        pct(m.target),
                        m.deadline.clone(),
                        m.supporting.to_string(),
                        m.measured.to_string(),
                        pct(m.value),
                        m.judgement
                            .as_ref()
                            .map(|j| standing_label(j.standing, zh).to_string())
                            .unwrap_or_else(|| "-".into()),
                    ]
                })
                .collect(),
        ));
    }
    if !e.providers.is_empty() {
        b.push(Block::Table(
            [
                tr(zh, "Provider", "服务商"),
                tr(zh, "Kind", "类型"),
                tr(zh, "Nodes", "节点数"),
                tr(zh, "IPv6 nodes", "IPv6节点"),
                tr(zh, "Node share", "节点占比"),
                tr(zh, "Cells IPv4", "IPv4覆盖"),
                tr(zh, "Cells IPv6", "IPv6覆盖"),
                tr(zh, "Coverage ratio", "覆盖能力比"),
                tr(zh, "Supports IPv6", "支持IPv6"),
            ]
            .map(String::from)
            .to_vec(),
            e.providers
                .iter()
                .map(|p| {
                    vec![
                        p.provider.clone(),
                        p.kind.clone(),
                        p.nodes.to_string(),
                        p.ipv6_nodes.to_string(),
                        pct(p.node_share),
                        p.v4_cells.to_string(),
                        p.v6_cells.to_string(),
                        opt_pct(p.coverage_ratio),
                        yes_no(p.supports_ipv6),
                    ]
                })
                .collect(),
        ));
        let gaps: Vec<String> = e
            .providers
            .iter()
            .flat_map(|p| {
                let nodes = p.ipv4_only_nodes.iter().map(move |n| {
                    if zh {
                        format!("{}：节点 {n} 不支持IPv6", p.provider)
                    } else {
                        format!("{}: node {n} does not work over IPv6", p.provider)
                    }
                });
                let cells = p.cells_without_ipv6.iter().map(move |c| {
                    if zh {
                        format!("{}：{c} 无IPv6覆盖", p.provider)
                    } else {
                        format!("{}: no IPv6 coverage in {c}", p.provider)
                    }
                });
                nodes.chain(cells)
            })
            .take(TABLE_ROWS)
            .collect();
        if !gaps.is_empty() {
            b.push(Block::List(gaps));
        }
    }
    if !e.products.is_empty() {
        b.push(Block::Table(
            [
                tr(zh, "Cloud provider", "云服务商"),
                tr(zh, "Product", "云产品"),
                tr(zh, "Endpoints", "接入点"),
                tr(zh, "Cells IPv4", "IPv4覆盖"),
                tr(zh, "Cells IPv6", "IPv6覆盖"),
                tr(zh, "Coverage ratio", "覆盖能力比"),
                tr(zh, "Supports IPv6", "支持IPv6"),
            ]
            .map(String::from)
            .to_vec(),
            e.products
                .iter()
                .map(|p| {
                    vec![
                        p.provider.clone(),
                        p.product.clone(),
                        p.endpoints.to_string(),
                        p.v4_cells.to_string(),
                        p.v6_cells.to_string(),
                        opt_pct(p.coverage_ratio),
                        yes_no(p.supports_ipv6),
                    ]
                })
                .collect(),
        ));
    }
}

fn vantage_dimension(dimension: &str, zh: bool) -> String {
    match dimension {
        "vantage" => tr(zh, "vantage", "观测点").into(),
        "isp" => tr(zh, "ISP", "运营商").into(),
        "region" => tr(zh, "region", "地区").into(),
        "access" => tr(zh, "access", "接入方式").into(),
        other => other.into(),
    }
}

fn role_label(role: &str, zh: bool) -> String {
    match role {
        "dns" => tr(zh, "name servers", "域名服务器").into(),
        "web" => tr(zh, "web servers", "网站服务器").into(),
        "mail" => tr(zh, "mail servers", "邮件服务器").into(),
        other => other.into(),
    }
}

fn providers(now: &[Slice], before: Option<&[Slice]>, zh: bool) -> Vec<ProviderRow> {
    let mut out: Vec<ProviderRow> = now
        .iter()
        .filter_map(|s| Some((s.dimension.strip_prefix("provider:")?, s)))
        .map(|(role, s)| {
            let ipv4_only = slice(now, &format!("provider_v4only:{role}"), &s.key).map_or(0, |v| v.targets);
            let rate = ratio(s.pass, s.targets);
            let change_pp = before
                .and_then(|b| slice(b, &s.dimension, &s.key))
                .map(|p| (rate - ratio(p.pass, p.targets)) * 100.0);
            let what = role_label(role, zh);
            let text = if zh {
                format!(
                    "服务商 {}：{} 个域名中有 {ipv4_only} 个的{what}仅支持 IPv4",
                    s.key, s.targets
                )
            } else {
                format!(
                    "Provider {}: IPv4-only {what} for {ipv4_only} of {} domains",
                    s.key, s.targets
                )
            };
            ProviderRow {
                role: role.into(),
                provider: s.key.clone(),
                targets: s.targets,
                ipv4_only,
                pass: s.pass,
                rate,
                score: s.score,
                change_pp,
                text,
            }
        })
        .collect();
    out.sort_by(|a, b| {
        b.ipv4_only
            .cmp(&a.ipv4_only)
            .then(b.targets.cmp(&a.targets))
            .then_with(|| (&a.role, &a.provider).cmp(&(&b.role, &b.provider)))
    });
    out
}

fn change_group(g: &ChangeGroupRow, zh: bool) -> ChangeGroup {
    // history::compare writes "<title>: <from> → <to>[: evidence]".
    let title = if g.check_id == "verdict" {
        tr(zh, "Overall verdict", "总体判定").to_string()
    } else {
        let marker = format!(": {} → ", g.sample_from);
        match g.sample_text.find(&marker) {
            Some(i) => g.sample_text[..i].to_string(),
            None => g.check_id.clone(),
        }
    };
    ChangeGroup {
        check_id: g.check_id.clone(),
        title,
        changes: g.changes,
        domains: g.domains,
        examples: g.examples.clone(),
    }
}

fn fixes(checks: &[v6scope_model::CheckResult], zh: bool) -> Vec<Fix> {
    let rank = |s: Status| match s {
        Status::Fail => Some(0),
        Status::Error => Some(1),
        Status::Warn => Some(2),
        _ => None,
    };
    let mut out: Vec<(i32, Fix)> = checks
        .iter()
        .filter_map(|c| {
            Some((
                rank(c.status)?,
                Fix {
                    check_id: c.id.clone(),
                    title: c.title_in(zh).to_string(),
                    status: c.status.as_str().into(),
                    remedy: c.remedy_in(zh).map(str::to_string),
                },
            ))
        })
        .collect();
    out.sort_by_key(|(r, _)| *r);
    out.into_iter().map(|(_, f)| f).collect()
}

/// A kind's sketches over [first, last], unioned per organisation by the
/// database when it can (PostgreSQL's `hll`), else day by day as stored;
/// merging the rows gives the same sketch either way.
pub fn sketches_per_organisation(
    store: &dyn Store,
    first: &str,
    last: &str,
    kind: &str,
) -> Result<Vec<v6scope_store::SketchRow>, ReportError> {
    Ok(match store.union_sketches(first, last, kind)? {
        Some(rows) => rows,
        None => store.sketches(first, last, kind)?,
    })
}

/// Active users: distinct subscribers over the 30 days up to the latest
/// collected day not after `until`, all organisations merged.
pub fn active_users(store: &dyn Store, until: i64) -> Result<Option<UsersFigure>, ReportError> {
    let Some(last) = store.latest_sketch_day("subscribers", &days::format(until))? else {
        return Ok(None);
    };
    let end = days::parse(&last).unwrap_or(until);
    let first = days::format(end - 29);
    let mut all = Sketch::default();
    for row in sketches_per_organisation(store, &first, &last, "subscribers")? {
        let day = row.day;
        let sketch = Sketch::from_bytes(&row.sketch).map_err(|e| ReportError::Sketch {
            day: day.clone(),
            reason: e.to_string(),
        })?;
        all.merge(&sketch).map_err(|e| ReportError::Sketch {
            day,
            reason: e.to_string(),
        })?;
    }
    Ok(Some(UsersFigure {
        first_day: first,
        last_day: last,
        subscribers: all.count(),
    }))
}

struct CampaignRun {
    id: i64,
    started_at: String,
    month: i64,
}

/// Builds the report of `req.period` (or the latest run's month).
pub fn build(store: &dyn Store, req: &ReportRequest) -> Result<MonthlyReport, ReportError> {
    build_with(store, store, req)
}

/// [`build`] with the traffic counters kept apart (ClickHouse).
pub fn build_with(
    store: &dyn Store,
    traffic_store: &dyn v6scope_store::TrafficCounters,
    req: &ReportRequest,
) -> Result<MonthlyReport, ReportError> {
    let zh = req.zh;
    let plan = &req.plan;
    let requested = match &req.period {
        Some(p) => Some(parse_month(p).ok_or_else(|| ReportError::BadPeriod(p.clone()))?),
        None => None,
    };
    let mut notes = Vec::new();
    // Finished runs of the campaign, newest first.
    let runs: Vec<CampaignRun> = match &req.campaign {
        Some(c) => {
            let runs = store.finished_runs_of(&format!("campaign:{c}"), MAX_RUNS)?;
            // A deleted campaign's runs stay reportable.
            if runs.is_empty() && !store.campaign_exists(c)? {
                return Err(ReportError::UnknownCampaign(c.clone()));
            }
            runs.into_iter()
                .filter_map(|(id, started_at)| {
                    let month = parse_month(started_at.get(..7)?)?;
                    Some(CampaignRun { id, started_at, month })
                })
                .collect()
        }
        None => Vec::new(),
    };
    let period = match (requested, runs.first(), &req.campaign) {
        (Some(p), _, _) => p,
        (None, Some(r), _) => r.month,
        (None, None, Some(c)) => return Err(ReportError::NoRuns(c.clone())),
        // Without a campaign: the month of the latest collected day, else now.
        (None, None, None) => {
            let day = match store.latest_sketch_day("subscribers", "9999-12-31")? {
                Some(d) => d,
                None => days::format(today()),
            };
            parse_month(&day[..7]).unwrap_or(0)
        }
    };
    let period_label = month_label(period);
    let current = runs.iter().find(|r| r.month == period);
    if let Some(c) = &req.campaign
        && current.is_none()
    {
        let months: BTreeSet<String> = runs.iter().map(|r| month_label(r.month)).collect();
        if months.is_empty() {
            return Err(ReportError::NoRuns(c.clone()));
        }
        return Err(ReportError::NoRunInPeriod {
            campaign: c.clone(),
            period: period_label,
            months: months.into_iter().collect(),
        });
    }
    let previous = current.and_then(|c| runs.iter().find(|r| r.id < c.id));
    const DIMENSIONS: [&str; 4] = ["all", "category", "region", "organisation"];
    let read = |run: &CampaignRun, all_dimensions: bool, notes: &mut Vec<String>| -> Result<Vec<Slice>, ReportError> {
        let (s, summarised) = if all_dimensions {
            // Every dimension, providers included.
            let all = store.summary(run.id, &req.profile, None)?;
            if all.is_empty() {
                slices(store, run.id, &req.profile, &DIMENSIONS)?
            } else {
                (all, true)
            }
        } else {
            slices(store, run.id, &req.profile, &["all", "category"])?
        };
        if !summarised {
            let note = if zh {
                format!(
                    "运行 {} 没有汇总表（在汇总功能之前完成）：数字由其判定结果计算，无服务商数据。",
                    run.id
                )
            } else {
                format!(
                    "Run {} has no stored summary (it finished before summaries existed): its figures were computed from its verdicts, without providers.",
                    run.id
                )
            };
            if !notes.contains(&note) {
                notes.push(note);
            }
        }
        Ok(s)
    };
    let now_slices = match current {
        Some(r) => Some(read(r, true, &mut notes)?),
        None => None,
    };
    let before_slices = match previous {
        Some(r) => Some(read(r, true, &mut notes)?),
        None => None,
    };
    let run_ref = |r: &CampaignRun, s: Option<&[Slice]>| RunRef {
        id: r.id,
        started_at: r.started_at.clone(),
        targets: s.and_then(|s| slice(s, "all", "")).map_or(0, |a| a.targets),
    };
    let run = current.map(|r| run_ref(r, now_slices.as_deref()));
    let previous_run = previous.map(|r| run_ref(r, before_slices.as_deref()));
    let run_day = |r: &RunRef| days::parse(r.started_at.get(..10).unwrap_or_default()).unwrap_or(0);

    // (1) The plan, measured as `report` always did: support per category
    // from the period's run and the run before it; users from sketches.
    let until = month_first_day(period + 1) - 1;
    let users = active_users(store, until)?;
    let client_figure = clients(store, &days::format(month_first_day(period)), &days::format(until))?;
    let beacon_all = client_figure
        .as_ref()
        .and_then(|c| c.groups.iter().find(|g| g.group == "all" && g.tested > 0))
        .cloned();
    let operator_months =
        crate::operators::indicators(store, traffic_store, &month_label(period - 1), &month_label(period))?;
    let milestones = rows(plan, zh, |m| match m.indicator {
        Indicator::SiteSupport => {
            // Campaign categories count by key, not by exact label.
            let key = m.key().unwrap_or_default();
            let value_in = |r: Option<&RunRef>, s: Option<&Vec<Slice>>| {
                let (r, s) = (r?, s?);
                let (targets, pass) = s
                    .iter()
                    .filter(|x| x.dimension == "category" && crate::plan::category_key(&x.key) == key)
                    .fold((0, 0), |(t, p), x| (t + x.targets, p + x.pass));
                (targets > 0).then(|| (run_day(r), ratio(pass, targets), targets))
            };
            match value_in(run.as_ref(), now_slices.as_ref()) {
                Some((day, v, n)) => Measurement {
                    latest: Some((day, v)),
                    earlier: value_in(previous_run.as_ref(), before_slices.as_ref()).map(|(d, v, _)| (d, v)),
                    population: Some(n),
                    note: if zh {
                        format!(
                            "{n} 个目标，运行 {}（{}），规则 {}",
                            run.as_ref().map_or(0, |r| r.id),
                            days::format(day),
                            req.profile
                        )
                    } else {
                        format!(
                            "{n} targets, run {} of {}, profile {}",
                            run.as_ref().map_or(0, |r| r.id),
                            days::format(day),
                            req.profile
                        )
                    },
                },
                None => Measurement {
                    note: match &req.campaign {
                        Some(c) if zh => format!("监测任务 {c} 中没有此类目标"),
                        Some(c) => format!("no targets of this category in campaign {c}"),
                        None => tr(zh, "give --campaign", "请指定 --campaign").into(),
                    },
                    ..Default::default()
                },
            }
        }
        Indicator::ActiveUsers => match &users {
            Some(u) => Measurement {
                latest: Some((days::parse(&u.last_day).unwrap_or(0), u.subscribers as f64)),
                population: Some(u.subscribers as i64),
                note: if zh {
                    format!("采集流量中的不同用户（{} 至 {}，30 天）", u.first_day, u.last_day)
                } else {
                    format!(
                        "distinct subscribers in the collected flows, {} to {} (30 days)",
                        u.first_day, u.last_day
                    )
                },
                ..Default::default()
            },
            None => Measurement {
                note: tr(zh, "no flows collected", "未采集流量").into(),
                ..Default::default()
            },
        },
        // The beacon's IPv6-preferred share of the clients it tested is a
        // sample of the users' share (APNIC's "IPv6 preferred"); without it
        // the indicator needs the number of internet users.
        Indicator::ActiveUserShare => match (&beacon_all, &client_figure) {
            (Some(all), Some(c)) => Measurement {
                latest: all
                    .preferred_share
                    .map(|v| (days::parse(&c.last_day).unwrap_or(until), v)),
                population: Some(all.tested as i64),
                note: if zh {
                    format!(
                        "客户端探测：{} 个受测终端中 IPv6 优先的比例（{} 至 {}，抽样，非全体网民）",
                        all.tested, c.first_day, c.last_day
                    )
                } else {
                    format!(
                        "client beacon: IPv6-preferred share of {} clients tested, {} to {} (a sample, not all internet users)",
                        all.tested, c.first_day, c.last_day
                    )
                },
                ..Default::default()
            },
            _ => Measurement {
                note: tr(zh, "needs the number of internet users", "需要网民总数").into(),
                ..Default::default()
            },
        },
        Indicator::MobileTrafficShare | Indicator::FixedTrafficShare => {
            let mobile = m.indicator == Indicator::MobileTrafficShare;
            let pick = |o: &crate::operators::OperatorMonth| {
                if mobile {
                    (o.mobile, o.mobile_flows)
                } else {
                    (o.fixed, o.fixed_flows)
                }
            };
            let national = |period: &str| {
                operator_months
                    .iter()
                    .find(|o| o.operator.is_empty() && o.period == period)
            };
            let now = national(&month_label(period)).map(pick);
            let before = national(&month_label(period - 1)).map(pick);
            let operators = operator_months
                .iter()
                .filter(|o| !o.operator.is_empty() && o.period == month_label(period))
                .count();
            let day = month_first_day(period + 1) - 1;
            match now {
                Some((reported, flows)) if reported.share.is_some() => Measurement {
                    latest: reported.share.map(|v| (day, v)),
                    earlier: before
                        .and_then(|(r, _)| r.share)
                        .map(|v| (month_first_day(period) - 1, v)),
                    population: Some(operators as i64),
                    note: {
                        let flows = flows.share.map(|f| format!("; {:.1} %", f * 100.0)).unwrap_or_default();
                        match (zh, mobile) {
                            (true, true) => format!(
                                "{operators} 家运营商上报，(LTE+5G IPv6)/(LTE+5G){}",
                                if flows.is_empty() {
                                    String::new()
                                } else {
                                    format!("；流量采集{flows}")
                                }
                            ),
                            (true, false) => format!(
                                "{operators} 家运营商上报，城域网出口{}",
                                if flows.is_empty() {
                                    String::new()
                                } else {
                                    format!("；流量采集{flows}")
                                }
                            ),
                            (false, true) => format!(
                                "reported by {operators} operator(s): (LTE + 5G IPv6) / (LTE + 5G){}",
                                if flows.is_empty() {
                                    String::new()
                                } else {
                                    format!("; from flow collectors{flows}")
                                }
                            ),
                            (false, false) => format!(
                                "reported by {operators} operator(s): metro egress{}",
                                if flows.is_empty() {
                                    String::new()
                                } else {
                                    format!("; from flow collectors{flows}")
                                }
                            ),
                        }
                    },
                },
                Some((_, flows)) if flows.share.is_some() => Measurement {
                    latest: flows.share.map(|v| (day, v)),
                    note: tr(
                        zh,
                        "from the carriers' flow collectors only (no reported figures)",
                        "仅来自运营商流量采集（无上报数据）",
                    )
                    .into(),
                    ..Default::default()
                },
                _ => Measurement {
                    note: tr(
                        zh,
                        "no operator reported this month's mobile and metro-egress traffic",
                        "本月无运营商上报移动网或城域网出口流量",
                    )
                    .into(),
                    ..Default::default()
                },
            }
        }
        Indicator::Qualitative => Measurement::default(),
    });

    // (2) Trend: the last run of each month, and the month's traffic.
    let first_month = period - (TREND_MONTHS - 1);
    let from = month_first_day(first_month) * 86_400;
    let until_secs = month_first_day(period + 1) * 86_400;
    let mut traffic: BTreeMap<String, [i64; 2]> = BTreeMap::new();
    for t in traffic_store.traffic_months(from, until_secs)? {
        let e = traffic.entry(t.period).or_default();
        e[usize::from(t.family == v6scope_model::Family::Ipv6)] += t.bytes;
    }
    let mut trend = Vec::new();
    for m in first_month..=period {
        let r = runs.iter().find(|r| r.month == m);
        let s = match r {
            Some(r) if Some(r.id) == run.as_ref().map(|x| x.id) => now_slices.clone(),
            Some(r) => Some(read(r, false, &mut notes)?),
            None => None,
        };
        let label = month_label(m);
        let traffic = traffic.get(&label).and_then(|[v4, v6]| {
            (v4 + v6 > 0).then(|| TrafficShare {
                ipv6_bytes: *v6,
                all_bytes: v4 + v6,
                share: ratio(*v6, v4 + v6),
            })
        });
        trend.push(TrendMonth {
            month: label,
            run: r.map(|r| run_ref(r, s.as_deref())),
            all: s.as_deref().and_then(|s| slice(s, "all", "")).map(Rate::of),
            categories: s
                .iter()
                .flatten()
                .filter(|x| x.dimension == "category")
                .map(|x| (x.key.clone(), Rate::of(x)))
                .collect(),
            traffic,
        });
    }

    // (3) Tables of the period's run against the run before.
    let now = now_slices.as_deref().unwrap_or_default();
    let before = before_slices.as_deref();
    let overall = table(now, before, "all").pop();
    let categories = table(now, before, "category");
    let regions = table(now, before, "region");
    let organisations = table(now, before, "organisation");
    let providers = providers(now, before, zh);

    // (4) Changes recorded for the period's runs.
    let period_runs: Vec<&CampaignRun> = runs.iter().filter(|r| r.month == period).collect();
    let ids: Vec<i64> = period_runs.iter().rev().map(|r| r.id).collect();
    let groups = if ids.is_empty() {
        Vec::new()
    } else {
        store.change_groups(&ids, &req.profile, EXAMPLES)?
    };
    let mut changes = ChangeSummary {
        runs: ids,
        ..Default::default()
    };
    for g in &groups {
        let group = change_group(g, zh);
        let regression = g.kind == v6scope_store::ChangeKind::Regression;
        if regression {
            changes.regressions += g.changes;
        } else {
            changes.improvements += g.changes;
        }
        if g.check_id == "verdict" {
            if regression {
                changes.verdict_regressions = g.domains;
            } else {
                changes.verdict_improvements = g.domains;
            }
        }
        if regression {
            changes.regression_groups.push(group);
        } else {
            changes.improvement_groups.push(group);
        }
    }
    let mut runs_in_period = Vec::new();
    for r in period_runs.iter().rev() {
        let mut x = run_ref(r, None);
        x.targets = match store.summary(r.id, &req.profile, Some("all"))?.first() {
            Some(all) => all.targets,
            None => store.run(r.id)?.targets,
        };
        runs_in_period.push(x);
    }
    if previous.is_none() && current.is_some() {
        notes.push(
            tr(
                zh,
                "No earlier run of the campaign: no changes and no trend against a previous run.",
                "该监测任务没有更早的运行：无变化统计，也无与上次运行的比较。",
            )
            .into(),
        );
    }

    let (edges, edge_milestones) = match &run {
        Some(r) => {
            let edges = crate::edges::indicators(&store.edges(r.id)?);
            let day = days::parse(r.started_at.get(..10).unwrap_or_default()).unwrap_or(0);
            let milestones = crate::edges::milestones(plan, &edges, day, zh);
            (edges, milestones)
        }
        None => Default::default(),
    };
    let agents = store.agents()?;
    let vantages = match &run {
        Some(r) => vantage_rows(store, r.id, &req.profile, &agents)?,
        None => Vec::new(),
    };
    let mut vantage_differences = VantageDifferences::default();
    for r in runs_in_period.iter().rev() {
        if store.run_vantages(r.id)?.is_empty() {
            continue;
        }
        vantage_differences.runs.push(r.id);
        let (_, differing) = store.vantage_differences(r.id, &req.profile, DIFFERENCES_PER_RUN)?;
        for d in differing {
            if let Some(seen) = vantage_differences.shown.iter_mut().find(|x| x.domain == d.domain) {
                seen.runs += 1;
                continue;
            }
            vantage_differences.targets += 1;
            if vantage_differences.shown.len() >= DIFFERENCES_SHOWN {
                continue;
            }
            let differences = store
                .verdict(r.id, d.idx, &req.profile)?
                .and_then(|v| v.check(v6scope_model::VANTAGES_CHECK).cloned())
                .map(|c| {
                    c.evidence
                        .iter()
                        .filter_map(|l| l.strip_prefix("differs: ").map(String::from))
                        .collect()
                })
                .unwrap_or_default();
            vantage_differences.shown.push(VantageDifferenceRow {
                run: r.id,
                domain: d.domain,
                statuses: d.statuses.into_iter().collect(),
                differences,
                runs: 1,
            });
        }
    }

    // (5) The worst sites of the period's run, with what to fix.
    let mut worst = Vec::new();
    if let Some(r) = &run {
        for (t, v) in store.worst_targets(r.id, &req.profile, WORST)? {
            worst.push(WorstSite {
                domain: t.domain,
                category: t.category,
                organisation: t.organisation,
                region: t.region,
                status: v.status.as_str().to_string(),
                score: t.score.unwrap_or(0.0),
                fixes: fixes(&v.checks, zh),
            });
        }
    }

    if users.is_none() {
        notes.push(
            tr(
                zh,
                "No flows collected: no active-user figure.",
                "未采集流量：无活跃用户数。",
            )
            .into(),
        );
    }
    if trend.iter().all(|t| t.traffic.is_none()) {
        notes.push(
            tr(
                zh,
                "No traffic collected in these 12 months: no IPv6 traffic share.",
                "这 12 个月未采集流量：无 IPv6 流量占比。",
            )
            .into(),
        );
    }
    let title = match &req.campaign {
        Some(c) if zh => format!("IPv6 监测报告：{c}（{period_label}）"),
        Some(c) => format!("IPv6 monitoring report: {c}, {period_label}"),
        None if zh => format!("IPv6 监测报告（{period_label}）"),
        None => format!("IPv6 monitoring report, {period_label}"),
    };
    let mut report = MonthlyReport {
        schema_version: SCHEMA_VERSION,
        lang: tr(zh, "en", "zh-CN").into(),
        title,
        plan: plan.name.clone(),
        plan_title: if zh {
            plan.title_zh.clone()
        } else {
            plan.title_en.clone()
        },
        plan_source: plan.source.clone(),
        campaign: req.campaign.clone(),
        period: period_label,
        profile: req.profile.clone(),
        generated_on: days::format(today()),
        run,
        previous_run,
        runs_in_period,
        overall,
        milestones,
        active_users: users,
        clients: client_figure,
        trend,
        categories,
        regions,
        organisations,
        providers,
        vantages,
        vantage_differences,
        edges,
        edge_milestones,
        changes,
        worst,
        methods: Vec::new(),
        notes,
    };
    report.methods = methods(&report);
    Ok(report)
}

/// Pass rates per vantage of a fleet run, then per label value.
fn vantage_rows(
    store: &dyn Store,
    run: i64,
    profile: &str,
    agents: &[v6scope_store::AgentRow],
) -> Result<Vec<VantageRow>, ReportError> {
    let tallies = store.vantage_tallies(run, profile)?;
    // (targets, pass, score sum, not testable) per vantage.
    let mut per: BTreeMap<String, (i64, i64, f64, i64)> = BTreeMap::new();
    for t in &tallies {
        let e = per.entry(t.vantage.clone()).or_default();
        if matches!(t.status, Status::NotTestable | Status::Error) {
            e.3 += t.targets;
        } else {
            e.0 += t.targets;
            e.1 += if t.status == Status::Pass { t.targets } else { 0 };
            e.2 += t.score * t.targets as f64;
        }
    }
    let labels = v6scope_store::vantage_labels(agents);
    let row = |dimension: &str, key: &str, vantages: Vec<String>| {
        let (mut targets, mut pass, mut score, mut not_testable) = (0, 0, 0.0, 0);
        for v in &vantages {
            let (t, p, s, n) = per[v];
            targets += t;
            pass += p;
            score += s;
            not_testable += n;
        }
        VantageRow {
            dimension: dimension.into(),
            key: key.into(),
            vantages,
            targets,
            pass,
            rate: ratio(pass, targets),
            score: if targets > 0 { score / targets as f64 } else { 0.0 },
            not_testable,
        }
    };
    let mut rows: Vec<VantageRow> = per.keys().map(|v| row("vantage", v, vec![v.clone()])).collect();
    let mut keys: Vec<&str> = VANTAGE_LABELS.to_vec();
    let mut others: BTreeSet<&str> = BTreeSet::new();
    for v in per.keys() {
        if let Some(l) = labels.get(v.as_str()) {
            others.extend(l.keys().map(String::as_str).filter(|k| !VANTAGE_LABELS.contains(k)));
        }
    }
    keys.extend(others);
    for key in keys {
        let mut groups: BTreeMap<&str, Vec<String>> = BTreeMap::new();
        for v in per.keys() {
            if let Some(value) = labels.get(v.as_str()).and_then(|l| l.get(key)) {
                groups.entry(value).or_default().push(v.clone());
            }
        }
        rows.extend(groups.into_iter().map(|(value, vantages)| row(key, value, vantages)));
    }
    Ok(rows)
}

/// (6) Each indicator with its definition, population, date and source.
fn methods(r: &MonthlyReport) -> Vec<Method> {
    let zh = r.zh();
    let none = || tr(zh, "none", "无").to_string();
    let run_text = |x: &Option<RunRef>| match x {
        Some(x) if zh => format!("运行 {}，{} 个目标", x.id, x.targets),
        Some(x) => format!("run {}, {} targets", x.id, x.targets),
        None => none(),
    };
    let run_date = |x: &Option<RunRef>| x.as_ref().map_or_else(none, |x| x.started_at.clone());
    let campaign = r.campaign.clone().unwrap_or_else(none);
    let mut out = Vec::new();
    let mut add = |indicator: &str, definition: String, population: String, date: String, source: &str| {
        out.push(Method {
            indicator: indicator.into(),
            definition,
            population,
            date,
            source: source.into(),
        })
    };
    add(
        tr(zh, "IPv6 support rate", "IPv6 支持率"),
        if zh {
            format!(
                "在规则 {} 下判定为 pass 的目标数 ÷ 该组目标数（无判定结果的目标计为未通过）",
                r.profile
            )
        } else {
            format!(
                "targets whose verdict under profile {} is pass ÷ targets of the slice (targets without a verdict count as not passing)",
                r.profile
            )
        },
        if zh {
            format!("监测任务 {campaign}：{}", run_text(&r.run))
        } else {
            format!("campaign {campaign}: {}", run_text(&r.run))
        },
        run_date(&r.run),
        tr(
            zh,
            "run_summary (written when the run finished), per category, region, organisation and provider",
            "run_summary 表（运行结束时写入），按类别、地区、单位和服务商",
        ),
    );
    add(
        tr(zh, "Mean score", "平均得分"),
        tr(
            zh,
            "mean of the profile's 0–100 score over the slice's targets (no verdict counts 0)",
            "该组目标在规则下 0–100 分的平均值（无判定结果计 0 分）",
        )
        .into(),
        run_text(&r.run),
        run_date(&r.run),
        "run_summary",
    );
    add(
        tr(zh, "Change vs the previous run", "与上次运行相比的变化"),
        tr(
            zh,
            "the slice's support rate in this run minus its rate in the campaign's previous finished run, in percentage points",
            "本次运行的支持率减去该监测任务上一次完成运行的支持率，单位为百分点",
        )
        .into(),
        run_text(&r.previous_run),
        run_date(&r.previous_run),
        "run_summary",
    );
    let months_with_runs = r.trend.iter().filter(|t| t.run.is_some()).count();
    let span = match (r.trend.first(), r.trend.last()) {
        (Some(a), Some(b)) => format!("{} – {}", a.month, b.month),
        _ => none(),
    };
    add(
        tr(zh, "Monthly trend", "月度趋势"),
        tr(
            zh,
            "per month, the support rate (overall and per category) of the campaign's last finished run started in that month",
            "每月取该监测任务当月开始的最后一次完成运行的支持率（总体及分类别）",
        )
        .into(),
        if zh {
            format!("{} 个月中有 {months_with_runs} 个月有运行", r.trend.len())
        } else {
            format!("{months_with_runs} of {} months have a run", r.trend.len())
        },
        span.clone(),
        "runs, run_summary",
    );
    let provider_targets: i64 = r.providers.iter().map(|p| p.targets).sum();
    add(
        tr(zh, "Providers", "服务商"),
        tr(
            zh,
            "a domain counts for a provider in a role (name servers, web, mail) when the provider's signature (host-name suffix, or AS of the addresses) matches; IPv4-only when that part has no working IPv6",
            "域名的某一部分（域名服务器、网站、邮件）与服务商特征（主机名后缀或地址所属 AS）匹配即计入该服务商；该部分没有可用的 IPv6 即为仅 IPv4",
        )
        .into(),
        if zh {
            format!("{} 个服务商条目，共 {provider_targets} 次使用", r.providers.len())
        } else {
            format!("{} provider entries, {provider_targets} uses", r.providers.len())
        },
        run_date(&r.run),
        tr(
            zh,
            "provider_uses and run_summary (provider:<role>, provider_v4only:<role>); signatures in providers/providers.toml",
            "provider_uses 与 run_summary 表（provider:<role>、provider_v4only:<role>）；特征见 providers/providers.toml",
        ),
    );
    add(
        tr(zh, "Regressions and improvements", "退步与改进"),
        tr(
            zh,
            "a domain's verdict or check that went from pass to fail, warn or error (regression) or back (improvement) between a run and the campaign's run before it; info, not applicable and not testable are ignored",
            "某域名的判定或检查项在相邻两次运行之间由 pass 变为 fail、warn 或 error（退步），或相反（改进）；info、不适用、无法测试不计",
        )
        .into(),
        if zh {
            format!("本月 {} 次运行", r.changes.runs.len())
        } else {
            format!("{} runs in the month", r.changes.runs.len())
        },
        r.period.clone(),
        "changes",
    );
    add(
        tr(zh, "Worst sites", "得分最低的网站"),
        if zh {
            format!(
                "本月运行中规则 {} 下得分最低的 {WORST} 个网站；整改建议取自存储的判定结果中未通过的检查项",
                r.profile
            )
        } else {
            format!(
                "the {WORST} lowest scores under profile {} in the period's run; what to fix comes from the failing checks of the stored verdict",
                r.profile
            )
        },
        run_text(&r.run),
        run_date(&r.run),
        "verdicts",
    );
    add(
        tr(zh, "Active IPv6 users", "IPv6 活跃用户数"),
        tr(
            zh,
            "distinct subscriber prefixes with IPv6 traffic other than ICMPv6 and DNS over 30 days, all organisations merged (HyperLogLog, standard error 0.81 %); what the collectors see, not a national total",
            "30 天内有 ICMPv6 与 DNS 以外 IPv6 流量的不同用户前缀，合并所有单位（HyperLogLog，标准误差 0.81%）；为采集点所见，非全国总数",
        )
        .into(),
        r.active_users.as_ref().map_or_else(none, |u| u.subscribers.to_string()),
        r.active_users
            .as_ref()
            .map_or_else(none, |u| format!("{} – {}", u.first_day, u.last_day)),
        tr(zh, "sketches (v6scope collect)", "sketches 表（v6scope collect）"),
    );
    let traffic_months = r.trend.iter().filter(|t| t.traffic.is_some()).count();
    let bytes: i64 = r
        .trend
        .iter()
        .filter_map(|t| t.traffic.as_ref())
        .map(|t| t.all_bytes)
        .sum();
    add(
        tr(zh, "IPv6 traffic share", "IPv6 流量占比"),
        tr(
            zh,
            "IPv6 bytes ÷ IPv4 and IPv6 bytes per month (layer-3 bytes, sampling-scaled records only), all exporters",
            "每月 IPv6 字节数 ÷ IPv4 与 IPv6 字节数（三层字节，仅按采样率换算的记录），所有采集点",
        )
        .into(),
        if zh {
            format!("{traffic_months} 个月，共 {bytes} 字节")
        } else {
            format!("{traffic_months} months, {bytes} bytes")
        },
        span,
        tr(zh, "traffic (v6scope collect)", "traffic 表（v6scope collect）"),
    );
    add(
        tr(zh, "Standing against the plan", "对照规划的状态"),
        tr(
            zh,
            "met when the latest value reaches the target; otherwise behind after the deadline; before it, on track when the line through the last two measurements reaches the target by the deadline, behind when not, no trend with one measurement",
            "最新值达到目标为已达标；否则期限已过为落后；期限前，按最近两次测量的直线趋势在期限前达到目标为按期推进，达不到为落后，只有一次测量为无趋势",
        )
        .into(),
        format!("{} ({})", r.plan_title, r.plan_source),
        r.period.clone(),
        tr(zh, "plans/*.toml", "plans/*.toml"),
    );
    out
}

// ---------------------------------------------------------------- rendering

/// The report as blocks, rendered by both the Markdown and the HTML writer
/// so that the two never say different things.
enum Block {
    Heading(u8, String),
    Para(String),
    List(Vec<String>),
    Table(Vec<String>, Vec<Vec<String>>),
    /// Inline SVG (HTML only; Markdown gets the table that follows it).
    Svg(String),
    /// A new printed page in HTML.
    Section,
}

fn pct(v: f64) -> String {
    format!("{:.1} %", v * 100.0)
}

fn pp(v: Option<f64>, zh: bool) -> String {
    match v {
        Some(v) => format!("{v:+.1} {}", tr(zh, "pp", "个百分点")),
        None => "-".into(),
    }
}

fn key_label(key: &str, dimension: &str, zh: bool) -> String {
    if !key.is_empty() {
        return key.into();
    }
    match dimension {
        "category" => tr(zh, "(no category)", "（未分类）"),
        "region" => tr(zh, "(no region)", "（未填地区）"),
        _ => tr(zh, "(no organisation)", "（未填单位）"),
    }
    .into()
}

fn standing_label(s: Standing, zh: bool) -> &'static str {
    match s {
        Standing::Met => tr(zh, "met", "已达标"),
        Standing::OnTrack => tr(zh, "on track", "按期推进"),
        Standing::Behind => tr(zh, "behind", "落后"),
        Standing::NoTrend => tr(zh, "no trend", "无趋势"),
    }
}

fn value(indicator: Indicator, v: f64) -> String {
    if indicator.is_share() {
        pct(v)
    } else {
        format!("{v:.0}")
    }
}

fn milestone_rows(r: &MonthlyReport) -> Vec<Vec<String>> {
    let zh = r.zh();
    r.milestones
        .iter()
        .map(|m| {
            let measured = match m.measurement.latest {
                Some((day, v)) => format!("{} ({})", value(m.indicator, v), days::format(day)),
                None => tr(zh, "not measured", "未监测").into(),
            };
            let (standing, gap) = match &m.judgement {
                Some(j) => (
                    standing_label(j.standing, zh).to_string(),
                    value(m.indicator, j.gap.max(0.0)),
                ),
                None => ("-".into(), "-".into()),
            };
            vec![
                m.text.clone(),
                m.deadline.clone(),
                m.target.map_or_else(|| "-".into(), |t| value(m.indicator, t)),
                measured,
                standing,
                gap,
                m.measurement.note.clone(),
            ]
        })
        .collect()
}

fn rate_table(rows: &[TableRow], dimension: &str, zh: bool, cap: usize) -> (Vec<String>, Vec<Vec<String>>) {
    let first = match dimension {
        "category" => tr(zh, "Category", "类别"),
        "region" => tr(zh, "Region", "地区"),
        _ => tr(zh, "Organisation", "单位"),
    };
    let head = [
        first,
        tr(zh, "Targets", "目标数"),
        tr(zh, "Passing", "通过数"),
        tr(zh, "Rate", "支持率"),
        tr(zh, "Mean score", "平均得分"),
        tr(zh, "Change", "变化"),
    ]
    .map(String::from)
    .to_vec();
    let body = rows
        .iter()
        .take(cap)
        .map(|t| {
            vec![
                key_label(&t.key, dimension, zh),
                t.targets.to_string(),
                t.pass.to_string(),
                pct(t.rate),
                format!("{:.1}", t.score),
                pp(t.change_pp, zh),
            ]
        })
        .collect();
    (head, body)
}

struct Series {
    name: String,
    points: Vec<Option<f64>>,
    bold: bool,
}

const PALETTE: [&str; 9] = [
    "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22",
];

/// A line chart of shares per month (inline SVG). `scale` fits the y axis
/// to the data (traffic shares are small); rates keep 0–100 %.
fn line_chart(title: &str, months: &[String], series: &[Series], scale: bool) -> String {
    let (left, right, top, plot_h) = (56.0, 40.0, 24.0, 200.0);
    let width = 760.0;
    let plot_w = width - left - right;
    let legend_y = top + plot_h + 40.0;
    let height = legend_y + 18.0 * series.len() as f64 + 6.0;
    let max = series
        .iter()
        .flat_map(|s| s.points.iter().flatten())
        .fold(0.0f64, |a, &b| a.max(b));
    let y_max = if scale {
        ((max * 10.0).ceil() / 10.0).clamp(0.1, 1.0)
    } else {
        1.0
    };
    let step = plot_w / (months.len().max(2) - 1) as f64;
    let x = |i: usize| left + step * i as f64;
    let y = |v: f64| top + plot_h * (1.0 - (v / y_max).clamp(0.0, 1.0));
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" role=\"img\" width=\"{width}\" height=\"{height}\" \
         viewBox=\"0 0 {width} {height}\" font-family=\"{FONTS}\" font-size=\"11\">\n<title>{}</title>\n\
         <text x=\"{left}\" y=\"14\" font-size=\"13\" font-weight=\"bold\">{}</text>\n",
        escape(title),
        escape(title)
    );
    for i in 0..=4 {
        let v = y_max * i as f64 / 4.0;
        svg += &format!(
            "<line x1=\"{left}\" x2=\"{:.1}\" y1=\"{:.1}\" y2=\"{:.1}\" stroke=\"#ddd\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{:.0} %</text>\n",
            left + plot_w,
            y(v),
            y(v),
            left - 6.0,
            y(v) + 4.0,
            v * 100.0
        );
    }
    for (i, m) in months.iter().enumerate() {
        svg += &format!(
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>\n",
            x(i),
            top + plot_h + 16.0,
            escape(m)
        );
    }
    for (n, s) in series.iter().enumerate() {
        let color = if s.bold { "#000" } else { PALETTE[n % PALETTE.len()] };
        let stroke = if s.bold { 3.0 } else { 1.5 };
        // A gap in the data breaks the line.
        let mut segment: Vec<String> = Vec::new();
        let flush = |segment: &mut Vec<String>, svg: &mut String| {
            if segment.len() > 1 {
                *svg += &format!(
                    "<polyline fill=\"none\" stroke=\"{color}\" stroke-width=\"{stroke}\" points=\"{}\"/>\n",
                    segment.join(" ")
                );
            }
            segment.clear();
        };
        for (i, p) in s.points.iter().enumerate() {
            match p {
                Some(v) => {
                    segment.push(format!("{:.1},{:.1}", x(i), y(*v)));
                    svg += &format!(
                        "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"{}\" fill=\"{color}\"><title>{} {}: {}</title></circle>\n",
                        x(i),
                        y(*v),
                        if s.bold { 3.5 } else { 2.5 },
                        escape(&s.name),
                        escape(&months[i]),
                        pct(*v)
                    );
                }
                None => flush(&mut segment, &mut svg),
            }
        }
        flush(&mut segment, &mut svg);
        let ly = legend_y + 18.0 * n as f64;
        svg += &format!(
            "<line x1=\"{left}\" x2=\"{:.1}\" y1=\"{:.1}\" y2=\"{:.1}\" stroke=\"{color}\" stroke-width=\"{stroke}\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\">{}</text>\n",
            left + 24.0,
            ly - 4.0,
            ly - 4.0,
            left + 30.0,
            ly,
            escape(&s.name)
        );
    }
    svg + "</svg>\n"
}

fn blocks(r: &MonthlyReport) -> Vec<Block> {
    let zh = r.zh();
    let mut b = Vec::new();
    let none = || tr(zh, "none", "无").to_string();
    b.push(Block::Heading(1, r.title.clone()));
    b.push(Block::Para(if zh {
        format!(
            "规划：{}（{}）。评测规则：{}。统计月份：{}。生成日期：{}。",
            r.plan_title, r.plan_source, r.profile, r.period, r.generated_on
        )
    } else {
        format!(
            "Plan: {} ({}). Profile: {}. Period: {}. Generated: {}.",
            r.plan_title, r.plan_source, r.profile, r.period, r.generated_on
        )
    }));

    // (1) Summary against the plan.
    b.push(Block::Heading(
        2,
        tr(zh, "1. Summary against the plan", "1. 对照规划的总体情况").into(),
    ));
    let mut facts = Vec::new();
    if let (Some(run), Some(o)) = (&r.run, &r.overall) {
        facts.push(if zh {
            format!(
                "运行 {}（{}）：{} 个目标中 {} 个通过，支持率 {}，平均得分 {:.1}，较上次运行 {}。",
                run.id,
                run.started_at,
                o.targets,
                o.pass,
                pct(o.rate),
                o.score,
                pp(o.change_pp, zh)
            )
        } else {
            format!(
                "Run {} ({}): {} of {} targets pass, {}, mean score {:.1}, {} against the previous run.",
                run.id,
                run.started_at,
                o.pass,
                o.targets,
                pct(o.rate),
                o.score,
                pp(o.change_pp, zh)
            )
        });
        facts.push(if zh {
            format!(
                "本月 {} 次运行：{} 个域名的总体判定退步，{} 个改进（检查项共退步 {} 次、改进 {} 次）。",
                r.changes.runs.len(),
                r.changes.verdict_regressions,
                r.changes.verdict_improvements,
                r.changes.regressions,
                r.changes.improvements
            )
        } else {
            format!(
                "{} runs this month: {} domains' verdicts regressed and {} improved ({} regressions and {} improvements of checks and verdicts in all).",
                r.changes.runs.len(),
                r.changes.verdict_regressions,
                r.changes.verdict_improvements,
                r.changes.regressions,
                r.changes.improvements
            )
        });
    }
    if let Some(u) = &r.active_users {
        facts.push(if zh {
            format!(
                "IPv6 活跃用户：{}（{} 至 {}）。",
                u.subscribers, u.first_day, u.last_day
            )
        } else {
            format!(
                "Active IPv6 users: {} ({} to {}).",
                u.subscribers, u.first_day, u.last_day
            )
        });
    }
    if !facts.is_empty() {
        b.push(Block::List(facts));
    }
    b.push(Block::Svg(share_chart(&r.milestones, zh)));
    b.push(Block::Table(
        [
            tr(zh, "Milestone", "里程碑"),
            tr(zh, "Deadline", "期限"),
            tr(zh, "Target", "目标"),
            tr(zh, "Measured", "监测值"),
            tr(zh, "Standing", "状态"),
            tr(zh, "Gap", "差距"),
            tr(zh, "Note", "说明"),
        ]
        .map(String::from)
        .to_vec(),
        milestone_rows(r),
    ));

    // (2) Trends.
    b.push(Block::Section);
    b.push(Block::Heading(2, tr(zh, "2. Trends", "2. 趋势").into()));
    let months: Vec<String> = r.trend.iter().map(|t| t.month.clone()).collect();
    // Lines: the overall rate and the period's largest categories; the
    // table also has categories seen only in earlier months.
    let mut keys: Vec<String> = r.categories.iter().map(|c| c.key.clone()).collect();
    let seen: BTreeSet<&String> = r.trend.iter().flat_map(|t| t.categories.keys()).collect();
    for k in seen {
        if !keys.contains(k) {
            keys.push(k.clone());
        }
    }
    let mut series = vec![Series {
        name: tr(zh, "All targets", "全部目标").into(),
        points: r.trend.iter().map(|t| t.all.as_ref().map(|a| a.rate)).collect(),
        bold: true,
    }];
    for k in keys.iter().take(CHART_CATEGORIES) {
        series.push(Series {
            name: key_label(k, "category", zh),
            points: r.trend.iter().map(|t| t.categories.get(k).map(|x| x.rate)).collect(),
            bold: false,
        });
    }
    if r.trend.iter().any(|t| t.all.is_some()) {
        b.push(Block::Svg(line_chart(
            tr(zh, "IPv6 support rate by month", "各月 IPv6 支持率"),
            &months,
            &series,
            false,
        )));
        if keys.len() > CHART_CATEGORIES {
            b.push(Block::Para(if zh {
                format!("图中为目标最多的 {CHART_CATEGORIES} 个类别；全部类别见下表。")
            } else {
                format!("The chart shows the {CHART_CATEGORIES} largest categories; the table has all.")
            }));
        }
        let mut head = vec![tr(zh, "Month", "月份").to_string(), tr(zh, "Run", "运行").into()];
        head.push(tr(zh, "All targets", "全部目标").into());
        head.extend(keys.iter().map(|k| key_label(k, "category", zh)));
        let body = r
            .trend
            .iter()
            .map(|t| {
                let mut row = vec![
                    t.month.clone(),
                    t.run.as_ref().map_or_else(|| "-".into(), |x| x.id.to_string()),
                    t.all.as_ref().map_or_else(|| "-".into(), |a| pct(a.rate)),
                ];
                row.extend(
                    keys.iter()
                        .map(|k| t.categories.get(k).map_or_else(|| "-".into(), |x| pct(x.rate))),
                );
                row
            })
            .collect();
        b.push(Block::Table(head, body));
    } else {
        b.push(Block::Para(
            tr(zh, "No campaign runs in these months.", "这些月份没有监测任务的运行。").into(),
        ));
    }
    if r.trend.iter().any(|t| t.traffic.is_some()) {
        let traffic = [Series {
            name: tr(zh, "IPv6 share of bytes", "IPv6 字节占比").into(),
            points: r.trend.iter().map(|t| t.traffic.as_ref().map(|x| x.share)).collect(),
            bold: true,
        }];
        b.push(Block::Svg(line_chart(
            tr(zh, "IPv6 traffic share by month", "各月 IPv6 流量占比"),
            &months,
            &traffic,
            true,
        )));
        b.push(Block::Table(
            [
                tr(zh, "Month", "月份"),
                tr(zh, "IPv6 bytes", "IPv6 字节"),
                tr(zh, "All bytes", "总字节"),
                tr(zh, "IPv6 share", "IPv6 占比"),
            ]
            .map(String::from)
            .to_vec(),
            r.trend
                .iter()
                .filter_map(|t| {
                    let x = t.traffic.as_ref()?;
                    Some(vec![
                        t.month.clone(),
                        x.ipv6_bytes.to_string(),
                        x.all_bytes.to_string(),
                        pct(x.share),
                    ])
                })
                .collect(),
        ));
    }

    // (3) Tables.
    b.push(Block::Section);
    b.push(Block::Heading(
        2,
        tr(
            zh,
            "3. By category, region, organisation and provider",
            "3. 分类别、地区、单位和服务商",
        )
        .into(),
    ));
    match (&r.run, &r.previous_run) {
        (Some(x), Some(p)) => b.push(Block::Para(if zh {
            format!(
                "运行 {}（{}）；变化为与运行 {}（{}）相比的百分点。",
                x.id, x.started_at, p.id, p.started_at
            )
        } else {
            format!(
                "Run {} ({}); change in percentage points against run {} ({}).",
                x.id, x.started_at, p.id, p.started_at
            )
        })),
        (Some(x), None) => b.push(Block::Para(if zh {
            format!("运行 {}（{}）；无上次运行可比较。", x.id, x.started_at)
        } else {
            format!("Run {} ({}); no previous run to compare with.", x.id, x.started_at)
        })),
        _ => {}
    }
    for (dimension, rows, heading) in [
        ("category", &r.categories, tr(zh, "By category", "按类别")),
        ("region", &r.regions, tr(zh, "By region", "按地区")),
        ("organisation", &r.organisations, tr(zh, "By organisation", "按单位")),
    ] {
        if rows.is_empty() {
            continue;
        }
        b.push(Block::Heading(3, heading.into()));
        let (head, body) = rate_table(rows, dimension, zh, TABLE_ROWS);
        b.push(Block::Table(head, body));
        if rows.len() > TABLE_ROWS {
            b.push(Block::Para(if zh {
                format!("仅列出目标最多的 {TABLE_ROWS} 项，共 {} 项见 CSV 或 JSON。", rows.len())
            } else {
                format!("The {TABLE_ROWS} largest of {}; CSV and JSON have all.", rows.len())
            }));
        }
    }
    if !r.providers.is_empty() {
        b.push(Block::Heading(3, tr(zh, "By provider", "按服务商").into()));
        let v4only: Vec<String> = r
            .providers
            .iter()
            .filter(|p| p.ipv4_only > 0)
            .take(10)
            .map(|p| p.text.clone())
            .collect();
        if !v4only.is_empty() {
            b.push(Block::List(v4only));
        }
        b.push(Block::Table(
            [
                tr(zh, "Provider", "服务商"),
                tr(zh, "Role", "角色"),
                tr(zh, "Domains", "域名数"),
                tr(zh, "IPv4 only", "仅 IPv4"),
                tr(zh, "Passing", "通过数"),
                tr(zh, "Rate", "支持率"),
                tr(zh, "Change", "变化"),
            ]
            .map(String::from)
            .to_vec(),
            r.providers
                .iter()
                .take(TABLE_ROWS)
                .map(|p| {
                    vec![
                        p.provider.clone(),
                        role_label(&p.role, zh),
                        p.targets.to_string(),
                        p.ipv4_only.to_string(),
                        p.pass.to_string(),
                        pct(p.rate),
                        pp(p.change_pp, zh),
                    ]
                })
                .collect(),
        ));
    }

    if !r.vantages.is_empty() {
        b.push(Block::Heading(
            3,
            tr(
                zh,
                "By vantage: ISP, region and access",
                "按观测点：运营商、地区、接入方式",
            )
            .into(),
        ));
        b.push(Block::Para(
            tr(
                zh,
                "Each vantage judged every target on its own; a target counts once per vantage. Targets a vantage could not test are shown apart and count against no one.",
                "每个观测点各自判定全部目标，每个目标按观测点各计一次。观测点无法测试的目标单独列出，不计入任何一方。",
            )
            .into(),
        ));
        b.push(Block::Table(
            [
                tr(zh, "Dimension", "维度"),
                tr(zh, "Value", "取值"),
                tr(zh, "Vantages", "观测点"),
                tr(zh, "Judged", "判定数"),
                tr(zh, "Passing", "通过数"),
                tr(zh, "Rate", "支持率"),
                tr(zh, "Not testable", "无法测试"),
            ]
            .map(String::from)
            .to_vec(),
            r.vantages
                .iter()
                .map(|v| {
                    vec![
                        vantage_dimension(&v.dimension, zh),
                        v.key.clone(),
                        v.vantages.join(", "),
                        v.targets.to_string(),
                        v.pass.to_string(),
                        pct(v.rate),
                        v.not_testable.to_string(),
                    ]
                })
                .collect(),
        ));
    }
    if let Some(c) = &r.clients {
        b.push(Block::Heading(
            3,
            tr(
                zh,
                "Clients: IPv6 capable and preferred (client beacon)",
                "用户终端：IPv6 可用与优先（客户端探测）",
            )
            .into(),
        ));
        b.push(Block::Para(if zh {
            format!(
                "{} 至 {}，不同终端数（HyperLogLog 估计）。可用：纯 IPv6 对象经 IPv6 加载；优先：双栈对象经 IPv6 获取；故障：IPv4 正常而 IPv6 超时或双栈过慢；MTU：大包无法通过。",
                c.first_day, c.last_day
            )
        } else {
            format!(
                "{} to {}, distinct clients (HyperLogLog estimates). Capable: the IPv6-only object loaded over IPv6; preferred: the dual-stack object came over IPv6; broken: IPv4 works but IPv6 timed out or the dual-stack object was slow; MTU: large IPv6 packets did not get through.",
                c.first_day, c.last_day
            )
        }));
        b.push(Block::Table(
            [
                tr(zh, "Group", "分组"),
                tr(zh, "Tested", "受测"),
                tr(zh, "IPv6 capable", "IPv6 可用"),
                tr(zh, "IPv6 preferred", "IPv6 优先"),
                tr(zh, "Broken", "故障"),
                tr(zh, "MTU trouble", "MTU 问题"),
                tr(zh, "Resolver without IPv6", "解析器无 IPv6"),
            ]
            .map(String::from)
            .to_vec(),
            c.groups
                .iter()
                .map(|g| {
                    vec![
                        g.group.clone(),
                        g.tested.to_string(),
                        format!(
                            "{} ({})",
                            g.capable,
                            g.capable_share.map_or_else(|| "—".to_string(), pct)
                        ),
                        format!(
                            "{} ({})",
                            g.preferred,
                            g.preferred_share.map_or_else(|| "—".to_string(), pct)
                        ),
                        g.broken.to_string(),
                        g.mtu_trouble.to_string(),
                        g.resolver_without_ipv6.to_string(),
                    ]
                })
                .collect(),
        ));
    }
    let d = &r.vantage_differences;
    if !d.runs.is_empty() {
        b.push(Block::Heading(
            3,
            tr(zh, "Differences between vantages this month", "本月各观测点之间的差异").into(),
        ));
        b.push(Block::Para(if zh {
            format!(
                "本月 {} 次多观测点运行中，{} 个目标在不同观测点得到不同结论。",
                d.runs.len(),
                d.targets
            )
        } else {
            format!(
                "In the month's {} runs from several vantages, {} targets were judged differently from different vantages.",
                d.runs.len(),
                d.targets
            )
        }));
        if !d.shown.is_empty() {
            b.push(Block::Table(
                [
                    tr(zh, "Domain", "域名"),
                    tr(zh, "Run", "运行"),
                    tr(zh, "Per vantage", "各观测点"),
                    tr(zh, "What differs", "差异"),
                ]
                .map(String::from)
                .to_vec(),
                d.shown
                    .iter()
                    .map(|x| {
                        vec![
                            x.domain.clone(),
                            x.run.to_string(),
                            x.statuses
                                .iter()
                                .map(|(v, s)| format!("{v}: {}", s.as_str()))
                                .collect::<Vec<_>>()
                                .join(", "),
                            x.differences.join("; "),
                        ]
                    })
                    .collect(),
            ));
        }
    }

    edge_blocks(r, &mut b);

    // (4) Changes.
    b.push(Block::Section);
    b.push(Block::Heading(
        2,
        tr(zh, "4. Regressions and improvements", "4. 退步与改进").into(),
    ));
    b.push(Block::Para(if zh {
        format!(
            "本月运行（{}）与各自上一次运行相比：退步 {} 次，改进 {} 次。",
            if r.changes.runs.is_empty() {
                none()
            } else {
                r.changes.runs.iter().map(i64::to_string).collect::<Vec<_>>().join(", ")
            },
            r.changes.regressions,
            r.changes.improvements
        )
    } else {
        format!(
            "The month's runs ({}) against the run before each: {} regressions, {} improvements.",
            if r.changes.runs.is_empty() {
                none()
            } else {
                r.changes.runs.iter().map(i64::to_string).collect::<Vec<_>>().join(", ")
            },
            r.changes.regressions,
            r.changes.improvements
        )
    }));
    for (groups, heading) in [
        (&r.changes.regression_groups, tr(zh, "Top regressions", "主要退步")),
        (&r.changes.improvement_groups, tr(zh, "Top improvements", "主要改进")),
    ] {
        if groups.is_empty() {
            continue;
        }
        b.push(Block::Heading(3, heading.into()));
        b.push(Block::Table(
            [
                tr(zh, "Check", "检查项"),
                tr(zh, "Changes", "次数"),
                tr(zh, "Domains", "域名数"),
                tr(zh, "For example", "例如"),
            ]
            .map(String::from)
            .to_vec(),
            groups
                .iter()
                .take(15)
                .map(|g| {
                    vec![
                        format!("{} ({})", g.title, g.check_id),
                        g.changes.to_string(),
                        g.domains.to_string(),
                        g.examples.join(", "),
                    ]
                })
                .collect(),
        ));
    }

    // (5) Worst sites.
    b.push(Block::Section);
    b.push(Block::Heading(
        2,
        tr(zh, "5. Worst sites and what to fix", "5. 得分最低的网站及整改建议").into(),
    ));
    if r.worst.is_empty() {
        b.push(Block::Para(tr(zh, "No judged sites.", "没有已判定的网站。").into()));
    } else {
        b.push(Block::Table(
            [
                tr(zh, "Site", "网站"),
                tr(zh, "Category", "类别"),
                tr(zh, "Organisation", "单位"),
                tr(zh, "Status", "结果"),
                tr(zh, "Score", "得分"),
                tr(zh, "What to fix", "整改建议"),
            ]
            .map(String::from)
            .to_vec(),
            r.worst
                .iter()
                .map(|w| {
                    let fix = w
                        .fixes
                        .iter()
                        .map(|f| match &f.remedy {
                            Some(remedy) => format!("{} [{}]: {remedy}", f.title, f.status),
                            None => format!("{} [{}]", f.title, f.status),
                        })
                        .collect::<Vec<_>>()
                        .join("; ");
                    vec![
                        w.domain.clone(),
                        w.category.clone().unwrap_or_default(),
                        w.organisation.clone().unwrap_or_default(),
                        w.status.clone(),
                        format!("{:.1}", w.score),
                        fix,
                    ]
                })
                .collect(),
        ));
    }

    // (6) Methods.
    b.push(Block::Section);
    b.push(Block::Heading(2, tr(zh, "6. Methods", "6. 方法说明").into()));
    b.push(Block::Table(
        [
            tr(zh, "Indicator", "指标"),
            tr(zh, "Definition", "定义"),
            tr(zh, "Population", "统计范围"),
            tr(zh, "Date", "日期"),
            tr(zh, "Source", "数据来源"),
        ]
        .map(String::from)
        .to_vec(),
        r.methods
            .iter()
            .map(|m| {
                vec![
                    m.indicator.clone(),
                    m.definition.clone(),
                    m.population.clone(),
                    m.date.clone(),
                    m.source.clone(),
                ]
            })
            .collect(),
    ));
    if !r.notes.is_empty() {
        b.push(Block::Heading(3, tr(zh, "Notes", "说明").into()));
        b.push(Block::List(r.notes.clone()));
    }
    b
}

fn md_cell(s: &str) -> String {
    md_text(&s.replace('|', "/").replace('\n', " "))
}

/// Text from the store (organisation names, domains, notes) as Markdown
/// that renders as that text: no raw HTML, no link syntax, so no
/// `javascript:` link a renderer could make clickable.
fn md_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '\\' | '[' | ']' | '`' => {
                out.push('\\');
                out.push(c);
            }
            _ => out.push(c),
        }
    }
    neutralise_scheme(&out, "javascript:")
}

fn neutralise_scheme(s: &str, scheme: &str) -> String {
    let lower = s.to_ascii_lowercase();
    let mut out = String::with_capacity(s.len());
    let mut at = 0;
    while let Some(found) = lower[at..].find(scheme) {
        let start = at + found;
        out.push_str(&s[at..start + scheme.len() - 1]);
        out.push_str("&#58;");
        at = start + scheme.len();
    }
    out.push_str(&s[at..]);
    out
}

/// A CSV cell a spreadsheet will show as text: one that starts like a
/// formula (`=`, `+`, `-`, `@`, or a tab or carriage return before one) gets
/// a leading apostrophe (OWASP's advice). Numbers are written by the
/// program and pass through, so negative changes stay numbers.
fn csv_cell(s: String) -> String {
    let risky = s.starts_with(['=', '+', '-', '@', '\t', '\r']);
    if risky && s.parse::<f64>().is_err() {
        format!("'{s}")
    } else {
        s
    }
}

/// The report in Markdown (charts are left out; their tables stay).
pub fn markdown(r: &MonthlyReport) -> String {
    let mut out = String::new();
    for block in blocks(r) {
        match block {
            Block::Heading(level, text) => {
                out += &format!("{} {}\n\n", "#".repeat(level.into()), md_text(&text));
            }
            Block::Para(text) => out += &format!("{}\n\n", md_text(&text)),
            Block::List(items) => {
                for i in items {
                    out += &format!("- {}\n", md_text(&i));
                }
                out += "\n";
            }
            Block::Table(head, body) => {
                let line = |cells: &[String]| {
                    format!(
                        "| {} |\n",
                        cells.iter().map(|c| md_cell(c)).collect::<Vec<_>>().join(" | ")
                    )
                };
                out += &line(&head);
                out += &format!("|{}\n", "---|".repeat(head.len()));
                for row in &body {
                    out += &line(row);
                }
                out += "\n";
            }
            Block::Svg(_) | Block::Section => {}
        }
    }
    out
}

/// Fonts with Chinese glyphs first (Noto CJK, WenQuanYi on Linux; the
/// usual ones elsewhere), so zh-CN pages and PDFs never show empty boxes
/// where one of them is installed.
const FONTS: &str =
    "'Noto Sans CJK SC','Source Han Sans SC','WenQuanYi Micro Hei','Microsoft YaHei','PingFang SC',sans-serif";

const CSS: &str = "body{margin:2em auto;padding:0 1em;max-width:62em;color:#111;line-height:1.4}\
h1{font-size:1.6em}h2{font-size:1.3em;border-bottom:1px solid #999;margin-top:1.6em}h3{font-size:1.05em}\
table{border-collapse:collapse;margin:.5em 0 1em;font-size:.9em}\
td,th{border:1px solid #999;padding:.25em .45em;text-align:left;vertical-align:top}th{background:#eee}\
td.n{text-align:right;white-space:nowrap}svg{max-width:100%;height:auto;display:block;margin:.5em 0}\
@page{size:A4;margin:14mm}\
@media print{body{margin:0;max-width:none;font-size:10pt}section.page{break-before:page}\
h2,h3{break-after:avoid}tr,svg,li{break-inside:avoid}thead{display:table-header-group}th{background:#eee;\
-webkit-print-color-adjust:exact;print-color-adjust:exact}}";

fn numeric(s: &str) -> bool {
    let t = s
        .trim_end_matches(" %")
        .trim_end_matches(" pp")
        .trim_end_matches(" 个百分点");
    !t.is_empty() && t.parse::<f64>().is_ok()
}

/// The report as one self-contained HTML page: inline CSS and SVG, no
/// scripts, no network; sections start on a new page when printed.
pub fn html(r: &MonthlyReport) -> String {
    let mut body = String::new();
    let mut open = false;
    for block in blocks(r) {
        match block {
            Block::Heading(level, text) => body += &format!("<h{level}>{}</h{level}>\n", escape(&text)),
            Block::Para(text) => body += &format!("<p>{}</p>\n", escape(&text)),
            Block::List(items) => {
                body += "<ul>\n";
                for i in items {
                    body += &format!("<li>{}</li>\n", escape(&i));
                }
                body += "</ul>\n";
            }
            Block::Table(head, rows) => {
                body += "<table>\n<thead><tr>";
                for h in &head {
                    body += &format!("<th>{}</th>", escape(h));
                }
                body += "</tr></thead>\n<tbody>\n";
                for row in &rows {
                    body += "<tr>";
                    for c in row {
                        if numeric(c) {
                            body += &format!("<td class=\"n\">{}</td>", escape(c));
                        } else {
                            body += &format!("<td>{}</td>", escape(c));
                        }
                    }
                    body += "</tr>\n";
                }
                body += "</tbody></table>\n";
            }
            Block::Svg(svg) => body += &svg,
            Block::Section => {
                if open {
                    body += "</section>\n";
                }
                body += "<section class=\"page\">\n";
                open = true;
            }
        }
    }
    if open {
        body += "</section>\n";
    }
    format!(
        "<!DOCTYPE html>\n<html lang=\"{}\"><head><meta charset=\"utf-8\">\
         <meta name=\"generator\" content=\"v6scope\"><title>{}</title>\n<style>body{{font-family:{FONTS}}}{CSS}</style></head>\n<body>\n{body}</body></html>\n",
        r.lang,
        escape(&r.title)
    )
}

/// The report as JSON (every figure; `schema_version` versions the form).
pub fn json(r: &MonthlyReport) -> String {
    // Serialising plain data into a String cannot fail.
    serde_json::to_string_pretty(r).unwrap_or_default() + "\n"
}

fn num(v: f64) -> String {
    let s = format!("{v:.6}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" { "0".into() } else { s.into() }
}

/// The report in long CSV: one figure per row, with the columns
/// section,dimension,key,period,targets,pass,rate,score,value,note.
/// Rates and shares are fractions (0–1); changes are percentage points.
pub fn csv(r: &MonthlyReport) -> String {
    let mut w = ::csv::Writer::from_writer(Vec::new());
    let mut rows: Vec<[String; 10]> = Vec::new();
    let opt = |v: Option<f64>| v.map(num).unwrap_or_default();
    let mut push = |section: &str,
                    dimension: &str,
                    key: &str,
                    period: &str,
                    targets: Option<i64>,
                    pass: Option<i64>,
                    rate: Option<f64>,
                    score: Option<f64>,
                    value: String,
                    note: String| {
        rows.push([
            section.into(),
            dimension.into(),
            key.into(),
            period.into(),
            targets.map(|t| t.to_string()).unwrap_or_default(),
            pass.map(|t| t.to_string()).unwrap_or_default(),
            opt(rate),
            opt(score),
            value,
            note,
        ]);
    };
    for m in &r.milestones {
        let standing = m
            .judgement
            .as_ref()
            .map(|j| {
                serde_json::to_value(j.standing)
                    .ok()
                    .and_then(|v| v.as_str().map(String::from))
                    .unwrap_or_default()
            })
            .unwrap_or_default();
        let indicator = serde_json::to_value(m.indicator)
            .ok()
            .and_then(|v| v.as_str().map(String::from))
            .unwrap_or_default();
        push(
            "plan",
            &indicator,
            m.category.as_deref().unwrap_or(&m.text),
            &m.measurement.latest.map(|(d, _)| days::format(d)).unwrap_or_default(),
            m.measurement.population,
            None,
            None,
            None,
            opt(m.measurement.latest.map(|(_, v)| v)),
            format!(
                "target {} by {}; standing {}; gap {}; {}",
                m.target.map(num).unwrap_or_else(|| "-".into()),
                m.deadline,
                if standing.is_empty() { "-" } else { &standing },
                m.judgement.as_ref().map_or_else(|| "-".into(), |j| num(j.gap)),
                m.measurement.note
            ),
        );
    }
    for t in &r.trend {
        let run = t.run.as_ref().map(|x| format!("run {}", x.id)).unwrap_or_default();
        if let Some(a) = &t.all {
            push(
                "trend",
                "all",
                "",
                &t.month,
                Some(a.targets),
                Some(a.pass),
                Some(a.rate),
                Some(a.score),
                String::new(),
                run.clone(),
            );
        }
        for (k, c) in &t.categories {
            push(
                "trend",
                "category",
                k,
                &t.month,
                Some(c.targets),
                Some(c.pass),
                Some(c.rate),
                Some(c.score),
                String::new(),
                run.clone(),
            );
        }
        if let Some(x) = &t.traffic {
            push(
                "traffic",
                "all",
                "",
                &t.month,
                None,
                None,
                None,
                None,
                num(x.share),
                format!("{} IPv6 bytes of {}", x.ipv6_bytes, x.all_bytes),
            );
        }
    }
    let against = r
        .previous_run
        .as_ref()
        .map(|p| format!("change in pp against run {}", p.id))
        .unwrap_or_default();
    let overall = r.overall.iter().map(|o| ("all", o));
    let tables = overall
        .chain(r.categories.iter().map(|t| ("category", t)))
        .chain(r.regions.iter().map(|t| ("region", t)))
        .chain(r.organisations.iter().map(|t| ("organisation", t)));
    for (dimension, t) in tables {
        push(
            "summary",
            dimension,
            &t.key,
            &r.period,
            Some(t.targets),
            Some(t.pass),
            Some(t.rate),
            Some(t.score),
            opt(t.change_pp),
            against.clone(),
        );
    }
    for p in &r.providers {
        push(
            "provider",
            &format!("provider:{}", p.role),
            &p.provider,
            &r.period,
            Some(p.targets),
            Some(p.pass),
            Some(p.rate),
            Some(p.score),
            p.ipv4_only.to_string(),
            p.text.clone(),
        );
    }
    for v in &r.vantages {
        push(
            "vantage",
            &v.dimension,
            &v.key,
            &r.period,
            Some(v.targets),
            Some(v.pass),
            Some(v.rate),
            Some(v.score),
            v.not_testable.to_string(),
            format!("vantages {}; value: not testable", v.vantages.join(" ")),
        );
    }
    for p in &r.edges.providers {
        push(
            "edge",
            &format!("provider:{}", p.kind),
            &p.provider,
            &r.period,
            Some(p.nodes),
            Some(p.ipv6_nodes),
            Some(p.node_share),
            None,
            p.coverage_ratio.map(num).unwrap_or_default(),
            format!(
                "nodes, IPv6 nodes, node share; value: coverage ratio ({} of {} cells); supports IPv6: {}",
                p.v6_cells, p.v4_cells, p.supports_ipv6
            ),
        );
    }
    for p in &r.edges.products {
        push(
            "edge",
            "cloud_product",
            &format!("{}/{}", p.provider, p.product),
            &r.period,
            Some(p.v4_cells),
            Some(p.v6_cells),
            p.coverage_ratio,
            None,
            p.supports_ipv6.to_string(),
            "targets: cells over IPv4; pass: cells over IPv6; rate: coverage ratio; value: supports IPv6".into(),
        );
    }
    if let Some(c) = &r.clients {
        for g in &c.groups {
            push(
                "clients",
                "group",
                &g.group,
                &r.period,
                Some(g.tested as i64),
                Some(g.preferred as i64),
                g.preferred_share,
                g.capable_share,
                format!(
                    "capable={} broken={} mtu_trouble={} resolver_without_ipv6={}",
                    g.capable, g.broken, g.mtu_trouble, g.resolver_without_ipv6
                ),
                "targets: clients tested; pass: IPv6 preferred; rate: preferred share; score: capable share".into(),
            );
        }
    }
    for x in &r.vantage_differences.shown {
        push(
            "vantage_difference",
            "domain",
            &x.domain,
            &r.period,
            None,
            None,
            None,
            None,
            x.statuses
                .iter()
                .map(|(v, s)| format!("{v}={}", s.as_str()))
                .collect::<Vec<_>>()
                .join(" "),
            format!("run {}; {}", x.run, x.differences.join("; ")),
        );
    }
    for (section, groups) in [
        ("regression", &r.changes.regression_groups),
        ("improvement", &r.changes.improvement_groups),
    ] {
        for g in groups {
            push(
                section,
                "check",
                &g.check_id,
                &r.period,
                Some(g.domains),
                None,
                None,
                None,
                g.changes.to_string(),
                format!("{}; {}", g.title, g.examples.join(" ")),
            );
        }
    }
    for w in &r.worst {
        push(
            "worst",
            "site",
            &w.domain,
            &r.period,
            Some(1),
            Some(i64::from(w.status == "pass")),
            None,
            Some(w.score),
            w.status.clone(),
            w.fixes
                .iter()
                .map(|f| format!("{} [{}]", f.check_id, f.status))
                .collect::<Vec<_>>()
                .join(" "),
        );
    }
    // Header and rows go to memory: writing can fail only on I/O.
    let _ = w.write_record([
        "section",
        "dimension",
        "key",
        "period",
        "targets",
        "pass",
        "rate",
        "score",
        "value",
        "note",
    ]);
    for row in rows {
        let _ = w.write_record(row.map(csv_cell));
    }
    String::from_utf8(w.into_inner().unwrap_or_default()).unwrap_or_default()
}

/// The Chromium binary: `$V6SCOPE_CHROMIUM`, else /usr/bin/chromium.
fn chromium() -> PathBuf {
    std::env::var_os("V6SCOPE_CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"))
}

fn file_url(path: &Path) -> String {
    let mut url = String::from("file://");
    for b in path.to_string_lossy().bytes() {
        if b.is_ascii_alphanumeric() || b"/-._~".contains(&b) {
            url.push(b as char);
        } else {
            url += &format!("%{b:02X}");
        }
    }
    url
}

/// Prints `html` to a PDF at `out` with headless Chromium: a fresh profile
/// and no network services, 60 s at most (then the whole process group is
/// killed). The page is written to a temporary file; nothing is fetched.
pub fn pdf(html: &str, out: &Path) -> Result<(), ReportError> {
    use std::os::unix::process::CommandExt;
    let chromium = chromium();
    if !chromium.is_file() {
        return Err(ReportError::NoChromium(chromium.display().to_string()));
    }
    let dir = tempfile::Builder::new()
        .prefix("v6scope-pdf-")
        .tempdir()
        .map_err(io("creating a temporary directory"))?;
    let page = dir.path().join("report.html");
    std::fs::write(&page, html).map_err(io(format!("writing {}", page.display())))?;
    let profile = dir.path().join("profile");
    // Chromium writes here first, so a stale `out` is never taken for a result.
    let printed = dir.path().join("report.pdf");
    let log = dir.path().join("chromium.log");
    let log_file = std::fs::File::create(&log).map_err(io(format!("creating {}", log.display())))?;
    let mut child = std::process::Command::new(&chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            "--no-pdf-header-footer",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(format!("--print-to-pdf={}", printed.display()))
        .arg(file_url(&page))
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(log_file)
        // Its own process group, so a timeout kills its helpers too.
        .process_group(0)
        .spawn()
        .map_err(io(format!("starting {}", chromium.display())))?;
    let started = Instant::now();
    let status = loop {
        match child.try_wait().map_err(io("waiting for Chromium"))? {
            Some(status) => break status,
            None if started.elapsed() > PDF_TIMEOUT => {
                // SAFETY: signalling the process group of a child we started.
                unsafe {
                    libc::kill(-(child.id() as i32), libc::SIGKILL);
                }
                let _ = child.kill();
                let _ = child.wait();
                return Err(ReportError::Pdf(format!(
                    "Chromium did not finish within {} s and was killed",
                    PDF_TIMEOUT.as_secs()
                )));
            }
            None => std::thread::sleep(Duration::from_millis(100)),
        }
    };
    let head = std::fs::read(&printed).ok().map(|b| b.starts_with(b"%PDF"));
    if !status.success() || head != Some(true) {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let tail: Vec<&str> = text.lines().rev().take(5).collect();
        return Err(ReportError::Pdf(format!(
            "Chromium ({status}) wrote no PDF: {}",
            tail.into_iter().rev().collect::<Vec<_>>().join(" / ")
        )));
    }
    if std::fs::rename(&printed, out).is_err() {
        // Another file system: copy instead.
        std::fs::copy(&printed, out).map_err(io(format!("writing {}", out.display())))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exported_text_cannot_run_as_a_formula_html_or_a_link() {
        assert_eq!(csv_cell("=HYPERLINK(\"http://x\")".into()), "'=HYPERLINK(\"http://x\")");
        for risky in ["+1+cmd", "-2+3", "@SUM(A1)", "\t=1", "\r=1"] {
            assert!(csv_cell(risky.into()).starts_with('\''), "{risky:?}");
        }
        for number in ["-3.5", "+2", "-0.125"] {
            assert_eq!(csv_cell(number.into()), number);
        }
        assert_eq!(csv_cell("gov.example.cn".into()), "gov.example.cn");
        let md = md_text("<img src=x onerror=alert(1)> [click](JavaScript:alert(1)) a&b");
        assert!(!md.contains('<') && !md.replace("\\]", "").contains(']'), "{md}");
        assert!(!md.to_ascii_lowercase().contains("javascript:"), "{md}");
        assert!(md.contains("&amp;b"), "{md}");
    }

    #[test]
    fn months_parse_strictly_and_cross_years() {
        assert_eq!(parse_month("2026-10").map(month_label).as_deref(), Some("2026-10"));
        for bad in [
            "2026-13",
            "2026-1",
            "26-10",
            "2026-10-01",
            "2026/10",
            "",
            "abcd-ef",
            "2026-00",
        ] {
            assert_eq!(parse_month(bad), None, "{bad}");
        }
        let jan = parse_month("2027-01").unwrap();
        assert_eq!(month_label(jan - 1), "2026-12");
        assert_eq!(month_label(jan - 12), "2026-01");
        assert_eq!(days::format(month_first_day(jan) - 1), "2026-12-31");
    }

    #[test]
    fn change_titles_come_from_the_recorded_text() {
        let g = ChangeGroupRow {
            kind: v6scope_store::ChangeKind::Regression,
            check_id: "ns_v6".into(),
            changes: 2,
            domains: 2,
            sample_text: "Name servers: reachable over IPv6: pass → fail: 2001:db8::1 timeout".into(),
            sample_from: Status::Pass,
            sample_to: Status::Fail,
            examples: vec!["a.test".into()],
        };
        assert_eq!(change_group(&g, false).title, "Name servers: reachable over IPv6");
        let verdict = ChangeGroupRow {
            check_id: "verdict".into(),
            ..g
        };
        assert_eq!(change_group(&verdict, true).title, "总体判定");
    }

    #[test]
    fn a_gap_in_the_data_breaks_the_line() {
        let months: Vec<String> = (1..=4).map(|m| format!("2026-0{m}")).collect();
        let svg = line_chart(
            "t",
            &months,
            &[Series {
                name: "a & b".into(),
                points: vec![Some(0.1), Some(0.2), None, Some(0.4)],
                bold: false,
            }],
            false,
        );
        assert_eq!(svg.matches("<polyline").count(), 1, "{svg}");
        assert_eq!(svg.matches("<circle").count(), 3);
        assert!(svg.contains("a &amp; b"));
    }

    #[test]
    fn file_urls_are_percent_encoded() {
        assert_eq!(file_url(Path::new("/tmp/a b/ü.html")), "file:///tmp/a%20b/%C3%BC.html");
    }
}
