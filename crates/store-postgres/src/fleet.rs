use crate::runs::{ResultColumns, target_of};
use crate::{Db, PostgresStore, get, parsed};
use postgres::Row;
use std::collections::BTreeMap;
use v6scope_model::Target;
use v6scope_store_api::{
    AgentRegistration, AgentRow, Delivery, EdgeRow, Fleet, Lease, Result, StoreError, TargetResult, VantageDifference,
    VantageProgress, VantageResult, VantageResultRow, VantageTally, now_unix, now_utc,
};

/// First key of the advisory lock a run's deliveries take (two-key locks
/// never meet the one-key locks of migrations and sketches).
const DELIVERY_LOCK: i32 = 0x7636;

const AGENT_COLUMNS: &str = "a.id, a.name, a.created_at, a.revoked_at IS NOT NULL, a.vantage, a.labels, a.concurrency, \
     a.version, a.selftest, a.last_seen, a.results, a.errors, \
     (SELECT count(*) FROM leases l WHERE l.agent_id = a.id AND l.expires_at > $1)";

fn agent_of(r: &Row) -> Result<AgentRow> {
    let labels: String = get(r, 5)?;
    Ok(AgentRow {
        id: get(r, 0)?,
        name: get(r, 1)?,
        created_at: get(r, 2)?,
        revoked: get(r, 3)?,
        vantage: get(r, 4)?,
        labels: serde_json::from_str(&labels)?,
        concurrency: get(r, 6)?,
        version: get(r, 7)?,
        selftest: get(r, 8)?,
        last_seen: get(r, 9)?,
        results: get(r, 10)?,
        errors: get(r, 11)?,
        leased: get(r, 12)?,
    })
}

fn targets_at(tx: &mut postgres::Transaction<'_>, run: i64, idxs: &[i64]) -> Result<Vec<(i64, Target)>> {
    tx.query(
        "SELECT idx, domain, category, organisation, region FROM targets \
         WHERE run_id = $1 AND idx = ANY($2) ORDER BY idx",
        &[&run, &idxs],
    )
    .db()?
    .iter()
    .map(|r| Ok((get(r, 0)?, target_of(r, 1)?)))
    .collect()
}

impl Fleet for PostgresStore {
    fn add_agent(&mut self, name: &str, token_hash: &str) -> Result<i64> {
        self.with(|c| {
            let row = c
                .query_one(
                    "INSERT INTO agents (name, token_hash, created_at) VALUES ($1, $2, $3) RETURNING id",
                    &[&name, &token_hash, &now_utc()],
                )
                .db()
                .map_err(|e| match e {
                    StoreError::Conflict(_) => StoreError::Conflict(format!("an agent named '{name}' exists")),
                    other => other,
                })?;
            get(&row, 0)
        })
    }

    fn revoke_agent(&mut self, name: &str) -> Result<bool> {
        self.with(|c| {
            let mut tx = c.transaction().db()?;
            let row = tx
                .query_opt(
                    "UPDATE agents SET revoked_at = coalesce(revoked_at, $2) WHERE name = $1 RETURNING id",
                    &[&name, &now_utc()],
                )
                .db()?;
            let Some(row) = row else { return Ok(false) };
            let id: i64 = get(&row, 0)?;
            // Its targets go back to the others of its vantage at once (a
            // lease is never deleted undelivered: the cursor has passed it).
            tx.execute("UPDATE leases SET expires_at = 0 WHERE agent_id = $1", &[&id])
                .db()?;
            tx.commit().db()?;
            Ok(true)
        })
    }

    fn agents(&self) -> Result<Vec<AgentRow>> {
        self.with(|c| {
            c.query(
                &format!("SELECT {AGENT_COLUMNS} FROM agents a ORDER BY a.name COLLATE \"C\""),
                &[&now_unix()],
            )
            .db()?
            .iter()
            .map(agent_of)
            .collect()
        })
    }

    fn agent_by_token(&self, token_hash: &str) -> Result<Option<AgentRow>> {
        self.with(|c| {
            c.query_opt(
                &format!("SELECT {AGENT_COLUMNS} FROM agents a WHERE a.token_hash = $2 AND a.revoked_at IS NULL"),
                &[&now_unix(), &token_hash],
            )
            .db()?
            .as_ref()
            .map(agent_of)
            .transpose()
        })
    }

