//! The operator reporting interface: carriers submit their measurement
//! points' figures (JSON or CSV) with their collector token; every row is
//! checked before anything is stored; a correction is the next version of
//! its row and the history stays. `/api/operators` and the operators page
//! show the national indicators against the plan.

use crate::{ApiError, SharedState};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{FromRequest, Query, Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use maud::html;
use v6scope_report::operators::{self, OperatorMonth, RowError, Submission};
use v6scope_store::{CollectorRow, OperatorFigureRow};

pub(crate) fn api_routes() -> Router<SharedState> {
    Router::new()
        .route("/api/operator-reports", get(history).post(submit))
        .route("/api/operator-reports/template.csv", get(template))
        .route("/api/operators", get(indicators))
}

pub(crate) fn page_routes() -> Router<SharedState> {
    Router::new()
        .route("/operators", get(page))
        .route("/operators/upload", axum::routing::post(upload_form))
}

#[derive(serde::Deserialize)]
pub(crate) struct UploadForm {
    csv: String,
    /// The carrier's collector token: the rows are that collector's operator's.
    token: String,
    lang: Option<String>,
}

/// The operators page's CSV upload: the same checks and versions as the API.
async fn upload_form(State(state): State<SharedState>, axum::Form(form): axum::Form<UploadForm>) -> Response {
    let lang = crate::pages::lang_of(&state, form.lang.as_deref()).unwrap_or(state.config.lang);
    let hash = crate::token_hash(form.token.trim());
    let collector = match state.store(move |s| Ok(s.collector_by_token(&hash)?)).await {
        Ok(Some(c)) => c,
        Ok(None) => return crate::pages::error_page(lang, ApiError::Unauthorized),
        Err(e) => return crate::pages::error_page(lang, e),
    };
    let checked = operators::parse_csv(&form.csv).and_then(|rows| operators::validate(&rows));
    let figures = match checked {
        Ok(f) => f,
        Err(errors) => {
            let body = html! {
                p.error { (lang.t("rows_refused")) }
                ul #upload-errors { @for e in &errors { li data-row=(e.row) { (lang.t("row")) " " (e.row) ": " (e.error) } } }
                p { a href=(format!("/operators?lang={}", lang.code())) { (lang.t("operators")) } }
            };
            let page = crate::pages::page(lang, "/operators", lang.t("operators_title"), body);
            return (StatusCode::UNPROCESSABLE_ENTITY, page).into_response();
        }
    };
    let (operator, name) = (collector.operator, collector.name);
    match state
        .store(move |s| Ok(s.submit_operator_figures(&operator, &name, "csv", &figures)?))
        .await
    {
        Ok(_) => axum::response::Redirect::to(&format!("/operators?lang={}", lang.code())).into_response(),
        Err(e) => crate::pages::error_page(lang, e),
    }
}

/// A submission: the collector token is checked before the body is read.
struct ReportCall {
    collector: CollectorRow,
    csv: bool,
    body: Bytes,
}

impl FromRequest<SharedState> for ReportCall {
    type Rejection = Response;

    async fn from_request(request: Request, state: &SharedState) -> Result<Self, Self::Rejection> {
        let collector = crate::collectors::collector_of(request.headers(), state).await?;
        let content_type = request
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_ascii_lowercase();
        let csv = if content_type.starts_with("text/csv") {
            true
        } else if content_type.starts_with("application/json") {
            false
        } else {
            return Err((
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                axum::Json(serde_json::json!({"error": "send application/json or text/csv"})),
            )
                .into_response());
        };
        let body = Bytes::from_request(request, state)
            .await
            .map_err(IntoResponse::into_response)?;
        Ok(ReportCall { collector, csv, body })
    }
}

fn rejected(message: &str, rows: Vec<RowError>) -> Response {
    (
        StatusCode::UNPROCESSABLE_ENTITY,
        axum::Json(serde_json::json!({"error": message, "rows": rows})),
    )
        .into_response()
}

async fn submit(State(state): State<SharedState>, call: ReportCall) -> Result<Response, ApiError> {
    let ReportCall { collector, csv, body } = call;
    let rows = if csv {
        let Ok(text) = std::str::from_utf8(&body) else {
            return Ok(rejected("the CSV is not UTF-8", Vec::new()));
        };
        match operators::parse_csv(text) {
            Ok(rows) => rows,
            Err(errors) => return Ok(rejected("rows that cannot be read; nothing was stored", errors)),
        }
    } else {
        match serde_json::from_slice::<Submission>(&body) {
            Ok(s) => s.rows.into_iter().enumerate().map(|(i, r)| (i + 1, r)).collect(),
            Err(e) => return Err(ApiError::BadRequest(format!("the body: {e}"))),
        }
    };
    let figures = match operators::validate(&rows) {
        Ok(f) => f,
        Err(errors) => return Ok(rejected("rows with errors; nothing was stored", errors)),
    };
    let (operator, name) = (collector.operator.clone(), collector.name.clone());
    let format = if csv { "csv" } else { "json" };
    let count = figures.len();
    let (submission, versions) = state
        .store(move |s| Ok(s.submit_operator_figures(&operator, &name, format, &figures)?))
        .await?;
    let corrected = versions.iter().filter(|v| **v > 1).count();
    Ok((
        StatusCode::CREATED,
        axum::Json(serde_json::json!({
            "submission": submission,
            "operator": collector.operator,
            "rows": count,
            "versions": versions,
            "corrections": corrected,
        })),
    )
        .into_response())
}

async fn template() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"operator-report-template.csv\"",
            ),
        ],
        operators::csv_template(),
    )
        .into_response()
}

