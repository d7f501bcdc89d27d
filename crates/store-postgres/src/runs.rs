use crate::{Db, PostgresStore, get, json_body};
use postgres::Row;
use v6scope_model::{DomainObservation, Target, Verdict};
use v6scope_store_api::{
    Result, RunCounts, RunInfo, RunRow, Runs, StoreError, TargetResult, join_profiles, now_utc, split_profiles,
};

/// Targets per statement when a list is written.
const WRITE_CHUNK: usize = 10_000;

/// Whole targets' observations and verdicts, as columns for one statement each.
pub(crate) struct ResultColumns<'a> {
    idx: Vec<i64>,
    domain: Vec<&'a str>,
    body: Vec<String>,
    verdicts: VerdictColumns,
}

impl<'a> ResultColumns<'a> {
    pub(crate) fn of(batch: &'a [TargetResult<'a>]) -> Result<ResultColumns<'a>> {
        let mut columns = ResultColumns {
            idx: Vec::with_capacity(batch.len()),
            domain: Vec::with_capacity(batch.len()),
            body: Vec::with_capacity(batch.len()),
            verdicts: VerdictColumns::default(),
        };
        for r in batch {
            columns.idx.push(r.idx);
            columns.domain.push(r.observation.target.domain.as_str());
            columns.body.push(serde_json::to_string(r.observation)?);
            for v in r.verdicts {
                columns.verdicts.push(r.idx, v)?;
            }
        }
        Ok(columns)
    }

    /// Writes them (replacing what the targets had).
    pub(crate) fn write(&self, tx: &mut postgres::Transaction<'_>, run: i64) -> Result<()> {
        tx.execute(
            "INSERT INTO observations (run_id, idx, domain, body) \
             SELECT DISTINCT ON (idx) $1, idx, domain, body \
             FROM UNNEST($2::bigint[], $3::text[], $4::text[]) WITH ORDINALITY AS o(idx, domain, body, n) \
             ORDER BY idx, n DESC \
             ON CONFLICT (run_id, idx) DO UPDATE SET domain = excluded.domain, body = excluded.body",
            &[&run, &self.idx, &self.domain, &self.body],
        )
        .db()?;
        self.verdicts.write(tx, run)
    }

    pub(crate) fn indexes(&self) -> &[i64] {
        &self.idx
    }
}

pub(crate) fn target_of(r: &Row, first: usize) -> Result<Target> {
    Ok(Target {
        domain: get(r, first)?,
        category: get(r, first + 1)?,
        organisation: get(r, first + 2)?,
        region: get(r, first + 3)?,
    })
}

/// Writes a target list (indexed from 0) with `sql`, whose `$1` is `key`
/// and `$2`…`$6` the columns, one statement per `WRITE_CHUNK` targets.
pub(crate) fn insert_targets(
    tx: &mut postgres::Transaction<'_>,
    sql: &str,
    key: &(dyn postgres::types::ToSql + Sync),
    targets: &[Target],
) -> Result<()> {
    for (n, chunk) in targets.chunks(WRITE_CHUNK).enumerate() {
        let first = (n * WRITE_CHUNK) as i64;
        let idx: Vec<i64> = (first..first + chunk.len() as i64).collect();
        let domain: Vec<&str> = chunk.iter().map(|t| t.domain.as_str()).collect();
        let category: Vec<Option<&str>> = chunk.iter().map(|t| t.category.as_deref()).collect();
        let organisation: Vec<Option<&str>> = chunk.iter().map(|t| t.organisation.as_deref()).collect();
        let region: Vec<Option<&str>> = chunk.iter().map(|t| t.region.as_deref()).collect();
        tx.execute(sql, &[key, &idx, &domain, &category, &organisation, &region])
            .db()?;
    }
    Ok(())
}

/// Verdicts as columns, serialised on the caller's thread.
#[derive(Default)]
struct VerdictColumns {
    idx: Vec<i64>,
    profile: Vec<String>,
    domain: Vec<String>,
    status: Vec<&'static str>,
    score: Vec<f64>,
    body: Vec<String>,
}

