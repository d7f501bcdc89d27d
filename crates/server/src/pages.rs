//! The dashboard's HTML pages: rendered on the server from the API's data,
//! charts as inline SVG, no external assets, a few lines of CSS that also
//! fit a phone. Every page takes `?lang=en|zh-CN`.

use crate::api::{self, SiteQuery, TargetsQuery, TrafficQuery, ViewQuery};
use crate::svg::{share_bars, share_line};
use crate::{ApiError, Lang, SharedState};
use axum::Form;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::response::Redirect;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use maud::{DOCTYPE, Markup, PreEscaped, html};
use serde::Deserialize;
use v6scope_model::{Status, Verdict};
use v6scope_report::plan::Standing;
use v6scope_store::{Slice, TargetRow};

pub(crate) fn routes() -> Router<SharedState> {
    Router::new()
        .route("/", get(overview))
        .route("/campaigns/{name}", get(campaign))
        .route("/campaigns/{name}/providers", get(providers))
        .route("/sites/{domain}", get(site))
        .route("/traffic", get(traffic))
        .route("/runs", get(runs))
        .route("/vantages", get(vantages))
        .route("/campaigns", post(import_form))
        .route("/campaigns/{name}/run", post(run_form))
        .route("/campaigns/{name}/schedule", post(schedule_form))
}

const CSS: &str = "body{font-family:system-ui,'Noto Sans CJK SC','Microsoft YaHei',sans-serif;margin:0;color:#222}\
header{background:#0d47a1;color:#fff;padding:.6em 1em;display:flex;flex-wrap:wrap;gap:1em;align-items:center}\
header a{color:#fff;text-decoration:none}header .brand{font-weight:bold}header .lang{margin-left:auto}\
main{padding:1em;max-width:1100px;margin:auto}table{border-collapse:collapse;width:100%;margin:.5em 0 1.5em}\
th,td{border-bottom:1px solid #ddd;padding:.3em .5em;text-align:left;font-size:.92em}td.n,th.n{text-align:right}\
.scroll{overflow-x:auto}.chart{max-width:100%;height:auto}.pass{color:#2e7d32}.fail,.error{color:#c62828}\
.warn{color:#ef6c00}.met{color:#2e7d32}.behind{color:#c62828}.on_track{color:#1565c0}\
form.filters{display:flex;flex-wrap:wrap;gap:.5em;align-items:end}form.filters label{display:flex;flex-direction:column;font-size:.85em}\
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(220px,1fr));gap:1em}\
.card{border:1px solid #ddd;border-radius:6px;padding:.8em}.big{font-size:1.8em;font-weight:bold}\
.chartbox{overflow-x:auto}tr.differs{background:#fff6e0}\
@media (max-width:600px){.chart{min-width:520px}.chart text{font-size:13px}\
table.checks,table.checks tbody,table.checks tr,table.checks td{display:block;width:auto}\
table.checks thead{display:none}table.checks tr{border-bottom:2px solid #ddd;padding:.3em 0}\
table.checks td{border:0;overflow-wrap:anywhere}}\
@media print{header{display:none}}";

pub(crate) fn lang_of(state: &SharedState, q: Option<&str>) -> Result<Lang, ApiError> {
    ViewQuery {
        lang: q.map(str::to_string),
        profile: None,
    }
    .lang(state)
}

/// A link within the dashboard that keeps the language.
fn href(lang: Lang, path: &str) -> String {
    let sep = if path.contains('?') { '&' } else { '?' };
    format!("{path}{sep}lang={}", lang.code())
}

fn encode(segment: &str) -> String {
    url_escape(segment)
}

fn url_escape(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

pub(crate) fn page(lang: Lang, path: &str, title: &str, body: Markup) -> Html<String> {
    let other = if lang.zh() { Lang::En } else { Lang::Zh };
    let markup = html! {
        (DOCTYPE)
        html lang=(lang.code()) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · v6scope" }
                style { (PreEscaped(CSS)) }
            }
            body {
                header {
                    a.brand href=(href(lang, "/")) { "v6scope" }
                    a href=(href(lang, "/")) { (lang.t("overview")) }
                    a href=(href(lang, "/traffic")) { (lang.t("traffic")) }
                    a href=(href(lang, "/runs")) { (lang.t("runs")) }
                    a href=(href(lang, "/vantages")) { (lang.t("vantages")) }
                    a href=(href(lang, "/clients")) { (lang.t("clients")) }
                    a href=(href(lang, "/operators")) { (lang.t("operators")) }
                    a.lang id="lang-switch" href=(href(other, path)) { (lang.t("language")) }
                }
                main { h1 { (title) } (body) }
            }
        }
    };
    Html(markup.into_string())
}

pub(crate) fn error_page(lang: Lang, e: ApiError) -> Response {
    let status = e.status();
    let body = html! { p.error { (e.to_string()) } };
    (status, page(lang, "/", &status.to_string(), body)).into_response()
}

/// A change between runs in the page's language: the statuses translated;
/// the check's own title and evidence are kept as the profile and the
/// probe wrote them.
fn change_text(lang: Lang, c: &v6scope_store::Change) -> String {
    if !lang.zh() {
        return c.text.clone();
    }
    let transition = format!(
        "{} → {}",
        lang.status(c.from_status.as_str()),
        lang.status(c.to_status.as_str())
    );
    // The stored text is "{subject}: {from} → {to}{detail}".
    let marker = format!(": {} → {}", c.from_status, c.to_status);
    let Some(at) = c.text.find(&marker) else {
        return c.text.clone();
    };
    let (subject, detail) = (&c.text[..at], &c.text[at + marker.len()..]);
    let subject = if c.check_id == "verdict" {
        format!("总体结论（{subject}）")
    } else {
        v6scope_assess::builtin_title_zh(&c.profile, &c.check_id)
            .unwrap_or(subject)
            .to_string()
    };
    let detail = detail
        .strip_prefix(": ")
        .map(|d| format!("：{d}"))
        .unwrap_or_else(|| detail.to_string());
    format!("{subject}：{transition}{detail}")
}

