//! The client beacon: how many users' clients can and do use IPv6.
//!
//! A page (or a snippet on a partner's page) runs `/beacon/beacon.js`, which
//! fetches a small object from five kinds of name, each under a label unique
//! to the test (`{test}.{kind}.{zone}`, a wildcard zone):
//!
//! | kind   | the name has                                  | tells                          |
//! |--------|-----------------------------------------------|--------------------------------|
//! | `v4`   | A only                                        | IPv4 works                     |
//! | `v6`   | AAAA only                                     | IPv6 capable                   |
//! | `ds`   | A and AAAA                                    | IPv6 preferred (family used)   |
//! | `v6ns` | A and AAAA, delegated to IPv6-only name servers | the resolver reaches IPv6 authoritatives |
//! | `mtu`  | AAAA only, a 1 600-byte answer               | large IPv6 packets get through |
//!
//! The server records which family each fetch arrived on; the script then
//! posts its timings, and the client is classified as test-ipv6.com and
//! APNIC define it (thresholds are data: `beacon_slow_ms`,
//! `beacon_timeout_ms`). Only aggregates are kept: per day, for all
//! clients, per organisation and per region (through the prefix table),
//! HyperLogLog sketches of the clients in each class, stored with the
//! active-user sketches (kinds `beacon-*`). A client's address lives only in
//! memory, for the minute its test takes.

use crate::{ApiError, SharedState};
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use v6scope_flow::users::Sketch;
use v6scope_report::monthly::ClientGroup;

/// The kinds of name a test fetches, in the order the script runs them.
pub(crate) const KINDS: [&str; 5] = ["v4", "v6", "ds", "v6ns", "mtu"];
/// The classes counted per day and group (sketch kind `beacon-{class}`).
pub(crate) const CLASSES: [&str; 6] = [
    "tested",
    "capable",
    "preferred",
    "broken",
    "mtu_trouble",
    "resolver_without_ipv6",
];
/// The `mtu` object's size, as test-ipv6.com's `size=1600`: more than one
/// 1 280-byte packet.
const MTU_OBJECT_BYTES: usize = 1600;
/// Tests in flight at most (each a few hundred bytes); over it new tests
/// are refused until old ones expire.
const MAX_TESTS: usize = 200_000;
/// How long a test's hits wait for its result.
const TEST_TTL: Duration = Duration::from_secs(120);
/// The result body at most.
pub(crate) const MAX_RESULT_BYTES: usize = 4096;

/// How the fetches are judged (test-ipv6.com's defaults: a success under
/// 5 s is ok, else slow; a failure under 5 s is bad, else a timeout; the
/// script gives up at 15 s).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Thresholds {
    pub slow_ms: u64,
    pub timeout_ms: u64,
}

/// One fetch's outcome, test-ipv6.com's letters: ok, slow, bad, timeout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum FetchState {
    Ok,
    Slow,
    Bad,
    Timeout,
}