#[derive(serde::Deserialize)]
pub(crate) struct RangeQuery {
    /// First month, "YYYY-MM" (default: twelve months before `until`).
    from: Option<String>,
    /// Last month, "YYYY-MM" (default: this month).
    until: Option<String>,
    lang: Option<String>,
}

fn month_ok(text: &str) -> bool {
    text.len() == 7
        && text.as_bytes()[4] == b'-'
        && text.bytes().enumerate().all(|(i, b)| i == 4 || b.is_ascii_digit())
        && matches!(
            &text[5..],
            "01" | "02" | "03" | "04" | "05" | "06" | "07" | "08" | "09" | "10" | "11" | "12"
        )
}

fn range(q: &RangeQuery) -> Result<(String, String), ApiError> {
    let now = chrono::Utc::now();
    let until = q.until.clone().unwrap_or_else(|| now.format("%Y-%m").to_string());
    if !month_ok(&until) {
        return Err(ApiError::BadRequest("until: a month as YYYY-MM".into()));
    }
    let from = match &q.from {
        Some(f) => f.clone(),
        None => {
            let (y, m): (i32, i32) = (until[..4].parse().unwrap_or(2000), until[5..].parse().unwrap_or(1));
            // Never before year 0: `until=0000-01` starts there.
            let back = (y * 12 + m - 1 - 11).max(0);
            format!("{:04}-{:02}", back.div_euclid(12), back.rem_euclid(12) + 1)
        }
    };
    if !month_ok(&from) {
        return Err(ApiError::BadRequest("from: a month as YYYY-MM".into()));
    }
    Ok((from, until))
}

fn row_json(r: &OperatorFigureRow, current: bool) -> serde_json::Value {
    let f = &r.figure;
    serde_json::json!({
        "operator": r.operator, "point": f.point.as_str(), "site": f.site, "period": f.period,
        "version": r.version, "current": current, "submission": r.submission, "collector": r.collector,
        "submitted_at": r.submitted_at, "unit": f.unit.as_str(), "ipv4_traffic": f.ipv4_value,
        "ipv6_traffic": f.ipv6_value, "ipv4_bytes": f.ipv4_bytes, "ipv6_bytes": f.ipv6_bytes,
        "ipv6_active_connections": f.active_connections, "ipv6_users": f.ipv6_users, "users": f.users,
        "iot_ipv6_connections": f.iot_connections,
    })
}

fn is_current(all: &[OperatorFigureRow], r: &OperatorFigureRow) -> bool {
    !all.iter().any(|o| {
        o.operator == r.operator
            && o.figure.point == r.figure.point
            && o.figure.site == r.figure.site
            && o.figure.period == r.figure.period
            && o.version > r.version
    })
}

async fn history(State(state): State<SharedState>, Query(q): Query<RangeQuery>) -> Result<Response, ApiError> {
    let (from, until) = range(&q)?;
    let rows = state.store(move |s| Ok(s.operator_figures(&from, &until)?)).await?;
    let list: Vec<serde_json::Value> = rows.iter().map(|r| row_json(r, is_current(&rows, r))).collect();
    Ok(axum::Json(serde_json::json!({ "rows": list })).into_response())
}

/// The targets for the two traffic shares in the server's plans.
fn share_targets(state: &SharedState) -> Vec<serde_json::Value> {
    let mut out = Vec::new();
    for name in state.plans.names() {
        let Ok(plan) = state.plans.get(name) else { continue };
        for m in &plan.milestones {
            let name = match m.indicator {
                v6scope_report::plan::Indicator::MobileTrafficShare => "mobile_traffic_share",
                v6scope_report::plan::Indicator::FixedTrafficShare => "fixed_traffic_share",
                _ => continue,
            };
            out.push(
                serde_json::json!({"plan": plan.name, "indicator": name, "target": m.target,
                "deadline": m.deadline}),
            );
        }
    }
    out
}