fn pct(pass: i64, n: i64) -> String {
    format!("{:.1} %", 100.0 * pass as f64 / n.max(1) as f64)
}

fn slice_table(lang: Lang, id: &str, first: &str, slices: &[Slice]) -> Markup {
    html! {
        div.scroll { table id=(id) {
            thead { tr { th { (first) } th.n { (lang.t("targets")) } th.n { (lang.t("passing")) }
                th.n { (lang.t("rate")) } th.n { (lang.t("score")) } } }
            tbody { @for s in slices { tr {
                td { (if s.key.is_empty() { "—" } else { &s.key }) } td.n { (s.targets) } td.n { (s.pass) }
                td.n { (pct(s.pass, s.targets)) } td.n { (format!("{:.0}", s.score)) }
            } } }
        } }
    }
}

fn target_table(lang: Lang, id: &str, campaign: &str, rows: &[TargetRow]) -> Markup {
    html! {
        div.scroll { table id=(id) {
            thead { tr { th { (lang.t("domain")) } th { (lang.t("category")) } th { (lang.t("region")) }
                th { (lang.t("organisation")) } th { (lang.t("status")) } th.n { (lang.t("score")) } } }
            tbody { @for t in rows { tr.target {
                td { a href=(href(lang, &format!("/sites/{}?campaign={}", encode(&t.domain), encode(campaign)))) { (t.domain) } }
                td { (t.category.as_deref().unwrap_or("")) } td.region { (t.region.as_deref().unwrap_or("")) }
                td { (t.organisation.as_deref().unwrap_or("")) }
                td class=(t.status.map(|s| s.as_str()).unwrap_or("")) { (t.status.map(|s| lang.status(s.as_str())).unwrap_or_else(|| "—".into())) }
                td.n { (t.score.map(|s| format!("{s:.0}")).unwrap_or_default()) }
            } } }
        } }
    }
}

async fn overview(State(state): State<SharedState>, Query(q): Query<ViewQuery>) -> Response {
    let lang = match q.lang(&state) {
        Ok(l) => l,
        Err(e) => return error_page(state.config.lang, e),
    };
    let (profile, plan) = match q.profile(&state) {
        Ok(p) => match state.default_plan() {
            Ok(plan) => (p, plan),
            Err(e) => return error_page(lang, e),
        },
        Err(e) => return error_page(lang, e),
    };
    let st = state.clone();
    let data = match state
        .store(move |s| api::overview(s, st.counters(s), &profile, &plan, lang))
        .await
    {
        Ok(d) => d,
        Err(e) => return error_page(lang, e),
    };
    let share_chart = (!data.traffic_share.is_empty()).then(|| {
        let labels: Vec<String> = data.traffic_share.iter().map(|(p, _)| p.clone()).collect();
        let values: Vec<f64> = data.traffic_share.iter().map(|(_, v)| *v).collect();
        share_line("traffic-share", lang.t("share"), &labels, &values)
    });
    let body = html! {
        div.cards {
            @for c in &data.campaigns {
                div.card.campaign-card {
                    a href=(href(lang, &format!("/campaigns/{}", encode(&c.name)))) { strong { (c.name) } }
                    @if let Some(last) = c.runs.last() {
                        div.big { (format!("{:.1} %", last.rate * 100.0)) }
                        div { (last.pass) " / " (last.targets) " · " (lang.t("latest_run")) " " (last.started_at) }
                    } @else {
                        div { (c.targets) " " (lang.t("targets")) " · " (lang.t("no_runs")) }
                    }
                }
            }
            @if let Some(u) = data.active_users {
                div.card { strong { (lang.t("users")) } div.big { (u) } }
            }
        }
        @for c in &data.campaigns {
            @if !c.runs.is_empty() {
                h2 { (c.name) " — " (lang.t("trend")) }
                (PreEscaped(share_line(
                    &format!("trend-{}", c.name),
                    lang.t("trend"),
                    &c.runs.iter().map(|r| r.started_at.get(..10).unwrap_or("").to_string()).collect::<Vec<_>>(),
                    &c.runs.iter().map(|r| r.rate).collect::<Vec<_>>(),
                )))
            }
        }
        h2 { (lang.t("plan")) (lang.colon()) (data.plan_title) }
        div.scroll { table id="milestones" {
            thead { tr { th { (lang.t("indicator")) } th { (lang.t("deadline")) } th.n { (lang.t("target")) }
                th.n { (lang.t("measured")) } th { (lang.t("standing")) } th.n { (lang.t("gap")) } } }
            tbody { @for r in &data.milestones { tr {
                td { (r.text) br; small { (r.measurement.note) } }
                td { (r.deadline) }
                td.n { (r.target.map(|t| value(r.indicator.is_share(), t)).unwrap_or_default()) }
                td.n {
                    @match r.measurement.latest {
                        Some((day, v)) => { (value(r.indicator.is_share(), v)) br; small { (v6scope_model::days::format(day)) } }
                        None => { (lang.t("not_measured")) }
                    }
                }
                @match &r.judgement {
                    Some(j) => { td class=(standing_key(j.standing)) { (lang.t(standing_key(j.standing))) }
                        td.n { (value(r.indicator.is_share(), j.gap)) } }
                    None => { td { "—" } td { } }
                }
            } } }
        } }
        @if let Some(chart) = share_chart { h2 { (lang.t("share")) } (PreEscaped(chart)) }
        details #import {
            summary { (lang.t("import")) }
            form method="post" action="/campaigns" {
                input type="hidden" name="lang" value=(lang.code());
                p { label { (lang.t("name")) " " input name="name" required pattern="[A-Za-z0-9._-]{1,100}"; } }
                p { label { (lang.t("csv")) br; textarea name="csv" rows="8" cols="60" required {} } }
                p { label { (lang.t("token")) " " input type="password" name="token" required; } }
                button type="submit" { (lang.t("import")) }
            }
        }
    };
    page(lang, "/", lang.t("overview"), body).into_response()
}