impl FetchState {
    fn loaded(self) -> bool {
        matches!(self, FetchState::Ok | FetchState::Slow)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum HitFamily {
    Ipv4,
    Ipv6,
}

/// What the script reports for one fetch.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Fetch {
    pub ok: bool,
    pub ms: f64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ResultBody {
    pub test: String,
    pub results: HashMap<String, Fetch>,
}

/// A client's classification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct Classification {
    /// Per kind: the fetch's state and the family the server saw it on.
    pub states: Vec<(String, FetchState, Option<HitFamily>)>,
    /// The IPv6-only object loaded, and arrived over IPv6.
    pub capable: bool,
    /// The dual-stack object arrived over IPv6.
    pub preferred: bool,
    /// IPv4 works but IPv6 hurts: the IPv6-only object timed out (IPv6
    /// configured but not working), or the dual-stack one failed or was slow.
    pub broken: bool,
    /// Capable, but the large IPv6 object did not load in time.
    pub mtu_trouble: bool,
    /// The dual-stack name loaded, the one behind IPv6-only name servers did not.
    pub resolver_without_ipv6: bool,
    /// test-ipv6.com's summary token.
    pub summary: String,
}

impl Classification {
    fn classes(&self) -> impl Iterator<Item = &'static str> + '_ {
        [
            ("tested", true),
            ("capable", self.capable),
            ("preferred", self.preferred),
            ("broken", self.broken),
            ("mtu_trouble", self.mtu_trouble),
            ("resolver_without_ipv6", self.resolver_without_ipv6),
        ]
        .into_iter()
        .filter_map(|(c, on)| on.then_some(c))
    }
}

fn state_of(fetch: Option<&Fetch>, seen: bool, t: Thresholds) -> FetchState {
    match fetch {
        // The script's word alone is not enough: a load the server never
        // saw did not happen here.
        Some(f) if f.ok && seen => {
            if f.ms < t.slow_ms as f64 {
                FetchState::Ok
            } else {
                FetchState::Slow
            }
        }
        Some(f) if f.ms < t.slow_ms as f64 => FetchState::Bad,
        Some(_) => FetchState::Timeout,
        None => FetchState::Timeout,
    }
}

/// Classifies one test from the script's report and the server's hits.
pub(crate) fn classify(
    results: &HashMap<String, Fetch>,
    hits: &[Option<HitFamily>; 5],
    thresholds: Thresholds,
) -> Classification {
    let state = |i: usize| state_of(results.get(KINDS[i]), hits[i].is_some(), thresholds);
    let (v4, v6, ds, v6ns, mtu) = (state(0), state(1), state(2), state(3), state(4));
    let capable = v6.loaded() && hits[1] == Some(HitFamily::Ipv6);
    let preferred = ds.loaded() && hits[2] == Some(HitFamily::Ipv6);
    let broken = v4.loaded()
        && (v6 == FetchState::Timeout || matches!(ds, FetchState::Bad | FetchState::Timeout | FetchState::Slow));
    let mtu_trouble = capable && !mtu.loaded();
    let resolver_without_ipv6 = ds.loaded() && !v6ns.loaded();
    let summary = match (v4.loaded(), capable, preferred, broken) {
        (_, _, _, true) => "broken_ipv6",
        (true, true, true, false) => "dualstack:ipv6_preferred",
        (true, true, false, false) => "dualstack:ipv4_preferred",
        (true, false, _, false) => "ipv4_only",
        (false, true, _, _) => "ipv6_only",
        (false, false, _, _) => "no_connectivity",
    }
    .to_string();
    Classification {
        states: (0..5).map(|i| (KINDS[i].to_string(), state(i), hits[i])).collect(),
        capable,
        preferred,
        broken,
        mtu_trouble,
        resolver_without_ipv6,
        summary,
    }
}

struct TestState {
    created: Instant,
    hits: [Option<HitFamily>; 5],
    /// The client's addresses as its fetches showed them (memory only).
    ipv4: Option<IpAddr>,
    ipv6: Option<IpAddr>,
}

/// The beacon's state in the server: tests in flight and the day sketches
/// not yet written to the store.
pub(crate) struct Beacon {
    pub zone: String,
    /// ".{zone}", what every beacon host ends with.
    suffix: String,
    pub scheme: String,
    pub port: Option<u16>,
    pub thresholds: Thresholds,
    prefixes: Option<v6scope_flow::enrich::PrefixTable>,
    tests: Mutex<HashMap<String, TestState>>,
    pending: Mutex<HashMap<(String, String, &'static str), Sketch>>,
}

#[derive(Debug, thiserror::Error)]
pub enum BeaconError {
    #[error("beacon_zone '{0}' is not a DNS name")]
    Zone(String),
    #[error("beacon_scheme must be http or https, not '{0}'")]
    Scheme(String),
    #[error("beacon thresholds: slow ({slow} ms) must be below the timeout ({timeout} ms), both 100 ms – 60 s")]
    Thresholds { slow: u64, timeout: u64 },
    #[error("beacon_prefixes: {0}")]
    Prefixes(String),
}

impl Beacon {
    pub(crate) fn new(config: &crate::ServerConfig) -> Result<Option<Beacon>, BeaconError> {
        let Some(zone) = &config.beacon_zone else {
            return Ok(None);
        };
        let zone = zone.trim_end_matches('.').to_ascii_lowercase();
        if zone.is_empty()
            || !zone
                .split('.')
                .all(|l| !l.is_empty() && l.len() < 64 && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
        {
            return Err(BeaconError::Zone(zone));
        }
        if !matches!(config.beacon_scheme.as_str(), "http" | "https") {
            return Err(BeaconError::Scheme(config.beacon_scheme.clone()));
        }
        let (slow, timeout) = (config.beacon_slow_ms, config.beacon_timeout_ms);
        if !(100..=60_000).contains(&slow) || !(100..=60_000).contains(&timeout) || slow >= timeout {
            return Err(BeaconError::Thresholds { slow, timeout });
        }
        let prefixes = match &config.beacon_prefixes {
            Some(path) => {
                let mut table = v6scope_flow::enrich::PrefixTable::default();
                table.load(path).map_err(|e| BeaconError::Prefixes(e.to_string()))?;
                Some(table)
            }
            None => None,
        };
        Ok(Some(Beacon {
            suffix: format!(".{zone}"),
            zone,
            scheme: config.beacon_scheme.clone(),
            port: config.beacon_port,
            thresholds: Thresholds {
                slow_ms: slow,
                timeout_ms: timeout,
            },
            prefixes,
            tests: Mutex::new(HashMap::new()),
            pending: Mutex::new(HashMap::new()),
        }))
    }

    /// The test id and kind a beacon host names (`{test}.{kind}.{zone}`).
    pub(crate) fn parse_host<'a>(&self, host: &'a str) -> Option<(&'a str, usize)> {
        let host = host.rsplit_once(':').map_or(
            host,
            |(h, p)| if p.bytes().all(|b| b.is_ascii_digit()) { h } else { host },
        );
        let host = host.trim_end_matches('.');
        let rest = host
            .len()
            .checked_sub(self.suffix.len())
            .filter(|&n| host.is_char_boundary(n) && host[n..].eq_ignore_ascii_case(&self.suffix))
            .map(|n| &host[..n])?;
        let (test, kind) = rest.split_once('.')?;
        let kind = KINDS.iter().position(|k| kind.eq_ignore_ascii_case(k))?;
        valid_test_id(test).then_some((test, kind))
    }

