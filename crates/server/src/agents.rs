//! The agent API (`/agent/v1/…`): agents register with their self-test,
//! heartbeat, claim targets under a lease and deliver observations, which
//! the server judges. It is separate from the read API and the admin
//! writes: an agent's token opens only these routes, and the admin token
//! opens none of them.

use crate::{ApiError, SharedState};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{FromRequest, Request, State};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;
use v6scope_scan::protocol::{Ack, Acks, Claim, Claimed, Heartbeat, LeasedTarget, Register, Registered, Results};
use v6scope_scan::{RunConfig, judge};
use v6scope_store::{AgentRegistration, AgentRow, Delivery, VantageResult};

pub(crate) fn routes() -> Router<SharedState> {
    Router::new()
        .route("/agent/v1/register", post(register))
        .route("/agent/v1/heartbeat", post(heartbeat))
        .route("/agent/v1/claim", post(claim))
        .route("/agent/v1/results", post(results))
}

/// The stored hash of an agent token (SHA-256, hex): the store never holds
/// a token itself.
pub fn token_hash(token: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(token.trim().as_bytes()))
}

/// A new agent token: 32 random bytes, hex, with a prefix that says what it is.
pub fn new_token() -> String {
    token_with_prefix("v6agent")
}

/// A new collector token (`v6collector_…`).
pub fn new_collector_token() -> String {
    token_with_prefix("v6collector")
}

fn token_with_prefix(prefix: &str) -> String {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).expect("the OS random source works");
    format!("{prefix}_{}", hex::encode(bytes))
}

/// What the server keeps per fleet run: what agents are sent and the
/// profiles results are judged under.
pub(crate) struct FleetRun {
    config: RunConfig,
    profiles: Vec<v6scope_assess::Profile>,
}

/// Per agent: delivered results per second (a moving average).
#[derive(Default)]
pub(crate) struct Rates {
    by_agent: HashMap<i64, (Instant, f64)>,
}

impl Rates {
    fn record(&mut self, agent: i64, results: usize) {
        let now = Instant::now();
        let (at, rate) = self.by_agent.entry(agent).or_insert((now, 0.0));
        let seconds = now.duration_since(*at).as_secs_f64().max(0.05);
        // About a minute's memory.
        let weight = (seconds / 60.0).min(1.0);
        *rate = *rate * (1.0 - weight) + (results as f64 / seconds) * weight;
        *at = now;
    }

    pub(crate) fn of(&self, agent: i64) -> f64 {
        match self.by_agent.get(&agent) {
            // An agent silent for a minute is at zero.
            Some((at, rate)) if at.elapsed().as_secs() < 60 => *rate,
            _ => 0.0,
        }
    }
}

/// An authenticated agent call: the token is checked (a store lookup)
/// before a byte of the body is read, then the JSON body is parsed.
pub(crate) struct AgentCall<T> {
    agent: AgentRow,
    body: T,
}

impl<T: serde::de::DeserializeOwned + Send> FromRequest<SharedState> for AgentCall<T> {
    type Rejection = Response;

    async fn from_request(request: Request, state: &SharedState) -> Result<Self, Self::Rejection> {
        let hash = crate::api::bearer_token(request.headers())
            .map(token_hash)
            .ok_or_else(|| ApiError::Unauthorized.into_response())?;
        let agent = state
            .store(move |s| Ok(s.agent_by_token(&hash)?))
            .await
            .map_err(IntoResponse::into_response)?
            .ok_or_else(|| ApiError::Unauthorized.into_response())?;
        let bytes = Bytes::from_request(request, state)
            .await
            .map_err(IntoResponse::into_response)?;
        let body = serde_json::from_slice(&bytes)
            .map_err(|e| ApiError::BadRequest(format!("the body: {e}")).into_response())?;
        Ok(AgentCall { agent, body })
    }
}

fn check_label(what: &str, text: &str) -> Result<(), ApiError> {
    let ok = !text.is_empty()
        && text.len() <= 64
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(ApiError::BadRequest(format!(
            "{what} '{}': 1 to 64 ASCII letters, digits, '-', '_' or '.'",
            text.chars().take(64).collect::<String>()
        )))
    }
}

/// How far an agent's clock may be off the server's before its results
/// are not_testable: its TLS checks (certificate validity) run on its clock,
/// and a wrong clock would blame sites for the agent's fault.
pub(crate) const MAX_CLOCK_SKEW_SECONDS: i64 = 300;

fn note_clock(state: &SharedState, agent: i64, clock: Option<i64>) {
    if let (Some(clock), Ok(mut clocks)) = (clock, state.agent_clocks.lock()) {
        clocks.insert(agent, clock - crate::scheduler::now());
    }
}