fn standing_key(s: Standing) -> &'static str {
    match s {
        Standing::Met => "met",
        Standing::OnTrack => "on_track",
        Standing::Behind => "behind",
        Standing::NoTrend => "no_trend",
    }
}

fn value(share: bool, v: f64) -> String {
    if share {
        format!("{:.1} %", v * 100.0)
    } else {
        format!("{v:.0}")
    }
}

async fn campaign(
    State(state): State<SharedState>,
    Path(name): Path<String>,
    Query(q): Query<TargetsQuery>,
) -> Response {
    let lang = match q.view().lang(&state) {
        Ok(l) => l,
        Err(e) => return error_page(state.config.lang, e),
    };
    if let Err(e) = q.view().profile(&state) {
        return error_page(lang, e);
    }
    let (n, query, st) = (name.clone(), q.clone(), state.clone());
    let data = state
        .store(move |s| {
            let p = api::campaign_profile(s, &n, &query.view(), &st)?;
            Ok((api::campaign(s, &n, &p)?, api::targets(s, &n, &p, &query)?))
        })
        .await;
    let (view, list) = match data {
        Ok(d) => d,
        Err(e) => return error_page(lang, e),
    };
    let filter = match q.filter() {
        Ok(f) => f,
        Err(e) => return error_page(lang, e),
    };
    let path = format!("/campaigns/{}", encode(&name));
    let next_offset = list.offset + list.limit;
    let page_link = |offset: i64| {
        let mut link = format!("{path}?offset={offset}");
        for (k, v) in [
            ("category", &filter.category),
            ("region", &filter.region),
            ("status", &filter.status.map(|s| s.as_str().to_string())),
        ] {
            if let Some(v) = v {
                link.push_str(&format!("&{k}={}", encode(v)));
            }
        }
        href(lang, &link)
    };
    let body = html! {
        p { (view.targets) " " (lang.t("targets")) " · " (lang.t("profile")) " " (view.profile)
            " · " a href=(href(lang, &format!("{path}/providers"))) { (lang.t("providers")) }
            " · " a id="report-link" href=(href(lang, &format!("/api/report?campaign={}", encode(&name)))) { (lang.t("report")) } }
        @if view.runs.is_empty() { p { (lang.t("no_runs")) } }
        @if !view.runs.is_empty() {
            h2 { (lang.t("trend")) }
            (PreEscaped(share_line("campaign-trend", lang.t("trend"),
                &view.runs.iter().map(|r| r.started_at.get(..10).unwrap_or("").to_string()).collect::<Vec<_>>(),
                &view.runs.iter().map(|r| r.rate).collect::<Vec<_>>())))
            h2 { (lang.t("category")) }
            (PreEscaped(share_bars("by-category", lang.t("category"),
                &view.by_category.iter().map(|s| (s.key.clone(), s.pass as f64 / s.targets.max(1) as f64)).collect::<Vec<_>>())))
            (slice_table(lang, "table-category", lang.t("category"), &view.by_category))
            h2 { (lang.t("region")) }
            (slice_table(lang, "table-region", lang.t("region"), &view.by_region))
            @if !view.by_provider.is_empty() {
                h2 { a href=(href(lang, &format!("{path}/providers"))) { (lang.t("providers")) } }
                div.scroll { table id="table-provider" {
                    thead { tr { th { (lang.t("provider")) } th { (lang.t("role")) } th.n { (lang.t("targets")) }
                        th.n { (lang.t("rate")) } th.n { (lang.t("v4only")) } } }
                    tbody { @for s in view.by_provider.iter().filter(|s| s.dimension.starts_with("provider:")) {
                        @let role = s.dimension.trim_start_matches("provider:");
                        @let v4only = view.by_provider.iter()
                            .find(|o| o.key == s.key && o.dimension == format!("provider_v4only:{role}"))
                            .map(|o| o.targets).unwrap_or(0);
                        tr { td { (s.key) } td { (role) } td.n { (s.targets) } td.n { (pct(s.pass, s.targets)) }
                            td.n class=(if v4only > 0 { "fail" } else { "" }) { (v4only) } }
                    } }
                } }
            }
            h2 { (lang.t("worst")) }
            (target_table(lang, "worst", &name, &view.worst))
            h2 { (lang.t("best")) }
            (target_table(lang, "best", &name, &view.best))
            @if !view.changes.is_empty() {
                h2 { (lang.t("changes")) }
                ul #changes { @for c in &view.changes { li class=(c.kind.as_str()) {
                    a href=(href(lang, &format!("/sites/{}?campaign={}", encode(&c.domain), encode(&name)))) { (c.domain) }
                    " — " (lang.t(c.kind.as_str())) (lang.colon()) (change_text(lang, c)) } } }
            }
            h2 { (lang.t("targets")) " (" (list.total) ")" }
            form.filters method="get" action=(path) {
                input type="hidden" name="lang" value=(lang.code());
                label { (lang.t("category")) select name="category" id="filter-category" {
                    option value="" { (lang.t("all")) }
                    @for c in &view.categories { option value=(c) selected[filter.category.as_deref() == Some(c.as_str())] { (c) } } } }
                label { (lang.t("region")) select name="region" id="filter-region" {
                    option value="" { (lang.t("all")) }
                    @for r in &view.regions { option value=(r) selected[filter.region.as_deref() == Some(r.as_str())] { (r) } } } }
                label { (lang.t("status")) select name="status" id="filter-status" {
                    option value="" { (lang.t("all")) }
                    @for s in ["pass", "fail", "warn", "error", "not_testable"] { option value=(s) selected[filter.status.map(|f| f.as_str()) == Some(s)] { (lang.status(s)) } } } }
                button type="submit" id="filter-apply" { (lang.t("apply")) }
            }
            (target_table(lang, "targets", &name, &list.targets))
            p {
                @if list.offset > 0 { a href=(page_link((list.offset - list.limit).max(0))) { (lang.t("previous")) } " " }
                @if next_offset < list.total { a href=(page_link(next_offset)) { (lang.t("next")) } }
            }
        }
        @if !view.schedules.is_empty() {
            h2 { (lang.t("schedules")) }
            ul { @for s in &view.schedules { li { code { (s.cron) } " " (s.args.join(" ")) } } }
        }
        h2 { (lang.t("report")) }
        form.filters id="report-form" method="get" action="/api/report" {
            input type="hidden" name="campaign" value=(name);
            input type="hidden" name="lang" value=(lang.code());
            input type="hidden" name="profile" value=(view.profile);
            label { (lang.t("period")) input type="month" name="period" value=(view.runs.last().and_then(|r| r.started_at.get(..7)).unwrap_or("")); }
            label { "format" select name="format" { @for f in ["html", "md", "csv", "json"] { option value=(f) { (f) } } } }
            button type="submit" { (lang.t("download")) }
        }
        details #run-now {
            summary { (lang.t("run_now")) " / " (lang.t("add_schedule")) }
            form method="post" action=(format!("{path}/run")) {
                input type="hidden" name="lang" value=(lang.code());
                (scan_fields(lang, &view.profile))
                button type="submit" { (lang.t("run_now")) }
            }
            form method="post" action=(format!("{path}/schedule")) {
                input type="hidden" name="lang" value=(lang.code());
                p { label { (lang.t("cron")) " " input name="cron" required value="0 3 * * *"; } }
                (scan_fields(lang, &view.profile))
                button type="submit" { (lang.t("add_schedule")) }
            }
        }
    };
    page(lang, &path, &format!("{}: {name}", lang.t("campaign")), body).into_response()
}