    /// Whether a `Host` is one of the beacon's names.
    pub(crate) fn serves_host(&self, host: &str) -> bool {
        self.parse_host(host).is_some()
    }

    fn record_hit(&self, test: &str, kind: usize, peer: IpAddr) -> Result<(), ApiError> {
        let peer = peer.to_canonical();
        let family = if peer.is_ipv4() {
            HitFamily::Ipv4
        } else {
            HitFamily::Ipv6
        };
        let mut tests = self
            .tests
            .lock()
            .map_err(|_| ApiError::Internal("beacon state".into()))?;
        if tests.len() >= MAX_TESTS && !tests.contains_key(test) {
            let now = Instant::now();
            tests.retain(|_, t| now.duration_since(t.created) < TEST_TTL);
            if tests.len() >= MAX_TESTS {
                return Err(ApiError::Busy("too many beacon tests in flight".into()));
            }
        }
        let state = tests.entry(test.to_string()).or_insert_with(|| TestState {
            created: Instant::now(),
            hits: [None; 5],
            ipv4: None,
            ipv6: None,
        });
        state.hits[kind].get_or_insert(family);
        match family {
            HitFamily::Ipv4 => state.ipv4 = state.ipv4.or(Some(peer)),
            HitFamily::Ipv6 => state.ipv6 = state.ipv6.or(Some(peer)),
        }
        Ok(())
    }

