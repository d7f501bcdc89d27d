use crate::runs::{target_of, write_results};
use crate::{Db, SqliteStore, collect};
use rusqlite::{OptionalExtension, TransactionBehavior, params};
use v6scope_store_api::{
    AgentRegistration, AgentRow, Delivery, EdgeRow, Fleet, Lease, Result, StoreError, TargetResult, VantageDifference,
    VantageProgress, VantageResult, VantageResultRow, VantageTally, now_unix, now_utc, parse_stored,
};

const AGENT_COLUMNS: &str = "a.id, a.name, a.created_at, a.revoked_at IS NOT NULL, a.vantage, a.labels, a.concurrency, \
     a.version, a.selftest, a.last_seen, a.results, a.errors, \
     (SELECT count(*) FROM leases l WHERE l.agent_id = a.id AND l.expires_at > ?1)";

fn agent_of(r: &rusqlite::Row<'_>) -> rusqlite::Result<AgentRow> {
    let labels: String = r.get(5)?;
    Ok(AgentRow {
        id: r.get(0)?,
        name: r.get(1)?,
        created_at: r.get(2)?,
        revoked: r.get(3)?,
        vantage: r.get(4)?,
        labels: serde_json::from_str(&labels)
            .map_err(|e| rusqlite::Error::FromSqlConversionFailure(5, rusqlite::types::Type::Text, Box::new(e)))?,
        concurrency: r.get(6)?,
        version: r.get(7)?,
        selftest: r.get(8)?,
        last_seen: r.get(9)?,
        results: r.get(10)?,
        errors: r.get(11)?,
        leased: r.get(12)?,
    })
}

fn result_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<(String, String, String, String)> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
}

fn parse_result((vantage, agent, observation, verdicts): (String, String, String, String)) -> Result<VantageResultRow> {
    Ok(VantageResultRow {
        vantage,
        agent,
        observation: serde_json::from_str(&observation)?,
        verdicts: serde_json::from_str(&verdicts)?,
    })
}

impl Fleet for SqliteStore {
    fn add_agent(&mut self, name: &str, token_hash: &str) -> Result<i64> {
        self.conn
            .execute(
                "INSERT INTO agents (name, token_hash, created_at) VALUES (?1, ?2, ?3)",
                params![name, token_hash, now_utc()],
            )
            .db()
            .map_err(|e| match e {
                StoreError::Conflict(_) => StoreError::Conflict(format!("an agent named '{name}' exists")),
                other => other,
            })?;
        Ok(self.conn.last_insert_rowid())
    }

    fn revoke_agent(&mut self, name: &str) -> Result<bool> {
        let tx = self.conn.transaction().db()?;
        let id: Option<i64> = tx
            .query_row("SELECT id FROM agents WHERE name = ?1", params![name], |r| r.get(0))
            .optional()
            .db()?;
        let Some(id) = id else { return Ok(false) };
        tx.execute(
            "UPDATE agents SET revoked_at = coalesce(revoked_at, ?2) WHERE id = ?1",
            params![id, now_utc()],
        )
        .db()?;
        // Its targets go back to the others of its vantage at once (a
        // lease is never deleted undelivered: the cursor has passed it).
        tx.execute("UPDATE leases SET expires_at = 0 WHERE agent_id = ?1", params![id])
            .db()?;
        tx.commit().db()?;
        Ok(true)
    }

    fn agents(&self) -> Result<Vec<AgentRow>> {
        let mut stmt = self
            .conn
            .prepare(&format!("SELECT {AGENT_COLUMNS} FROM agents a ORDER BY a.name"))
            .db()?;
        collect(stmt.query_map(params![now_unix()], agent_of).db()?)
    }

    fn agent_by_token(&self, token_hash: &str) -> Result<Option<AgentRow>> {
        self.conn
            .query_row(
                &format!("SELECT {AGENT_COLUMNS} FROM agents a WHERE a.token_hash = ?2 AND a.revoked_at IS NULL"),
                params![now_unix(), token_hash],
                agent_of,
            )
            .optional()
            .db()
    }