    fn register_agent(&mut self, agent: i64, reg: &AgentRegistration<'_>, now: i64) -> Result<()> {
        let labels = serde_json::to_string(reg.labels)?;
        self.with(|c| {
            c.execute(
                "UPDATE agents SET vantage = $2, labels = $3, concurrency = $4, version = $5, selftest = $6, \
                 last_seen = $7 WHERE id = $1",
                &[
                    &agent,
                    &reg.vantage,
                    &labels,
                    &reg.concurrency,
                    &reg.version,
                    &reg.selftest,
                    &now,
                ],
            )
            .db()?;
            Ok(())
        })
    }

    fn heartbeat(&mut self, agent: i64, now: i64, lease_until: i64) -> Result<()> {
        self.with(|c| {
            let mut tx = c.transaction().db()?;
            tx.execute("UPDATE agents SET last_seen = $2 WHERE id = $1", &[&agent, &now])
                .db()?;
            tx.execute(
                "UPDATE leases SET expires_at = $3 WHERE agent_id = $1 AND expires_at > $2",
                &[&agent, &now, &lease_until],
            )
            .db()?;
            tx.commit().db()
        })
    }

    fn set_run_vantages(&mut self, run: i64, vantages: &[String]) -> Result<()> {
        self.with(|c| {
            let mut tx = c.transaction().db()?;
            tx.execute("DELETE FROM run_vantages WHERE run_id = $1", &[&run]).db()?;
            tx.execute(
                "INSERT INTO run_vantages (run_id, vantage) SELECT $1, v FROM UNNEST($2::text[]) AS u(v)",
                &[&run, &vantages],
            )
            .db()?;
            tx.commit().db()
        })
    }

    fn run_vantages(&self, run: i64) -> Result<Vec<String>> {
        self.with(|c| {
            c.query(
                "SELECT vantage FROM run_vantages WHERE run_id = $1 ORDER BY vantage COLLATE \"C\"",
                &[&run],
            )
            .db()?
            .iter()
            .map(|r| get(r, 0))
            .collect()
        })
    }

