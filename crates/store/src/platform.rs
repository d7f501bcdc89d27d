//! The platform's tables: per-run summaries (what the dashboard and the
//! reports read, so pages never scan a million verdicts), provider use,
//! per-target changes between runs, schedules, jobs and webhooks.

use crate::{Result, Store, StoreError};
use rusqlite::{OptionalExtension, params};
use serde::{Deserialize, Serialize};

pub(crate) const SCHEMA: &str = r#"
CREATE INDEX IF NOT EXISTS targets_by_domain ON targets (domain, run_id);
CREATE INDEX IF NOT EXISTS runs_by_source ON runs (source, id);
CREATE INDEX IF NOT EXISTS verdicts_by_score ON verdicts (run_id, profile, score);
CREATE TABLE IF NOT EXISTS run_summary (
    run_id    INTEGER NOT NULL,
    profile   TEXT NOT NULL,
    dimension TEXT NOT NULL,
    key       TEXT NOT NULL,
    targets   INTEGER NOT NULL,
    pass      INTEGER NOT NULL,
    score     REAL NOT NULL,
    PRIMARY KEY (run_id, profile, dimension, key)
);
CREATE TABLE IF NOT EXISTS provider_uses (
    run_id   INTEGER NOT NULL,
    idx      INTEGER NOT NULL,
    provider TEXT NOT NULL,
    role     TEXT NOT NULL,
    ipv6     INTEGER NOT NULL,
    evidence TEXT NOT NULL,
    PRIMARY KEY (run_id, idx, provider, role)
);
CREATE TABLE IF NOT EXISTS changes (
    id           INTEGER PRIMARY KEY,
    campaign     TEXT NOT NULL,
    run_id       INTEGER NOT NULL,
    previous_run INTEGER NOT NULL,
    domain       TEXT NOT NULL,
    profile      TEXT NOT NULL,
    kind         TEXT NOT NULL,
    check_id     TEXT NOT NULL,
    from_status  TEXT NOT NULL,
    to_status    TEXT NOT NULL,
    text         TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS changes_by_domain ON changes (domain, run_id);
CREATE INDEX IF NOT EXISTS changes_by_run ON changes (run_id);
CREATE TABLE IF NOT EXISTS schedules (
    id         INTEGER PRIMARY KEY,
    campaign   TEXT NOT NULL,
    cron       TEXT NOT NULL,
    args       TEXT NOT NULL,
    last_fired INTEGER,
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS jobs (
    id           INTEGER PRIMARY KEY,
    campaign     TEXT NOT NULL,
    args         TEXT NOT NULL,
    reason       TEXT NOT NULL,
    state        TEXT NOT NULL,
    run_id       INTEGER,
    requested_at TEXT NOT NULL,
    finished_at  TEXT,
    error        TEXT
);
CREATE TABLE IF NOT EXISTS campaign_hooks (
    campaign TEXT PRIMARY KEY,
    webhook  TEXT NOT NULL
);
"#;

/// Brings an older store's tables up to date.
pub(crate) fn migrate(conn: &rusqlite::Connection) -> rusqlite::Result<()> {
    // The campaign's size, kept with it: counting a million targets on every
    // page was the overview's main cost.
    let has_targets: bool = conn
        .prepare("SELECT 1 FROM pragma_table_info('campaigns') WHERE name = 'targets'")?
        .exists([])?;
    if !has_targets {
        let added = conn.execute_batch(
            "ALTER TABLE campaigns ADD COLUMN targets INTEGER NOT NULL DEFAULT 0; \
             UPDATE campaigns SET targets = (SELECT COUNT(*) FROM campaign_targets t WHERE t.campaign = campaigns.name);",
        );
        // Another process opening the store at the same moment did it first.
        if let Err(e) = added
            && !e.to_string().contains("duplicate column")
        {
            return Err(e);
        }
    }
    Ok(())
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

/// A run as listed, without counting its targets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRow {
    pub id: i64,
    pub started_at: String,
    pub finished_at: Option<String>,
    pub source: String,
    pub profiles: Vec<String>,
}

/// A transition of a target between two runs of a campaign.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Change {
    pub run_id: i64,
    pub previous_run: i64,
    pub domain: String,
    pub profile: String,
    /// `regression` or `improvement`.
    pub kind: ChangeKind,
    /// The check that changed, or `verdict` for the domain's verdict.
    pub check_id: String,
    pub from_status: String,
    pub to_status: String,
    pub text: String,
}

/// One point of a target's timeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimelinePoint {
    pub run_id: i64,
    pub started_at: String,
    pub profile: String,
    pub status: String,
    pub score: f64,
}