async fn providers(State(state): State<SharedState>, Path(name): Path<String>, Query(q): Query<ViewQuery>) -> Response {
    let lang = match q.lang(&state) {
        Ok(l) => l,
        Err(e) => return error_page(state.config.lang, e),
    };
    if let Err(e) = q.profile(&state) {
        return error_page(lang, e);
    }
    let (n, st) = (name.clone(), state.clone());
    let (list, edges) = match state
        .store(move |s| {
            Ok((
                api::providers(s, &n, &api::campaign_profile(s, &n, &q, &st)?)?,
                api::edge_indicators(s, &n)?,
            ))
        })
        .await
    {
        Ok(l) => l,
        Err(e) => return error_page(lang, e),
    };
    let opt_pct = |v: Option<f64>| v.map(|v| format!("{:.1} %", 100.0 * v)).unwrap_or_else(|| "—".into());
    let yes = |v: bool| if v { ("pass", "✓") } else { ("fail", "✗") };
    let path = format!("/campaigns/{}/providers", encode(&name));
    let body = html! {
        div.scroll { table id="providers" {
            thead { tr { th { (lang.t("provider")) } th { (lang.t("role")) } th.n { (lang.t("targets")) }
                th.n { (lang.t("passing")) } th.n { (lang.t("v4only")) } } }
            tbody { @for p in &list { tr {
                td { (p.provider) } td { (p.role) } td.n { (p.targets) } td.n { (p.pass) }
                td.n class=(if p.ipv4_only > 0 { "fail" } else { "" }) { (p.ipv4_only) }
            } } }
        } }
        @if !edges.providers.is_empty() {
            h2 { (lang.t("edge_nodes")) }
            p { (lang.t("edge_method")) }
            div.scroll { table id="edge-providers" {
                thead { tr { th { (lang.t("provider")) } th { (lang.t("kind")) } th.n { (lang.t("nodes")) } th.n { (lang.t("ipv6_nodes")) }
                    th.n { (lang.t("node_share")) } th.n { (lang.t("coverage_ratio")) } th { (lang.t("supports_ipv6")) } } }
                tbody { @for p in &edges.providers { @let (class, mark) = yes(p.supports_ipv6); tr data-provider=(p.provider) {
                    td { (p.provider) } td { (p.kind) } td.n { (p.nodes) } td.n { (p.ipv6_nodes) }
                    td.n class=(yes(p.node_share_met).0) { (format!("{:.1} %", 100.0 * p.node_share)) }
                    td.n class=(yes(p.coverage_met).0) { (opt_pct(p.coverage_ratio)) " (" (p.v6_cells) "/" (p.v4_cells) ")" }
                    td class=(class) { (mark) @for n in &p.ipv4_only_nodes { br; small { (n) } } @for c in &p.cells_without_ipv6 { br; small { (c) } } }
                } } }
            } }
        }
        @if !edges.products.is_empty() {
            h2 { (lang.t("cloud_products")) }
            div.scroll { table id="cloud-products" {
                thead { tr { th { (lang.t("provider")) } th { (lang.t("product")) } th.n { (lang.t("coverage_ratio")) } th { (lang.t("supports_ipv6")) } } }
                tbody { @for p in &edges.products { @let (class, mark) = yes(p.supports_ipv6); tr {
                    td { (p.provider) } td { (p.product) } td.n { (opt_pct(p.coverage_ratio)) " (" (p.v6_cells) "/" (p.v4_cells) ")" } td class=(class) { (mark) }
                } } }
            } }
        }
    };
    page(lang, &path, &format!("{}: {name}", lang.t("providers")), body).into_response()
}