async fn load(state: &SharedState, q: &RangeQuery) -> Result<Vec<OperatorMonth>, ApiError> {
    let (from, until) = range(q)?;
    let st = state.clone();
    state
        .store(move |s| Ok(operators::indicators(s, st.counters(s), &from, &until)?))
        .await
}

async fn indicators(State(state): State<SharedState>, Query(q): Query<RangeQuery>) -> Result<Response, ApiError> {
    let months = load(&state, &q).await?;
    Ok(axum::Json(serde_json::json!({ "months": months, "targets": share_targets(&state) })).into_response())
}

/// Per measurement point and site of one operator: the IPv6 share of each
/// month (latest versions), and the version shown.
fn points_table(lang: crate::Lang, rows: &[OperatorFigureRow], operator: &str, periods: &[String]) -> maud::Markup {
    let latest = operators::latest(rows);
    let mut points: Vec<(v6scope_store::MeasurementPoint, &str)> = latest
        .iter()
        .filter(|r| r.operator == operator)
        .map(|r| (r.figure.point, r.figure.site.as_str()))
        .collect();
    points.sort();
    points.dedup();
    html! {
        div.scroll { table.points id=(format!("points-{operator}")) {
            thead { tr {
                th { (lang.t("point")) } th { (lang.t("site")) }
                @for p in periods { th.n { (p) } }
            } }
            tbody { @for (point, site) in &points { tr data-point=(point.as_str()) {
                td { (if lang.zh() { point.zh() } else { point.as_str() }) } td { (site) }
                @for p in periods {
                    @let cell = latest.iter().find(|r| r.operator == operator && r.figure.point == *point
                        && r.figure.site == *site && &r.figure.period == p);
                    td.n { @match cell.and_then(|r| Some((r.figure.ipv6_bytes?, r.figure.ipv4_bytes?, r.version))) {
                        Some((v6, v4, version)) => {
                            (percent((v6 + v4 > 0.0).then(|| v6 / (v6 + v4))))
                            @if version > 1 { " (v" (version) ")" }
                        }
                        None => { "—" }
                    } }
                }
            } } }
        } }
    }
}

fn percent(share: Option<f64>) -> String {
    share.map_or_else(|| "—".to_string(), |s| format!("{:.1} %", s * 100.0))
}