    fn claim(&mut self, agent: i64, vantage: &str, concurrency: i64, now: i64, lease_until: i64) -> Result<Vec<Lease>> {
        self.with(|c| {
            let mut tx = c.transaction().db()?;
            let held: i64 = get(
                &tx.query_one(
                    "SELECT count(*) FROM leases WHERE agent_id = $1 AND expires_at > $2",
                    &[&agent, &now],
                )
                .db()?,
                0,
            )?;
            let mut free = concurrency - held;
            let mut out = Vec::new();
            if free <= 0 {
                return Ok(out);
            }
            let runs: Vec<i64> = tx
                .query(
                    "SELECT v.run_id FROM run_vantages v JOIN runs r ON r.id = v.run_id \
                     WHERE v.vantage = $1 AND r.finished_at IS NULL ORDER BY v.run_id",
                    &[&vantage],
                )
                .db()?
                .iter()
                .map(|r| get(r, 0))
                .collect::<Result<_>>()?;
            for run in runs {
                if free <= 0 {
                    break;
                }
                // Targets whose lease ran out; another agent claiming at the
                // same moment takes other rows rather than waiting.
                let expired: Vec<i64> = tx
                    .query(
                        "SELECT idx FROM leases WHERE run_id = $1 AND vantage = $2 AND expires_at <= $3 \
                         ORDER BY idx LIMIT $4 FOR UPDATE SKIP LOCKED",
                        &[&run, &vantage, &now, &free],
                    )
                    .db()?
                    .iter()
                    .map(|r| get(r, 0))
                    .collect::<Result<_>>()?;
                if !expired.is_empty() {
                    tx.execute(
                        "UPDATE leases SET agent_id = $4, expires_at = $5 \
                         WHERE run_id = $1 AND vantage = $2 AND idx = ANY($3)",
                        &[&run, &vantage, &expired, &agent, &lease_until],
                    )
                    .db()?;
                    free -= expired.len() as i64;
                    out.extend(
                        targets_at(&mut tx, run, &expired)?
                            .into_iter()
                            .map(|(idx, target)| Lease { run, idx, target }),
                    );
                }
                if free <= 0 {
                    break;
                }
                // Then targets never handed out, from the run's cursor
                // (locked: claims of one vantage take turns here).
                let next: i64 = get(
                    &tx.query_one(
                        "SELECT next_idx FROM run_vantages WHERE run_id = $1 AND vantage = $2 FOR UPDATE",
                        &[&run, &vantage],
                    )
                    .db()?,
                    0,
                )?;
                let fresh: Vec<(i64, Target)> = tx
                    .query(
                        "SELECT idx, domain, category, organisation, region FROM targets \
                         WHERE run_id = $1 AND idx >= $2 ORDER BY idx LIMIT $3",
                        &[&run, &next, &free],
                    )
                    .db()?
                    .iter()
                    .map(|r| Ok((get(r, 0)?, target_of(r, 1)?)))
                    .collect::<Result<_>>()?;
                if let Some((last, _)) = fresh.last() {
                    let idxs: Vec<i64> = fresh.iter().map(|(i, _)| *i).collect();
                    tx.execute(
                        "INSERT INTO leases (run_id, vantage, idx, agent_id, expires_at) \
                         SELECT $1, $2, i, $4, $5 FROM UNNEST($3::bigint[]) AS u(i) \
                         ON CONFLICT (run_id, vantage, idx) DO UPDATE \
                         SET agent_id = excluded.agent_id, expires_at = excluded.expires_at",
                        &[&run, &vantage, &idxs, &agent, &lease_until],
                    )
                    .db()?;
                    tx.execute(
                        "UPDATE run_vantages SET next_idx = $3 WHERE run_id = $1 AND vantage = $2",
                        &[&run, &vantage, &(last + 1)],
                    )
                    .db()?;
                }
                free -= fresh.len() as i64;
                out.extend(fresh.into_iter().map(|(idx, target)| Lease { run, idx, target }));
            }
            tx.execute("UPDATE agents SET last_seen = $2 WHERE id = $1", &[&agent, &now])
                .db()?;
            tx.commit().db()?;
            Ok(out)
        })
    }