impl VerdictColumns {
    fn push(&mut self, idx: i64, v: &Verdict) -> Result<()> {
        self.idx.push(idx);
        self.profile.push(v.profile.clone());
        self.domain.push(v.domain.clone());
        self.status.push(v.status.as_str());
        self.score.push(v.score);
        self.body.push(serde_json::to_string(v)?);
        Ok(())
    }

    fn write(&self, tx: &mut postgres::Transaction<'_>, run: i64) -> Result<()> {
        if self.idx.is_empty() {
            return Ok(());
        }
        // A key given twice in one statement is refused by ON CONFLICT; the
        // last one wins, as it would row by row.
        tx.execute(
            "INSERT INTO verdicts (run_id, idx, profile, domain, status, score, body) \
             SELECT DISTINCT ON (idx, profile) $1, idx, profile, domain, status, score, body \
             FROM UNNEST($2::bigint[], $3::text[], $4::text[], $5::text[], $6::float8[], $7::text[]) \
             WITH ORDINALITY AS v(idx, profile, domain, status, score, body, n) ORDER BY idx, profile, n DESC \
             ON CONFLICT (run_id, idx, profile) DO UPDATE SET domain = excluded.domain, status = excluded.status, \
             score = excluded.score, body = excluded.body",
            &[
                &run,
                &self.idx,
                &self.profile,
                &self.domain,
                &self.status,
                &self.score,
                &self.body,
            ],
        )
        .db()?;
        Ok(())
    }
}

fn run_info(r: &Row) -> Result<RunInfo> {
    Ok(RunInfo {
        id: get(r, 0)?,
        started_at: get(r, 1)?,
        finished_at: get(r, 2)?,
        source: get(r, 3)?,
        profiles: split_profiles(get(r, 4)?),
        config: get(r, 5)?,
        targets: get(r, 6)?,
        done: get(r, 7)?,
    })
}

const RUN_INFO: &str = "SELECT id, started_at, finished_at, source, profiles, config, \
     (SELECT COUNT(*) FROM targets WHERE run_id = runs.id), \
     (SELECT COUNT(*) FROM observations WHERE run_id = runs.id) FROM runs";

impl Runs for PostgresStore {
    fn create_run(&mut self, source: &str, profiles: &[String], config: &str) -> Result<i64> {
        let profiles = join_profiles(profiles);
        self.with(|c| {
            get(
                &c.query_one(
                    "INSERT INTO runs (started_at, source, profiles, config) VALUES ($1, $2, $3, $4) RETURNING id",
                    &[&now_utc(), &source, &profiles, &config],
                )
                .db()?,
                0,
            )
        })
    }

    fn add_targets(&mut self, run: i64, targets: &[Target]) -> Result<()> {
        self.with(|c| {
            let mut tx = c.transaction().db()?;
            insert_targets(
                &mut tx,
                "INSERT INTO targets (run_id, idx, domain, category, organisation, region) \
                 SELECT $1, * FROM UNNEST($2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[]) \
                 ON CONFLICT DO NOTHING",
                &run,
                targets,
            )?;
            tx.commit().db()
        })
    }

    fn pending_targets(&self, run: i64) -> Result<Vec<(i64, Target)>> {
        self.run(run)?;
        self.with(|c| {
            c.query(
                "SELECT t.idx, t.domain, t.category, t.organisation, t.region FROM targets t \
                 WHERE t.run_id = $1 AND NOT EXISTS \
                 (SELECT 1 FROM observations o WHERE o.run_id = t.run_id AND o.idx = t.idx) ORDER BY t.idx",
                &[&run],
            )
            .db()?
            .iter()
            .map(|r| Ok((get(r, 0)?, target_of(r, 1)?)))
            .collect()
        })
    }