/// The agent's clock skew in seconds, when it is more than allowed.
pub(crate) fn clock_fault(state: &SharedState, agent: i64) -> Option<i64> {
    let skew = *state.agent_clocks.lock().ok()?.get(&agent)?;
    (skew.abs() > MAX_CLOCK_SKEW_SECONDS).then_some(skew)
}

async fn register(State(state): State<SharedState>, call: AgentCall<Register>) -> Result<Response, ApiError> {
    let AgentCall { agent, body } = call;
    note_clock(&state, agent.id, body.clock_unix);
    check_label("vantage", &body.vantage)?;
    if body.labels.len() > 16 {
        return Err(ApiError::BadRequest("16 labels at most".into()));
    }
    for (k, v) in &body.labels {
        check_label("label name", k)?;
        check_label("label value", v)?;
    }
    if !(1..=65_536).contains(&body.concurrency) {
        return Err(ApiError::BadRequest("concurrency: 1 to 65536".into()));
    }
    let selftest = serde_json::to_string(&body.selftest).map_err(|e| ApiError::Internal(e.to_string()))?;
    let version: String = body.version.chars().take(64).collect();
    let id = agent.id;
    tracing::info!(
        agent = agent.name,
        vantage = body.vantage,
        ipv4 = body.selftest.ipv4,
        ipv6 = body.selftest.ipv6,
        resolver_problems = ?body.selftest.resolver_problems,
        "agent registered"
    );
    state
        .store(move |s| {
            s.register_agent(
                id,
                &AgentRegistration {
                    vantage: &body.vantage,
                    labels: &body.labels,
                    concurrency: body.concurrency,
                    version: &version,
                    selftest: &selftest,
                },
                crate::scheduler::now(),
            )?;
            Ok(())
        })
        .await?;
    let c = &state.config;
    Ok(axum::Json(Registered {
        agent: agent.name,
        heartbeat_seconds: c.agent_heartbeat_seconds,
        lease_seconds: c.agent_lease_seconds,
        max_batch: c.agent_max_batch,
    })
    .into_response())
}

async fn heartbeat(State(state): State<SharedState>, call: AgentCall<Heartbeat>) -> Result<Response, ApiError> {
    let id = call.agent.id;
    note_clock(&state, id, call.body.clock_unix);
    let lease = state.config.agent_lease_seconds as i64;
    state
        .store(move |s| {
            let now = crate::scheduler::now();
            s.heartbeat(id, now, now + lease)?;
            Ok(())
        })
        .await?;
    Ok(axum::http::StatusCode::NO_CONTENT.into_response())
}

fn registered_vantage(agent: &AgentRow) -> Result<String, ApiError> {
    agent
        .vantage
        .clone()
        .ok_or_else(|| ApiError::Conflict("register first (POST /agent/v1/register)".into()))
}

/// The run's configuration and profiles, loaded once per run.
fn fleet_run(state: &SharedState, store: &dyn v6scope_store::Store, run: i64) -> Result<Arc<FleetRun>, ApiError> {
    if let Some(found) = state.fleet_runs.lock().ok().and_then(|m| m.get(&run).cloned()) {
        return Ok(found);
    }
    let info = store.run(run)?;
    let (config, _) = RunConfig::from_stored(&info.config).map_err(|e| ApiError::Internal(e.to_string()))?;
    let profiles = v6scope_scan::load_profiles(&info.profiles).map_err(|e| ApiError::Internal(e.to_string()))?;
    let mut config = config.for_agents();
    // Agents judge nothing, so they are told to crawl when a profile needs it.
    config.crawl.crawl |= profiles.iter().any(|p| p.kind == v6scope_assess::Kind::CnWebsite);
    config.profiles = Vec::new();
    let fleet = Arc::new(FleetRun { config, profiles });
    if let Ok(mut m) = state.fleet_runs.lock() {
        m.insert(run, fleet.clone());
    }
    Ok(fleet)
}

async fn claim(State(state): State<SharedState>, call: AgentCall<Claim>) -> Result<Response, ApiError> {
    let AgentCall { agent, body } = call;
    let vantage = registered_vantage(&agent)?;
    let lease = state.config.agent_lease_seconds as i64;
    let wanted = body.max.clamp(0, state.config.agent_max_batch as i64);
    // Never more than the declared concurrency in the agent's hands.
    let cap = agent.concurrency.min(agent.leased + wanted);
    let st = state.clone();
    let claimed = state
        .store(move |s| {
            let now = crate::scheduler::now();
            let leases = s.claim(agent.id, &vantage, cap, now, now + lease)?;
            let mut out = Claimed::default();
            for l in leases {
                if let std::collections::btree_map::Entry::Vacant(e) = out.runs.entry(l.run) {
                    e.insert(fleet_run(&st, s, l.run)?.config.clone());
                }
                out.leases.push(LeasedTarget {
                    run: l.run,
                    idx: l.idx,
                    target: l.target,
                });
            }
            Ok(out)
        })
        .await?;
    Ok(axum::Json(claimed).into_response())
}

