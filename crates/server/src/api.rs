//! The JSON API (described in `openapi.json`) and the data the pages show:
//! every page is rendered from the same structures the API returns.

use crate::scheduler::{now, parse_cron};
use crate::{ApiError, Lang, SharedState};
use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use v6scope_model::{Target, Verdict};
use v6scope_report::plan::{Indicator, Plan, parse_day};
use v6scope_report::render::{Measurement, Row, rows};
use v6scope_store::{
    Change, Job, Period, Schedule, Slice, Store, TargetFilter, TargetRow, TimelinePoint, TrafficGroup,
};

pub(crate) const OPENAPI: &str = include_str!("../openapi.json");

pub(crate) fn routes() -> Router<SharedState> {
    Router::new()
        .route("/api/openapi.json", get(openapi))
        .route("/api/health", get(health))
        .route("/api/overview", get(api_overview))
        .route("/api/campaigns", get(api_campaigns))
        .route(
            "/api/campaigns/{name}",
            get(api_campaign).put(api_put_campaign).delete(api_delete_campaign),
        )
        .route("/api/campaigns/{name}/targets", get(api_targets))
        .route("/api/campaigns/{name}/runs", post(api_trigger))
        .route(
            "/api/campaigns/{name}/schedules",
            get(api_schedules).post(api_add_schedule),
        )
        .route("/api/campaigns/{name}/webhook", put(api_put_webhook))
        .route("/api/campaigns/{name}/providers", get(api_providers))
        .route("/api/schedules/{id}", delete(api_delete_schedule))
        .route("/api/sites/{domain}", get(api_site))
        .route("/api/runs", get(api_runs))
        .route("/api/jobs", get(api_jobs))
        .route("/api/traffic", get(api_traffic))
        .route("/api/report", get(api_report))
        .route("/metrics", get(metrics))
}

async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI).into_response()
}

async fn health(State(state): State<SharedState>) -> Result<Json<serde_json::Value>, ApiError> {
    let counters = state.store(|s| Ok(s.counters()?)).await?;
    Ok(Json(
        serde_json::json!({"status": "ok", "runs": counters.runs, "queued_jobs": counters.jobs_queued}),
    ))
}

/// Checks the bearer token of a write (the scheme is case-insensitive, as
/// RFC 6750 and RFC 9110 allow).
pub(crate) fn authorise(state: &SharedState, headers: &HeaderMap) -> Result<(), ApiError> {
    check_token(state, bearer_token(headers))
}

/// The token of an `Authorization: Bearer …` header.
pub(crate) fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
}

/// A write's body, read only after its bearer token is checked: an
/// anonymous caller never makes the server buffer a byte. Extractors before
/// it (the path) and the router (404, 405) answer first.
pub(crate) struct AuthorisedBody(pub Bytes);

impl axum::extract::FromRequest<SharedState> for AuthorisedBody {
    type Rejection = Response;

    async fn from_request(request: axum::extract::Request, state: &SharedState) -> Result<Self, Self::Rejection> {
        authorise(state, request.headers()).map_err(IntoResponse::into_response)?;
        let body = Bytes::from_request(request, state)
            .await
            .map_err(IntoResponse::into_response)?;
        Ok(AuthorisedBody(body))
    }
}

/// Checks a token given in a header or a form, in constant time.
pub(crate) fn check_token(state: &SharedState, given: Option<&str>) -> Result<(), ApiError> {
    use subtle::ConstantTimeEq;
    let Some(token) = &state.token else {
        return Err(ApiError::ReadOnly);
    };
    let given = given.ok_or(ApiError::Unauthorized)?;
    if given.as_bytes().ct_eq(token.as_bytes()).into() {
        Ok(())
    } else {
        Err(ApiError::Unauthorized)
    }
}

pub(crate) fn check_name(name: &str) -> Result<(), ApiError> {
    let ok = !name.is_empty()
        && name.len() <= 100
        && name
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(ApiError::BadRequest(format!(
            "campaign name '{}': 1 to 100 letters, digits, '-', '_' or '.'",
            name.chars().take(100).collect::<String>()
        )))
    }
}

// ---- shared data ------------------------------------------------------------

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub(crate) struct ViewQuery {
    pub lang: Option<String>,
    pub profile: Option<String>,
}

impl ViewQuery {
    pub fn lang(&self, state: &SharedState) -> Result<Lang, ApiError> {
        match &self.lang {
            None => Ok(state.config.lang),
            Some(l) => Lang::from_query(l).ok_or_else(|| ApiError::BadRequest(format!("lang '{l}': en or zh-CN"))),
        }
    }

    pub fn profile(&self, state: &SharedState) -> Result<String, ApiError> {
        self.profile_named(&state.config.profile)
    }

    /// The profile asked for, else `default`, checked to be a name.
    pub fn profile_named(&self, default: &str) -> Result<String, ApiError> {
        let p = self.profile.clone().unwrap_or_else(|| default.to_string());
        if p.is_empty() || p.len() > 64 || !p.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
            return Err(ApiError::BadRequest(format!("profile '{p}'")));
        }
        Ok(p)
    }
}

/// The profile a campaign's pages show: the one asked for, else the
/// server's default when the campaign's latest finished run was judged
/// under it, else that run's own first profile (a campaign judged only
/// under cn-website must not look as if it had never run).
pub(crate) fn campaign_profile(
    store: &dyn Store,
    campaign: &str,
    asked: &ViewQuery,
    state: &crate::AppState,
) -> Result<String, ApiError> {
    let default = asked.profile_named(&state.config.profile)?;
    if asked.profile.is_some() {
        return Ok(default);
    }
    let Some((run, _)) = store
        .finished_runs_of(&format!("campaign:{campaign}"), 1)?
        .into_iter()
        .next()
    else {
        return Ok(default);
    };
    let profiles = store.run_profiles(run)?;
    Ok(if profiles.contains(&default) || profiles.is_empty() {
        default
    } else {
        profiles[0].clone()
    })
}

