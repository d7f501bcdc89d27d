use crate::{Db, SqliteStore, collect, json_body};
use rusqlite::{OptionalExtension, params};
use v6scope_model::{DomainObservation, Target, Verdict};
use v6scope_store_api::{
    Result, RunCounts, RunInfo, RunRow, Runs, StoreError, TargetResult, join_profiles, now_utc, split_profiles,
};

const INSERT_VERDICT: &str = "INSERT OR REPLACE INTO verdicts (run_id, idx, profile, domain, status, score, body) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)";

fn insert_verdict(stmt: &mut rusqlite::CachedStatement<'_>, run: i64, idx: i64, v: &Verdict) -> Result<()> {
    stmt.execute(params![
        run,
        idx,
        v.profile,
        v.domain,
        v.status.as_str(),
        v.score,
        serde_json::to_string(v)?
    ])
    .db()?;
    Ok(())
}

pub(crate) fn target_of(r: &rusqlite::Row<'_>, first: usize) -> rusqlite::Result<Target> {
    Ok(Target {
        domain: r.get(first)?,
        category: r.get(first + 1)?,
        organisation: r.get(first + 2)?,
        region: r.get(first + 3)?,
    })
}

/// Writes whole targets' observations and verdicts (replacing what they had).
pub(crate) fn write_results(tx: &rusqlite::Transaction<'_>, run: i64, batch: &[TargetResult<'_>]) -> Result<()> {
    let mut obs = tx
        .prepare_cached("INSERT OR REPLACE INTO observations (run_id, idx, domain, body) VALUES (?1, ?2, ?3, ?4)")
        .db()?;
    let mut ver = tx.prepare_cached(INSERT_VERDICT).db()?;
    for r in batch {
        obs.execute(params![
            run,
            r.idx,
            r.observation.target.domain,
            serde_json::to_string(r.observation)?
        ])
        .db()?;
        for v in r.verdicts {
            insert_verdict(&mut ver, run, r.idx, v)?;
        }
    }
    Ok(())
}

impl Runs for SqliteStore {
    fn create_run(&mut self, source: &str, profiles: &[String], config: &str) -> Result<i64> {
        self.conn
            .execute(
                "INSERT INTO runs (started_at, source, profiles, config) VALUES (?1, ?2, ?3, ?4)",
                params![now_utc(), source, join_profiles(profiles), config],
            )
            .db()?;
        Ok(self.conn.last_insert_rowid())
    }