    /// Classifies a finished test and counts it; its state is forgotten.
    fn finish(&self, body: &ResultBody, day: &str) -> Result<Classification, ApiError> {
        if !valid_test_id(&body.test) {
            return Err(ApiError::BadRequest("test: 16-64 hex digits".into()));
        }
        if let Some(k) = body.results.keys().find(|k| !KINDS.contains(&k.as_str())) {
            return Err(ApiError::BadRequest(format!(
                "results: unknown kind '{}'",
                k.chars().take(20).collect::<String>()
            )));
        }
        if body
            .results
            .values()
            .any(|f| !f.ms.is_finite() || f.ms < 0.0 || f.ms > 600_000.0)
        {
            return Err(ApiError::BadRequest("results: ms must be 0 – 600000".into()));
        }
        let state = self
            .tests
            .lock()
            .map_err(|_| ApiError::Internal("beacon state".into()))?
            .remove(&body.test)
            .filter(|t| t.created.elapsed() < TEST_TTL)
            .ok_or_else(|| ApiError::NotFound("no fetch of this test reached the server (or it expired)".into()))?;
        let classification = classify(&body.results, &state.hits, self.thresholds);
        // One client = its IPv4 address, else its IPv6 /64: what the
        // sketches count (the address itself is not kept).
        let client = match (state.ipv4, state.ipv6) {
            (Some(IpAddr::V4(a)), _) => u128::from(u32::from(a)) | (4u128 << 120),
            (_, Some(IpAddr::V6(a))) => u128::from(a) & !((1u128 << 64) - 1),
            _ => return Ok(classification),
        };
        let Some(labelled) = state.ipv4.or(state.ipv6) else {
            return Ok(classification);
        };
        let mut groups = vec!["all".to_string()];
        if let Some(table) = &self.prefixes {
            let label = table.label(labelled);
            if !label.organisation.is_empty() {
                groups.push(format!("org:{}", label.organisation));
            }
            if !label.region.is_empty() {
                groups.push(format!("region:{}", label.region));
            }
        }
        let mut pending = self
            .pending
            .lock()
            .map_err(|_| ApiError::Internal("beacon sketches".into()))?;
        for class in classification.classes() {
            for group in &groups {
                pending
                    .entry((day.to_string(), group.clone(), class_kind(class)))
                    .or_default()
                    .insert(client);
            }
        }
        Ok(classification)
    }

    /// Takes the sketches not yet stored.
    fn take_pending(&self) -> HashMap<(String, String, &'static str), Sketch> {
        self.pending
            .lock()
            .map(|mut p| std::mem::take(&mut *p))
            .unwrap_or_default()
    }