async fn site(State(state): State<SharedState>, Path(domain): Path<String>, Query(q): Query<SiteQuery>) -> Response {
    let lang = match lang_of(&state, q.lang.as_deref()) {
        Ok(l) => l,
        Err(e) => return error_page(state.config.lang, e),
    };
    let d = domain.to_ascii_lowercase();
    let label = q.label.clone();
    let view = match state
        .store(move |s| api::site(s, &d, q.campaign.as_deref(), label.as_deref()))
        .await
    {
        Ok(v) => v,
        Err(e) => return error_page(lang, e),
    };
    let campaign = view.campaign.clone().unwrap_or_default();
    let path = format!("/sites/{}?campaign={}", encode(&domain), encode(&campaign));
    let site_path = format!("/sites/{}", encode(&domain));
    let is_fleet = !view.vantages.is_empty() || q.label.as_deref().is_some_and(|l| !l.is_empty());
    let body = html! {
        p { (lang.t("campaign")) " " a href=(href(lang, &format!("/campaigns/{}", encode(&campaign)))) { (campaign) }
            " · " (lang.t("run")) " " (view.run.unwrap_or_default()) }
        @for v in &view.verdicts {
            h2 { (lang.t("profile")) " " (v.profile) (lang.colon()) span class=(v.status.as_str()) { (lang.status(v.status.as_str())) } " (" (format!("{:.0}", v.score)) ")" }
            div.scroll { table.checks {
                thead { tr { th { (lang.t("checks")) } th { (lang.t("status")) } th { (lang.t("evidence")) } th { (lang.t("remedy")) } } }
                tbody { @for c in &v.checks { tr {
                    td { (c.title_in(lang.zh())) } td class=(c.status.as_str()) { (lang.status(c.status.as_str())) }
                    td { @for e in c.evidence.iter().take(8) { div { (e) } } }
                    td { (c.remedy_in(lang.zh()).unwrap_or("")) }
                } } }
            } }
        }
        @if is_fleet {
            (vantage_columns(lang, &view, &site_path, q.label.as_deref().unwrap_or("")))
        }
        h2 { (lang.t("timeline")) }
        div.scroll { table id="timeline" {
            thead { tr { th { (lang.t("run")) } th { (lang.t("started")) } th { (lang.t("profile")) } th { (lang.t("status")) } th.n { (lang.t("score")) } } }
            tbody { @for p in &view.timeline { tr {
                td { (p.run_id) } td { (p.started_at) } td { (p.profile) } td class=(p.status.as_str()) { (lang.status(p.status.as_str())) } td.n { (format!("{:.0}", p.score)) }
            } } }
        } }
        h2 { (lang.t("changes")) }
        ul #changelog { @for c in &view.changes { li class=(c.kind.as_str()) {
            (lang.t("run")) " " (c.previous_run) " → " (c.run_id) " · " (c.profile) " · "
            strong { (lang.t(c.kind.as_str())) } (lang.colon()) (change_text(lang, c)) } } }
        @if !view.failing_links.is_empty() {
            h2 { (lang.t("failing_links")) }
            div.scroll { table id="failing-links" {
                thead { tr { th { "URL" } th.n { "level" } th { "IPv4" } th { "IPv6" } } }
                tbody { @for l in &view.failing_links { tr {
                    td { (l.url) } td.n { (l.level) }
                    td { (l.v4_ok.map(|b| if b { "ok" } else { "fail" }).unwrap_or("—")) }
                    td { (l.v6_ok.map(|b| if b { "ok" } else { "fail" }).unwrap_or("—")) " " (l.v6_error.as_deref().unwrap_or("")) }
                } } }
            } }
        }
    };
    page(lang, &path, &format!("{}: {domain}", lang.t("site")), body).into_response()
}

