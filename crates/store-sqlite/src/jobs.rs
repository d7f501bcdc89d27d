use crate::{Db, SqliteStore, collect, parsed};
use rusqlite::params;
use v6scope_store_api::{Counters, Job, JobState, Jobs, Result, Schedule, StoreError, now_utc};

const JOB_COLUMNS: &str = "id, campaign, args, reason, state, run_id, requested_at, finished_at, error";

impl SqliteStore {
    fn query_jobs(&self, filter: &str, p: impl rusqlite::Params) -> Result<Vec<Job>> {
        let mut stmt = self
            .conn
            .prepare(&format!("SELECT {JOB_COLUMNS} FROM jobs {filter}"))
            .db()?;
        let rows: Vec<(Job, String)> = collect(
            stmt.query_map(p, |r| {
                Ok((
                    Job {
                        id: r.get(0)?,
                        campaign: r.get(1)?,
                        args: Vec::new(),
                        reason: r.get(3)?,
                        state: parsed(r, 4)?,
                        run_id: r.get(5)?,
                        requested_at: r.get(6)?,
                        finished_at: r.get(7)?,
                        error: r.get(8)?,
                    },
                    r.get(2)?,
                ))
            })
            .db()?,
        )?;
        rows.into_iter()
            .map(|(job, args)| {
                Ok(Job {
                    args: serde_json::from_str(&args)?,
                    ..job
                })
            })
            .collect()
    }

    fn insert_job(conn: &rusqlite::Connection, campaign: &str, args: &[String], reason: &str) -> Result<i64> {
        conn.execute(
            "INSERT INTO jobs (campaign, args, reason, state, requested_at) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![
                campaign,
                serde_json::to_string(args)?,
                reason,
                JobState::Queued.as_str(),
                now_utc()
            ],
        )
        .db()?;
        Ok(conn.last_insert_rowid())
    }
}

impl Jobs for SqliteStore {
    fn add_schedule(&mut self, campaign: &str, cron: &str, args: &[String], now: i64) -> Result<i64> {
        self.conn
            .execute(
                "INSERT INTO schedules (campaign, cron, args, last_fired, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![campaign, cron, serde_json::to_string(args)?, now, now_utc()],
            )
            .db()?;
        Ok(self.conn.last_insert_rowid())
    }

    fn delete_schedule(&mut self, id: i64) -> Result<bool> {
        Ok(self
            .conn
            .execute("DELETE FROM schedules WHERE id = ?1", params![id])
            .db()?
            > 0)
    }

    fn schedules(&self) -> Result<Vec<Schedule>> {
        let mut stmt = self
            .conn
            .prepare("SELECT id, campaign, cron, args, last_fired FROM schedules ORDER BY id")
            .db()?;
        let rows: Vec<(i64, String, String, String, Option<i64>)> = collect(
            stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)))
                .db()?,
        )?;
        rows.into_iter()
            .map(|(id, campaign, cron, args, last_fired)| {
                Ok(Schedule {
                    id,
                    campaign,
                    cron,
                    args: serde_json::from_str(&args)?,
                    last_fired,
                })
            })
            .collect()
    }

    fn fire_schedule(&mut self, schedule: &Schedule, at: i64) -> Result<i64> {
        let tx = self.conn.transaction().db()?;
        tx.execute(
            "UPDATE schedules SET last_fired = ?2 WHERE id = ?1",
            params![schedule.id, at],
        )
        .db()?;
        let id = Self::insert_job(
            &tx,
            &schedule.campaign,
            &schedule.args,
            &format!("schedule {}", schedule.id),
        )?;
        tx.commit().db()?;
        Ok(id)
    }

    fn queue_job(&mut self, campaign: &str, args: &[String], reason: &str) -> Result<i64> {
        Self::insert_job(&self.conn, campaign, args, reason)
    }

    fn jobs(&self, limit: i64) -> Result<Vec<Job>> {
        self.query_jobs("ORDER BY id DESC LIMIT ?1", params![limit])
    }

    fn open_jobs(&self) -> Result<Vec<Job>> {
        self.query_jobs("WHERE state IN ('queued', 'running') ORDER BY id", params![])
    }

    fn job(&self, id: i64) -> Result<Option<Job>> {
        Ok(self.query_jobs("WHERE id = ?1", params![id])?.pop())
    }

    fn attach_job(&mut self, job: i64, run: i64) -> Result<()> {
        let n = self
            .conn
            .execute(
                "UPDATE jobs SET run_id = ?2, state = ?3 WHERE id = ?1",
                params![job, run, JobState::Running.as_str()],
            )
            .db()?;
        if n == 0 {
            return Err(StoreError::no_such_job(job));
        }
        Ok(())
    }

    fn set_job_state(&mut self, job: i64, state: JobState, error: Option<&str>) -> Result<()> {
        let finished_at = state.finished().then(now_utc);
        self.conn
            .execute(
                "UPDATE jobs SET state = ?2, error = ?3, finished_at = COALESCE(?4, finished_at) WHERE id = ?1",
                params![job, state.as_str(), error, finished_at],
            )
            .db()?;
        Ok(())
    }

    fn counters(&self) -> Result<Counters> {
        self.conn
            .query_row(
                "SELECT (SELECT COUNT(*) FROM runs), (SELECT COUNT(*) FROM runs WHERE finished_at IS NOT NULL), \
                 (SELECT COUNT(*) FROM jobs WHERE state = 'queued'), \
                 (SELECT COUNT(*) FROM jobs WHERE state = 'running')",
                [],
                |r| {
                    Ok(Counters {
                        runs: r.get(0)?,
                        runs_finished: r.get(1)?,
                        jobs_queued: r.get(2)?,
                        jobs_running: r.get(3)?,
                    })
                },
            )
            .db()
    }
}