    /// A copy of the pending sketches of a day (for reads before a flush).
    fn pending_of(&self, day: &str) -> Vec<(String, &'static str, Sketch)> {
        self.pending
            .lock()
            .map(|p| {
                p.iter()
                    .filter(|((d, _, _), _)| d == day)
                    .map(|((_, g, k), s)| (g.clone(), *k, s.clone()))
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// The sketch kind of a class (the monthly report reads the same names).
fn class_kind(class: &str) -> &'static str {
    v6scope_report::monthly::BEACON_KINDS
        .iter()
        .find(|(c, _)| *c == class)
        .map_or("beacon-tested", |(_, kind)| kind)
}

fn valid_test_id(test: &str) -> bool {
    (16..=64).contains(&test.len()) && test.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Writes the pending sketches into the store, each merged in one atomic
/// step; what fails to merge is kept for the next flush.
pub(crate) async fn flush(state: &SharedState) {
    let Some(beacon) = &state.beacon else {
        return;
    };
    let pending = beacon.take_pending();
    if pending.is_empty() {
        return;
    }
    let result = state
        .store(move |store| {
            let mut failed = Vec::new();
            for ((day, group, kind), sketch) in pending {
                let mut merge = |stored: Option<&[u8]>| -> Result<Vec<u8>, String> {
                    let mut merged = match stored {
                        Some(bytes) => Sketch::from_bytes(bytes).map_err(|e| e.to_string())?,
                        None => Sketch::default(),
                    };
                    merged.merge(&sketch).map_err(|e| e.to_string())?;
                    Ok(merged.to_bytes())
                };
                if let Err(e) = store.merge_sketch(&day, &group, kind, &mut merge) {
                    tracing::warn!("beacon: storing {day} {group} {kind}: {e}");
                    failed.push(((day, group, kind), sketch));
                }
            }
            Ok(failed)
        })
        .await;
    match result {
        Ok(failed) if !failed.is_empty() => {
            if let Ok(mut p) = beacon.pending.lock() {
                for (key, sketch) in failed {
                    let entry = p.entry(key).or_default();
                    let _ = entry.merge(&sketch);
                }
            }
        }
        Ok(_) => {}
        Err(e) => tracing::warn!("beacon: flush: {e}"),
    }
}

/// Flushes every few seconds until the server stops.
pub(crate) async fn run_flusher(state: SharedState) {
    let mut tick = tokio::time::interval(Duration::from_secs(5));
    loop {
        tick.tick().await;
        flush(&state).await;
    }
}

pub(crate) fn routes() -> axum::Router<SharedState> {
    axum::Router::new()
        .route("/beacon", get(page))
        .route("/beacon/beacon.js", get(script))
        .route("/beacon/hit/{kind}", get(hit).options(preflight))
        .route("/beacon/result", post(result).options(preflight))
        .route("/api/beacon", get(api_beacon))
        .route("/clients", get(clients_page))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_RESULT_BYTES))
}

fn beacon_of(state: &SharedState) -> Result<&Beacon, ApiError> {
    state
        .beacon
        .as_ref()
        .ok_or_else(|| ApiError::NotFound("the beacon is off (serve --beacon-zone ZONE)".into()))
}

/// Anyone's page may embed the beacon: fetches carry no credentials, so
/// `*` is right (and no cookie is ever set).
fn cors(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::HeaderName::from_static("timing-allow-origin"),
        HeaderValue::from_static("*"),
    );
    response
}

async fn preflight() -> Response {
    let mut response = cors(StatusCode::NO_CONTENT.into_response());
    let headers = response.headers_mut();
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("GET, POST"),
    );
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static("content-type"),
    );
    headers.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("86400"));
    response
}

/// The peer's address, put on each request by the accept loop.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Peer(pub IpAddr);

async fn hit(
    State(state): State<SharedState>,
    Path(kind): Path<String>,
    headers: HeaderMap,
    peer: Option<axum::Extension<Peer>>,
) -> Result<Response, ApiError> {
    let beacon = beacon_of(&state)?;
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok()).unwrap_or("");
    let (test, k) = beacon
        .parse_host(host)
        .ok_or_else(|| ApiError::BadRequest("not a beacon name: {test}.{kind}.{zone}".into()))?;
    if KINDS[k] != kind {
        return Err(ApiError::BadRequest("the path's kind is not the name's".into()));
    }
    let axum::Extension(Peer(peer)) = peer.ok_or_else(|| ApiError::Internal("no peer address".into()))?;
    beacon.record_hit(test, k, peer)?;
    state.metrics.beacon_hits.inc();
    let mut body = String::from("{\"ok\":true}");
    if KINDS[k] == "mtu" {
        // Padding in the body, so the answer fills full-size packets.
        body = format!("{{\"ok\":true,\"pad\":\"{}\"}}", "x".repeat(MTU_OBJECT_BYTES));
    }
    Ok(cors(
        ([(header::CONTENT_TYPE, "application/json")], body).into_response(),
    ))
}