    fn register_agent(&mut self, agent: i64, reg: &AgentRegistration<'_>, now: i64) -> Result<()> {
        let labels = serde_json::to_string(reg.labels)?;
        self.conn
            .execute(
                "UPDATE agents SET vantage = ?2, labels = ?3, concurrency = ?4, version = ?5, selftest = ?6, \
                 last_seen = ?7 WHERE id = ?1",
                params![
                    agent,
                    reg.vantage,
                    labels,
                    reg.concurrency,
                    reg.version,
                    reg.selftest,
                    now
                ],
            )
            .db()?;
        Ok(())
    }

    fn heartbeat(&mut self, agent: i64, now: i64, lease_until: i64) -> Result<()> {
        let tx = self.conn.transaction().db()?;
        tx.execute("UPDATE agents SET last_seen = ?2 WHERE id = ?1", params![agent, now])
            .db()?;
        tx.execute(
            "UPDATE leases SET expires_at = ?3 WHERE agent_id = ?1 AND expires_at > ?2",
            params![agent, now, lease_until],
        )
        .db()?;
        tx.commit().db()
    }

    fn set_run_vantages(&mut self, run: i64, vantages: &[String]) -> Result<()> {
        let tx = self.conn.transaction().db()?;
        tx.execute("DELETE FROM run_vantages WHERE run_id = ?1", params![run])
            .db()?;
        for v in vantages {
            tx.execute(
                "INSERT INTO run_vantages (run_id, vantage) VALUES (?1, ?2)",
                params![run, v],
            )
            .db()?;
        }
        tx.commit().db()
    }

    fn run_vantages(&self, run: i64) -> Result<Vec<String>> {
        let mut stmt = self
            .conn
            .prepare("SELECT vantage FROM run_vantages WHERE run_id = ?1 ORDER BY vantage")
            .db()?;
        collect(stmt.query_map(params![run], |r| r.get(0)).db()?)
    }

