//! Schedules fire jobs; jobs run scans one at a time as child processes.
//!
//! A schedule that should have fired several times while the server was
//! down fires once when it comes back (its `last_fired` moves to now), and
//! the firing and the queued job are one transaction. A job whose scan was
//! interrupted is resumed with `scan --resume RUN`, so nothing is evaluated
//! twice and nothing is lost.

use crate::{ApiError, SharedState};
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use chrono::{DateTime, Utc};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use std::str::FromStr;
use std::time::Duration;
use v6scope_store::{Job, JobState, Schedule};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct RequestLabels {
    pub kind: String,
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct JobLabels {
    pub outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct AgentLabels {
    pub agent: String,
    pub vantage: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct CollectorLabels {
    pub collector: String,
    pub operator: String,
}

/// Carriers' collectors, read from the store at scrape time.
pub(crate) struct CollectorGauges {
    pub last_push_age: Family<CollectorLabels, Gauge>,
    pub lag: Family<CollectorLabels, Gauge>,
    pub batches: Family<CollectorLabels, Gauge>,
    pub duplicates: Family<CollectorLabels, Gauge>,
    pub spool_dropped: Family<CollectorLabels, Gauge>,
    pub count: Gauge,
}

impl CollectorGauges {
    fn register(registry: &mut Registry) -> CollectorGauges {
        let g = CollectorGauges {
            last_push_age: Family::default(),
            lag: Family::default(),
            batches: Family::default(),
            duplicates: Family::default(),
            spool_dropped: Family::default(),
            count: Gauge::default(),
        };
        registry.register("collectors", "Collectors with a live token", g.count.clone());
        registry.register(
            "collector_last_push_age_seconds",
            "Seconds since the collector's last batch arrived",
            g.last_push_age.clone(),
        );
        registry.register(
            "collector_lag_seconds",
            "Seconds between now and the end of the newest interval the collector sent",
            g.lag.clone(),
        );
        registry.register(
            "collector_batches",
            "Batches stored from the collector",
            g.batches.clone(),
        );
        registry.register(
            "collector_duplicate_batches",
            "Batches the collector sent again after they were stored (ignored)",
            g.duplicates.clone(),
        );
        registry.register(
            "collector_spool_dropped",
            "Batches the collector dropped from its full spool, as it last reported",
            g.spool_dropped.clone(),
        );
        g
    }
}

/// Agents' state, read from the store at scrape time.
pub(crate) struct AgentGauges {
    pub seen_ago: Family<AgentLabels, Gauge>,
    pub results: Family<AgentLabels, Gauge>,
    pub errors: Family<AgentLabels, Gauge>,
    pub leased: Family<AgentLabels, Gauge>,
    pub rate: Family<AgentLabels, Gauge<f64, std::sync::atomic::AtomicU64>>,
    pub ipv4: Family<AgentLabels, Gauge>,
    pub ipv6: Family<AgentLabels, Gauge>,
    pub resolver_ok: Family<AgentLabels, Gauge>,
    pub clock_skew: Family<AgentLabels, Gauge>,
    pub count: Gauge,
}

impl AgentGauges {
    fn register(registry: &mut Registry) -> AgentGauges {
        let g = AgentGauges {
            seen_ago: Family::default(),
            results: Family::default(),
            errors: Family::default(),
            leased: Family::default(),
            rate: Family::default(),
            ipv4: Family::default(),
            ipv6: Family::default(),
            resolver_ok: Family::default(),
            clock_skew: Family::default(),
            count: Gauge::default(),
        };
        registry.register("agents", "Agents with a live token", g.count.clone());
        registry.register(
            "agent_last_seen_age_seconds",
            "Seconds since the agent's last request",
            g.seen_ago.clone(),
        );
        registry.register(
            "agent_results",
            "Results the agent delivered (stored)",
            g.results.clone(),
        );
        registry.register(
            "agent_errors",
            "Delivered results that were probe errors",
            g.errors.clone(),
        );
        registry.register("agent_leased", "Targets leased to the agent now", g.leased.clone());
        registry.register(
            "agent_targets_per_second",
            "Results the agent delivers per second (about a minute's average)",
            g.rate.clone(),
        );
        registry.register(
            "agent_ipv4",
            "The agent's self-test found working IPv4 (1) or not (0)",
            g.ipv4.clone(),
        );
        registry.register(
            "agent_ipv6",
            "The agent's self-test found working IPv6 (1) or not (0)",
            g.ipv6.clone(),
        );
        registry.register(
            "agent_resolver_ok",
            "The agent's resolver self-test found no fault (1) or some (0)",
            g.resolver_ok.clone(),
        );
        registry.register(
            "agent_clock_skew_seconds",
            "The agent's clock minus the server's at its last heartbeat",
            g.clock_skew.clone(),
        );
        g
    }
}

/// In-process counters; store-derived gauges are read at scrape time.
pub(crate) struct Metrics {
    pub requests: Family<RequestLabels, Counter>,
    pub jobs: Family<JobLabels, Counter>,
    pub webhooks: Family<JobLabels, Counter>,
    pub schedule_fired: Counter,
    pub runs: Gauge,
    pub runs_finished: Gauge,
    pub probes: Gauge,
    pub errors: Gauge,
    pub queue_depth: Gauge,
    pub jobs_running: Gauge,
    pub agents: AgentGauges,
    pub collectors: CollectorGauges,
    /// Traffic rows and sketches stored from collectors' batches.
    pub collector_rows: Counter,
    /// Beacon fetches recorded and tests classified.
    pub beacon_hits: Counter,
    pub beacon_results: Counter,
    pub registry: Registry,
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("v6scope");
        let agents = AgentGauges::register(&mut registry);
        let collectors = CollectorGauges::register(&mut registry);
        let m = Metrics {
            requests: Family::default(),
            jobs: Family::default(),
            webhooks: Family::default(),
            schedule_fired: Counter::default(),
            runs: Gauge::default(),
            runs_finished: Gauge::default(),
            probes: Gauge::default(),
            errors: Gauge::default(),
            queue_depth: Gauge::default(),
            jobs_running: Gauge::default(),
            agents,
            collectors,
            collector_rows: Counter::default(),
            beacon_hits: Counter::default(),
            beacon_results: Counter::default(),
            registry: Registry::default(),
        };
        registry.register(
            "collector_rows",
            "Traffic rows and sketches stored from collectors' batches",
            m.collector_rows.clone(),
        );
        registry.register("beacon_hits", "Beacon object fetches recorded", m.beacon_hits.clone());
        registry.register("beacon_results", "Beacon tests classified", m.beacon_results.clone());
        registry.register("http_requests", "HTTP requests answered", m.requests.clone());
        registry.register("jobs", "Scan jobs finished, by outcome", m.jobs.clone());
        registry.register("webhooks", "Webhook deliveries, by outcome", m.webhooks.clone());
        registry.register("schedule_fired", "Times a schedule fired", m.schedule_fired.clone());
        registry.register("runs", "Runs in the store", m.runs.clone());
        registry.register("runs_finished", "Finished runs in the store", m.runs_finished.clone());
        registry.register("probes", "Targets evaluated (observations stored)", m.probes.clone());
        registry.register("error_verdicts", "Verdicts with status error", m.errors.clone());
        registry.register("queue_depth", "Jobs queued and not started", m.queue_depth.clone());
        registry.register("jobs_running", "Jobs running", m.jobs_running.clone());
        // Every series a dashboard or an alert may ask for exists from the
        // start, at zero, rather than appearing with its first event.
        for outcome in ["done", "failed"] {
            let _ = m.jobs.get_or_create(&JobLabels {
                outcome: outcome.into(),
            });
        }
        for outcome in ["delivered", "rejected", "failed", "refused"] {
            let _ = m.webhooks.get_or_create(&JobLabels {
                outcome: outcome.into(),
            });
        }
        for kind in ["api", "agent", "page", "metrics"] {
            let _ = m.requests.get_or_create(&RequestLabels {
                kind: kind.into(),
                status: 200,
            });
        }
        Metrics { registry, ..m }
    }
}

/// Counts answered requests by kind (api, page, metrics) and status.
pub(crate) async fn count_requests(State(state): State<SharedState>, request: Request, next: Next) -> Response {
    let path = request.uri().path();
    let kind = if path.starts_with("/api/") {
        "api"
    } else if path.starts_with("/agent/") {
        "agent"
    } else if path == "/metrics" {
        "metrics"
    } else {
        "page"
    };
    let response = next.run(request).await;
    state
        .metrics
        .requests
        .get_or_create(&RequestLabels {
            kind: kind.into(),
            status: response.status().as_u16(),
        })
        .inc();
    response
}

/// Validates a cron expression (5 fields, or 6 with seconds; `@daily` ...).
pub(crate) fn parse_cron(text: &str) -> Result<croner::Cron, ApiError> {
    if text.len() > 200 {
        return Err(ApiError::BadRequest("cron expression too long".into()));
    }
    croner::Cron::from_str(text).map_err(|e| ApiError::BadRequest(format!("cron '{text}': {e}")))
}

/// Whether a schedule is due at `now`: its next time after the last firing
/// (or its creation) has passed.
pub(crate) fn due(schedule: &Schedule, created: i64, now: i64) -> bool {
    let Ok(cron) = croner::Cron::from_str(&schedule.cron) else {
        return false;
    };
    let since = schedule.last_fired.unwrap_or(created);
    let Some(since) = DateTime::<Utc>::from_timestamp(since, 0) else {
        return false;
    };
    match cron.find_next_occurrence(&since, false) {
        Ok(next) => next.timestamp() <= now,
        Err(_) => false,
    }
}

pub(crate) fn now() -> i64 {
    Utc::now().timestamp()
}

pub(crate) async fn run_scheduler(state: SharedState) {
    let tick = Duration::from_secs(state.config.tick_seconds.max(1));
    loop {
        let fired = state
            .store(|store| {
                let now = now();
                let mut fired = 0;
                for schedule in store.schedules()? {
                    // A schedule is created with last_fired = its creation time.
                    if due(&schedule, now, now) {
                        let job = store.fire_schedule(&schedule, now)?;
                        tracing::info!(
                            "schedule {} ({}) fired: job {job} for campaign {}",
                            schedule.id,
                            schedule.cron,
                            schedule.campaign
                        );
                        fired += 1;
                    }
                }
                Ok(fired)
            })
            .await;
        match fired {
            Ok(0) => {}
            Ok(n) => {
                state.metrics.schedule_fired.inc_by(n);
                state.wake.notify_one();
            }
            Err(e) => tracing::error!("scheduler: {e}"),
        }
        tokio::time::sleep(tick).await;
    }
}

/// Runs open jobs one after another, oldest first; waits to be woken (or a
/// few seconds) when there is none.
pub(crate) async fn run_jobs(state: SharedState) {
    loop {
        let next = state.store(|store| Ok(store.open_jobs()?.into_iter().next())).await;
        match next {
            Ok(Some(job)) => run_job(&state, job).await,
            Ok(None) => {
                let _ = tokio::time::timeout(Duration::from_secs(5), state.wake.notified()).await;
            }
            Err(e) => {
                tracing::error!("jobs: {e}");
                tokio::time::sleep(Duration::from_secs(5)).await;
            }
        }
    }
}

/// The `scan` command line of a job.
pub(crate) fn scan_command(state: &SharedState, job: &Job) -> Vec<String> {
    let config = &state.config;
    let mut args = state.scanner.leading_args.clone();
    args.push("scan".into());
    match job.run_id {
        Some(run) => args.extend(["--resume".into(), run.to_string()]),
        None => args.extend(["--campaign".into(), job.campaign.clone()]),
    }
    // The store reaches the scan through its environment (see run_job):
    // a PostgreSQL URL may hold a password, which argv would show to
    // every user of the machine.
    args.extend(["--job".into(), job.id.to_string()]);
    if !config.allow_special_targets {
        args.push("--public-only".into());
        for prefix in &config.allow_targets {
            args.extend(["--scan-allow".into(), prefix.to_string()]);
        }
    }
    if let Some(p) = &config.providers {
        args.extend(["--providers".into(), p.display().to_string()]);
    }
    // Only runs from agents attribute edges to cloud products.
    if let Some(p) = &config.cloud_products
        && job.args.iter().any(|a| a == "--agents" || a.starts_with("--agents="))
    {
        args.extend(["--cloud-products".into(), p.display().to_string()]);
    }
    if job.run_id.is_none() {
        args.extend(config.scan_args.iter().cloned());
        args.extend(job.args.iter().cloned());
    }
    args
}

async fn run_job(state: &SharedState, job: Job) {
    let args = scan_command(state, &job);
    tracing::info!("job {}: {} {}", job.id, state.scanner.program.display(), args.join(" "));
    state.metrics.jobs_running.set(1);
    let mut command = tokio::process::Command::new(&state.scanner.program);
    command
        .args(&args)
        .env("V6SCOPE_STORE", state.location.to_url())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    // SAFETY: prctl is async-signal-safe; it makes the scan end with the
    // server, so a restarted server resumes it rather than racing it.
    unsafe {
        command.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
            Ok(())
        });
    }
    let outcome = match command.spawn() {
        Ok(child) => match child.wait_with_output().await {
            Ok(out) if out.status.success() => Ok(()),
            Ok(out) => {
                let stderr = String::from_utf8_lossy(&out.stderr);
                let last = stderr.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("");
                Err(format!("scan exited with {}: {last}", out.status))
            }
            Err(e) => Err(format!("waiting for the scan: {e}")),
        },
        Err(e) => Err(format!("starting {}: {e}", state.scanner.program.display())),
    };
    state.metrics.jobs_running.set(0);
    let id = job.id;
    let error = outcome.as_ref().err().cloned();
    let finished = state
        .store(move |store| {
            let state = if error.is_some() {
                JobState::Failed
            } else {
                JobState::Done
            };
            store.set_job_state(id, state, error.as_deref())?;
            Ok(store.job(id)?)
        })
        .await;
    let label = if outcome.is_ok() { "done" } else { "failed" };
    state
        .metrics
        .jobs
        .get_or_create(&JobLabels { outcome: label.into() })
        .inc();
    if let Err(e) = &outcome {
        tracing::warn!("job {id}: {e}");
    }
    if let (Ok(()), Ok(Some(job))) = (&outcome, finished)
        && let Some(run) = job.run_id
    {
        notify_regressions(state, &job.campaign, run).await;
    }
}