/// A fleet run's target: each profile's checks in rows, the combined
/// verdict and each vantage in columns, with a label filter.
fn vantage_columns(lang: Lang, view: &api::SiteView, path: &str, label: &str) -> Markup {
    let campaign = view.campaign.as_deref().unwrap_or("");
    html! {
        h2 { (lang.t("per_vantage")) }
        form.filters id="vantage-filter" method="get" action=(path) {
            input type="hidden" name="lang" value=(lang.code());
            input type="hidden" name="campaign" value=(campaign);
            label { (lang.t("labels")) input type="text" name="label" id="filter-label" value=(label) placeholder="isp=B,access=mobile"; }
            button type="submit" id="filter-apply" { (lang.t("apply")) }
        }
        @if view.vantages.is_empty() { p { (lang.t("no_vantage_matches")) } }
        @for combined in &view.verdicts {
            @let per: Vec<(&api::SiteVantage, Option<&Verdict>)> = view.vantages.iter()
                .map(|v| (v, v.verdicts.iter().find(|p| p.profile == combined.profile)))
                .collect();
            @if !per.is_empty() {
                div.scroll { table.per-vantage data-profile=(combined.profile) {
                    thead {
                        tr { th { (lang.t("profile")) " " (combined.profile) } th { (lang.t("combined")) }
                            @for (v, _) in &per { th data-vantage=(v.vantage) { (v.vantage) br;
                                small { (v.labels.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(" ")) } } } }
                    }
                    tbody {
                        tr.verdict { td { (lang.t("status")) } td class=(combined.status.as_str()) { (lang.status(combined.status.as_str())) }
                            @for (_, verdict) in &per { @match verdict {
                                Some(p) => { td class=(p.status.as_str()) { (lang.status(p.status.as_str())) " (" (format!("{:.0}", p.score)) ")" } }
                                None => { td { "—" } }
                            } } }
                        @for c in combined.checks.iter().filter(|c| c.id != v6scope_scan::VANTAGES_CHECK) {
                            @let outcomes: Vec<Option<&v6scope_model::CheckResult>> = per.iter().map(|(_, p)| p.and_then(|p| p.check(&c.id))).collect();
                            @let differs = outcomes.windows(2).any(|w| w[0].map(|c| c.status) != w[1].map(|c| c.status));
                            tr data-check=(c.id) class=[differs.then_some("differs")] {
                                td { (c.title_in(lang.zh())) }
                                td class=(c.status.as_str()) { (lang.status(c.status.as_str())) }
                                @for o in &outcomes { @match o {
                                    Some(r) => { td class=(r.status.as_str()) title=(r.evidence.first().map(String::as_str).unwrap_or("")) {
                                        (lang.status(r.status.as_str()))
                                        @if differs && matches!(r.status, Status::Fail | Status::Warn | Status::NotTestable | Status::Error) {
                                            @if let Some(e) = r.evidence.first() { br; small { (e) } }
                                        }
                                    } }
                                    None => { td { "—" } }
                                } }
                            }
                        }
                    }
                } }
            }
        }
    }
}

async fn traffic(State(state): State<SharedState>, Query(q): Query<TrafficQuery>) -> Response {
    let lang = match lang_of(&state, q.lang.as_deref()) {
        Ok(l) => l,
        Err(e) => return error_page(state.config.lang, e),
    };
    let query = q.clone();
    let st = state.clone();
    let view = match state.store(move |s| api::traffic(s, st.counters(s), &query)).await {
        Ok(v) => v,
        Err(e) => return error_page(lang, e),
    };
    let body = html! {
        form.filters method="get" action="/traffic" {
            input type="hidden" name="lang" value=(lang.code());
            label { (lang.t("period")) select name="by" { @for b in ["minute", "hour", "day", "month"] { option value=(b) selected[view.by == b] { (b) } } } }
            label { (lang.t("group")) select name="group" {
                option value="" { (lang.t("all")) }
                @for g in ["exporter", "interface", "asn", "organisation", "region", "source"] {
                    option value=(g) selected[view.group.as_deref() == Some(g)] { (g) } } } }
            button type="submit" { (lang.t("apply")) }
        }
        @if let Some(u) = view.active_users { p { (lang.t("users")) (lang.colon()) strong { (u) } } }
        @if view.rows.is_empty() { p { (lang.t("no_traffic")) } }
        @if view.group.is_none() && !view.rows.is_empty() {
            (PreEscaped(share_line("traffic-share", lang.t("share"),
                &view.rows.iter().map(|r| r.period.clone()).collect::<Vec<_>>(),
                &view.rows.iter().map(|r| r.share_v6).collect::<Vec<_>>())))
        }
        div.scroll { table id="traffic" {
            thead { tr { th { (lang.t("period")) } th { (lang.t("group")) } th.n { (lang.t("bytes_v4")) } th.n { (lang.t("bytes_v6")) } th.n { (lang.t("share")) } } }
            tbody { @for r in &view.rows { tr {
                td { (r.period) } td { (r.group) } td.n { (r.bytes_v4) } td.n { (r.bytes_v6) } td.n { (format!("{:.1} %", r.share_v6 * 100.0)) }
            } } }
        } }
        @if !view.unscaled.is_empty() {
            h2 { (lang.t("unscaled")) }
            p.warn id="unscaled-note" { (lang.t("unscaled_note")) }
            div.scroll { table id="unscaled" {
                thead { tr { th { (lang.t("period")) } th { "exporter" } th.n { (lang.t("records")) } th.n { (lang.t("share")) } } }
                tbody { @for r in &view.unscaled { tr {
                    td { (r.period) } td { (r.exporter) } td.n { (r.records) } td.n { (format!("{:.1} %", r.share_v6 * 100.0)) }
                } } }
            } }
        }
    };
    page(lang, "/traffic", lang.t("traffic"), body).into_response()
}

async fn runs(State(state): State<SharedState>, Query(q): Query<ViewQuery>) -> Response {
    let lang = match q.lang(&state) {
        Ok(l) => l,
        Err(e) => return error_page(state.config.lang, e),
    };
    let st = state.clone();
    let data = state.store(move |s| Ok((api::runs(&st, s)?, s.jobs(50)?))).await;
    let (runs, jobs) = match data {
        Ok(d) => d,
        Err(e) => return error_page(lang, e),
    };
    let body = html! {
        h2 { (lang.t("jobs")) }
        div.scroll { table id="jobs" {
            thead { tr { th { "#" } th { (lang.t("campaign")) } th { (lang.t("source")) } th { (lang.t("state")) } th { (lang.t("run")) } th { (lang.t("started")) } th { (lang.t("finished")) } } }
            tbody { @for j in &jobs { tr {
                td { (j.id) } td { (j.campaign) } td { (j.reason) }  td class=(j.state.as_str()) { (j.state.as_str()) " " (j.error.as_deref().unwrap_or("")) }
                td { (j.run_id.map(|r| r.to_string()).unwrap_or_default()) } td { (j.requested_at) } td { (j.finished_at.as_deref().unwrap_or("")) }
            } } }
        } }
        h2 { (lang.t("runs")) }
        div.scroll { table id="runs" {
            thead { tr { th { "#" } th { (lang.t("source")) } th { (lang.t("profile")) } th.n { (lang.t("targets")) } th { (lang.t("started")) } th { (lang.t("finished")) } } }
            tbody { @for r in &runs { tr {
                td { (r.id) } td { (r.source) } td { (r.profiles.join(", ")) } td.n { (r.done) " / " (r.targets) }
                td { (r.started_at) } td { (r.finished_at.as_deref().unwrap_or("…")) }
            } } }
        } }
    };
    page(lang, "/runs", lang.t("runs"), body).into_response()
}