    fn claim(&mut self, agent: i64, vantage: &str, concurrency: i64, now: i64, lease_until: i64) -> Result<Vec<Lease>> {
        // One writer at a time: SQLite's equivalent of SKIP LOCKED is that
        // no two claims ever run together.
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .db()?;
        let held: i64 = tx
            .query_row(
                "SELECT count(*) FROM leases WHERE agent_id = ?1 AND expires_at > ?2",
                params![agent, now],
                |r| r.get(0),
            )
            .db()?;
        let mut free = concurrency - held;
        let mut out = Vec::new();
        if free <= 0 {
            return Ok(out);
        }
        let runs: Vec<(i64, i64)> = {
            let mut stmt = tx
                .prepare(
                    "SELECT v.run_id, v.next_idx FROM run_vantages v JOIN runs r ON r.id = v.run_id \
                     WHERE v.vantage = ?1 AND r.finished_at IS NULL ORDER BY v.run_id",
                )
                .db()?;
            collect(stmt.query_map(params![vantage], |r| Ok((r.get(0)?, r.get(1)?))).db()?)?
        };
        for (run, next_idx) in runs {
            if free <= 0 {
                break;
            }
            // Targets whose lease ran out (their agent died or was cut off).
            let expired: Vec<(i64, v6scope_model::Target)> = {
                let mut stmt = tx
                    .prepare_cached(
                        "SELECT l.idx, t.domain, t.category, t.organisation, t.region FROM leases l \
                         JOIN targets t ON t.run_id = l.run_id AND t.idx = l.idx \
                         WHERE l.run_id = ?1 AND l.vantage = ?2 AND l.expires_at <= ?3 ORDER BY l.idx LIMIT ?4",
                    )
                    .db()?;
                collect(
                    stmt.query_map(params![run, vantage, now, free], |r| Ok((r.get(0)?, target_of(r, 1)?)))
                        .db()?,
                )?
            };
            for (idx, _) in &expired {
                tx.execute(
                    "UPDATE leases SET agent_id = ?4, expires_at = ?5 WHERE run_id = ?1 AND vantage = ?2 AND idx = ?3",
                    params![run, vantage, idx, agent, lease_until],
                )
                .db()?;
            }
            free -= expired.len() as i64;
            out.extend(expired.into_iter().map(|(idx, target)| Lease { run, idx, target }));
            if free <= 0 {
                break;
            }
            // Then targets never handed out, from the run's cursor.
            let fresh: Vec<(i64, v6scope_model::Target)> = {
                let mut stmt = tx
                    .prepare_cached(
                        "SELECT idx, domain, category, organisation, region FROM targets \
                         WHERE run_id = ?1 AND idx >= ?2 ORDER BY idx LIMIT ?3",
                    )
                    .db()?;
                collect(
                    stmt.query_map(params![run, next_idx, free], |r| Ok((r.get(0)?, target_of(r, 1)?)))
                        .db()?,
                )?
            };
            if let Some((last, _)) = fresh.last() {
                let mut insert = tx
                    .prepare_cached(
                        "INSERT OR REPLACE INTO leases (run_id, vantage, idx, agent_id, expires_at) \
                         VALUES (?1, ?2, ?3, ?4, ?5)",
                    )
                    .db()?;
                for (idx, _) in &fresh {
                    insert.execute(params![run, vantage, idx, agent, lease_until]).db()?;
                }
                tx.execute(
                    "UPDATE run_vantages SET next_idx = ?3 WHERE run_id = ?1 AND vantage = ?2",
                    params![run, vantage, last + 1],
                )
                .db()?;
            }
            free -= fresh.len() as i64;
            out.extend(fresh.into_iter().map(|(idx, target)| Lease { run, idx, target }));
        }
        tx.execute("UPDATE agents SET last_seen = ?2 WHERE id = ?1", params![agent, now])
            .db()?;
        tx.commit().db()?;
        Ok(out)
    }