async fn result(State(state): State<SharedState>, body: axum::body::Bytes) -> Result<Response, ApiError> {
    let beacon = beacon_of(&state)?;
    // text/plain, so the browser sends it without a preflight; JSON inside.
    let body: ResultBody =
        serde_json::from_slice(&body).map_err(|e| ApiError::BadRequest(format!("the result is not valid: {e}")))?;
    let day = chrono::Utc::now().format("%Y-%m-%d").to_string();
    let classification = beacon.finish(&body, &day)?;
    state.metrics.beacon_results.inc();
    Ok(cors(Json(classification).into_response()))
}

/// The script, with the zone and thresholds written in.
async fn script(State(state): State<SharedState>) -> Result<Response, ApiError> {
    let beacon = beacon_of(&state)?;
    let config = serde_json::json!({
        "zone": beacon.zone,
        "scheme": beacon.scheme,
        "port": beacon.port,
        "kinds": KINDS,
        "slow_ms": beacon.thresholds.slow_ms,
        "timeout_ms": beacon.thresholds.timeout_ms,
    });
    let js = SCRIPT.replace("/*CONFIG*/null", &config.to_string());
    Ok(cors(
        ([(header::CONTENT_TYPE, "text/javascript; charset=utf-8")], js).into_response(),
    ))
}