async fn page(State(state): State<SharedState>, Query(q): Query<RangeQuery>) -> Response {
    let lang = match crate::pages::lang_of(&state, q.lang.as_deref()) {
        Ok(l) => l,
        Err(e) => return crate::pages::error_page(state.config.lang, e),
    };
    let months = match load(&state, &q).await {
        Ok(m) => m,
        Err(e) => return crate::pages::error_page(lang, e),
    };
    let (from, until) = match range(&q) {
        Ok(r) => r,
        Err(e) => return crate::pages::error_page(lang, e),
    };
    let rows = match state.store(move |s| Ok(s.operator_figures(&from, &until)?)).await {
        Ok(r) => r,
        Err(e) => return crate::pages::error_page(lang, e),
    };
    let national: Vec<&OperatorMonth> = months.iter().filter(|m| m.operator.is_empty()).collect();
    let periods: Vec<String> = national.iter().map(|m| m.period.clone()).collect();
    let mut names: Vec<&str> = months
        .iter()
        .filter(|m| !m.operator.is_empty())
        .map(|m| m.operator.as_str())
        .collect();
    names.dedup();
    let chart = |title: &str, pick: &dyn Fn(&OperatorMonth) -> Option<f64>, id: &str| {
        let points: Vec<(String, f64)> = national
            .iter()
            .filter_map(|m| Some((m.period.clone(), pick(m)?)))
            .collect();
        let labels: Vec<String> = points.iter().map(|(p, _)| p.clone()).collect();
        let values: Vec<f64> = points.iter().map(|(_, v)| *v).collect();
        (!points.is_empty()).then(|| crate::svg::share_line(id, title, &labels, &values))
    };
    let mobile_chart = chart(lang.t("mobile_share"), &|m| m.mobile.share, "mobile-share-chart");
    let fixed_chart = chart(lang.t("fixed_share"), &|m| m.fixed.share, "fixed-share-chart");
    let table = |list: Vec<&OperatorMonth>, id: &str| {
        html! {
            div.scroll { table id=(id) {
                thead { tr {
                    th { (lang.t("period")) } th { (lang.t("operator")) }
                    th.n { (lang.t("mobile_share")) " (" (lang.t("reported")) ")" }
                    th.n { (lang.t("mobile_share")) " (" (lang.t("from_flows")) ")" }
                    th.n { (lang.t("fixed_share")) " (" (lang.t("reported")) ")" }
                    th.n { (lang.t("fixed_share")) " (" (lang.t("from_flows")) ")" }
                    th.n { (lang.t("active_connections")) } th.n { (lang.t("ipv6_users")) } th.n { (lang.t("iot")) }
                    th.n { (lang.t("version")) } th { (lang.t("submitted")) }
                } }
                tbody { @for m in list { tr data-operator=(m.operator) data-period=(m.period) {
                    td { (m.period) }
                    td { @if m.operator.is_empty() { (lang.t("national")) } @else { (m.operator) } }
                    td.n.mobile { (percent(m.mobile.share)) }
                    td.n { (percent(m.mobile_flows.share)) }
                    td.n.fixed { (percent(m.fixed.share)) }
                    td.n { (percent(m.fixed_flows.share)) }
                    td.n { (m.ipv6_active_connections.map_or("—".into(), |v| v.to_string())) }
                    td.n { (m.ipv6_users.map_or("—".into(), |v| v.to_string())) }
                    td.n { (m.iot_ipv6_connections.map_or("—".into(), |v| v.to_string())) }
                    td.n.version { (m.max_version) }
                    td { (m.latest_submitted_at.as_deref().unwrap_or("—")) }
                } } }
            } }
        }
    };
    let targets = share_targets(&state);
    let body = html! {
        p { a id="template" href="/api/operator-reports/template.csv" { (lang.t("template")) } }
        details #upload {
            summary { (lang.t("upload")) }
            form method="post" action="/operators/upload" {
                input type="hidden" name="lang" value=(lang.code());
                p { label { "CSV" br; textarea name="csv" id="upload-csv" rows="8" cols="60" required {} } }
                p { label { (lang.t("collector_token")) " " input type="password" name="token" id="upload-token" required; } }
                button type="submit" id="upload-submit" { (lang.t("upload")) }
            }
        }
        @if months.is_empty() { p { (lang.t("no_operator_reports")) } }
        @if !targets.is_empty() {
            ul.targets { @for t in &targets {
                li { (t["plan"].as_str().unwrap_or("")) ": "
                    (if t["indicator"] == "mobile_traffic_share" { lang.t("mobile_share") } else { lang.t("fixed_share") })
                    " " (percent(t["target"].as_f64())) " (" (t["deadline"].as_str().unwrap_or("")) ")" }
            } }
        }
        @if let Some(c) = &mobile_chart { h3 { (lang.t("mobile_share")) " · " (lang.t("national")) } (maud::PreEscaped(c.clone())) }
        @if let Some(c) = &fixed_chart { h3 { (lang.t("fixed_share")) " · " (lang.t("national")) } (maud::PreEscaped(c.clone())) }
        @if !national.is_empty() { h2 { (lang.t("national")) } (table(national.clone(), "national")) }
        @for name in &names {
            h2 { (lang.t("operator")) " " (name) }
            (table(months.iter().filter(|m| m.operator == *name).collect(), &format!("operator-{name}")))
            (points_table(lang, &rows, name, &periods))
        }
        @if !rows.is_empty() {
            h2 { (lang.t("history")) }
            div.scroll { table id="history" {
                thead { tr {
                    th { (lang.t("operator")) } th { (lang.t("point")) } th { (lang.t("site")) } th { (lang.t("period")) }
                    th.n { (lang.t("ipv6_traffic")) } th.n { (lang.t("ipv4_traffic")) } th.n { (lang.t("version")) }
                    th { (lang.t("submitted")) } th { (lang.t("status")) }
                } }
                tbody { @for r in rows.iter().rev() {
                    @let current = is_current(&rows, r);
                    tr class=(if current { "current" } else { "superseded" }) {
                        td { (r.operator) }
                        td { (if lang.zh() { r.figure.point.zh() } else { r.figure.point.as_str() }) }
                        td { (r.figure.site) } td { (r.figure.period) }
                        td.n { (r.figure.ipv6_value.map_or("—".into(), |v| format!("{v} {}", r.figure.unit.as_str()))) }
                        td.n { (r.figure.ipv4_value.map_or("—".into(), |v| format!("{v} {}", r.figure.unit.as_str()))) }
                        td.n { (r.version) }
                        td { (r.submitted_at) " (#" (r.submission) ", " (r.collector) ")" }
                        td { (if current { lang.t("current") } else { lang.t("superseded") }) }
                    }
                } }
            } }
        }
    };
    crate::pages::page(lang, "/operators", lang.t("operators_title"), body).into_response()
}