    fn deliver(&mut self, agent: i64, vantage: &str, results: &[VantageResult<'_>], now: i64) -> Result<Vec<Delivery>> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .db()?;
        let received = now_utc();
        let mut out = Vec::with_capacity(results.len());
        let (mut stored, mut errors) = (0i64, 0i64);
        {
            let mut seen = tx
                .prepare_cached("SELECT 1 FROM vantage_results WHERE run_id = ?1 AND vantage = ?2 AND idx = ?3")
                .db()?;
            let mut take = tx
                .prepare_cached("DELETE FROM leases WHERE run_id = ?1 AND vantage = ?2 AND idx = ?3 AND agent_id = ?4")
                .db()?;
            let mut insert = tx
                .prepare_cached(
                    "INSERT INTO vantage_results (run_id, vantage, idx, agent_id, received_at, observation, verdicts) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                )
                .db()?;
            let mut ready = tx
                .prepare_cached(
                    "INSERT OR IGNORE INTO fleet_ready (run_id, idx) SELECT ?1, ?2 \
                     WHERE (SELECT count(*) FROM vantage_results WHERE run_id = ?1 AND idx = ?2) \
                         = (SELECT count(*) FROM run_vantages WHERE run_id = ?1)",
                )
                .db()?;
            let mut domain = tx
                .prepare_cached("SELECT domain FROM targets WHERE run_id = ?1 AND idx = ?2")
                .db()?;
            let mut status = tx
                .prepare_cached(
                    "INSERT OR IGNORE INTO vantage_verdicts (run_id, profile, idx, vantage, status, score) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                )
                .db()?;
            for r in results {
                if seen.exists(params![r.run, vantage, r.idx]).db()? {
                    out.push(Delivery::Duplicate);
                    continue;
                }
                // An observation of another name is no result for this target.
                let leased: Option<String> = domain
                    .query_row(params![r.run, r.idx], |row| row.get(0))
                    .optional()
                    .db()?;
                if leased.as_deref() != Some(r.observation.target.domain.as_str()) {
                    out.push(Delivery::NotGiven);
                    continue;
                }
                if take.execute(params![r.run, vantage, r.idx, agent]).db()? == 0 {
                    out.push(Delivery::NotGiven);
                    continue;
                }
                insert
                    .execute(params![
                        r.run,
                        vantage,
                        r.idx,
                        agent,
                        received,
                        serde_json::to_string(r.observation)?,
                        serde_json::to_string(r.verdicts)?
                    ])
                    .db()?;
                for v in r.verdicts {
                    status
                        .execute(params![r.run, v.profile, r.idx, vantage, v.status.as_str(), v.score])
                        .db()?;
                }
                ready.execute(params![r.run, r.idx]).db()?;
                stored += 1;
                errors += i64::from(r.observation.error.is_some());
                out.push(Delivery::Stored);
            }
        }
        tx.execute(
            "UPDATE agents SET last_seen = ?2, results = results + ?3, errors = errors + ?4 WHERE id = ?1",
            params![agent, now, stored, errors],
        )
        .db()?;
        tx.commit().db()?;
        Ok(out)
    }

    fn ready_targets(&self, run: i64, limit: i64) -> Result<Vec<(i64, Vec<VantageResultRow>)>> {
        let idxs: Vec<i64> = {
            let mut stmt = self
                .conn
                .prepare_cached("SELECT idx FROM fleet_ready WHERE run_id = ?1 ORDER BY idx LIMIT ?2")
                .db()?;
            collect(stmt.query_map(params![run, limit], |r| r.get(0)).db()?)?
        };
        idxs.into_iter()
            .map(|idx| Ok((idx, self.vantage_results(run, idx)?)))
            .collect()
    }

    fn save_combined(&mut self, run: i64, batch: &[TargetResult<'_>]) -> Result<()> {
        let tx = self.conn.transaction().db()?;
        write_results(&tx, run, batch)?;
        {
            let mut done = tx
                .prepare_cached("DELETE FROM fleet_ready WHERE run_id = ?1 AND idx = ?2")
                .db()?;
            for r in batch {
                done.execute(params![run, r.idx]).db()?;
            }
        }
        tx.commit().db()
    }

    fn vantage_results(&self, run: i64, idx: i64) -> Result<Vec<VantageResultRow>> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT v.vantage, coalesce(a.name, ''), v.observation, v.verdicts FROM vantage_results v \
                 LEFT JOIN agents a ON a.id = v.agent_id WHERE v.run_id = ?1 AND v.idx = ?2 ORDER BY v.vantage",
            )
            .db()?;
        let rows = collect(stmt.query_map(params![run, idx], result_row).db()?)?;
        rows.into_iter().map(parse_result).collect()
    }

    fn fleet_progress(&self, run: i64, now: i64) -> Result<Vec<VantageProgress>> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT v.vantage, \
                 (SELECT count(*) FROM vantage_results r WHERE r.run_id = v.run_id AND r.vantage = v.vantage), \
                 (SELECT count(*) FROM leases l WHERE l.run_id = v.run_id AND l.vantage = v.vantage AND l.expires_at > ?2) \
                 FROM run_vantages v WHERE v.run_id = ?1 ORDER BY v.vantage",
            )
            .db()?;
        collect(
            stmt.query_map(params![run, now], |r| {
                Ok(VantageProgress {
                    vantage: r.get(0)?,
                    done: r.get(1)?,
                    leased: r.get(2)?,
                })
            })
            .db()?,
        )
    }