/// One finished run of a campaign with its overall rate.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct RunPoint {
    pub run: i64,
    pub started_at: String,
    pub targets: i64,
    pub pass: i64,
    pub rate: f64,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct CampaignHeadline {
    pub name: String,
    pub created_at: String,
    pub targets: i64,
    /// Oldest first, at most 24.
    pub runs: Vec<RunPoint>,
}

fn run_points(store: &dyn Store, campaign: &str, profile: &str, limit: i64) -> Result<Vec<RunPoint>, ApiError> {
    let mut points = Vec::new();
    for (run, started_at) in store.finished_runs_of(&format!("campaign:{campaign}"), limit)? {
        if let Some(all) = store.summary(run, profile, Some("all"))?.into_iter().next() {
            points.push(RunPoint {
                run,
                started_at,
                targets: all.targets,
                pass: all.pass,
                rate: all.pass as f64 / all.targets.max(1) as f64,
            });
        }
    }
    points.reverse();
    Ok(points)
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct Overview {
    pub profile: String,
    pub plan: String,
    pub plan_title: String,
    pub campaigns: Vec<CampaignHeadline>,
    pub milestones: Vec<Row>,
    /// (month, IPv6 share of bytes) from the collected traffic.
    pub traffic_share: Vec<(String, f64)>,
    pub active_users: Option<u64>,
}

pub(crate) fn overview(
    store: &dyn Store,
    traffic_store: &dyn v6scope_store::TrafficCounters,
    profile: &str,
    plan: &Plan,
    lang: Lang,
) -> Result<Overview, ApiError> {
    let mut campaigns = Vec::new();
    // Site support per category pooled over every campaign: latest and
    // previous run of each.
    let mut latest: BTreeMap<String, (i64, i64, i64)> = BTreeMap::new();
    let mut earlier: BTreeMap<String, (i64, i64, i64)> = BTreeMap::new();
    for v6scope_store::CampaignRow {
        name,
        created_at,
        targets,
    } in store.campaigns()?
    {
        let runs = run_points(store, &name, profile, 24)?;
        for (slot, point) in [(&mut latest, runs.last()), (&mut earlier, runs.iter().rev().nth(1))] {
            if let Some(p) = point {
                let day = parse_day(p.started_at.get(..10).unwrap_or_default()).unwrap_or(0);
                // By category key, so "CDN" in a campaign meets "CDN Top 5" in a plan.
                for s in store.summary(p.run, profile, Some("category"))? {
                    let e = slot
                        .entry(v6scope_report::plan::category_key(&s.key))
                        .or_insert((day, 0, 0));
                    e.0 = e.0.max(day);
                    e.1 += s.targets;
                    e.2 += s.pass;
                }
            }
        }
        campaigns.push(CampaignHeadline {
            name,
            created_at,
            targets,
            runs,
        });
    }
    let users = active_users(store)?;
    let milestones = rows(plan, lang.zh(), |m| match m.indicator {
        Indicator::SiteSupport => {
            let category = m.key().unwrap_or_default();
            let value = |map: &BTreeMap<String, (i64, i64, i64)>| {
                map.get(&category)
                    .map(|(day, n, pass)| ((*day, *pass as f64 / (*n).max(1) as f64), *n))
            };
            match value(&latest) {
                Some((latest, n)) => Measurement {
                    latest: Some(latest),
                    earlier: value(&earlier).map(|(v, _)| v),
                    population: Some(n),
                    note: if lang.zh() {
                        format!("{n} 个目标，评测标准 {profile}")
                    } else {
                        format!("{n} targets, profile {profile}")
                    },
                },
                None => Measurement {
                    note: lang.t("note_no_category").into(),
                    ..Default::default()
                },
            }
        }
        Indicator::ActiveUsers => match users {
            Some((day, n)) => Measurement {
                latest: Some((day, n as f64)),
                population: Some(n as i64),
                note: lang.t("note_users").into(),
                ..Default::default()
            },
            None => Measurement {
                note: lang.t("note_no_flows").into(),
                ..Default::default()
            },
        },
        _ => Measurement {
            note: lang.t("note_not_measured").into(),
            ..Default::default()
        },
    });
    Ok(Overview {
        profile: profile.into(),
        plan: plan.name.clone(),
        plan_title: if lang.zh() {
            plan.title_zh.clone()
        } else {
            plan.title_en.clone()
        },
        campaigns,
        milestones,
        traffic_share: traffic_share(traffic_store, Period::Month)?,
        active_users: users.map(|(_, n)| n),
    })
}

/// 30-day active IPv6 users up to the latest day collected (the report's
/// definition).
fn active_users(store: &dyn Store) -> Result<Option<(i64, u64)>, ApiError> {
    let figure = v6scope_report::monthly::active_users(store, parse_day("9999-12-31").unwrap_or(i64::MAX / 2))
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok(figure.map(|f| (parse_day(&f.last_day).unwrap_or(0), f.subscribers)))
}

fn traffic_share(store: &dyn v6scope_store::TrafficCounters, by: Period) -> Result<Vec<(String, f64)>, ApiError> {
    let mut per: BTreeMap<String, (i64, i64)> = BTreeMap::new();
    for t in store.traffic_by(by, None)? {
        let e = per.entry(t.period).or_default();
        if t.family == v6scope_model::Family::Ipv6 {
            e.1 += t.bytes;
        } else {
            e.0 += t.bytes;
        }
    }
    Ok(per
        .into_iter()
        .map(|(p, (v4, v6))| (p, v6 as f64 / (v4 + v6).max(1) as f64))
        .collect())
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct CampaignView {
    pub name: String,
    pub targets: i64,
    pub profile: String,
    pub runs: Vec<RunPoint>,
    pub latest_run: Option<i64>,
    pub by_category: Vec<Slice>,
    pub by_region: Vec<Slice>,
    pub by_organisation: Vec<Slice>,
    pub by_provider: Vec<Slice>,
    pub worst: Vec<TargetRow>,
    pub best: Vec<TargetRow>,
    pub changes: Vec<Change>,
    pub schedules: Vec<Schedule>,
    pub has_webhook: bool,
    /// Distinct categories and regions of the campaign (for filters).
    pub categories: Vec<String>,
    pub regions: Vec<String>,
}

fn campaign_exists(store: &dyn Store, name: &str) -> Result<i64, ApiError> {
    store
        .campaigns()?
        .into_iter()
        .find(|c| c.name == name)
        .map(|c| c.targets)
        .ok_or_else(|| ApiError::NotFound(format!("no campaign '{name}'")))
}

pub(crate) fn campaign(store: &dyn Store, name: &str, profile: &str) -> Result<CampaignView, ApiError> {
    let targets = campaign_exists(store, name)?;
    let runs = run_points(store, name, profile, 24)?;
    let latest_run = runs.last().map(|r| r.run);
    let mut view = CampaignView {
        name: name.into(),
        targets,
        profile: profile.into(),
        runs,
        latest_run,
        by_category: vec![],
        by_region: vec![],
        by_organisation: vec![],
        by_provider: vec![],
        worst: vec![],
        best: vec![],
        changes: vec![],
        schedules: store.schedules()?.into_iter().filter(|s| s.campaign == name).collect(),
        has_webhook: store.webhook(name)?.is_some(),
        categories: vec![],
        regions: vec![],
    };
    if let Some(run) = latest_run {
        for s in store.summary(run, profile, None)? {
            match s.dimension.as_str() {
                "category" => view.by_category.push(s),
                "region" => view.by_region.push(s),
                "organisation" => view.by_organisation.push(s),
                d if d.starts_with("provider") => view.by_provider.push(s),
                _ => {}
            }
        }
        view.categories = view.by_category.iter().map(|s| s.key.clone()).collect();
        view.regions = view.by_region.iter().map(|s| s.key.clone()).collect();
        view.worst = store.targets_page(run, profile, &TargetFilter::default(), 10, 0)?.0;
        view.best = store.best_targets(run, profile, 10)?;
        view.changes = store.changes(Some(run), None, 50)?;
    }
    Ok(view)
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub(crate) struct TargetsQuery {
    pub lang: Option<String>,
    pub profile: Option<String>,
    pub category: Option<String>,
    pub region: Option<String>,
    pub organisation: Option<String>,
    pub status: Option<String>,
    pub limit: Option<i64>,
    pub offset: Option<i64>,
}

impl TargetsQuery {
    pub fn view(&self) -> ViewQuery {
        ViewQuery {
            lang: self.lang.clone(),
            profile: self.profile.clone(),
        }
    }

    /// The list's filter; an empty field is no filter, a status that is not one is a 400.
    pub fn filter(&self) -> Result<TargetFilter, ApiError> {
        let keep = |v: &Option<String>| v.clone().filter(|s| !s.is_empty());
        let status = match keep(&self.status) {
            None => None,
            Some(s) => Some(s.parse::<v6scope_model::Status>().map_err(|_| {
                ApiError::BadRequest(format!(
                    "status '{s}': pass, fail, warn, info, not_applicable, not_testable or error"
                ))
            })?),
        };
        Ok(TargetFilter {
            category: keep(&self.category),
            region: keep(&self.region),
            organisation: keep(&self.organisation),
            status,
        })
    }
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct TargetsPage {
    pub run: Option<i64>,
    pub total: i64,
    pub limit: i64,
    pub offset: i64,
    pub targets: Vec<TargetRow>,
}

pub(crate) fn targets(store: &dyn Store, name: &str, profile: &str, q: &TargetsQuery) -> Result<TargetsPage, ApiError> {
    const STATUSES: [&str; 7] = [
        "pass",
        "fail",
        "warn",
        "error",
        "not_testable",
        "not_applicable",
        "info",
    ];
    if let Some(st) = q.status.as_deref().filter(|s| !s.is_empty())
        && !STATUSES.contains(&st)
    {
        return Err(ApiError::BadRequest(format!(
            "status '{st}': one of {}",
            STATUSES.join(", ")
        )));
    }
    campaign_exists(store, name)?;
    let limit = q.limit.unwrap_or(100);
    let offset = q.offset.unwrap_or(0);
    if !(1..=1000).contains(&limit) || offset < 0 {
        return Err(ApiError::BadRequest("limit 1..1000, offset ≥ 0".into()));
    }
    let run = store
        .finished_runs_of(&format!("campaign:{name}"), 1)?
        .first()
        .map(|r| r.0);
    let Some(run) = run else {
        return Ok(TargetsPage {
            run: None,
            total: 0,
            limit,
            offset,
            targets: vec![],
        });
    };
    let (targets, total) = store.targets_page(run, profile, &q.filter()?, limit, offset)?;
    Ok(TargetsPage {
        run: Some(run),
        total,
        limit,
        offset,
        targets,
    })
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct FailingLink {
    pub url: String,
    pub level: u8,
    pub v4_ok: Option<bool>,
    pub v6_ok: Option<bool>,
    pub v6_error: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct SiteView {
    pub domain: String,
    pub campaign: Option<String>,
    pub run: Option<i64>,
    pub verdicts: Vec<Verdict>,
    pub timeline: Vec<TimelinePoint>,
    pub changes: Vec<Change>,
    pub failing_links: Vec<FailingLink>,
    /// When the run was evaluated from several vantages: each one's
    /// verdicts (those the label selector takes).
    pub vantages: Vec<SiteVantage>,
}

/// One vantage's verdicts for a target of a fleet run.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct SiteVantage {
    pub vantage: String,
    pub agent: String,
    /// The delivering agent's labels (isp, region, access…).
    pub labels: BTreeMap<String, String>,
    pub verdicts: Vec<Verdict>,
}

/// A `label` query parameter: a vantage selector (`isp=B`, `region=north,access=mobile`).
pub(crate) fn label_selector(label: Option<&str>) -> Result<Option<v6scope_scan::Selector>, ApiError> {
    match label.filter(|l| !l.is_empty()) {
        None => Ok(None),
        Some(l) if l.chars().count() > 200 => Err(ApiError::BadRequest("label: at most 200 characters".into())),
        Some(l) => l
            .parse()
            .map(Some)
            .map_err(|e| ApiError::BadRequest(format!("label {e}"))),
    }
}

pub(crate) fn site(
    store: &dyn Store,
    domain: &str,
    campaign: Option<&str>,
    label: Option<&str>,
) -> Result<SiteView, ApiError> {
    if domain.is_empty() || domain.len() > 253 {
        return Err(ApiError::BadRequest("domain: 1 to 253 characters".into()));
    }
    let selector = label_selector(label)?;
    // The campaign named, or the latest campaign run that has the domain.
    let campaigns: Vec<String> = match campaign {
        Some(c) => {
            campaign_exists(store, c)?;
            vec![c.to_string()]
        }
        None => store.campaigns()?.into_iter().map(|c| c.name).collect(),
    };
    let mut found = None;
    for c in &campaigns {
        for (run, _) in store.finished_runs_of(&format!("campaign:{c}"), 1)? {
            if let Some(idx) = store.target_index(run, domain)?
                && found.as_ref().is_none_or(|(r, _, _)| run > *r)
            {
                found = Some((run, idx, c.clone()));
            }
        }
    }
    let Some((run, idx, campaign)) = found else {
        return Err(ApiError::NotFound(format!("'{domain}' is in no finished campaign run")));
    };
    let profiles = store.run_profiles(run)?;
    let mut verdicts = Vec::new();
    for p in &profiles {
        if let Some(v) = store.verdict(run, idx, p)? {
            verdicts.push(v);
        }
    }
    let mut failing_links = Vec::new();
    if let Some(site) = store.observation(run, idx)?.and_then(|o| o.site) {
        for page in site.pages {
            let v4 = page.v4.as_ref().map(|f| f.ok);
            let v6 = page.v6.as_ref().map(|f| f.ok);
            if v6 != Some(true) && failing_links.len() < 200 {
                failing_links.push(FailingLink {
                    v6_error: page.v6.and_then(|f| f.error).map(|e| e.to_string()),
                    url: page.url,
                    level: page.level,
                    v4_ok: v4,
                    v6_ok: v6,
                });
            }
        }
    }
    let mut vantages = Vec::new();
    if !store.run_vantages(run)?.is_empty() {
        let labels: HashMap<String, BTreeMap<String, String>> =
            store.agents()?.into_iter().map(|a| (a.name, a.labels)).collect();
        for r in store.vantage_results(run, idx)? {
            let labels = labels.get(&r.agent).cloned().unwrap_or_default();
            if selector.as_ref().is_none_or(|s| s.matches(&r.vantage, &labels)) {
                vantages.push(SiteVantage {
                    vantage: r.vantage,
                    agent: r.agent,
                    labels,
                    verdicts: r.verdicts,
                });
            }
        }
    }
    Ok(SiteView {
        domain: domain.into(),
        vantages,
        timeline: store.timeline(&format!("campaign:{campaign}"), domain)?,
        changes: store.changes(None, Some(domain), 100)?,
        campaign: Some(campaign),
        run: Some(run),
        verdicts,
        failing_links,
    })
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub(crate) struct TrafficQuery {
    pub lang: Option<String>,
    pub by: Option<String>,
    pub group: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct TrafficRowView {
    pub period: String,
    pub group: String,
    pub bytes_v4: i64,
    pub bytes_v6: i64,
    pub share_v6: f64,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct TrafficView {
    pub by: String,
    pub group: Option<String>,
    pub rows: Vec<TrafficRowView>,
    pub active_users: Option<u64>,
    /// Records whose exporter states no sampling rate: an IPv6 share per
    /// exporter, unscaled, never a volume.
    pub unscaled: Vec<UnscaledRowView>,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct UnscaledRowView {
    pub period: String,
    pub exporter: String,
    pub records: i64,
    pub share_v6: f64,
}

pub(crate) fn traffic(
    users_store: &dyn Store,
    store: &dyn v6scope_store::TrafficCounters,
    q: &TrafficQuery,
) -> Result<TrafficView, ApiError> {
    if let Some(l) = &q.lang
        && Lang::from_query(l).is_none()
    {
        return Err(ApiError::BadRequest(format!("lang '{l}': en or zh-CN")));
    }
    let by = q.by.clone().unwrap_or_else(|| "day".into());
    if !matches!(by.as_str(), "minute" | "hour" | "day" | "month") {
        return Err(ApiError::BadRequest(format!("by '{by}': minute, hour, day or month")));
    }
    let group = match q.group.as_deref().filter(|g| !g.is_empty()) {
        None => None,
        Some(g) => Some(TrafficGroup::parse(g).ok_or_else(|| {
            ApiError::BadRequest(format!(
                "group '{g}': exporter, interface, asn, organisation, region or source"
            ))
        })?),
    };
    let period = Period::parse(&by);
    let unscaled_totals = store.traffic_unscaled(period)?;
    let mut per: BTreeMap<(String, String), (i64, i64)> = BTreeMap::new();
    for t in store.traffic_by(period, group)? {
        let e = per.entry((t.period, t.group)).or_default();
        if t.family == v6scope_model::Family::Ipv6 {
            e.1 += t.bytes;
        } else {
            e.0 += t.bytes;
        }
    }
    Ok(TrafficView {
        by,
        group: group.and(q.group.clone()),
        rows: per
            .into_iter()
            .map(|((period, group), (v4, v6))| TrafficRowView {
                period,
                group,
                bytes_v4: v4,
                bytes_v6: v6,
                share_v6: v6 as f64 / (v4 + v6).max(1) as f64,
            })
            .collect(),
        active_users: active_users(users_store)?.map(|(_, n)| n),
        unscaled: {
            let mut waiting: BTreeMap<(String, String), (i64, i64, i64)> = BTreeMap::new();
            for t in unscaled_totals {
                let e = waiting.entry((t.period, t.group)).or_default();
                if t.family == v6scope_model::Family::Ipv6 {
                    e.1 += t.bytes;
                } else {
                    e.0 += t.bytes;
                }
                e.2 += t.records;
            }
            waiting
                .into_iter()
                .map(|((period, exporter), (v4, v6, records))| UnscaledRowView {
                    period,
                    exporter,
                    records,
                    share_v6: v6 as f64 / (v4 + v6).max(1) as f64,
                })
                .collect()
        },
    })
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct ProviderView {
    pub provider: String,
    pub role: String,
    pub targets: i64,
    pub pass: i64,
    /// Targets whose part served by this provider has no IPv6.
    pub ipv4_only: i64,
}

/// MIIT's CDN and cloud indicators from the campaign's latest finished run
/// (empty unless it was evaluated from agents).
pub(crate) fn edge_indicators(
    store: &dyn Store,
    name: &str,
) -> Result<v6scope_report::edges::EdgeIndicators, ApiError> {
    let Some((run, _)) = store.finished_runs_of(&format!("campaign:{name}"), 1)?.pop() else {
        return Ok(Default::default());
    };
    Ok(v6scope_report::edges::indicators(&store.edges(run)?))
}

pub(crate) fn providers(store: &dyn Store, name: &str, profile: &str) -> Result<Vec<ProviderView>, ApiError> {
    campaign_exists(store, name)?;
    let Some((run, _)) = store.finished_runs_of(&format!("campaign:{name}"), 1)?.pop() else {
        return Ok(vec![]);
    };
    let mut out: BTreeMap<(String, String), ProviderView> = BTreeMap::new();
    for s in store.summary(run, profile, None)? {
        let (v4only, role) = match s.dimension.split_once(':') {
            Some(("provider", role)) => (false, role),
            Some(("provider_v4only", role)) => (true, role),
            _ => continue,
        };
        let e = out
            .entry((s.key.clone(), role.to_string()))
            .or_insert_with(|| ProviderView {
                provider: s.key.clone(),
                role: role.to_string(),
                targets: 0,
                pass: 0,
                ipv4_only: 0,
            });
        if v4only {
            e.ipv4_only = s.targets;
        } else {
            e.targets = s.targets;
            e.pass = s.pass;
        }
    }
    let mut list: Vec<ProviderView> = out.into_values().collect();
    list.sort_by(|a, b| b.ipv4_only.cmp(&a.ipv4_only).then(b.targets.cmp(&a.targets)));
    Ok(list)
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct RunView {
    pub id: i64,
    pub started_at: String,
    pub finished_at: Option<String>,
    pub source: String,
    pub profiles: Vec<String>,
    pub targets: i64,
    pub done: i64,
}

pub(crate) fn runs(state: &crate::AppState, store: &dyn Store) -> Result<Vec<RunView>, ApiError> {
    let mut out = Vec::new();
    for r in store.run_list(200)? {
        let counts = state.run_counts(store, r.id, r.finished_at.is_some())?;
        let (targets, done) = (counts.targets, counts.observations);
        out.push(RunView {
            id: r.id,
            started_at: r.started_at,
            finished_at: r.finished_at,
            source: r.source,
            profiles: r.profiles,
            targets,
            done,
        });
    }
    Ok(out)
}

// ---- handlers ---------------------------------------------------------------

async fn api_overview(
    State(state): State<SharedState>,
    Query(q): Query<ViewQuery>,
) -> Result<Json<Overview>, ApiError> {
    let (lang, profile, plan) = (q.lang(&state)?, q.profile(&state)?, state.default_plan()?);
    let st = state.clone();
    Ok(Json(
        state
            .store(move |s| overview(s, st.counters(s), &profile, &plan, lang))
            .await?,
    ))
}

#[derive(Serialize)]
struct CampaignItem {
    name: String,
    created_at: String,
    targets: i64,
}

async fn api_campaigns(State(state): State<SharedState>) -> Result<Json<Vec<CampaignItem>>, ApiError> {
    let list = state.store(|s| Ok(s.campaigns()?)).await?;
    Ok(Json(
        list.into_iter()
            .map(|c| CampaignItem {
                name: c.name,
                created_at: c.created_at,
                targets: c.targets,
            })
            .collect(),
    ))
}

async fn api_campaign(
    State(state): State<SharedState>,
    Path(name): Path<String>,
    Query(q): Query<ViewQuery>,
) -> Result<Json<CampaignView>, ApiError> {
    q.profile(&state)?;
    let st = state.clone();
    Ok(Json(
        state
            .store(move |s| campaign(s, &name, &campaign_profile(s, &name, &q, &st)?))
            .await?,
    ))
}

/// Parses a campaign file body: CSV with a header (domain, category,
/// organisation, region) or one domain per line. Any bad line rejects the
/// whole upload with its line number, so a campaign is never half-imported.
pub(crate) fn parse_campaign(body: &[u8], max: usize) -> Result<Vec<Target>, ApiError> {
    let text = std::str::from_utf8(body).map_err(|e| ApiError::BadRequest(format!("the body is not UTF-8: {e}")))?;
    let parsed = v6scope_model::targets::parse(text);
    if !parsed.bad.is_empty() {
        let shown: Vec<String> = parsed
            .bad
            .iter()
            .take(20)
            .map(|b| format!("line {}: {}", b.line, b.reason))
            .collect();
        return Err(ApiError::Unprocessable(format!(
            "{} bad line(s): {}",
            parsed.bad.len(),
            shown.join("; ")
        )));
    }
    if parsed.targets.is_empty() {
        return Err(ApiError::Unprocessable("no targets in the body".into()));
    }
    if parsed.targets.len() > max {
        return Err(ApiError::Unprocessable(format!(
            "{} targets: this server accepts at most {max}",
            parsed.targets.len()
        )));
    }
    Ok(parsed.targets)
}

async fn api_put_campaign(
    State(state): State<SharedState>,
    Path(name): Path<String>,
    AuthorisedBody(body): AuthorisedBody,
) -> Result<Response, ApiError> {
    check_name(&name)?;
    let targets = parse_campaign(&body, state.config.max_campaign_targets)?;
    let n = targets.len();
    let mut by_category: BTreeMap<String, usize> = BTreeMap::new();
    for t in &targets {
        *by_category.entry(t.category.clone().unwrap_or_default()).or_default() += 1;
    }
    let created = state
        .store(move |s| {
            let existed = s.campaign_exists(&name)?;
            s.put_campaign(&name, &targets)?;
            Ok(!existed)
        })
        .await?;
    let status = if created { StatusCode::CREATED } else { StatusCode::OK };
    Ok((
        status,
        Json(serde_json::json!({"targets": n, "categories": by_category})),
    )
        .into_response())
}

async fn api_delete_campaign(
    State(state): State<SharedState>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    authorise(&state, &headers)?;
    let deleted = state.store(move |s| Ok(s.delete_campaign(&name)?)).await?;
    if deleted {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound("no such campaign".into()))
    }
}

async fn api_targets(
    State(state): State<SharedState>,
    Path(name): Path<String>,
    Query(q): Query<TargetsQuery>,
) -> Result<Json<TargetsPage>, ApiError> {
    q.view().profile(&state)?;
    let st = state.clone();
    Ok(Json(
        state
            .store(move |s| targets(s, &name, &campaign_profile(s, &name, &q.view(), &st)?, &q))
            .await?,
    ))
}

/// What a run or a schedule evaluates: profiles and whether to crawl.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct ScanSpec {
    pub profiles: Vec<String>,
    pub crawl: bool,
    /// A JSON number: `8.0` is the integer 8, as JSON Schema counts it.
    pub samples: Option<f64>,
    /// Agent selectors: the run is evaluated from the fleet's vantages.
    pub agents: Vec<String>,
    /// How the vantages' verdicts combine: all, majority or any.
    pub rule: Option<String>,
}

/// `all`, or up to 8 KEY=VALUE pairs of 1 to 64 letters, digits, '.', '_' or
/// '-', each starting with a letter or digit.
fn agent_selector_ok(selector: &str) -> bool {
    // Starting with a letter or digit, a value can never read as a flag.
    let word = |w: &str| {
        (1..=64).contains(&w.len())
            && w.starts_with(|c: char| c.is_ascii_alphanumeric())
            && w.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
    };
    selector == "all"
        || (selector.split(',').count() <= 8
            && selector
                .split(',')
                .all(|pair| pair.split_once('=').is_some_and(|(k, v)| word(k) && word(v))))
}

impl ScanSpec {
    /// The `scan` arguments, from a fixed vocabulary: API callers never pass
    /// raw flags to the scanner.
    pub(crate) fn args(&self) -> Result<Vec<String>, ApiError> {
        let mut args = Vec::new();
        for (i, p) in self.profiles.iter().enumerate() {
            if self.profiles[..i].contains(p) {
                return Err(ApiError::BadRequest(format!("profile '{p}' is named twice")));
            }
            let known: Vec<String> = v6scope_assess::Profile::builtin().into_iter().map(|p| p.name).collect();
            if !known.contains(p) {
                return Err(ApiError::BadRequest(format!(
                    "profile '{p}': one of {}",
                    known.join(", ")
                )));
            }
            args.extend(["--profile".into(), p.clone()]);
        }
        if self.crawl {
            args.push("--crawl".into());
        }
        if let Some(n) = self.samples {
            if n.fract() != 0.0 || !(1.0..=20.0).contains(&n) {
                return Err(ApiError::BadRequest("samples: an integer from 1 to 20".into()));
            }
            let n = n as u32;
            args.extend(["--samples".into(), n.to_string()]);
        }
        if self.agents.len() > 8 {
            return Err(ApiError::BadRequest("agents: 8 selectors at most".into()));
        }
        for (i, a) in self.agents.iter().enumerate() {
            if !agent_selector_ok(a) {
                return Err(ApiError::BadRequest(format!(
                    "agents: '{}' is not 'all' or KEY=VALUE[,KEY=VALUE…]",
                    a.chars().take(100).collect::<String>()
                )));
            }
            if self.agents[..i].contains(a) {
                return Err(ApiError::BadRequest(format!("agents: '{a}' is named twice")));
            }
            args.push(format!("--agents={a}"));
        }
        if let Some(rule) = &self.rule {
            if !matches!(rule.as_str(), "all" | "majority" | "any") {
                return Err(ApiError::BadRequest("rule: all, majority or any".into()));
            }
            args.push(format!("--rule={rule}"));
        }
        Ok(args)
    }
}

fn json_body<T: serde::de::DeserializeOwned + Default>(body: &[u8]) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(body).map_err(|e| ApiError::BadRequest(format!("JSON body: {e}")))
}

async fn api_trigger(
    State(state): State<SharedState>,
    Path(name): Path<String>,
    AuthorisedBody(body): AuthorisedBody,
) -> Result<Response, ApiError> {
    let spec: ScanSpec = json_body(&body)?;
    let args = spec.args()?;
    let job = state
        .store(move |s| {
            campaign_exists(s, &name)?;
            let id = s.queue_job(&name, &args, "api")?;
            Ok(s.job(id)?)
        })
        .await?;
    state.wake.notify_one();
    Ok((StatusCode::ACCEPTED, Json(job)).into_response())
}

async fn api_schedules(
    State(state): State<SharedState>,
    Path(name): Path<String>,
) -> Result<Json<Vec<Schedule>>, ApiError> {
    Ok(Json(
        state
            .store(move |s| {
                campaign_exists(s, &name)?;
                Ok(s.schedules()?.into_iter().filter(|x| x.campaign == name).collect())
            })
            .await?,
    ))
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct ScheduleSpec {
    cron: String,
    #[serde(flatten)]
    scan: ScanSpecFlat,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
struct ScanSpecFlat {
    profiles: Vec<String>,
    crawl: bool,
    samples: Option<f64>,
    agents: Vec<String>,
    rule: Option<String>,
}

async fn api_add_schedule(
    State(state): State<SharedState>,
    Path(name): Path<String>,
    AuthorisedBody(body): AuthorisedBody,
) -> Result<Response, ApiError> {
    let spec: ScheduleSpec =
        serde_json::from_slice(&body).map_err(|e| ApiError::BadRequest(format!("JSON body: {e}")))?;
    parse_cron(&spec.cron)?;
    let args = ScanSpec {
        profiles: spec.scan.profiles,
        crawl: spec.scan.crawl,
        samples: spec.scan.samples,
        agents: spec.scan.agents,
        rule: spec.scan.rule,
    }
    .args()?;
    let schedule = state
        .store(move |s| {
            campaign_exists(s, &name)?;
            let id = s.add_schedule(&name, &spec.cron, &args, now())?;
            Ok(s.schedules()?.into_iter().find(|x| x.id == id))
        })
        .await?;
    Ok((StatusCode::CREATED, Json(schedule)).into_response())
}

async fn api_delete_schedule(
    State(state): State<SharedState>,
    Path(id): Path<i64>,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    authorise(&state, &headers)?;
    if state.store(move |s| Ok(s.delete_schedule(id)?)).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound(format!("no schedule {id}")))
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct WebhookSpec {
    url: Option<String>,
}

async fn api_put_webhook(
    State(state): State<SharedState>,
    Path(name): Path<String>,
    AuthorisedBody(body): AuthorisedBody,
) -> Result<StatusCode, ApiError> {
    // An empty body is a mistake, not a delete: deleting says `{"url": null}`.
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::BadRequest(
            "a JSON body is required: {\"url\": \"https://...\"}, or {\"url\": null} to remove the webhook".into(),
        ));
    }
    let spec: WebhookSpec = json_body(&body)?;
    if !serde_json::from_slice::<serde_json::Value>(&body).is_ok_and(|v| v.get("url").is_some()) {
        return Err(ApiError::BadRequest(
            "the body must name \"url\" (a URL, or null to remove the webhook)".into(),
        ));
    }
    if let Some(u) = &spec.url {
        let timeout = std::time::Duration::from_secs(state.config.webhook_timeout_seconds);
        crate::webhook::vet(u, &state.webhook_policy(), timeout)
            .await
            .map_err(ApiError::BadRequest)?;
    }
    state
        .store(move |s| {
            campaign_exists(s, &name)?;
            s.set_webhook(&name, spec.url.as_deref())?;
            Ok(())
        })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn api_providers(
    State(state): State<SharedState>,
    Path(name): Path<String>,
    Query(q): Query<ViewQuery>,
) -> Result<Json<Vec<ProviderView>>, ApiError> {
    q.profile(&state)?;
    let st = state.clone();
    Ok(Json(
        state
            .store(move |s| providers(s, &name, &campaign_profile(s, &name, &q, &st)?))
            .await?,
    ))
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub(crate) struct SiteQuery {
    pub lang: Option<String>,
    pub campaign: Option<String>,
    /// Only the vantages this selector takes (`isp=B`).
    pub label: Option<String>,
}

async fn api_site(
    State(state): State<SharedState>,
    Path(domain): Path<String>,
    Query(q): Query<SiteQuery>,
) -> Result<Json<SiteView>, ApiError> {
    Ok(Json(
        state
            .store(move |s| {
                site(
                    s,
                    &domain.to_ascii_lowercase(),
                    q.campaign.as_deref(),
                    q.label.as_deref(),
                )
            })
            .await?,
    ))
}

async fn api_runs(State(state): State<SharedState>) -> Result<Json<Vec<RunView>>, ApiError> {
    let st = state.clone();
    Ok(Json(state.store(move |s| runs(&st, s)).await?))
}

async fn api_jobs(State(state): State<SharedState>) -> Result<Json<Vec<Job>>, ApiError> {
    Ok(Json(state.store(|s| Ok(s.jobs(200)?)).await?))
}

async fn api_traffic(
    State(state): State<SharedState>,
    Query(q): Query<TrafficQuery>,
) -> Result<Json<TrafficView>, ApiError> {
    let st = state.clone();
    Ok(Json(state.store(move |s| traffic(s, st.counters(s), &q)).await?))
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub(crate) struct ReportQuery {
    pub campaign: Option<String>,
    pub period: Option<String>,
    pub plan: Option<String>,
    pub profile: Option<String>,
    pub lang: Option<String>,
    pub format: Option<String>,
}

pub(crate) async fn api_report(
    State(state): State<SharedState>,
    Query(q): Query<ReportQuery>,
) -> Result<Response, ApiError> {
    use v6scope_report::monthly;
    let view = ViewQuery {
        lang: q.lang.clone(),
        profile: q.profile.clone(),
    };
    let lang = view.lang(&state)?;
    let request = monthly::ReportRequest {
        campaign: q.campaign.clone(),
        period: q.period.clone(),
        plan: match &q.plan {
            Some(name) => state
                .plans
                .get(name)
                .map_err(|e| ApiError::NotFound(e.to_string()))?
                .clone(),
            None => state.default_plan()?,
        },
        profile: view.profile(&state)?,
        zh: lang.zh(),
    };
    let format = q.format.clone().unwrap_or_else(|| "html".into());
    let (content_type, extension) = match format.as_str() {
        "html" => ("text/html; charset=utf-8", "html"),
        "md" => ("text/markdown; charset=utf-8", "md"),
        "json" => ("application/json", "json"),
        "csv" => ("text/csv; charset=utf-8", "csv"),
        other => return Err(ApiError::BadRequest(format!("format '{other}': html, md, json or csv"))),
    };
    let st = state.clone();
    let text = state
        .store(move |s| {
            let report = monthly::build_with(s, st.counters(s), &request).map_err(|e| {
                if e.is_not_found() {
                    ApiError::NotFound(e.to_string())
                } else if e.is_usage() {
                    ApiError::Unprocessable(e.to_string())
                } else {
                    ApiError::Internal(e.to_string())
                }
            })?;
            Ok(match format.as_str() {
                "md" => monthly::markdown(&report),
                "json" => monthly::json(&report),
                "csv" => monthly::csv(&report),
                _ => monthly::html(&report),
            })
        })
        .await?;
    let name = format!(
        "v6scope-report-{}-{}.{extension}",
        q.campaign.as_deref().unwrap_or("all"),
        q.period.as_deref().unwrap_or("latest")
    )
    .replace(
        |c: char| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_')),
        "_",
    );
    Ok((
        [
            (header::CONTENT_TYPE, content_type.to_string()),
            (header::CONTENT_DISPOSITION, format!("inline; filename=\"{name}\"")),
        ],
        text,
    )
        .into_response())
}

/// OpenMetrics text as the Prometheus text format 0.0.4: a counter's HELP
/// and TYPE name its `_total` sample, and there is no `# EOF` or `# UNIT`.
fn classic_text_format(openmetrics: &str) -> String {
    let counters: std::collections::HashSet<&str> = openmetrics
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.strip_suffix(" counter"))
        .collect();
    let mut out = String::with_capacity(openmetrics.len());
    for line in openmetrics.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        let meta = ["# HELP ", "# TYPE "].into_iter().find(|p| line.starts_with(p));
        match meta {
            Some(prefix) => {
                let rest = &line[prefix.len()..];
                let (name, tail) = rest.split_once(' ').unwrap_or((rest, ""));
                let name = if counters.contains(name) {
                    format!("{name}_total")
                } else {
                    name.to_string()
                };
                out.push_str(&format!("{prefix}{name} {tail}\n"));
            }
            None => {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    out
}

async fn metrics(State(state): State<SharedState>, headers: HeaderMap) -> Result<Response, ApiError> {
    let st = state.clone();
    let (c, probes, errors, agents, collectors) = state
        .store(move |s| {
            let agents = s.agents()?;
            let collectors = s.collectors()?;
            let c = s.counters()?;
            let (mut probes, mut errors) = (0, 0);
            for r in s.run_list(i64::MAX)? {
                let counts = st.run_counts(s, r.id, r.finished_at.is_some())?;
                let (done, error) = (counts.observations, counts.errors);
                probes += done;
                errors += error;
            }
            Ok((c, probes, errors, agents, collectors))
        })
        .await?;
    let m = &state.metrics;
    crate::agents::export(&state, &agents);
    crate::collectors::export(&state, &collectors);
    m.runs.set(c.runs);
    m.runs_finished.set(c.runs_finished);
    m.probes.set(probes);
    m.errors.set(errors);
    m.queue_depth.set(c.jobs_queued);
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &m.registry)
        .map_err(|e| ApiError::Internal(format!("metrics: {e}")))?;
    // Prometheus asks for OpenMetrics; other scrapers and promtool read the
    // classic text format.
    let openmetrics = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("application/openmetrics-text"));
    let (content_type, text) = if openmetrics {
        ("application/openmetrics-text; version=1.0.0; charset=utf-8", text)
    } else {
        ("text/plain; version=0.0.4; charset=utf-8", classic_text_format(&text))
    };
    Ok(([(header::CONTENT_TYPE, content_type)], text).into_response())
}

#[cfg(test)]
mod agent_selector_tests {
    use super::*;

    #[test]
    fn schedules_name_vantages_from_a_fixed_vocabulary() {
        for ok in ["all", "isp=A", "isp=cmcc,region=beijing", "vantage=isp-a.bj"] {
            assert!(agent_selector_ok(ok), "{ok}");
        }
        for bad in [
            "", "isp", "isp=", "=A", "isp=A,", "isp=A;rm", "--db=x", "isp=-x", "isp=A B",
        ] {
            assert!(!agent_selector_ok(bad), "{bad}");
        }
        let spec = ScanSpec {
            agents: vec!["isp=A".into()],
            rule: Some("majority".into()),
            ..Default::default()
        };
        assert_eq!(spec.args().unwrap(), ["--agents=isp=A", "--rule=majority"]);
        let bad_rule = ScanSpec {
            rule: Some("most".into()),
            ..Default::default()
        };
        assert!(bad_rule.args().is_err());
    }
}