    fn deliver(&mut self, agent: i64, vantage: &str, results: &[VantageResult<'_>], now: i64) -> Result<Vec<Delivery>> {
        // By run, each as columns: a handful of statements per batch.
        let mut by_run: BTreeMap<i64, Vec<usize>> = BTreeMap::new();
        for (i, r) in results.iter().enumerate() {
            by_run.entry(r.run).or_default().push(i);
        }
        let mut bodies = Vec::with_capacity(results.len());
        for r in results {
            bodies.push((
                serde_json::to_string(r.observation)?,
                serde_json::to_string(r.verdicts)?,
            ));
        }
        let received = now_utc();
        self.with(|c| {
            let mut tx = c.transaction().db()?;
            let mut out = vec![Delivery::NotGiven; results.len()];
            let (mut stored, mut errors) = (0i64, 0i64);
            for (run, positions) in &by_run {
                // Deliveries of one run take turns, so the delivery that
                // completes a target always sees the others' results.
                tx.execute(
                    "SELECT pg_advisory_xact_lock($1, $2::bigint::int)",
                    &[&DELIVERY_LOCK, run],
                )
                .db()?;
                let idxs: Vec<i64> = positions.iter().map(|&p| results[p].idx).collect();
                let seen: std::collections::HashSet<i64> = tx
                    .query(
                        "SELECT idx FROM vantage_results WHERE run_id = $1 AND vantage = $2 AND idx = ANY($3)",
                        &[run, &vantage, &idxs],
                    )
                    .db()?
                    .iter()
                    .map(|r| get(r, 0))
                    .collect::<Result<_>>()?;
                // An observation of another name is no result for its target:
                // only the indexes whose target it observed are taken.
                let names: std::collections::HashMap<i64, String> = tx
                    .query(
                        "SELECT idx, domain FROM targets WHERE run_id = $1 AND idx = ANY($2)",
                        &[run, &idxs],
                    )
                    .db()?
                    .iter()
                    .map(|r| Ok((get(r, 0)?, get(r, 1)?)))
                    .collect::<Result<_>>()?;
                let matching: Vec<i64> = positions
                    .iter()
                    .map(|&p| &results[p])
                    .filter(|r| names.get(&r.idx).map(String::as_str) == Some(r.observation.target.domain.as_str()))
                    .map(|r| r.idx)
                    .collect();
                let given: std::collections::HashSet<i64> = tx
                    .query(
                        "DELETE FROM leases WHERE run_id = $1 AND vantage = $2 AND agent_id = $3 AND idx = ANY($4) \
                         RETURNING idx",
                        &[run, &vantage, &agent, &matching],
                    )
                    .db()?
                    .iter()
                    .map(|r| get(r, 0))
                    .collect::<Result<_>>()?;
                let (mut new_idx, mut observations, mut verdicts) = (Vec::new(), Vec::new(), Vec::new());
                for &p in positions {
                    let idx = results[p].idx;
                    out[p] = if seen.contains(&idx) {
                        Delivery::Duplicate
                    } else if given.contains(&idx) && !new_idx.contains(&idx) {
                        new_idx.push(idx);
                        observations.push(bodies[p].0.as_str());
                        verdicts.push(bodies[p].1.as_str());
                        errors += i64::from(results[p].observation.error.is_some());
                        Delivery::Stored
                    } else if new_idx.contains(&idx) {
                        Delivery::Duplicate
                    } else {
                        Delivery::NotGiven
                    };
                }
                if new_idx.is_empty() {
                    continue;
                }
                stored += new_idx.len() as i64;
                tx.execute(
                    "INSERT INTO vantage_results (run_id, vantage, idx, agent_id, received_at, observation, verdicts) \
                     SELECT $1, $2, i, $3, $4, o, v FROM UNNEST($5::bigint[], $6::text[], $7::text[]) AS u(i, o, v)",
                    &[run, &vantage, &agent, &received, &new_idx, &observations, &verdicts],
                )
                .db()?;
                let (mut v_idx, mut v_profile, mut v_status, mut v_score) =
                    (Vec::new(), Vec::new(), Vec::new(), Vec::new());
                for &p in positions {
                    if out[p] == Delivery::Stored {
                        for v in results[p].verdicts {
                            v_idx.push(results[p].idx);
                            v_profile.push(v.profile.as_str());
                            v_status.push(v.status.as_str());
                            v_score.push(v.score);
                        }
                    }
                }
                tx.execute(
                    "INSERT INTO vantage_verdicts (run_id, profile, idx, vantage, status, score) \
                     SELECT $1, p, i, $2, s, sc FROM UNNEST($3::bigint[], $4::text[], $5::text[], $6::float8[]) \
                     AS u(i, p, s, sc) ON CONFLICT DO NOTHING",
                    &[run, &vantage, &v_idx, &v_profile, &v_status, &v_score],
                )
                .db()?;
                tx.execute(
                    "INSERT INTO fleet_ready (run_id, idx) SELECT $1, r.idx FROM vantage_results r \
                     WHERE r.run_id = $1 AND r.idx = ANY($2) GROUP BY r.idx \
                     HAVING count(*) = (SELECT count(*) FROM run_vantages WHERE run_id = $1) \
                     ON CONFLICT DO NOTHING",
                    &[run, &new_idx],
                )
                .db()?;
            }
            tx.execute(
                "UPDATE agents SET last_seen = $2, results = results + $3, errors = errors + $4 WHERE id = $1",
                &[&agent, &now, &stored, &errors],
            )
            .db()?;
            tx.commit().db()?;
            Ok(out)
        })
    }

    fn ready_targets(&self, run: i64, limit: i64) -> Result<Vec<(i64, Vec<VantageResultRow>)>> {
        let rows: Vec<(i64, String, String, String, String)> = self.with(|c| {
            c.query(
                "SELECT f.idx, v.vantage, coalesce(a.name, ''), v.observation, v.verdicts \
                 FROM (SELECT idx FROM fleet_ready WHERE run_id = $1 ORDER BY idx LIMIT $2) f \
                 JOIN vantage_results v ON v.run_id = $1 AND v.idx = f.idx \
                 LEFT JOIN agents a ON a.id = v.agent_id ORDER BY f.idx, v.vantage COLLATE \"C\"",
                &[&run, &limit],
            )
            .db()?
            .iter()
            .map(|r| Ok((get(r, 0)?, get(r, 1)?, get(r, 2)?, get(r, 3)?, get(r, 4)?)))
            .collect()
        })?;
        let mut out: Vec<(i64, Vec<VantageResultRow>)> = Vec::new();
        for (idx, vantage, agent, observation, verdicts) in rows {
            let row = VantageResultRow {
                vantage,
                agent,
                observation: serde_json::from_str(&observation)?,
                verdicts: serde_json::from_str(&verdicts)?,
            };
            match out.last_mut() {
                Some((last, rows)) if *last == idx => rows.push(row),
                _ => out.push((idx, vec![row])),
            }
        }
        Ok(out)
    }

    fn save_combined(&mut self, run: i64, batch: &[TargetResult<'_>]) -> Result<()> {
        let columns = ResultColumns::of(batch)?;
        self.with(|c| {
            let mut tx = c.transaction().db()?;
            columns.write(&mut tx, run)?;
            tx.execute(
                "DELETE FROM fleet_ready WHERE run_id = $1 AND idx = ANY($2)",
                &[&run, &columns.indexes()],
            )
            .db()?;
            tx.commit().db()
        })
    }

    fn vantage_results(&self, run: i64, idx: i64) -> Result<Vec<VantageResultRow>> {
        let rows: Vec<(String, String, String, String)> = self.with(|c| {
            c.query(
                "SELECT v.vantage, coalesce(a.name, ''), v.observation, v.verdicts FROM vantage_results v \
                 LEFT JOIN agents a ON a.id = v.agent_id WHERE v.run_id = $1 AND v.idx = $2 \
                 ORDER BY v.vantage COLLATE \"C\"",
                &[&run, &idx],
            )
            .db()?
            .iter()
            .map(|r| Ok((get(r, 0)?, get(r, 1)?, get(r, 2)?, get(r, 3)?)))
            .collect()
        })?;
        rows.into_iter()
            .map(|(vantage, agent, observation, verdicts)| {
                Ok(VantageResultRow {
                    vantage,
                    agent,
                    observation: serde_json::from_str(&observation)?,
                    verdicts: serde_json::from_str(&verdicts)?,
                })
            })
            .collect()
    }

    fn fleet_progress(&self, run: i64, now: i64) -> Result<Vec<VantageProgress>> {
        self.with(|c| {
            c.query(
                "SELECT v.vantage, \
                 (SELECT count(*) FROM vantage_results r WHERE r.run_id = v.run_id AND r.vantage = v.vantage), \
                 (SELECT count(*) FROM leases l WHERE l.run_id = v.run_id AND l.vantage = v.vantage \
                  AND l.expires_at > $2) \
                 FROM run_vantages v WHERE v.run_id = $1 ORDER BY v.vantage COLLATE \"C\"",
                &[&run, &now],
            )
            .db()?
            .iter()
            .map(|r| {
                Ok(VantageProgress {
                    vantage: get(r, 0)?,
                    done: get(r, 1)?,
                    leased: get(r, 2)?,
                })
            })
            .collect()
        })
    }

    fn vantage_tallies(&self, run: i64, profile: &str) -> Result<Vec<VantageTally>> {
        self.with(|c| {
            c.query(
                "SELECT vantage, status, count(*), avg(score) FROM vantage_verdicts \
                 WHERE run_id = $1 AND profile = $2 GROUP BY vantage, status \
                 ORDER BY vantage COLLATE \"C\", status COLLATE \"C\"",
                &[&run, &profile],
            )
            .db()?
            .iter()
            .map(|r| {
                Ok(VantageTally {
                    vantage: get(r, 0)?,
                    status: parsed(r, 1)?,
                    targets: get(r, 2)?,
                    score: get(r, 3)?,
                })
            })
            .collect()
        })
    }

    fn vantage_differences(&self, run: i64, profile: &str, limit: i64) -> Result<(i64, Vec<VantageDifference>)> {
        const DIFFERING: &str = "SELECT idx FROM vantage_verdicts WHERE run_id = $1 AND profile = $2 \
                                 GROUP BY idx HAVING count(DISTINCT status) > 1";
        self.with(|c| {
            let count: i64 = get(
                &c.query_one(&format!("SELECT count(*) FROM ({DIFFERING}) d"), &[&run, &profile])
                    .db()?,
                0,
            )?;
            let rows = c
                .query(
                    &format!(
                        "SELECT d.idx, t.domain, v.vantage, v.status \
                         FROM ({DIFFERING} ORDER BY idx LIMIT $3) d \
                         JOIN targets t ON t.run_id = $1 AND t.idx = d.idx \
                         JOIN vantage_verdicts v ON v.run_id = $1 AND v.profile = $2 AND v.idx = d.idx \
                         ORDER BY d.idx, v.vantage COLLATE \"C\""
                    ),
                    &[&run, &profile, &limit],
                )
                .db()?;
            let mut out: Vec<VantageDifference> = Vec::new();
            for r in &rows {
                let idx: i64 = get(r, 0)?;
                let vantage: String = get(r, 2)?;
                let status = parsed(r, 3)?;
                match out.last_mut() {
                    Some(d) if d.idx == idx => d.statuses.push((vantage, status)),
                    _ => out.push(VantageDifference {
                        idx,
                        domain: get(r, 1)?,
                        statuses: vec![(vantage, status)],
                    }),
                }
            }
            Ok((count, out))
        })
    }

    fn save_edges(&mut self, run: i64, rows: &[EdgeRow]) -> Result<()> {
        if rows.is_empty() {
            return Ok(());
        }
        let column = |f: fn(&EdgeRow) -> &str| rows.iter().map(f).collect::<Vec<&str>>();
        let idx: Vec<i64> = rows.iter().map(|r| r.idx).collect();
        let (vantage, provider, kind, product, name, region, isp) = (
            column(|r| &r.vantage),
            column(|r| &r.provider),
            column(|r| &r.kind),
            column(|r| &r.product),
            column(|r| &r.name),
            column(|r| &r.region),
            column(|r| &r.isp),
        );
        let v4: Vec<Option<&str>> = rows.iter().map(|r| r.v4.as_deref()).collect();
        let v6: Vec<Option<&str>> = rows.iter().map(|r| r.v6.as_deref()).collect();
        let v4_ok: Vec<bool> = rows.iter().map(|r| r.v4_ok).collect();
        let v6_ok: Vec<bool> = rows.iter().map(|r| r.v6_ok).collect();
        self.with(|c| {
            c.execute(
                "INSERT INTO edge_sightings \
                 (run_id, idx, vantage, provider, kind, product, name, region, isp, v4, v6, v4_ok, v6_ok) \
                 SELECT $1, * FROM UNNEST($2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], \
                 $8::text[], $9::text[], $10::text[], $11::text[], $12::bool[], $13::bool[]) \
                 ON CONFLICT DO NOTHING",
                &[
                    &run, &idx, &vantage, &provider, &kind, &product, &name, &region, &isp, &v4, &v6, &v4_ok, &v6_ok,
                ],
            )
            .db()?;
            Ok(())
        })
    }

    fn edges(&self, run: i64) -> Result<Vec<EdgeRow>> {
        self.with(|c| {
            c.query(
                "SELECT idx, vantage, provider, kind, product, name, region, isp, v4, v6, v4_ok, v6_ok \
                 FROM edge_sightings WHERE run_id = $1 \
                 ORDER BY idx, vantage COLLATE \"C\", provider COLLATE \"C\", product COLLATE \"C\", name COLLATE \"C\"",
                &[&run],
            )
            .db()?
            .iter()
            .map(|r| {
                Ok(EdgeRow {
                    idx: get(r, 0)?,
                    vantage: get(r, 1)?,
                    provider: get(r, 2)?,
                    kind: get(r, 3)?,
                    product: get(r, 4)?,
                    name: get(r, 5)?,
                    region: get(r, 6)?,
                    isp: get(r, 7)?,
                    v4: get(r, 8)?,
                    v6: get(r, 9)?,
                    v4_ok: get(r, 10)?,
                    v6_ok: get(r, 11)?,
                })
            })
            .collect()
        })
    }
}