    fn add_targets(&mut self, run: i64, targets: &[Target]) -> Result<()> {
        let tx = self.conn.transaction().db()?;
        {
            let mut insert = tx
                .prepare(
                    "INSERT OR IGNORE INTO targets (run_id, idx, domain, category, organisation, region) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                )
                .db()?;
            for (idx, t) in targets.iter().enumerate() {
                insert
                    .execute(params![run, idx as i64, t.domain, t.category, t.organisation, t.region])
                    .db()?;
            }
        }
        tx.commit().db()
    }

    fn pending_targets(&self, run: i64) -> Result<Vec<(i64, Target)>> {
        self.run(run)?;
        let mut stmt = self
            .conn
            .prepare(
                "SELECT t.idx, t.domain, t.category, t.organisation, t.region FROM targets t \
                 WHERE t.run_id = ?1 AND NOT EXISTS \
                 (SELECT 1 FROM observations o WHERE o.run_id = t.run_id AND o.idx = t.idx) ORDER BY t.idx",
            )
            .db()?;
        collect(
            stmt.query_map(params![run], |r| Ok((r.get(0)?, target_of(r, 1)?)))
                .db()?,
        )
    }

    fn save_results(&mut self, run: i64, batch: &[TargetResult<'_>]) -> Result<()> {
        let tx = self.conn.transaction().db()?;
        write_results(&tx, run, batch)?;
        tx.commit().db()
    }

    fn save_verdicts(&mut self, run: i64, verdicts: &[(i64, Verdict)]) -> Result<()> {
        let tx = self.conn.transaction().db()?;
        {
            let mut ver = tx.prepare_cached(INSERT_VERDICT).db()?;
            for (idx, v) in verdicts {
                insert_verdict(&mut ver, run, *idx, v)?;
            }
        }
        tx.commit().db()
    }

    fn finish_run(&mut self, run: i64) -> Result<()> {
        self.conn
            .execute(
                "UPDATE runs SET finished_at = ?2 WHERE id = ?1",
                params![run, now_utc()],
            )
            .db()?;
        Ok(())
    }

    fn set_run_started_at(&mut self, run: i64, started_at: &str) -> Result<()> {
        let n = self
            .conn
            .execute(
                "UPDATE runs SET started_at = ?2 WHERE id = ?1",
                params![run, started_at],
            )
            .db()?;
        if n == 0 {
            return Err(StoreError::no_such_run(run));
        }
        Ok(())
    }

    fn run(&self, run: i64) -> Result<RunInfo> {
        self.conn
            .query_row(
                "SELECT id, started_at, finished_at, source, profiles, config, \
                        (SELECT COUNT(*) FROM targets WHERE run_id = runs.id), \
                        (SELECT COUNT(*) FROM observations WHERE run_id = runs.id) \
                 FROM runs WHERE id = ?1",
                params![run],
                |r| {
                    let profiles: String = r.get(4)?;
                    Ok(RunInfo {
                        id: r.get(0)?,
                        started_at: r.get(1)?,
                        finished_at: r.get(2)?,
                        source: r.get(3)?,
                        profiles: split_profiles(&profiles),
                        config: r.get(5)?,
                        targets: r.get(6)?,
                        done: r.get(7)?,
                    })
                },
            )
            .optional()
            .db()?
            .ok_or(StoreError::no_such_run(run))
    }

    fn runs(&self) -> Result<Vec<RunInfo>> {
        let ids: Vec<i64> = {
            let mut stmt = self.conn.prepare("SELECT id FROM runs ORDER BY id").db()?;
            collect(stmt.query_map([], |r| r.get(0)).db()?)?
        };
        ids.into_iter().map(|id| self.run(id)).collect()
    }

    fn run_list(&self, limit: i64) -> Result<Vec<RunRow>> {
        let mut stmt = self
            .conn
            .prepare("SELECT id, started_at, finished_at, source, profiles FROM runs ORDER BY id DESC LIMIT ?1")
            .db()?;
        collect(
            stmt.query_map(params![limit], |r| {
                let profiles: String = r.get(4)?;
                Ok(RunRow {
                    id: r.get(0)?,
                    started_at: r.get(1)?,
                    finished_at: r.get(2)?,
                    source: r.get(3)?,
                    profiles: split_profiles(&profiles),
                })
            })
            .db()?,
        )
    }

    fn run_profiles(&self, run: i64) -> Result<Vec<String>> {
        let profiles: String = self
            .conn
            .query_row("SELECT profiles FROM runs WHERE id = ?1", params![run], |r| r.get(0))
            .optional()
            .db()?
            .ok_or(StoreError::no_such_run(run))?;
        Ok(split_profiles(&profiles))
    }

    fn run_counts(&self, run: i64) -> Result<RunCounts> {
        self.conn
            .query_row(
                "SELECT (SELECT COUNT(*) FROM targets WHERE run_id = ?1), \
                 (SELECT COUNT(*) FROM observations WHERE run_id = ?1), \
                 (SELECT COUNT(*) FROM verdicts WHERE run_id = ?1 AND status = 'error')",
                params![run],
                |r| {
                    Ok(RunCounts {
                        targets: r.get(0)?,
                        observations: r.get(1)?,
                        errors: r.get(2)?,
                    })
                },
            )
            .db()
    }

    fn unfinished_runs(&self) -> Result<Vec<(i64, String)>> {
        let mut stmt = self
            .conn
            .prepare("SELECT id, source FROM runs WHERE finished_at IS NULL ORDER BY id")
            .db()?;
        collect(stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).db()?)
    }

    fn finished_runs_of(&self, source: &str, limit: i64) -> Result<Vec<(i64, String)>> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT id, started_at FROM runs WHERE source = ?1 AND finished_at IS NOT NULL \
                 ORDER BY id DESC LIMIT ?2",
            )
            .db()?;
        collect(
            stmt.query_map(params![source, limit], |r| Ok((r.get(0)?, r.get(1)?)))
                .db()?,
        )
    }

    fn previous_run(&self, run: i64) -> Result<Option<i64>> {
        self.conn
            .query_row(
                "SELECT p.id FROM runs r JOIN runs p ON p.source = r.source AND p.id < r.id \
                 AND p.finished_at IS NOT NULL WHERE r.id = ?1 ORDER BY p.id DESC LIMIT 1",
                params![run],
                |r| r.get(0),
            )
            .optional()
            .db()
    }

    fn target_index(&self, run: i64, domain: &str) -> Result<Option<i64>> {
        self.conn
            .query_row(
                "SELECT idx FROM targets WHERE run_id = ?1 AND domain = ?2",
                params![run, domain],
                |r| r.get(0),
            )
            .optional()
            .db()
    }

    fn observation(&self, run: i64, idx: i64) -> Result<Option<DomainObservation>> {
        json_body(
            &self.conn,
            "SELECT body FROM observations WHERE run_id = ?1 AND idx = ?2",
            params![run, idx],
        )
    }

    fn observation_count(&self, run: i64) -> Result<(i64, i64)> {
        self.conn
            .query_row(
                "SELECT COUNT(*), COUNT(DISTINCT idx) FROM observations WHERE run_id = ?1",
                params![run],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .db()
    }

    fn for_each_observation(&self, run: i64, f: &mut dyn FnMut(i64, DomainObservation)) -> Result<()> {
        self.run(run)?;
        let mut stmt = self
            .conn
            .prepare("SELECT idx, body FROM observations WHERE run_id = ?1 ORDER BY idx")
            .db()?;
        let mut rows = stmt.query(params![run]).db()?;
        while let Some(row) = rows.next().db()? {
            let idx: i64 = row.get(0).db()?;
            let body: String = row.get(1).db()?;
            f(idx, serde_json::from_str(&body)?);
        }
        Ok(())
    }

    fn verdict(&self, run: i64, idx: i64, profile: &str) -> Result<Option<Verdict>> {
        json_body(
            &self.conn,
            "SELECT body FROM verdicts WHERE run_id = ?1 AND idx = ?2 AND profile = ?3",
            params![run, idx, profile],
        )
    }

    fn verdicts(&self, run: i64, profile: &str) -> Result<Vec<(i64, Verdict)>> {
        let mut stmt = self
            .conn
            .prepare("SELECT idx, body FROM verdicts WHERE run_id = ?1 AND profile = ?2 ORDER BY idx")
            .db()?;
        let rows: Vec<(i64, String)> = collect(
            stmt.query_map(params![run, profile], |r| Ok((r.get(0)?, r.get(1)?)))
                .db()?,
        )?;
        rows.into_iter()
            .map(|(idx, body)| Ok((idx, serde_json::from_str(&body)?)))
            .collect()
    }

    fn support_by_category(&self, run: i64, profile: &str) -> Result<Vec<(String, i64, i64)>> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT COALESCE(t.category, ''), COUNT(*), COALESCE(SUM(v.status = 'pass'), 0) FROM targets t \
                 LEFT JOIN verdicts v ON v.run_id = t.run_id AND v.idx = t.idx AND v.profile = ?2 \
                 WHERE t.run_id = ?1 GROUP BY 1 ORDER BY 1",
            )
            .db()?;
        collect(
            stmt.query_map(params![run, profile], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .db()?,
        )
    }
}