async fn page(State(state): State<SharedState>) -> Result<Response, ApiError> {
    beacon_of(&state)?;
    Ok(([(header::CONTENT_TYPE, "text/html; charset=utf-8")], PAGE).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct DayQuery {
    day: Option<String>,
}

/// The day's counts per group, stored sketches merged with those not yet flushed.
pub(crate) async fn day_counts(state: &SharedState, day: &str) -> Result<Vec<ClientGroup>, ApiError> {
    // Stored days are shown even when the beacon is off now.
    let pending = state.beacon.as_ref().map(|b| b.pending_of(day)).unwrap_or_default();
    let day_owned = day.to_string();
    let stored = state
        .store(move |store| {
            let mut rows = Vec::new();
            for class in CLASSES {
                for row in store.sketches(&day_owned, &day_owned, class_kind(class))? {
                    rows.push((row.organisation, class, row.sketch));
                }
            }
            Ok(rows)
        })
        .await?;
    let mut sketches: BTreeMap<(String, &str), Sketch> = BTreeMap::new();
    for (group, class, bytes) in stored {
        let sketch = Sketch::from_bytes(&bytes).map_err(|e| ApiError::Internal(e.to_string()))?;
        let _ = sketches.entry((group, class)).or_default().merge(&sketch);
    }
    for (group, kind, sketch) in pending {
        let class = v6scope_report::monthly::BEACON_KINDS
            .iter()
            .find(|(_, k)| *k == kind)
            .map_or("tested", |(c, _)| c);
        let _ = sketches.entry((group, class)).or_default().merge(&sketch);
    }
    Ok(v6scope_report::monthly::client_groups(&sketches))
}

fn day_or_today(query: &DayQuery) -> Result<String, ApiError> {
    match &query.day {
        Some(day) => chrono::NaiveDate::parse_from_str(day, "%Y-%m-%d")
            .map(|d| d.format("%Y-%m-%d").to_string())
            .map_err(|_| ApiError::BadRequest("day: YYYY-MM-DD".into())),
        None => Ok(chrono::Utc::now().format("%Y-%m-%d").to_string()),
    }
}

async fn api_beacon(State(state): State<SharedState>, Query(query): Query<DayQuery>) -> Result<Response, ApiError> {
    let day = day_or_today(&query)?;
    let groups = day_counts(&state, &day).await?;
    Ok(Json(serde_json::json!({ "day": day, "enabled": state.beacon.is_some(), "groups": groups })).into_response())
}

async fn clients_page(
    State(state): State<SharedState>,
    Query(query): Query<std::collections::HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let lang = query
        .get("lang")
        .and_then(|l| crate::Lang::parse(l))
        .unwrap_or(state.config.lang);
    let day = day_or_today(&DayQuery {
        day: query.get("day").cloned(),
    })?;
    let groups = day_counts(&state, &day).await?;
    Ok(crate::pages::clients_page(lang, &day, &groups).into_response())
}

const SCRIPT: &str = r#"/* v6scope beacon: fetches one small object per kind of name and reports
   which loaded and how fast. No cookies, no third-party assets. */
(function () {
  "use strict";
  var config = /*CONFIG*/null;
  var me = document.currentScript;
  var base = me && me.src ? new URL(me.src).origin : location.origin;
  var bytes = new Uint8Array(16);
  crypto.getRandomValues(bytes);
  var test = Array.prototype.map.call(bytes, function (b) { return ("0" + b.toString(16)).slice(-2); }).join("");
  var port = config.port ? ":" + config.port : "";
  function fetchKind(kind) {
    var url = config.scheme + "://" + test + "." + kind + "." + config.zone + port + "/beacon/hit/" + kind;
    var controller = new AbortController();
    var timer = setTimeout(function () { controller.abort(); }, config.timeout_ms);
    var start = performance.now();
    return fetch(url, { mode: "cors", cache: "no-store", credentials: "omit", signal: controller.signal })
      .then(function (r) { return r.text().then(function () { return r.ok; }); })
      .catch(function () { return false; })
      .then(function (ok) {
        clearTimeout(timer);
        return [kind, { ok: ok, ms: Math.round(performance.now() - start) }];
      });
  }
  Promise.all(config.kinds.map(fetchKind)).then(function (pairs) {
    var results = {};
    pairs.forEach(function (p) { results[p[0]] = p[1]; });
    return fetch(base + "/beacon/result", {
      method: "POST", mode: "cors", credentials: "omit",
      headers: { "content-type": "text/plain" },
      body: JSON.stringify({ test: test, results: results })
    }).then(function (r) { return r.json(); });
  }).then(function (c) {
    var out = document.getElementById("v6scope-beacon");
    if (out) {
      out.setAttribute("data-summary", c.summary || "");
      out.textContent = JSON.stringify(c, null, 2);
    }
    document.dispatchEvent(new CustomEvent("v6scope-beacon", { detail: c }));
  }).catch(function () {
    var out = document.getElementById("v6scope-beacon");
    if (out) { out.setAttribute("data-summary", "error"); }
  });
})();
"#;

const PAGE: &str = r#"<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>v6scope: can your connection use IPv6?</title>
<style>body{font-family:system-ui,sans-serif;margin:2em auto;max-width:42em;padding:0 1em}pre{background:#f4f4f4;padding:1em;overflow-x:auto}</style>
</head><body><h1>Can your connection use IPv6?</h1>
<p>This page fetches five small objects: from an IPv4-only name, an IPv6-only name, a dual-stack name, a
name behind IPv6-only name servers and a large IPv6 object. Only counts per day, network and region are
kept, never your address.</p>
<pre id="v6scope-beacon" data-summary="">testing…</pre>
<script src="/beacon/beacon.js"></script>
</body></html>
"#;

#[cfg(test)]
mod tests {
    use super::*;

    const T: Thresholds = Thresholds {
        slow_ms: 5000,
        timeout_ms: 15000,
    };

    fn results(list: &[(&str, bool, f64)]) -> HashMap<String, Fetch> {
        list.iter()
            .map(|&(k, ok, ms)| (k.to_string(), Fetch { ok, ms }))
            .collect()
    }

    const V4: Option<HitFamily> = Some(HitFamily::Ipv4);
    const V6: Option<HitFamily> = Some(HitFamily::Ipv6);

    #[test]
    fn the_four_lab_clients_are_classified_as_test_ipv6_would() {
        // Dual stack, IPv6 working: capable and preferred.
        let good = results(&[
            ("v4", true, 20.0),
            ("v6", true, 25.0),
            ("ds", true, 22.0),
            ("v6ns", true, 30.0),
            ("mtu", true, 28.0),
        ]);
        let c = classify(&good, &[V4, V6, V6, V6, V6], T);
        assert!(c.capable && c.preferred && !c.broken && !c.mtu_trouble && !c.resolver_without_ipv6);
        assert_eq!(c.summary, "dualstack:ipv6_preferred");
        // IPv6 configured but blackholed: the IPv6-only object times out,
        // the dual-stack one comes over IPv4 after the browser's fallback.
        let blackholed = results(&[
            ("v4", true, 20.0),
            ("v6", false, 15000.0),
            ("ds", true, 320.0),
            ("v6ns", true, 330.0),
            ("mtu", false, 15000.0),
        ]);
        let c = classify(&blackholed, &[V4, None, V4, V4, None], T);
        assert!(!c.capable && !c.preferred && c.broken && !c.mtu_trouble);
        assert_eq!(c.summary, "broken_ipv6");
        // IPv4 only: the IPv6-only name fails at once; nothing is broken.
        let v4_only = results(&[
            ("v4", true, 20.0),
            ("v6", false, 5.0),
            ("ds", true, 21.0),
            ("v6ns", true, 25.0),
            ("mtu", false, 4.0),
        ]);
        let c = classify(&v4_only, &[V4, None, V4, V4, None], T);
        assert!(!c.capable && !c.broken && !c.mtu_trouble);
        assert_eq!(c.summary, "ipv4_only");
        // A path-MTU blackhole on IPv6: small objects load, the large one not.
        let mtu = results(&[
            ("v4", true, 20.0),
            ("v6", true, 25.0),
            ("ds", true, 22.0),
            ("v6ns", true, 30.0),
            ("mtu", false, 15000.0),
        ]);
        let c = classify(&mtu, &[V4, V6, V6, V6, V6], T);
        assert!(c.capable && c.preferred && c.mtu_trouble && !c.broken);
    }

    #[test]
    fn beacon_hosts_are_parsed_and_hostile_ones_refused() {
        let config = crate::ServerConfig {
            beacon_zone: Some("Beacon.Test.".into()),
            ..Default::default()
        };
        let beacon = Beacon::new(&config).unwrap().unwrap();
        let id = "0123456789abcdef0123456789abcdef";
        assert_eq!(beacon.parse_host(&format!("{id}.v6.beacon.test")), Some((id, 1)));
        assert_eq!(beacon.parse_host(&format!("{id}.MTU.BEACON.TEST.:8080")), Some((id, 4)));
        for bad in [
            "beacon.test".to_string(),
            format!("{id}.v7.beacon.test"),
            "xyz.v4.beacon.test".to_string(),
            format!("{id}.v4.beacon.test.evil"),
            // Multi-byte text where the zone's suffix would start: no slicing
            // inside a character (that would panic).
            format!("{id}.v4.beaconé.test"),
            // 15 bytes: the suffix would start inside the second "é".
            "éééééééa".to_string(),
        ] {
            assert_eq!(beacon.parse_host(&bad), None, "{bad}");
        }
        let bad_zone = crate::ServerConfig {
            beacon_zone: Some("bad zone".into()),
            ..Default::default()
        };
        assert!(Beacon::new(&bad_zone).is_err());
    }

    #[test]
    fn the_scripts_word_is_not_enough() {
        // The script claims the IPv6-only object loaded, but no fetch
        // reached the server over IPv6: not capable.
        let claimed = results(&[("v4", true, 20.0), ("v6", true, 25.0), ("ds", true, 22.0)]);
        let c = classify(&claimed, &[V4, None, V4, None, None], T);
        assert!(!c.capable && !c.preferred);
        // A slow dual-stack fetch is broken, a resolver that cannot reach
        // IPv6-only name servers is said.
        let slow = results(&[
            ("v4", true, 20.0),
            ("v6", true, 25.0),
            ("ds", true, 6000.0),
            ("v6ns", false, 900.0),
            ("mtu", true, 30.0),
        ]);
        let c = classify(&slow, &[V4, V6, V6, None, V6], T);
        assert!(c.broken && c.resolver_without_ipv6);
    }
}