/// The agents (one row each: vantage, labels, self-test, activity) and the
/// fleet runs' progress per vantage.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct VantagesQuery {
    lang: Option<String>,
    /// Only agents whose labels this selector takes (`isp=B`).
    label: Option<String>,
}

async fn vantages(State(state): State<SharedState>, Query(q): Query<VantagesQuery>) -> Response {
    let lang = match lang_of(&state, q.lang.as_deref()) {
        Ok(l) => l,
        Err(e) => return error_page(state.config.lang, e),
    };
    let selector = match api::label_selector(q.label.as_deref()) {
        Ok(s) => s,
        Err(e) => return error_page(lang, e),
    };
    let label = q.label.clone().unwrap_or_default();
    let data = state
        .store(move |s| {
            let mut agents = s.agents()?;
            if let Some(selector) = &selector {
                agents.retain(|a| a.vantage.as_deref().is_some_and(|v| selector.matches(v, &a.labels)));
            }
            let now = crate::scheduler::now();
            let mut fleet = Vec::new();
            for r in s.run_list(20)? {
                let progress = s.fleet_progress(r.id, now)?;
                if !progress.is_empty() {
                    fleet.push((r, progress));
                }
            }
            Ok((agents, fleet))
        })
        .await;
    let (agents, fleet) = match data {
        Ok(d) => d,
        Err(e) => return error_page(lang, e),
    };
    let now = crate::scheduler::now();
    let rates = state.agent_rates.lock().ok();
    let body = html! {
        h2 { (lang.t("agents")) }
        form.filters id="vantage-filter" method="get" action="/vantages" {
            input type="hidden" name="lang" value=(lang.code());
            label { (lang.t("labels")) input type="text" name="label" id="filter-label" value=(label) placeholder="isp=B,access=mobile"; }
            button type="submit" id="filter-apply" { (lang.t("apply")) }
        }
        @if agents.is_empty() { p { (if label.is_empty() { lang.t("no_agents") } else { lang.t("no_vantage_matches") }) } }
        div.scroll { table id="agents" {
            thead { tr {
                th { (lang.t("agent")) } th { (lang.t("vantages")) } th { (lang.t("labels")) } th { (lang.t("selftest")) }
                th { (lang.t("last_seen")) } th.n { (lang.t("results")) } th.n { (lang.t("error_rate")) }
                th.n { (lang.t("targets_per_second")) } th.n { (lang.t("leased")) }
            } }
            tbody { @for a in &agents {
                @let test = crate::agents::selftest(a);
                @let skew = crate::agents::clock_fault(&state, a.id);
                @let healthy = skew.is_none() && test.as_ref().is_some_and(|t| t.ipv4 && t.ipv6 && t.resolver_problems.is_empty());
                tr data-agent=(a.name) {
                    td { (a.name) @if a.revoked { " " span.fail { "(" (lang.t("revoked")) ")" } } }
                    td { (a.vantage.as_deref().unwrap_or("")) }
                    td { (a.labels.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(" ")) }
                    td class=(if healthy { "pass" } else { "fail" }) {
                        @match &test {
                            Some(t) => {
                                "IPv4 " (if t.ipv4 { "✓" } else { "✗" }) " IPv6 " (if t.ipv6 { "✓" } else { "✗" })
                                @for p in &t.resolver_problems { br; (p) }
                                @if let Some(skew) = skew { br; (lang.t("clock_off")) " " (skew) " s" }
                            }
                            None => { "—" }
                        }
                    }
                    td { @match a.last_seen { Some(t) => { (now - t) " " (lang.t("seconds_ago")) } None => { (lang.t("never")) } } }
                    td.n { (a.results) }
                    td.n { @if a.results > 0 { (format!("{:.1} %", 100.0 * a.errors as f64 / a.results as f64)) } @else { "—" } }
                    td.n { (format!("{:.1}", rates.as_ref().map(|r| r.of(a.id)).unwrap_or(0.0))) }
                    td.n { (a.leased) }
                }
            } }
        } }
        @if !fleet.is_empty() {
            h2 { (lang.t("fleet_runs")) }
            div.scroll { table id="fleet-runs" {
                thead { tr { th { "#" } th { (lang.t("source")) } th { (lang.t("per_vantage")) } th { (lang.t("finished")) } } }
                tbody { @for (r, progress) in &fleet { tr {
                    td { (r.id) } td { (r.source) }
                    td { @for p in progress { (p.vantage) ": " (p.done) " (" (lang.t("leased")) " " (p.leased) ")" br; } }
                    td { (r.finished_at.as_deref().unwrap_or("…")) }
                } } }
            } }
        }
    };
    page(lang, "/vantages", lang.t("vantages"), body).into_response()
}

