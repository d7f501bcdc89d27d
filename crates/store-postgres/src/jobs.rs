use crate::{Db, PostgresStore, get, parsed};
use postgres::GenericClient;
use postgres::types::ToSql;
use v6scope_store_api::{Counters, Job, JobState, Jobs, Result, Schedule, StoreError, now_utc};

const JOB_COLUMNS: &str = "id, campaign, args, reason, state, run_id, requested_at, finished_at, error";

fn query_jobs(c: &mut postgres::Client, filter: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Vec<Job>> {
    c.query(&format!("SELECT {JOB_COLUMNS} FROM jobs {filter}"), params)
        .db()?
        .iter()
        .map(|r| {
            Ok(Job {
                id: get(r, 0)?,
                campaign: get(r, 1)?,
                args: serde_json::from_str(get(r, 2)?)?,
                reason: get(r, 3)?,
                state: parsed(r, 4)?,
                run_id: get(r, 5)?,
                requested_at: get(r, 6)?,
                finished_at: get(r, 7)?,
                error: get(r, 8)?,
            })
        })
        .collect()
}

fn insert_job(c: &mut impl GenericClient, campaign: &str, args: &[String], reason: &str) -> Result<i64> {
    let args = serde_json::to_string(args)?;
    get(
        &c.query_one(
            "INSERT INTO jobs (campaign, args, reason, state, requested_at) VALUES ($1, $2, $3, $4, $5) RETURNING id",
            &[&campaign, &args, &reason, &JobState::Queued.as_str(), &now_utc()],
        )
        .db()?,
        0,
    )
}

impl Jobs for PostgresStore {
    fn add_schedule(&mut self, campaign: &str, cron: &str, args: &[String], now: i64) -> Result<i64> {
        let args = serde_json::to_string(args)?;
        self.with(|c| {
            get(
                &c.query_one(
                    "INSERT INTO schedules (campaign, cron, args, last_fired, created_at) \
                     VALUES ($1, $2, $3, $4, $5) RETURNING id",
                    &[&campaign, &cron, &args, &now, &now_utc()],
                )
                .db()?,
                0,
            )
        })
    }

    fn delete_schedule(&mut self, id: i64) -> Result<bool> {
        self.with(|c| Ok(c.execute("DELETE FROM schedules WHERE id = $1", &[&id]).db()? > 0))
    }

    fn schedules(&self) -> Result<Vec<Schedule>> {
        self.with(|c| {
            c.query(
                "SELECT id, campaign, cron, args, last_fired FROM schedules ORDER BY id",
                &[],
            )
            .db()?
            .iter()
            .map(|r| {
                Ok(Schedule {
                    id: get(r, 0)?,
                    campaign: get(r, 1)?,
                    cron: get(r, 2)?,
                    args: serde_json::from_str(get(r, 3)?)?,
                    last_fired: get(r, 4)?,
                })
            })
            .collect()
        })
    }

    fn fire_schedule(&mut self, schedule: &Schedule, at: i64) -> Result<i64> {
        self.with(|c| {
            let mut tx = c.transaction().db()?;
            tx.execute(
                "UPDATE schedules SET last_fired = $2 WHERE id = $1",
                &[&schedule.id, &at],
            )
            .db()?;
            let id = insert_job(
                &mut tx,
                &schedule.campaign,
                &schedule.args,
                &format!("schedule {}", schedule.id),
            )?;
            tx.commit().db()?;
            Ok(id)
        })
    }

    fn queue_job(&mut self, campaign: &str, args: &[String], reason: &str) -> Result<i64> {
        self.with(|c| insert_job(c, campaign, args, reason))
    }

    fn jobs(&self, limit: i64) -> Result<Vec<Job>> {
        self.with(|c| query_jobs(c, "ORDER BY id DESC LIMIT $1", &[&limit]))
    }

    fn open_jobs(&self) -> Result<Vec<Job>> {
        self.with(|c| query_jobs(c, "WHERE state IN ('queued', 'running') ORDER BY id", &[]))
    }

    fn job(&self, id: i64) -> Result<Option<Job>> {
        Ok(self.with(|c| query_jobs(c, "WHERE id = $1", &[&id]))?.pop())
    }

    fn attach_job(&mut self, job: i64, run: i64) -> Result<()> {
        let n = self.with(|c| {
            c.execute(
                "UPDATE jobs SET run_id = $2, state = $3 WHERE id = $1",
                &[&job, &run, &JobState::Running.as_str()],
            )
            .db()
        })?;
        if n == 0 {
            return Err(StoreError::no_such_job(job));
        }
        Ok(())
    }

    fn set_job_state(&mut self, job: i64, state: JobState, error: Option<&str>) -> Result<()> {
        let finished_at = state.finished().then(now_utc);
        self.with(|c| {
            c.execute(
                "UPDATE jobs SET state = $2, error = $3, finished_at = COALESCE($4, finished_at) WHERE id = $1",
                &[&job, &state.as_str(), &error, &finished_at],
            )
            .db()?;
            Ok(())
        })
    }

    fn counters(&self) -> Result<Counters> {
        self.with(|c| {
            let r = c
                .query_one(
                    "SELECT (SELECT COUNT(*) FROM runs), (SELECT COUNT(*) FROM runs WHERE finished_at IS NOT NULL), \
                     (SELECT COUNT(*) FROM jobs WHERE state = 'queued'), \
                     (SELECT COUNT(*) FROM jobs WHERE state = 'running')",
                    &[],
                )
                .db()?;
            Ok(Counters {
                runs: get(&r, 0)?,
                runs_finished: get(&r, 1)?,
                jobs_queued: get(&r, 2)?,
                jobs_running: get(&r, 3)?,
            })
        })
    }
}