    fn save_results(&mut self, run: i64, batch: &[TargetResult<'_>]) -> Result<()> {
        let columns = ResultColumns::of(batch)?;
        self.with(|c| {
            let mut tx = c.transaction().db()?;
            columns.write(&mut tx, run)?;
            tx.commit().db()
        })
    }

    fn save_verdicts(&mut self, run: i64, verdicts: &[(i64, Verdict)]) -> Result<()> {
        let mut columns = VerdictColumns::default();
        for (idx, v) in verdicts {
            columns.push(*idx, v)?;
        }
        self.with(|c| {
            let mut tx = c.transaction().db()?;
            columns.write(&mut tx, run)?;
            tx.commit().db()
        })
    }

    fn finish_run(&mut self, run: i64) -> Result<()> {
        self.with(|c| {
            c.execute("UPDATE runs SET finished_at = $2 WHERE id = $1", &[&run, &now_utc()])
                .db()?;
            // A run's rows arrive faster than autovacuum samples them; plans
            // made on stale statistics read whole tables per chunk. ANALYZE
            // reads a fixed sample (about a second at 10 M rows).
            c.batch_execute("ANALYZE targets, observations, verdicts").db()
        })
    }

    fn set_run_started_at(&mut self, run: i64, started_at: &str) -> Result<()> {
        let n = self.with(|c| {
            c.execute("UPDATE runs SET started_at = $2 WHERE id = $1", &[&run, &started_at])
                .db()
        })?;
        if n == 0 {
            return Err(StoreError::no_such_run(run));
        }
        Ok(())
    }

    fn run(&self, run: i64) -> Result<RunInfo> {
        self.with(
            |c| match c.query_opt(&format!("{RUN_INFO} WHERE id = $1"), &[&run]).db()? {
                Some(r) => run_info(&r),
                None => Err(StoreError::no_such_run(run)),
            },
        )
    }

    fn runs(&self) -> Result<Vec<RunInfo>> {
        self.with(|c| {
            c.query(&format!("{RUN_INFO} ORDER BY id"), &[])
                .db()?
                .iter()
                .map(run_info)
                .collect()
        })
    }

    fn run_list(&self, limit: i64) -> Result<Vec<RunRow>> {
        self.with(|c| {
            c.query(
                "SELECT id, started_at, finished_at, source, profiles FROM runs ORDER BY id DESC LIMIT $1",
                &[&limit],
            )
            .db()?
            .iter()
            .map(|r| {
                Ok(RunRow {
                    id: get(r, 0)?,
                    started_at: get(r, 1)?,
                    finished_at: get(r, 2)?,
                    source: get(r, 3)?,
                    profiles: split_profiles(get(r, 4)?),
                })
            })
            .collect()
        })
    }

    fn run_profiles(&self, run: i64) -> Result<Vec<String>> {
        self.with(
            |c| match c.query_opt("SELECT profiles FROM runs WHERE id = $1", &[&run]).db()? {
                Some(r) => Ok(split_profiles(get(&r, 0)?)),
                None => Err(StoreError::no_such_run(run)),
            },
        )
    }

    fn run_counts(&self, run: i64) -> Result<RunCounts> {
        self.with(|c| {
            let r = c
                .query_one(
                    "SELECT (SELECT COUNT(*) FROM targets WHERE run_id = $1), \
                     (SELECT COUNT(*) FROM observations WHERE run_id = $1), \
                     (SELECT COUNT(*) FROM verdicts WHERE run_id = $1 AND status = 'error')",
                    &[&run],
                )
                .db()?;
            Ok(RunCounts {
                targets: get(&r, 0)?,
                observations: get(&r, 1)?,
                errors: get(&r, 2)?,
            })
        })
    }

    fn unfinished_runs(&self) -> Result<Vec<(i64, String)>> {
        self.with(|c| {
            c.query("SELECT id, source FROM runs WHERE finished_at IS NULL ORDER BY id", &[])
                .db()?
                .iter()
                .map(|r| Ok((get(r, 0)?, get(r, 1)?)))
                .collect()
        })
    }

    fn finished_runs_of(&self, source: &str, limit: i64) -> Result<Vec<(i64, String)>> {
        self.with(|c| {
            c.query(
                "SELECT id, started_at FROM runs WHERE source = $1 AND finished_at IS NOT NULL \
                 ORDER BY id DESC LIMIT $2",
                &[&source, &limit],
            )
            .db()?
            .iter()
            .map(|r| Ok((get(r, 0)?, get(r, 1)?)))
            .collect()
        })
    }

    fn previous_run(&self, run: i64) -> Result<Option<i64>> {
        self.with(|c| {
            c.query_opt(
                "SELECT p.id FROM runs r JOIN runs p ON p.source = r.source AND p.id < r.id \
                 AND p.finished_at IS NOT NULL WHERE r.id = $1 ORDER BY p.id DESC LIMIT 1",
                &[&run],
            )
            .db()?
            .map(|r| get(&r, 0))
            .transpose()
        })
    }

    fn target_index(&self, run: i64, domain: &str) -> Result<Option<i64>> {
        self.with(|c| {
            c.query_opt(
                "SELECT idx FROM targets WHERE run_id = $1 AND domain = $2 ORDER BY idx LIMIT 1",
                &[&run, &domain],
            )
            .db()?
            .map(|r| get(&r, 0))
            .transpose()
        })
    }

    fn observation(&self, run: i64, idx: i64) -> Result<Option<DomainObservation>> {
        self.with(|c| {
            json_body(
                c.query_opt(
                    "SELECT body FROM observations WHERE run_id = $1 AND idx = $2",
                    &[&run, &idx],
                )
                .db()?,
            )
        })
    }

    fn observation_count(&self, run: i64) -> Result<(i64, i64)> {
        self.with(|c| {
            let r = c
                .query_one(
                    "SELECT COUNT(*), COUNT(DISTINCT idx) FROM observations WHERE run_id = $1",
                    &[&run],
                )
                .db()?;
            Ok((get(&r, 0)?, get(&r, 1)?))
        })
    }

    fn for_each_observation(&self, run: i64, f: &mut dyn FnMut(i64, DomainObservation)) -> Result<()> {
        self.run(run)?;
        self.for_each_chunk(
            run,
            |c, from, until| {
                c.query(
                    "SELECT idx, body FROM observations WHERE run_id = $1 AND idx >= $2 AND idx < $3 ORDER BY idx",
                    &[&run, &from, &until],
                )
                .db()?
                .iter()
                .map(|r| Ok((get(r, 0)?, serde_json::from_str(get(r, 1)?)?)))
                .collect()
            },
            &mut |(idx, o)| f(idx, o),
        )
    }

    fn verdict(&self, run: i64, idx: i64, profile: &str) -> Result<Option<Verdict>> {
        self.with(|c| {
            json_body(
                c.query_opt(
                    "SELECT body FROM verdicts WHERE run_id = $1 AND idx = $2 AND profile = $3",
                    &[&run, &idx, &profile],
                )
                .db()?,
            )
        })
    }

    fn verdicts(&self, run: i64, profile: &str) -> Result<Vec<(i64, Verdict)>> {
        self.with(|c| {
            c.query(
                "SELECT idx, body FROM verdicts WHERE run_id = $1 AND profile = $2 ORDER BY idx",
                &[&run, &profile],
            )
            .db()?
            .iter()
            .map(|r| Ok((get(r, 0)?, serde_json::from_str(get(r, 1)?)?)))
            .collect()
        })
    }

    fn support_by_category(&self, run: i64, profile: &str) -> Result<Vec<(String, i64, i64)>> {
        self.with(|c| {
            c.query(
                "SELECT COALESCE(t.category, ''), COUNT(*), \
                 COALESCE(SUM(CASE WHEN v.status = 'pass' THEN 1 ELSE 0 END), 0)::bigint FROM targets t \
                 LEFT JOIN verdicts v ON v.run_id = t.run_id AND v.idx = t.idx AND v.profile = $2 \
                 WHERE t.run_id = $1 GROUP BY 1 ORDER BY COALESCE(t.category, '') COLLATE \"C\"",
                &[&run, &profile],
            )
            .db()?
            .iter()
            .map(|r| Ok((get(r, 0)?, get(r, 1)?, get(r, 2)?)))
            .collect()
        })
    }
}