/// A target row of a run with its verdict under a profile.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TargetRow {
    pub idx: i64,
    pub domain: String,
    pub category: Option<String>,
    pub organisation: Option<String>,
    pub region: Option<String>,
    pub status: Option<String>,
    pub score: Option<f64>,
}

/// Filters of a run's target list; fields are compared for equality.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TargetFilter {
    pub category: Option<String>,
    pub region: Option<String>,
    pub organisation: Option<String>,
    pub status: Option<String>,
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

impl rusqlite::types::FromSql for ChangeKind {
    fn column_result(value: rusqlite::types::ValueRef<'_>) -> rusqlite::types::FromSqlResult<Self> {
        match value.as_str()? {
            "regression" => Ok(ChangeKind::Regression),
            "improvement" => Ok(ChangeKind::Improvement),
            other => Err(rusqlite::types::FromSqlError::Other(
                format!("change kind '{other}'").into(),
            )),
        }
    }
}

impl rusqlite::types::ToSql for ChangeKind {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        Ok(self.as_str().into())
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

    fn parse(text: &str) -> Option<JobState> {
        [JobState::Queued, JobState::Running, JobState::Done, JobState::Failed]
            .into_iter()
            .find(|s| s.as_str() == text)
    }
}

impl rusqlite::types::FromSql for JobState {
    fn column_result(value: rusqlite::types::ValueRef<'_>) -> rusqlite::types::FromSqlResult<Self> {
        let text = value.as_str()?;
        JobState::parse(text).ok_or_else(|| rusqlite::types::FromSqlError::Other(format!("job state '{text}'").into()))
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

fn collect<T>(rows: impl Iterator<Item = rusqlite::Result<T>>) -> Result<Vec<T>> {
    Ok(rows.collect::<std::result::Result<_, _>>()?)
}

impl Store {
    /// Replaces a run's summaries and provider uses in one transaction.
    pub fn put_summary(&mut self, run: i64, profile: &str, slices: &[Slice], uses: &[ProviderUseRow]) -> Result<()> {
        let tx = self.conn.transaction()?;
        tx.execute(
            "DELETE FROM run_summary WHERE run_id = ?1 AND profile = ?2",
            params![run, profile],
        )?;
        {
            let mut insert = tx.prepare(
                "INSERT OR REPLACE INTO run_summary (run_id, profile, dimension, key, targets, pass, score) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?;
            for s in slices {
                insert.execute(params![run, profile, s.dimension, s.key, s.targets, s.pass, s.score])?;
            }
            let mut insert = tx.prepare(
                "INSERT OR REPLACE INTO provider_uses (run_id, idx, provider, role, ipv6, evidence) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?;
            for u in uses {
                insert.execute(params![run, u.idx, u.provider, u.role, u.ipv6, u.evidence])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// A run's summary slices under a profile, optionally of one dimension.
    pub fn summary(&self, run: i64, profile: &str, dimension: Option<&str>) -> Result<Vec<Slice>> {
        // Two statements so that a single dimension is a primary-key range
        // ("?3 IS NULL OR" would read every slice of the run).
        let mut stmt = self.conn.prepare_cached(if dimension.is_some() {
            "SELECT dimension, key, targets, pass, score FROM run_summary \
             WHERE run_id = ?1 AND profile = ?2 AND dimension = ?3 ORDER BY dimension, key"
        } else {
            "SELECT dimension, key, targets, pass, score FROM run_summary \
             WHERE run_id = ?1 AND profile = ?2 AND ?3 IS NULL ORDER BY dimension, key"
        })?;
        let rows = stmt.query_map(params![run, profile, dimension], |r| {
            Ok(Slice {
                dimension: r.get(0)?,
                key: r.get(1)?,
                targets: r.get(2)?,
                pass: r.get(3)?,
                score: r.get(4)?,
            })
        })?;
        collect(rows)
    }

    /// Provider uses of a run (all targets).
    pub fn provider_uses(&self, run: i64) -> Result<Vec<ProviderUseRow>> {
        let mut stmt = self.conn.prepare(
            "SELECT idx, provider, role, ipv6, evidence FROM provider_uses WHERE run_id = ?1 ORDER BY provider, role, idx",
        )?;
        let rows = stmt.query_map(params![run], |r| {
            Ok(ProviderUseRow {
                idx: r.get(0)?,
                provider: r.get(1)?,
                role: r.get(2)?,
                ipv6: r.get(3)?,
                evidence: r.get(4)?,
            })
        })?;
        collect(rows)
    }

    /// Per target of a run: (idx, domain, category, organisation, region,
    /// status, score) under a profile, streamed in target order.
    pub fn for_each_target_verdict(&self, run: i64, profile: &str, mut f: impl FnMut(TargetRow)) -> Result<()> {
        let mut stmt = self.conn.prepare(
            "SELECT t.idx, t.domain, t.category, t.organisation, t.region, v.status, v.score FROM targets t \
             LEFT JOIN verdicts v ON v.run_id = t.run_id AND v.idx = t.idx AND v.profile = ?2 \
             WHERE t.run_id = ?1 ORDER BY t.idx",
        )?;
        let mut rows = stmt.query(params![run, profile])?;
        while let Some(r) = rows.next()? {
            f(target_row(r)?);
        }
        Ok(())
    }

    /// A page of a run's targets matching `filter`, worst score first, and
    /// how many match in all.
    ///
    /// Rows are read in the order of the score index, so a page costs what
    /// it skips and shows, not the size of the run; the total comes from the
    /// run's summary when one filter is set, from an index otherwise.
    pub fn targets_page(
        &self,
        run: i64,
        profile: &str,
        filter: &TargetFilter,
        limit: i64,
        offset: i64,
    ) -> Result<(Vec<TargetRow>, i64)> {
        // CROSS JOIN keeps verdicts as the outer loop (SQLite does not reorder it).
        const FROM: &str = "FROM verdicts v CROSS JOIN targets t ON t.run_id = v.run_id AND t.idx = v.idx \
             WHERE v.run_id = ?1 AND v.profile = ?2 AND (?3 IS NULL OR t.category = ?3) \
             AND (?4 IS NULL OR t.region = ?4) AND (?5 IS NULL OR t.organisation = ?5) \
             AND (?6 IS NULL OR v.status = ?6)";
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT t.idx, t.domain, t.category, t.organisation, t.region, v.status, v.score {FROM} \
             ORDER BY v.score, v.rowid LIMIT ?7 OFFSET ?8"
        ))?;
        let mut rows = stmt.query(params![
            run,
            profile,
            filter.category,
            filter.region,
            filter.organisation,
            filter.status,
            limit,
            offset
        ])?;
        let mut out = Vec::new();
        while let Some(r) = rows.next()? {
            out.push(target_row(r)?);
        }
        let single = [
            ("category", &filter.category),
            ("region", &filter.region),
            ("organisation", &filter.organisation),
        ];
        let set: Vec<_> = single.iter().filter(|(_, v)| v.is_some()).collect();
        let from_summary = match (set.as_slice(), &filter.status) {
            ([], None) => Some(("all", String::new())),
            ([(dimension, Some(key))], None) => Some((*dimension, key.clone())),
            _ => None,
        };
        let summarised: Option<i64> = match &from_summary {
            Some((dimension, key)) => self
                .conn
                .query_row(
                    "SELECT targets FROM run_summary WHERE run_id = ?1 AND profile = ?2 AND dimension = ?3 AND key = ?4",
                    params![run, profile, dimension, key],
                    |r| r.get(0),
                )
                .optional()?,
            None => None,
        };
        let total = match summarised {
            // A slice absent from a summarised run has no targets.
            None if from_summary.is_some() && self.has_summary(run, profile)? => 0,
            Some(n) => n,
            None => self.conn.query_row(
                &format!("SELECT COUNT(*) {FROM}"),
                params![
                    run,
                    profile,
                    filter.category,
                    filter.region,
                    filter.organisation,
                    filter.status
                ],
                |r| r.get(0),
            )?,
        };
        Ok((out, total))
    }

    fn has_summary(&self, run: i64, profile: &str) -> Result<bool> {
        Ok(self
            .conn
            .prepare_cached("SELECT 1 FROM run_summary WHERE run_id = ?1 AND profile = ?2 AND dimension = 'all'")?
            .exists(params![run, profile])?)
    }

    /// The best-scoring targets of a run.
    pub fn best_targets(&self, run: i64, profile: &str, limit: i64) -> Result<Vec<TargetRow>> {
        let mut stmt = self.conn.prepare(
            "SELECT t.idx, t.domain, t.category, t.organisation, t.region, v.status, v.score FROM verdicts v \
             CROSS JOIN targets t ON t.run_id = v.run_id AND t.idx = v.idx \
             WHERE v.run_id = ?1 AND v.profile = ?2 ORDER BY v.score DESC, v.rowid DESC LIMIT ?3",
        )?;
        let mut rows = stmt.query(params![run, profile, limit])?;
        let mut out = Vec::new();
        while let Some(r) = rows.next()? {
            out.push(target_row(r)?);
        }
        Ok(out)
    }

    /// The finished runs of a source (`campaign:NAME`), newest first.
    pub fn finished_runs_of(&self, source: &str, limit: i64) -> Result<Vec<(i64, String)>> {
        let mut stmt = self.conn.prepare(
            "SELECT id, started_at FROM runs WHERE source = ?1 AND finished_at IS NOT NULL ORDER BY id DESC LIMIT ?2",
        )?;
        let rows = stmt.query_map(params![source, limit], |r| Ok((r.get(0)?, r.get(1)?)))?;
        collect(rows)
    }

    /// The run that finished last before `run` with the same source.
    pub fn previous_run(&self, run: i64) -> Result<Option<i64>> {
        Ok(self
            .conn
            .query_row(
                "SELECT p.id FROM runs r JOIN runs p ON p.source = r.source AND p.id < r.id \
                 AND p.finished_at IS NOT NULL WHERE r.id = ?1 ORDER BY p.id DESC LIMIT 1",
                params![run],
                |r| r.get(0),
            )
            .optional()?)
    }

    /// Runs never finished (killed or interrupted), oldest first.
    pub fn unfinished_runs(&self) -> Result<Vec<(i64, String)>> {
        let mut stmt = self
            .conn
            .prepare("SELECT id, source FROM runs WHERE finished_at IS NULL ORDER BY id")?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        collect(rows)
    }

    /// A target's verdicts over a source's runs, oldest first.
    pub fn timeline(&self, source: &str, domain: &str) -> Result<Vec<TimelinePoint>> {
        let mut stmt = self.conn.prepare(
            // CROSS JOIN: start from the domain's index entries, not from
            // every verdict of the source's runs.
            "SELECT r.id, r.started_at, v.profile, v.status, v.score FROM targets t \
             CROSS JOIN runs r ON r.id = t.run_id \
             CROSS JOIN verdicts v ON v.run_id = t.run_id AND v.idx = t.idx \
             WHERE t.domain = ?1 AND r.source = ?2 ORDER BY r.id, v.profile",
        )?;
        let rows = stmt.query_map(params![domain, source], |r| {
            Ok(TimelinePoint {
                run_id: r.get(0)?,
                started_at: r.get(1)?,
                profile: r.get(2)?,
                status: r.get(3)?,
                score: r.get(4)?,
            })
        })?;
        collect(rows)
    }

    /// The index of a domain in a run.
    pub fn target_index(&self, run: i64, domain: &str) -> Result<Option<i64>> {
        Ok(self
            .conn
            .query_row(
                "SELECT idx FROM targets WHERE run_id = ?1 AND domain = ?2",
                params![run, domain],
                |r| r.get(0),
            )
            .optional()?)
    }

    /// One stored verdict body.
    pub fn verdict(&self, run: i64, idx: i64, profile: &str) -> Result<Option<v6scope_model::Verdict>> {
        let body: Option<String> = self
            .conn
            .query_row(
                "SELECT body FROM verdicts WHERE run_id = ?1 AND idx = ?2 AND profile = ?3",
                params![run, idx, profile],
                |r| r.get(0),
            )
            .optional()?;
        Ok(match body {
            Some(b) => Some(serde_json::from_str(&b)?),
            None => None,
        })
    }

    /// One stored observation.
    pub fn observation(&self, run: i64, idx: i64) -> Result<Option<v6scope_model::DomainObservation>> {
        let body: Option<String> = self
            .conn
            .query_row(
                "SELECT body FROM observations WHERE run_id = ?1 AND idx = ?2",
                params![run, idx],
                |r| r.get(0),
            )
            .optional()?;
        Ok(match body {
            Some(b) => Some(serde_json::from_str(&b)?),
            None => None,
        })
    }

    /// Replaces the changes recorded for a run.
    pub fn put_changes(&mut self, campaign: &str, run: i64, changes: &[Change]) -> Result<()> {
        let tx = self.conn.transaction()?;
        tx.execute("DELETE FROM changes WHERE run_id = ?1", params![run])?;
        {
            let mut insert = tx.prepare(
                "INSERT INTO changes (campaign, run_id, previous_run, domain, profile, kind, check_id, from_status, \
                 to_status, text) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            )?;
            for c in changes {
                insert.execute(params![
                    campaign,
                    run,
                    c.previous_run,
                    c.domain,
                    c.profile,
                    c.kind,
                    c.check_id,
                    c.from_status,
                    c.to_status,
                    c.text
                ])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Changes of one run, or of one domain (all runs), newest first.
    pub fn changes(&self, run: Option<i64>, domain: Option<&str>, limit: i64) -> Result<Vec<Change>> {
        // One statement per shape, so each can use its index ("?1 IS NULL OR"
        // would make SQLite scan the table).
        let filter = match (run, domain) {
            (Some(_), Some(_)) => "run_id = ?1 AND domain = ?2",
            (Some(_), None) => "run_id = ?1 AND ?2 IS NULL",
            (None, Some(_)) => "?1 IS NULL AND domain = ?2",
            (None, None) => "?1 IS NULL AND ?2 IS NULL",
        };
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT run_id, previous_run, domain, profile, kind, check_id, from_status, to_status, text FROM changes \
             WHERE {filter} ORDER BY run_id DESC, id LIMIT ?3"
        ))?;
        let rows = stmt.query_map(params![run, domain, limit], |r| {
            Ok(Change {
                run_id: r.get(0)?,
                previous_run: r.get(1)?,
                domain: r.get(2)?,
                profile: r.get(3)?,
                kind: r.get(4)?,
                check_id: r.get(5)?,
                from_status: r.get(6)?,
                to_status: r.get(7)?,
                text: r.get(8)?,
            })
        })?;
        collect(rows)
    }

    /// Adds a schedule; it first fires at its first time after `now`.
    pub fn add_schedule(&mut self, campaign: &str, cron: &str, args: &[String], now: i64) -> Result<i64> {
        self.conn.execute(
            "INSERT INTO schedules (campaign, cron, args, last_fired, created_at) \
             VALUES (?1, ?2, ?3, ?4, strftime('%Y-%m-%dT%H:%M:%SZ','now'))",
            params![campaign, cron, serde_json::to_string(args)?, now],
        )?;
        Ok(self.conn.last_insert_rowid())
    }

    pub fn delete_schedule(&mut self, id: i64) -> Result<bool> {
        Ok(self.conn.execute("DELETE FROM schedules WHERE id = ?1", params![id])? > 0)
    }

    pub fn schedules(&self) -> Result<Vec<Schedule>> {
        let mut stmt = self
            .conn
            .prepare("SELECT id, campaign, cron, args, last_fired FROM schedules ORDER BY id")?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, Option<i64>>(4)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (id, campaign, cron, args, last_fired) = row?;
            out.push(Schedule {
                id,
                campaign,
                cron,
                args: serde_json::from_str(&args)?,
                last_fired,
            });
        }
        Ok(out)
    }

    /// Marks a schedule fired and queues its job, in one transaction, so a
    /// crash between the two can neither lose nor double a run.
    pub fn fire_schedule(&mut self, schedule: &Schedule, at: i64) -> Result<i64> {
        let tx = self.conn.transaction()?;
        tx.execute(
            "UPDATE schedules SET last_fired = ?2 WHERE id = ?1",
            params![schedule.id, at],
        )?;
        tx.execute(
            "INSERT INTO jobs (campaign, args, reason, state, requested_at) \
             VALUES (?1, ?2, ?3, 'queued', strftime('%Y-%m-%dT%H:%M:%SZ','now'))",
            params![
                schedule.campaign,
                serde_json::to_string(&schedule.args)?,
                format!("schedule {}", schedule.id)
            ],
        )?;
        let id = tx.last_insert_rowid();
        tx.commit()?;
        Ok(id)
    }

    pub fn queue_job(&mut self, campaign: &str, args: &[String], reason: &str) -> Result<i64> {
        self.conn.execute(
            "INSERT INTO jobs (campaign, args, reason, state, requested_at) \
             VALUES (?1, ?2, ?3, 'queued', strftime('%Y-%m-%dT%H:%M:%SZ','now'))",
            params![campaign, serde_json::to_string(args)?, reason],
        )?;
        Ok(self.conn.last_insert_rowid())
    }

    /// Jobs, newest first.
    pub fn jobs(&self, limit: i64) -> Result<Vec<Job>> {
        self.query_jobs("SELECT * FROM jobs ORDER BY id DESC LIMIT ?1", params![limit])
    }

    /// Jobs not finished (queued or running), oldest first.
    pub fn open_jobs(&self) -> Result<Vec<Job>> {
        self.query_jobs(
            "SELECT * FROM jobs WHERE state IN ('queued', 'running') ORDER BY id",
            params![],
        )
    }

    pub fn job(&self, id: i64) -> Result<Option<Job>> {
        Ok(self.query_jobs("SELECT * FROM jobs WHERE id = ?1", params![id])?.pop())
    }

    fn query_jobs(&self, sql: &str, p: impl rusqlite::Params) -> Result<Vec<Job>> {
        let mut stmt = self.conn.prepare(&sql.replace(
            "SELECT *",
            "SELECT id, campaign, args, reason, state, run_id, requested_at, finished_at, error",
        ))?;
        let mut rows = stmt.query(p)?;
        let mut out = Vec::new();
        while let Some(r) = rows.next()? {
            let args: String = r.get(2)?;
            out.push(Job {
                id: r.get(0)?,
                campaign: r.get(1)?,
                args: serde_json::from_str(&args)?,
                reason: r.get(3)?,
                state: r.get(4)?,
                run_id: r.get(5)?,
                requested_at: r.get(6)?,
                finished_at: r.get(7)?,
                error: r.get(8)?,
            });
        }
        Ok(out)
    }

    /// Records the run a job's scan created (called by `scan --job`).
    pub fn attach_job(&mut self, job: i64, run: i64) -> Result<()> {
        let n = self.conn.execute(
            "UPDATE jobs SET run_id = ?2, state = 'running' WHERE id = ?1",
            params![job, run],
        )?;
        if n == 0 {
            return Err(StoreError::NoSuchJob(job));
        }
        Ok(())
    }

    pub fn set_job_state(&mut self, job: i64, state: JobState, error: Option<&str>) -> Result<()> {
        let (finished, state) = (state.finished(), state.as_str());
        self.conn.execute(
            "UPDATE jobs SET state = ?2, error = ?3, \
             finished_at = CASE WHEN ?4 THEN strftime('%Y-%m-%dT%H:%M:%SZ','now') ELSE finished_at END WHERE id = ?1",
            params![job, state, error, finished],
        )?;
        Ok(())
    }

    pub fn set_webhook(&mut self, campaign: &str, url: Option<&str>) -> Result<()> {
        match url {
            Some(u) => self.conn.execute(
                "INSERT OR REPLACE INTO campaign_hooks (campaign, webhook) VALUES (?1, ?2)",
                params![campaign, u],
            )?,
            None => self
                .conn
                .execute("DELETE FROM campaign_hooks WHERE campaign = ?1", params![campaign])?,
        };
        Ok(())
    }

    pub fn webhook(&self, campaign: &str) -> Result<Option<String>> {
        Ok(self
            .conn
            .query_row(
                "SELECT webhook FROM campaign_hooks WHERE campaign = ?1",
                params![campaign],
                |r| r.get(0),
            )
            .optional()?)
    }

    /// Deletes a campaign, its targets, schedules and hook (runs stay).
    pub fn delete_campaign(&mut self, name: &str) -> Result<bool> {
        let tx = self.conn.transaction()?;
        tx.execute("DELETE FROM campaign_targets WHERE campaign = ?1", params![name])?;
        tx.execute("DELETE FROM schedules WHERE campaign = ?1", params![name])?;
        tx.execute("DELETE FROM campaign_hooks WHERE campaign = ?1", params![name])?;
        let n = tx.execute("DELETE FROM campaigns WHERE name = ?1", params![name])?;
        tx.commit()?;
        Ok(n > 0)
    }

    /// Counts for the metrics endpoint that cost nothing: (runs, finished
    /// runs, queued jobs, running jobs).
    pub fn counters(&self) -> Result<[i64; 4]> {
        Ok(self.conn.query_row(
            "SELECT (SELECT COUNT(*) FROM runs), (SELECT COUNT(*) FROM runs WHERE finished_at IS NOT NULL), \
             (SELECT COUNT(*) FROM jobs WHERE state = 'queued'), (SELECT COUNT(*) FROM jobs WHERE state = 'running')",
            [],
            |r| Ok([r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?]),
        )?)
    }

    /// Per run: (targets, observations stored, error verdicts). A finished
    /// run's counts never change, so callers may keep them.
    pub fn run_counts(&self, run: i64) -> Result<(i64, i64, i64)> {
        Ok(self.conn.query_row(
            "SELECT (SELECT COUNT(*) FROM targets WHERE run_id = ?1), \
             (SELECT COUNT(*) FROM observations WHERE run_id = ?1), \
             (SELECT COUNT(*) FROM verdicts WHERE run_id = ?1 AND status = 'error')",
            params![run],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )?)
    }

    /// Each target of `run` that `previous` also had (matched by domain),
    /// with both verdicts under `profile`, streamed: comparing two runs of a
    /// million targets must not hold either in memory.
    pub fn for_each_verdict_pair(
        &self,
        run: i64,
        previous: i64,
        profile: &str,
        mut f: impl FnMut(v6scope_model::Verdict, v6scope_model::Verdict),
    ) -> Result<()> {
        let mut stmt = self.conn.prepare(
            "SELECT p.body, n.body FROM verdicts n \
             CROSS JOIN targets tn ON tn.run_id = n.run_id AND tn.idx = n.idx \
             CROSS JOIN targets tp ON tp.domain = tn.domain AND tp.run_id = ?2 \
             CROSS JOIN verdicts p ON p.run_id = tp.run_id AND p.idx = tp.idx AND p.profile = n.profile \
             WHERE n.run_id = ?1 AND n.profile = ?3 ORDER BY n.run_id, n.idx",
        )?;
        let mut rows = stmt.query(params![run, previous, profile])?;
        while let Some(r) = rows.next()? {
            let then: String = r.get(0)?;
            let now: String = r.get(1)?;
            f(serde_json::from_str(&then)?, serde_json::from_str(&now)?);
        }
        Ok(())
    }

    /// The profiles a run was judged under.
    pub fn run_profiles(&self, run: i64) -> Result<Vec<String>> {
        let profiles: String = self
            .conn
            .query_row("SELECT profiles FROM runs WHERE id = ?1", params![run], |r| r.get(0))
            .optional()?
            .ok_or(StoreError::NoSuchRun(run))?;
        Ok(crate::split_profiles(&profiles))
    }

    /// Runs without their counts, newest first.
    pub fn run_list(&self, limit: i64) -> Result<Vec<RunRow>> {
        let mut stmt = self
            .conn
            .prepare("SELECT id, started_at, finished_at, source, profiles FROM runs ORDER BY id DESC LIMIT ?1")?;
        let rows = stmt.query_map(params![limit], |r| {
            let profiles: String = r.get(4)?;
            Ok(RunRow {
                id: r.get(0)?,
                started_at: r.get(1)?,
                finished_at: r.get(2)?,
                source: r.get(3)?,
                profiles: crate::split_profiles(&profiles),
            })
        })?;
        collect(rows)
    }
}

pub(crate) fn target_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<TargetRow> {
    Ok(TargetRow {
        idx: r.get(0)?,
        domain: r.get(1)?,
        category: r.get(2)?,
        organisation: r.get(3)?,
        region: r.get(4)?,
        status: r.get(5)?,
        score: r.get(6)?,
    })
}