    fn vantage_tallies(&self, run: i64, profile: &str) -> Result<Vec<VantageTally>> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT vantage, status, count(*), avg(score) FROM vantage_verdicts \
                 WHERE run_id = ?1 AND profile = ?2 GROUP BY vantage, status ORDER BY vantage, status",
            )
            .db()?;
        let rows: Vec<(String, String, i64, f64)> = collect(
            stmt.query_map(params![run, profile], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
            })
            .db()?,
        )?;
        rows.into_iter()
            .map(|(vantage, status, targets, score)| {
                Ok(VantageTally {
                    vantage,
                    status: parse_stored(&status)?,
                    targets,
                    score,
                })
            })
            .collect()
    }

    fn vantage_differences(&self, run: i64, profile: &str, limit: i64) -> Result<(i64, Vec<VantageDifference>)> {
        const DIFFERING: &str = "SELECT idx FROM vantage_verdicts WHERE run_id = ?1 AND profile = ?2 \
                                 GROUP BY idx HAVING count(DISTINCT status) > 1";
        let count: i64 = self
            .conn
            .query_row(
                &format!("SELECT count(*) FROM ({DIFFERING})"),
                params![run, profile],
                |r| r.get(0),
            )
            .db()?;
        let mut stmt = self
            .conn
            .prepare_cached(&format!(
                "SELECT d.idx, t.domain, v.vantage, v.status \
                 FROM ({DIFFERING} ORDER BY idx LIMIT ?3) d \
                 JOIN targets t ON t.run_id = ?1 AND t.idx = d.idx \
                 JOIN vantage_verdicts v ON v.run_id = ?1 AND v.profile = ?2 AND v.idx = d.idx \
                 ORDER BY d.idx, v.vantage"
            ))
            .db()?;
        let rows: Vec<(i64, String, String, String)> = collect(
            stmt.query_map(params![run, profile, limit], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
            })
            .db()?,
        )?;
        let mut out: Vec<VantageDifference> = Vec::new();
        for (idx, domain, vantage, status) in rows {
            let status = parse_stored(&status)?;
            match out.last_mut() {
                Some(d) if d.idx == idx => d.statuses.push((vantage, status)),
                _ => out.push(VantageDifference {
                    idx,
                    domain,
                    statuses: vec![(vantage, status)],
                }),
            }
        }
        Ok((count, out))
    }

    fn save_edges(&mut self, run: i64, rows: &[EdgeRow]) -> Result<()> {
        let tx = self.conn.transaction().db()?;
        {
            let mut insert = tx
                .prepare_cached(
                    "INSERT OR IGNORE INTO edge_sightings \
                     (run_id, idx, vantage, provider, kind, product, name, region, isp, v4, v6, v4_ok, v6_ok) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
                )
                .db()?;
            for r in rows {
                insert
                    .execute(params![
                        run, r.idx, r.vantage, r.provider, r.kind, r.product, r.name, r.region, r.isp, r.v4, r.v6,
                        r.v4_ok, r.v6_ok
                    ])
                    .db()?;
            }
        }
        tx.commit().db()
    }

    fn edges(&self, run: i64) -> Result<Vec<EdgeRow>> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT idx, vantage, provider, kind, product, name, region, isp, v4, v6, v4_ok, v6_ok \
                 FROM edge_sightings WHERE run_id = ?1 ORDER BY idx, vantage, provider, product, name",
            )
            .db()?;
        collect(
            stmt.query_map(params![run], |r| {
                Ok(EdgeRow {
                    idx: r.get(0)?,
                    vantage: r.get(1)?,
                    provider: r.get(2)?,
                    kind: r.get(3)?,
                    product: r.get(4)?,
                    name: r.get(5)?,
                    region: r.get(6)?,
                    isp: r.get(7)?,
                    v4: r.get(8)?,
                    v6: r.get(9)?,
                    v4_ok: r.get(10)?,
                    v6_ok: r.get(11)?,
                })
            })
            .db()?,
        )
    }
}