async fn results(State(state): State<SharedState>, call: AgentCall<Results>) -> Result<Response, ApiError> {
    let AgentCall { agent, mut body } = call;
    let vantage = registered_vantage(&agent)?;
    if body.results.len() > state.config.agent_max_batch {
        return Err(ApiError::TooLarge(format!(
            "{} results in one delivery; {} at most",
            body.results.len(),
            state.config.agent_max_batch
        )));
    }
    let st = state.clone();
    let id = agent.id;
    if let Some(skew) = clock_fault(&state, id) {
        // Nothing it measured can be held against the targets.
        let why = format!(
            "the agent's clock is {skew} s off the server's (more than {MAX_CLOCK_SKEW_SECONDS} s): \
             its certificate checks cannot be trusted"
        );
        for r in &mut body.results {
            r.observation.error = Some(v6scope_model::ProbeError::new(
                v6scope_model::ErrorKind::NotTestable,
                &why,
            ));
        }
    }
    let acks = state
        .store(move |s| {
            let mut judged = Vec::with_capacity(body.results.len());
            for r in &body.results {
                let fleet = fleet_run(&st, s, r.run).map_err(|e| match e {
                    ApiError::NotFound(_) => ApiError::BadRequest(format!("no run {}", r.run)),
                    other => other,
                })?;
                judged.push(judge(&r.observation, &fleet.profiles));
            }
            let results: Vec<VantageResult<'_>> = body
                .results
                .iter()
                .zip(&judged)
                .map(|(r, verdicts)| VantageResult {
                    run: r.run,
                    idx: r.idx,
                    observation: &r.observation,
                    verdicts,
                })
                .collect();
            let delivered = s.deliver(id, &vantage, &results, crate::scheduler::now())?;
            Ok(delivered
                .into_iter()
                .map(|d| match d {
                    Delivery::Stored => Ack::Stored,
                    Delivery::Duplicate => Ack::Duplicate,
                    Delivery::NotGiven => Ack::NotGiven,
                })
                .collect::<Vec<_>>())
        })
        .await?;
    let stored = acks.iter().filter(|a| **a == Ack::Stored).count();
    let refused = acks.iter().filter(|a| **a == Ack::NotGiven).count();
    if refused > 0 {
        tracing::warn!(
            agent = agent.name,
            refused,
            "results for targets not leased to the agent refused"
        );
    }
    if let Ok(mut rates) = state.agent_rates.lock() {
        rates.record(id, stored);
    }
    Ok(axum::Json(Acks { acks }).into_response())
}

/// The agents' gauges for `/metrics` (revoked agents drop out).
pub(crate) fn export(state: &SharedState, agents: &[AgentRow]) {
    let g = &state.metrics.agents;
    for family in [
        &g.seen_ago,
        &g.results,
        &g.errors,
        &g.leased,
        &g.ipv4,
        &g.ipv6,
        &g.resolver_ok,
        &g.clock_skew,
    ] {
        family.clear();
    }
    g.rate.clear();
    let now = crate::scheduler::now();
    let rates = state.agent_rates.lock().ok();
    let clocks = state.agent_clocks.lock().ok();
    let live: Vec<&AgentRow> = agents.iter().filter(|a| !a.revoked).collect();
    g.count.set(live.len() as i64);
    for a in live {
        let labels = crate::scheduler::AgentLabels {
            agent: a.name.clone(),
            vantage: a.vantage.clone().unwrap_or_default(),
        };
        if let Some(seen) = a.last_seen {
            g.seen_ago.get_or_create(&labels).set(now - seen);
        }
        if let Some(skew) = clocks.as_ref().and_then(|c| c.get(&a.id)) {
            g.clock_skew.get_or_create(&labels).set(*skew);
        }
        g.results.get_or_create(&labels).set(a.results);
        g.errors.get_or_create(&labels).set(a.errors);
        g.leased.get_or_create(&labels).set(a.leased);
        g.rate
            .get_or_create(&labels)
            .set(rates.as_ref().map(|r| r.of(a.id)).unwrap_or(0.0));
        if let Some(test) = selftest(a) {
            g.ipv4.get_or_create(&labels).set(i64::from(test.ipv4));
            g.ipv6.get_or_create(&labels).set(i64::from(test.ipv6));
            g.resolver_ok
                .get_or_create(&labels)
                .set(i64::from(test.resolver_problems.is_empty()));
        }
    }
}

/// The self-test an agent reported.
pub(crate) fn selftest(agent: &AgentRow) -> Option<v6scope_model::Vantage> {
    serde_json::from_str(agent.selftest.as_deref()?).ok()
}
