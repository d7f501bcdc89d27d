//! The store, by entity. Every backend implements all five traits; callers
//! hold a `Box<dyn Store>` and never see which backend it is.
//!
//! Methods are synchronous: backends block, and async callers reach them
//! from a blocking thread (the server's `spawn_blocking`, the scan's writer
//! thread). Streaming methods take a callback so a run of a million targets
//! is never held in memory; a backend may call it between reads, never
//! while holding a lock the callback could need.

use crate::error::Result;
use crate::rows::*;
use v6scope_model::{DomainObservation, Target, Verdict};

/// Runs, their targets, observations and verdicts.
pub trait Runs {
    /// A new run; its start time is the program's clock.
    fn create_run(&mut self, source: &str, profiles: &[String], config: &str) -> Result<i64>;
    /// Records the run's targets (in order, indexed from 0) in one transaction.
    fn add_targets(&mut self, run: i64, targets: &[Target]) -> Result<()>;
    /// Targets of a run that have no stored observation yet, in order.
    fn pending_targets(&self, run: i64) -> Result<Vec<(i64, Target)>>;
    /// Stores a batch of finished targets atomically; a target saved again
    /// replaces what it had.
    fn save_results(&mut self, run: i64, batch: &[TargetResult<'_>]) -> Result<()>;
    /// Stores verdicts of an existing run (re-judging).
    fn save_verdicts(&mut self, run: i64, verdicts: &[(i64, Verdict)]) -> Result<()>;
    fn finish_run(&mut self, run: i64) -> Result<()>;
    /// Sets when a run started ("YYYY-MM-DDTHH:MM:SSZ"): for tests and the
    /// benchmark generator, which make runs of past months.
    fn set_run_started_at(&mut self, run: i64, started_at: &str) -> Result<()>;
    /// A run with its counts; `NotFound` if there is none.
    fn run(&self, run: i64) -> Result<RunInfo>;
    /// Every run with its counts, oldest first.
    fn runs(&self) -> Result<Vec<RunInfo>>;
    /// Runs without their counts, newest first.
    fn run_list(&self, limit: i64) -> Result<Vec<RunRow>>;
    /// The profiles a run was judged under.
    fn run_profiles(&self, run: i64) -> Result<Vec<String>>;
    /// A run's counts. A finished run's counts never change, so callers may keep them.
    fn run_counts(&self, run: i64) -> Result<RunCounts>;
    /// Runs never finished (killed or interrupted), oldest first: (id, source).
    fn unfinished_runs(&self) -> Result<Vec<(i64, String)>>;
    /// The finished runs of a source (`campaign:NAME`), newest first: (id, started_at).
    fn finished_runs_of(&self, source: &str, limit: i64) -> Result<Vec<(i64, String)>>;
    /// The run that finished last before `run` with the same source.
    fn previous_run(&self, run: i64) -> Result<Option<i64>>;
    /// The index of a domain in a run.
    fn target_index(&self, run: i64, domain: &str) -> Result<Option<i64>>;
    fn observation(&self, run: i64, idx: i64) -> Result<Option<DomainObservation>>;
    /// Observations stored and distinct target indexes among them (for integrity checks).
    fn observation_count(&self, run: i64) -> Result<(i64, i64)>;
    /// Streams a run's observations in target order.
    fn for_each_observation(&self, run: i64, f: &mut dyn FnMut(i64, DomainObservation)) -> Result<()>;
    fn verdict(&self, run: i64, idx: i64, profile: &str) -> Result<Option<Verdict>>;
    /// A run's verdicts under one profile, in target order.
    fn verdicts(&self, run: i64, profile: &str) -> Result<Vec<(i64, Verdict)>>;
    /// Per category of a run's targets: (category, targets, targets whose
    /// verdict under `profile` is pass). Targets without a verdict count as
    /// not passing.
    fn support_by_category(&self, run: i64, profile: &str) -> Result<Vec<(String, i64, i64)>>;
}

/// Named target lists that schedules and jobs scan.
pub trait Campaigns {
    /// Creates or replaces a campaign's target list, in one transaction.
    fn put_campaign(&mut self, name: &str, targets: &[Target]) -> Result<()>;
    /// Campaigns by name, with their sizes.
    fn campaigns(&self) -> Result<Vec<CampaignRow>>;
    /// A campaign's targets in order; none if there is no such campaign.
    fn campaign_targets(&self, name: &str) -> Result<Option<Vec<Target>>>;
    /// Whether a campaign of that name exists (without reading its targets).
    fn campaign_exists(&self, name: &str) -> Result<bool>;
    /// Deletes a campaign, its targets, schedules and hook (runs stay).
    fn delete_campaign(&mut self, name: &str) -> Result<bool>;
    fn set_webhook(&mut self, campaign: &str, url: Option<&str>) -> Result<()>;
    fn webhook(&self, campaign: &str) -> Result<Option<String>>;
}

/// What pages and reports read: per-run summaries, target lists, changes
/// between runs and timelines.
pub trait History {
    /// Replaces a run's summaries under a profile, and adds provider uses, in one transaction.
    fn put_summary(&mut self, run: i64, profile: &str, slices: &[Slice], uses: &[ProviderUseRow]) -> Result<()>;
    /// A run's summary slices under a profile, optionally of one dimension.
    fn summary(&self, run: i64, profile: &str, dimension: Option<&str>) -> Result<Vec<Slice>>;
    /// Provider uses of a run, by provider, role and target.
    fn provider_uses(&self, run: i64) -> Result<Vec<ProviderUseRow>>;
    /// Every target of a run with its verdict under a profile, in target order.
    fn for_each_target_verdict(&self, run: i64, profile: &str, f: &mut dyn FnMut(TargetRow)) -> Result<()>;
    /// A page of a run's judged targets matching `filter`, worst score first
    /// (ties by target order), and how many match in all.
    fn targets_page(
        &self,
        run: i64,
        profile: &str,
        filter: &TargetFilter,
        limit: i64,
        offset: i64,
    ) -> Result<(Vec<TargetRow>, i64)>;
    /// The best-scoring targets of a run (ties: later targets first).
    fn best_targets(&self, run: i64, profile: &str, limit: i64) -> Result<Vec<TargetRow>>;
    /// The `limit` lowest-scoring judged targets with their verdicts.
    fn worst_targets(&self, run: i64, profile: &str, limit: i64) -> Result<Vec<(TargetRow, Verdict)>>;
    /// A target's verdicts over a source's runs, oldest first.
    fn timeline(&self, source: &str, domain: &str) -> Result<Vec<TimelinePoint>>;
    /// Each target of `run` that `previous` also had (matched by domain),
    /// with both verdicts under `profile` (then, now), in target order.
    fn for_each_verdict_pair(
        &self,
        run: i64,
        previous: i64,
        profile: &str,
        f: &mut dyn FnMut(Verdict, Verdict),
    ) -> Result<()>;
    /// Replaces the changes recorded for a run.
    fn put_changes(&mut self, campaign: &str, run: i64, changes: &[Change]) -> Result<()>;
    /// Changes of one run, or of one domain (all runs), newest run first.
    fn changes(&self, run: Option<i64>, domain: Option<&str>, limit: i64) -> Result<Vec<Change>>;
    /// Changes of `runs` under `profile`, grouped by kind and check, most
    /// frequent first, each with up to `examples` domains.
    fn change_groups(&self, runs: &[i64], profile: &str, examples: i64) -> Result<Vec<ChangeGroupRow>>;
}

/// Schedules and the jobs they queue.
pub trait Jobs {
    /// Adds a schedule; it first fires at its first time after `now` (Unix seconds).
    fn add_schedule(&mut self, campaign: &str, cron: &str, args: &[String], now: i64) -> Result<i64>;
    fn delete_schedule(&mut self, id: i64) -> Result<bool>;
    fn schedules(&self) -> Result<Vec<Schedule>>;
    /// Marks a schedule fired and queues its job in one transaction, so a
    /// crash between the two can neither lose nor double a run.
    fn fire_schedule(&mut self, schedule: &Schedule, at: i64) -> Result<i64>;
    fn queue_job(&mut self, campaign: &str, args: &[String], reason: &str) -> Result<i64>;
    /// Jobs, newest first.
    fn jobs(&self, limit: i64) -> Result<Vec<Job>>;
    /// Jobs not finished (queued or running), oldest first.
    fn open_jobs(&self) -> Result<Vec<Job>>;
    fn job(&self, id: i64) -> Result<Option<Job>>;
    /// Records the run a job's scan created and marks it running.
    fn attach_job(&mut self, job: i64, run: i64) -> Result<()>;
    fn set_job_state(&mut self, job: i64, state: JobState, error: Option<&str>) -> Result<()>;
    /// Runs, finished runs, queued and running jobs.
    fn counters(&self) -> Result<Counters>;
}

/// Merges a stored sketch (none the first time) with new data: the new
/// sketch, or why the stored one cannot be merged.
pub type SketchMerge<'a> = dyn FnMut(Option<&[u8]>) -> std::result::Result<Vec<u8>, String> + Send + 'a;

/// Passive measurement: traffic counters and user sketches.
/// Traffic counters: kept by every store, or apart in ClickHouse
/// (`v6scope-store-clickhouse`) at backbone scale.
pub trait TrafficCounters {
    /// Adds traffic counters (a row for the same interval and group is
    /// summed), in one transaction.
    fn add_traffic(&mut self, rows: &[TrafficRow]) -> Result<()>;
    /// IPv4 and IPv6 totals per period, optionally per group, scaled rows only.
    fn traffic_by(&self, period: Period, group: Option<TrafficGroup>) -> Result<Vec<TrafficTotal>>;
    /// Records whose sampling rate nobody stated, per period and exporter,
    /// unscaled: their bytes give an IPv6 share within an exporter (the same
    /// rate applies to both families) but no volume.
    fn traffic_unscaled(&self, period: Period) -> Result<Vec<TrafficTotal>>;
    /// Monthly ("YYYY-MM") totals of the traffic in [`from`, `until`) (Unix seconds), scaled rows only.
    fn traffic_months(&self, from: i64, until: i64) -> Result<Vec<TrafficTotal>>;
}

/// Traffic counters and the day sketches of users.
pub trait Traffic: TrafficCounters {
    /// The stored sketch of a day, organisation and kind (`subscribers`, `addresses`, ...).
    fn sketch(&self, day: &str, organisation: &str, kind: &str) -> Result<Option<Vec<u8>>>;
    /// Sketches of a kind between two days (inclusive), by day.
    fn sketches(&self, first_day: &str, last_day: &str, kind: &str) -> Result<Vec<SketchRow>>;
    /// Merges into a day's sketch as one atomic operation: `merge` gets the
    /// stored sketch (none the first time) and returns the new one, with
    /// the row locked, so two collectors writing the same day and
    /// organisation never lose an update. An error from `merge` leaves the
    /// stored sketch as it was.
    fn merge_sketch(&mut self, day: &str, organisation: &str, kind: &str, merge: &mut SketchMerge<'_>) -> Result<()>;
    /// The latest day up to `until` ("YYYY-MM-DD") with a sketch of `kind`.
    fn latest_sketch_day(&self, kind: &str, until: &str) -> Result<Option<String>>;
    /// The union of a kind's sketches over [`first_day`, `last_day`], per
    /// organisation, computed in the database when it can (PostgreSQL with
    /// the `hll` extension); `None` when the caller must merge them itself.
    fn union_sketches(&self, first_day: &str, last_day: &str, kind: &str) -> Result<Option<Vec<SketchRow>>> {
        let _ = (first_day, last_day, kind);
        Ok(None)
    }
}

/// Merges a stored sketch (none the first time) with an arriving one.
pub type BatchMerge<'a> = dyn FnMut(Option<&[u8]>, &[u8]) -> std::result::Result<Vec<u8>, String> + Send + 'a;

/// Carriers' collectors and the batches they push.
pub trait Collectors {
    /// A new collector of an operator (at a measurement point, if said)
    /// with the hash of its token; `Conflict` if the name is taken.
    fn add_collector(
        &mut self,
        name: &str,
        operator: &str,
        point: Option<MeasurementPoint>,
        token_hash: &str,
    ) -> Result<i64>;
    /// Revokes a collector's token; false if there is no such collector.
    fn revoke_collector(&mut self, name: &str) -> Result<bool>;
    /// Collectors by name.
    fn collectors(&self) -> Result<Vec<CollectorRow>>;
    /// The collector holding a token (by its hash), unless revoked.
    fn collector_by_token(&self, token_hash: &str) -> Result<Option<CollectorRow>>;
    /// Stores a batch in one transaction: its traffic is added and its
    /// sketches merged (by `merge`) unless a batch of the same collector,
    /// stream and sequence number was stored before. Traffic rows are
    /// stored under the source `collector:NAME`, whatever they said.
    fn store_batch(
        &mut self,
        collector: i64,
        batch: &CollectorBatch<'_>,
        merge: &mut BatchMerge<'_>,
        now: i64,
    ) -> Result<BatchOutcome>;
    /// Whether a batch of the collector, stream and sequence number is stored.
    fn batch_stored(&self, collector: i64, stream: &str, seq: i64) -> Result<bool>;
    /// Stores an operator's reported rows as one submission, in one
    /// transaction: each row becomes the next version of its (point, site,
    /// period). Returns the submission's id and each row's version.
    fn submit_operator_figures(
        &mut self,
        operator: &str,
        collector: &str,
        format: &str,
        figures: &[OperatorFigure],
    ) -> Result<(i64, Vec<i64>)>;
    /// Every stored version of the rows of periods in [`first`, `last`]
    /// ("YYYY-MM"), by operator, point, site, period and version.
    fn operator_figures(&self, first: &str, last: &str) -> Result<Vec<OperatorFigureRow>>;
}

/// Agents, the targets they lease and the results they deliver, per vantage.
///
/// A fleet run names its vantages when it starts. Each target is evaluated
/// once per vantage: an agent of that vantage claims it under a lease,
/// and its result is keyed on (run, target, vantage). When every vantage of
/// the run has delivered a target, the target is queued as ready, and the
/// run's owner combines the per-vantage verdicts into the run's.
pub trait Fleet {
    /// A new agent with the hash of its token; `Conflict` if the name is taken.
    fn add_agent(&mut self, name: &str, token_hash: &str) -> Result<i64>;
    /// Revokes an agent's token and ends its leases; false if there is no such agent.
    fn revoke_agent(&mut self, name: &str) -> Result<bool>;
    /// Agents by name.
    fn agents(&self) -> Result<Vec<AgentRow>>;
    /// The agent holding a token (by its hash), unless revoked.
    fn agent_by_token(&self, token_hash: &str) -> Result<Option<AgentRow>>;
    /// Records what an agent declared and its self-test.
    fn register_agent(&mut self, agent: i64, registration: &AgentRegistration<'_>, now: i64) -> Result<()>;
    /// Marks an agent seen and extends its live leases to `lease_until`.
    fn heartbeat(&mut self, agent: i64, now: i64, lease_until: i64) -> Result<()>;
    /// Fixes the vantages of a fleet run.
    fn set_run_vantages(&mut self, run: i64, vantages: &[String]) -> Result<()>;
    fn run_vantages(&self, run: i64) -> Result<Vec<String>>;
    /// Hands the agent up to `concurrency` targets minus those it already
    /// holds, from the unfinished fleet runs of its vantage (oldest first):
    /// first targets whose lease ran out, then targets never handed out.
    fn claim(&mut self, agent: i64, vantage: &str, concurrency: i64, now: i64, lease_until: i64) -> Result<Vec<Lease>>;
    /// Stores results an agent delivers, in one transaction: each is
    /// stored only if the agent holds the target's lease and the
    /// observation is of the target's domain, once per vantage.
    fn deliver(&mut self, agent: i64, vantage: &str, results: &[VantageResult<'_>], now: i64) -> Result<Vec<Delivery>>;
    /// Up to `limit` targets of a run that every vantage has delivered and
    /// that are not combined yet, with their per-vantage results.
    fn ready_targets(&self, run: i64, limit: i64) -> Result<Vec<(i64, Vec<VantageResultRow>)>>;
    /// Stores combined results (as `Runs::save_results`) and takes their
    /// targets off the ready queue, in one transaction.
    fn save_combined(&mut self, run: i64, batch: &[TargetResult<'_>]) -> Result<()>;
    /// Per-vantage results of one target.
    fn vantage_results(&self, run: i64, idx: i64) -> Result<Vec<VantageResultRow>>;
    /// Per vantage of a run: targets delivered and under a live lease.
    fn fleet_progress(&self, run: i64, now: i64) -> Result<Vec<VantageProgress>>;
    /// Per vantage and status: how many targets of a run each vantage
    /// judged so under `profile`.
    fn vantage_tallies(&self, run: i64, profile: &str) -> Result<Vec<VantageTally>>;
    /// How many targets of a run have a status under `profile` that differs
    /// between vantages, and the first `limit` of them by index.
    fn vantage_differences(&self, run: i64, profile: &str, limit: i64) -> Result<(i64, Vec<VantageDifference>)>;
    /// Records edge sightings of a run; one per (target, vantage, provider,
    /// product, name): a repeat is ignored.
    fn save_edges(&mut self, run: i64, rows: &[EdgeRow]) -> Result<()>;
    /// A run's edge sightings, by target and vantage.
    fn edges(&self, run: i64) -> Result<Vec<EdgeRow>>;
}

/// A whole store: what `open` returns.
pub trait Store: Runs + Campaigns + History + Jobs + Traffic + Fleet + Collectors + Send {
    /// `sqlite:PATH` or `postgres://…` without a password.
    fn describe(&self) -> String;
}