/// Posts the run's regressions to the campaign's webhook, if it has one.
async fn notify_regressions(state: &SharedState, campaign: &str, run: i64) {
    let name = campaign.to_string();
    let found = state
        .store(move |store| {
            let Some(url) = store.webhook(&name)? else {
                return Ok(None);
            };
            let regressions: Vec<_> = store
                .changes(Some(run), None, 10_000)?
                .into_iter()
                .filter(|c| c.kind == v6scope_store::ChangeKind::Regression)
                .collect();
            Ok(Some((url, regressions)))
        })
        .await;
    let Ok(Some((url, regressions))) = found else {
        return;
    };
    if regressions.is_empty() {
        return;
    }
    let body = serde_json::json!({
        "event": "regressions",
        "campaign": campaign,
        "run": run,
        "count": regressions.len(),
        "regressions": regressions,
    });
    let timeout = Duration::from_secs(state.config.webhook_timeout_seconds);
    // Checked again now: the name may point elsewhere than when it was set.
    let outcome = match crate::webhook::vet(&url, &state.webhook_policy(), timeout).await {
        Err(e) => {
            tracing::warn!("webhook {url} refused: {e}");
            "refused"
        }
        Ok(vetted) => match crate::webhook::client(&vetted, timeout) {
            Ok(c) => match c.post(vetted.url.clone()).json(&body).send().await {
                Ok(r) if r.status().is_success() => "delivered",
                Ok(r) => {
                    tracing::warn!("webhook {url}: HTTP {}", r.status());
                    "rejected"
                }
                Err(e) => {
                    tracing::warn!("webhook {url}: {e}");
                    "failed"
                }
            },
            Err(e) => {
                tracing::warn!("webhook client: {e}");
                "failed"
            }
        },
    };
    state
        .metrics
        .webhooks
        .get_or_create(&JobLabels {
            outcome: outcome.into(),
        })
        .inc();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schedule(cron: &str, last_fired: Option<i64>) -> Schedule {
        Schedule {
            id: 1,
            campaign: "c".into(),
            cron: cron.into(),
            args: vec![],
            last_fired,
        }
    }

    #[test]
    fn a_schedule_missed_many_times_is_due_once() {
        // Daily at 03:00; last fired 2026-11-20 03:00 UTC; now is six days later.
        let last = 1_795_143_600; // 2026-11-20T03:00:00Z
        let s = schedule("0 3 * * *", Some(last));
        assert!(!due(&s, last, last + 3600));
        assert!(due(&s, last, last + 86_400));
        let now = last + 6 * 86_400 + 60;
        assert!(due(&s, last, now));
        // After firing (last_fired = now) it is not due again until the next 03:00.
        let fired = schedule("0 3 * * *", Some(now));
        assert!(!due(&fired, last, now + 3600));
        assert!(due(&fired, last, now + 86_400));
    }

    #[test]
    fn bad_cron_is_a_400() {
        assert!(parse_cron("0 3 * * *").is_ok());
        assert!(parse_cron("@daily").is_ok());
        let err = parse_cron("61 3 * * *").unwrap_err();
        assert_eq!(err.status(), axum::http::StatusCode::BAD_REQUEST);
        assert!(parse_cron("not a cron").is_err());
    }
}