fn scan_fields(lang: Lang, profile: &str) -> Markup {
    let profiles: Vec<String> = v6scope_assess::Profile::builtin().into_iter().map(|p| p.name).collect();
    html! {
        p { label { (lang.t("profile")) " " select name="profile" {
            @for p in &profiles { option value=(p) selected[p == profile] { (p) } } } }
            " " label { input type="checkbox" name="crawl" value="true"; " " (lang.t("crawl")) } }
        p { label { (lang.t("token")) " " input type="password" name="token" required; } }
    }
}

#[derive(Deserialize)]
struct ImportForm {
    name: String,
    csv: String,
    token: String,
    lang: Option<String>,
}

#[derive(Deserialize)]
struct ScanForm {
    profile: String,
    crawl: Option<String>,
    cron: Option<String>,
    token: String,
    lang: Option<String>,
}

/// The browser's way to import: the same checks as `PUT /api/campaigns/{name}`.
async fn import_form(State(state): State<SharedState>, Form(form): Form<ImportForm>) -> Response {
    let lang = lang_of(&state, form.lang.as_deref()).unwrap_or(state.config.lang);
    let done = async {
        api::check_token(&state, Some(&form.token))?;
        api::check_name(&form.name)?;
        let targets = api::parse_campaign(form.csv.as_bytes(), state.config.max_campaign_targets)?;
        let name = form.name.clone();
        state.store(move |s| Ok(s.put_campaign(&name, &targets)?)).await
    };
    match done.await {
        Ok(()) => Redirect::to(&href(lang, &format!("/campaigns/{}", encode(&form.name)))).into_response(),
        Err(e) => error_page(lang, e),
    }
}

fn scan_spec(form: &ScanForm) -> api::ScanSpec {
    api::ScanSpec {
        profiles: vec![form.profile.clone()],
        crawl: form.crawl.is_some(),
        ..Default::default()
    }
}

async fn run_form(State(state): State<SharedState>, Path(name): Path<String>, Form(form): Form<ScanForm>) -> Response {
    let lang = lang_of(&state, form.lang.as_deref()).unwrap_or(state.config.lang);
    let done = async {
        api::check_token(&state, Some(&form.token))?;
        let args = scan_spec(&form).args()?;
        state
            .store(move |s| {
                if !s.campaign_exists(&name)? {
                    return Err(ApiError::NotFound(format!("no campaign '{name}'")));
                }
                Ok(s.queue_job(&name, &args, "page")?)
            })
            .await
    };
    match done.await {
        Ok(_) => {
            state.wake.notify_one();
            Redirect::to(&href(lang, "/runs")).into_response()
        }
        Err(e) => error_page(lang, e),
    }
}

async fn schedule_form(
    State(state): State<SharedState>,
    Path(name): Path<String>,
    Form(form): Form<ScanForm>,
) -> Response {
    let lang = lang_of(&state, form.lang.as_deref()).unwrap_or(state.config.lang);
    let back = href(lang, &format!("/campaigns/{}", encode(&name)));
    let done = async {
        api::check_token(&state, Some(&form.token))?;
        let cron = form.cron.clone().unwrap_or_default();
        crate::scheduler::parse_cron(&cron)?;
        let args = scan_spec(&form).args()?;
        state
            .store(move |s| {
                if !s.campaign_exists(&name)? {
                    return Err(ApiError::NotFound(format!("no campaign '{name}'")));
                }
                Ok(s.add_schedule(&name, &cron, &args, crate::scheduler::now())?)
            })
            .await
    };
    match done.await {
        Ok(_) => Redirect::to(&back).into_response(),
        Err(e) => error_page(lang, e),
    }
}

/// The beacon's day: per group (all, organisation, region) the clients
/// tested, IPv6 capable and preferred, and the trouble classes.
pub(crate) fn clients_page(lang: Lang, day: &str, groups: &[v6scope_report::monthly::ClientGroup]) -> Html<String> {
    let pct = |v: Option<f64>| v.map_or("—".to_string(), |v| format!("{:.1} %", v * 100.0));
    let body = html! {
        p { (lang.t("beacon_how")) }
        form.filters method="get" action="/clients" {
            label { "day" input type="date" name="day" value=(day); }
            input type="hidden" name="lang" value=(lang.code());
            button type="submit" { "OK" }
        }
        @if groups.is_empty() {
            p { (lang.t("beacon_none")) }
        } @else {
            div.scroll { table.beacon {
                thead { tr {
                    th { (lang.t("beacon_group")) }
                    th.n { (lang.t("beacon_tested")) }
                    th.n { (lang.t("beacon_capable")) }
                    th.n { (lang.t("beacon_preferred")) }
                    th.n { (lang.t("beacon_broken")) }
                    th.n { (lang.t("beacon_mtu")) }
                    th.n { (lang.t("beacon_resolver")) }
                } }
                tbody { @for g in groups { tr {
                    td { (g.group) }
                    td.n { (g.tested) }
                    td.n { (g.capable) " (" (pct(g.capable_share)) ")" }
                    td.n { (g.preferred) " (" (pct(g.preferred_share)) ")" }
                    td.n { (g.broken) }
                    td.n { (g.mtu_trouble) }
                    td.n { (g.resolver_without_ipv6) }
                } } }
            } }
        }
    };
    page(lang, "/clients", lang.t("clients_title"), body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_keep_the_language_and_escape_names() {
        assert_eq!(href(Lang::Zh, "/traffic"), "/traffic?lang=zh-CN");
        assert_eq!(
            href(Lang::En, "/sites/a.test?campaign=x"),
            "/sites/a.test?campaign=x&lang=en"
        );
        assert_eq!(encode("省 部/级 a&b"), "%E7%9C%81%20%E9%83%A8%2F%E7%BA%A7%20a%26b");
    }
}
