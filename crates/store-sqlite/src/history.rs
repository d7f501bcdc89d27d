use crate::{Db, SqliteStore, collect, parsed, parsed_opt};
use rusqlite::{OptionalExtension, params};
use v6scope_model::Verdict;
use v6scope_store_api::{
    Change, ChangeGroupRow, ChangeKind, History, ProviderUseRow, Result, Slice, TargetFilter, TargetRow, TimelinePoint,
};

/// Columns 0-6 of a target row: idx, domain, category, organisation,
/// region, status, score.
const TARGET_ROW: &str = "t.idx, t.domain, t.category, t.organisation, t.region, v.status, v.score";

fn target_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<TargetRow> {
    Ok(TargetRow {
        idx: r.get(0)?,
        domain: r.get(1)?,
        category: r.get(2)?,
        organisation: r.get(3)?,
        region: r.get(4)?,
        status: parsed_opt(r, 5)?,
        score: r.get(6)?,
    })
}

impl SqliteStore {
    fn has_summary(&self, run: i64, profile: &str) -> Result<bool> {
        self.conn
            .prepare_cached("SELECT 1 FROM run_summary WHERE run_id = ?1 AND profile = ?2 AND dimension = 'all'")
            .db()?
            .exists(params![run, profile])
            .db()
    }
}

impl History for SqliteStore {
    fn put_summary(&mut self, run: i64, profile: &str, slices: &[Slice], uses: &[ProviderUseRow]) -> Result<()> {
        let tx = self.conn.transaction().db()?;
        tx.execute(
            "DELETE FROM run_summary WHERE run_id = ?1 AND profile = ?2",
            params![run, profile],
        )
        .db()?;
        {
            let mut insert = tx
                .prepare(
                    "INSERT OR REPLACE INTO run_summary (run_id, profile, dimension, key, targets, pass, score) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                )
                .db()?;
            for s in slices {
                insert
                    .execute(params![run, profile, s.dimension, s.key, s.targets, s.pass, s.score])
                    .db()?;
            }
            let mut insert = tx
                .prepare(
                    "INSERT OR REPLACE INTO provider_uses (run_id, idx, provider, role, ipv6, evidence) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                )
                .db()?;
            for u in uses {
                insert
                    .execute(params![run, u.idx, u.provider, u.role, u.ipv6, u.evidence])
                    .db()?;
            }
        }
        tx.commit().db()
    }

    fn summary(&self, run: i64, profile: &str, dimension: Option<&str>) -> Result<Vec<Slice>> {
        // Two statements so that a single dimension is a primary-key range
        // ("?3 IS NULL OR" would read every slice of the run).
        let mut stmt = self
            .conn
            .prepare_cached(if dimension.is_some() {
                "SELECT dimension, key, targets, pass, score FROM run_summary \
                 WHERE run_id = ?1 AND profile = ?2 AND dimension = ?3 ORDER BY dimension, key"
            } else {
                "SELECT dimension, key, targets, pass, score FROM run_summary \
                 WHERE run_id = ?1 AND profile = ?2 AND ?3 IS NULL ORDER BY dimension, key"
            })
            .db()?;
        collect(
            stmt.query_map(params![run, profile, dimension], |r| {
                Ok(Slice {
                    dimension: r.get(0)?,
                    key: r.get(1)?,
                    targets: r.get(2)?,
                    pass: r.get(3)?,
                    score: r.get(4)?,
                })
            })
            .db()?,
        )
    }

    fn provider_uses(&self, run: i64) -> Result<Vec<ProviderUseRow>> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT idx, provider, role, ipv6, evidence FROM provider_uses WHERE run_id = ?1 \
                 ORDER BY provider, role, idx",
            )
            .db()?;
        collect(
            stmt.query_map(params![run], |r| {
                Ok(ProviderUseRow {
                    idx: r.get(0)?,
                    provider: r.get(1)?,
                    role: r.get(2)?,
                    ipv6: r.get(3)?,
                    evidence: r.get(4)?,
                })
            })
            .db()?,
        )
    }

    fn for_each_target_verdict(&self, run: i64, profile: &str, f: &mut dyn FnMut(TargetRow)) -> Result<()> {
        let mut stmt = self
            .conn
            .prepare(&format!(
                "SELECT {TARGET_ROW} FROM targets t \
                 LEFT JOIN verdicts v ON v.run_id = t.run_id AND v.idx = t.idx AND v.profile = ?2 \
                 WHERE t.run_id = ?1 ORDER BY t.idx"
            ))
            .db()?;
        let mut rows = stmt.query(params![run, profile]).db()?;
        while let Some(r) = rows.next().db()? {
            f(target_row(r).db()?);
        }
        Ok(())
    }

    /// Rows are read in the order of the score index, so a page costs what
    /// it skips and shows, not the size of the run; the total comes from the
    /// run's summary when one filter is set, from an index otherwise.
    fn targets_page(
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
        let status = filter.status.map(|s| s.as_str());
        let mut stmt = self
            .conn
            .prepare_cached(&format!(
                "SELECT {TARGET_ROW} {FROM} ORDER BY v.score, v.idx LIMIT ?7 OFFSET ?8"
            ))
            .db()?;
        let out = collect(
            stmt.query_map(
                params![
                    run,
                    profile,
                    filter.category,
                    filter.region,
                    filter.organisation,
                    status,
                    limit,
                    offset
                ],
                target_row,
            )
            .db()?,
        )?;
        let total = match filter.summary_slice() {
            Some((dimension, key)) => {
                let summarised: Option<i64> = self
                    .conn
                    .query_row(
                        "SELECT targets FROM run_summary WHERE run_id = ?1 AND profile = ?2 AND dimension = ?3 \
                         AND key = ?4",
                        params![run, profile, dimension, key],
                        |r| r.get(0),
                    )
                    .optional()
                    .db()?;
                match summarised {
                    Some(n) => Some(n),
                    // A slice absent from a summarised run has no targets.
                    None if self.has_summary(run, profile)? => Some(0),
                    None => None,
                }
            }
            None => None,
        };
        let total = match total {
            Some(n) => n,
            None => self
                .conn
                .query_row(
                    &format!("SELECT COUNT(*) {FROM}"),
                    params![
                        run,
                        profile,
                        filter.category,
                        filter.region,
                        filter.organisation,
                        status
                    ],
                    |r| r.get(0),
                )
                .db()?,
        };
        Ok((out, total))
    }

    fn best_targets(&self, run: i64, profile: &str, limit: i64) -> Result<Vec<TargetRow>> {
        let mut stmt = self
            .conn
            .prepare(&format!(
                "SELECT {TARGET_ROW} FROM verdicts v CROSS JOIN targets t ON t.run_id = v.run_id AND t.idx = v.idx \
                 WHERE v.run_id = ?1 AND v.profile = ?2 ORDER BY v.score DESC, v.idx DESC LIMIT ?3"
            ))
            .db()?;
        collect(stmt.query_map(params![run, profile, limit], target_row).db()?)
    }

    fn worst_targets(&self, run: i64, profile: &str, limit: i64) -> Result<Vec<(TargetRow, Verdict)>> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT v.idx, v.domain, t.category, t.organisation, t.region, v.status, v.score, v.body \
                 FROM verdicts v LEFT JOIN targets t ON t.run_id = v.run_id AND t.idx = v.idx \
                 WHERE v.run_id = ?1 AND v.profile = ?2 ORDER BY v.score, v.idx LIMIT ?3",
            )
            .db()?;
        let rows: Vec<(TargetRow, String)> = collect(
            stmt.query_map(params![run, profile, limit], |r| Ok((target_row(r)?, r.get(7)?)))
                .db()?,
        )?;
        rows.into_iter()
            .map(|(row, body)| Ok((row, serde_json::from_str(&body)?)))
            .collect()
    }

    fn timeline(&self, source: &str, domain: &str) -> Result<Vec<TimelinePoint>> {
        let mut stmt = self
            .conn
            .prepare(
                // CROSS JOIN: start from the domain's index entries, not from
                // every verdict of the source's runs.
                "SELECT r.id, r.started_at, v.profile, v.status, v.score FROM targets t \
                 CROSS JOIN runs r ON r.id = t.run_id \
                 CROSS JOIN verdicts v ON v.run_id = t.run_id AND v.idx = t.idx \
                 WHERE t.domain = ?1 AND r.source = ?2 ORDER BY r.id, v.profile",
            )
            .db()?;
        collect(
            stmt.query_map(params![domain, source], |r| {
                Ok(TimelinePoint {
                    run_id: r.get(0)?,
                    started_at: r.get(1)?,
                    profile: r.get(2)?,
                    status: parsed(r, 3)?,
                    score: r.get(4)?,
                })
            })
            .db()?,
        )
    }

    fn for_each_verdict_pair(
        &self,
        run: i64,
        previous: i64,
        profile: &str,
        f: &mut dyn FnMut(Verdict, Verdict),
    ) -> Result<()> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT p.body, n.body FROM verdicts n \
                 CROSS JOIN targets tn ON tn.run_id = n.run_id AND tn.idx = n.idx \
                 CROSS JOIN targets tp ON tp.domain = tn.domain AND tp.run_id = ?2 \
                 CROSS JOIN verdicts p ON p.run_id = tp.run_id AND p.idx = tp.idx AND p.profile = n.profile \
                 WHERE n.run_id = ?1 AND n.profile = ?3 ORDER BY n.run_id, n.idx",
            )
            .db()?;
        let mut rows = stmt.query(params![run, previous, profile]).db()?;
        while let Some(r) = rows.next().db()? {
            let then: String = r.get(0).db()?;
            let now: String = r.get(1).db()?;
            f(serde_json::from_str(&then)?, serde_json::from_str(&now)?);
        }
        Ok(())
    }

    fn put_changes(&mut self, campaign: &str, run: i64, changes: &[Change]) -> Result<()> {
        let tx = self.conn.transaction().db()?;
        tx.execute("DELETE FROM changes WHERE run_id = ?1", params![run]).db()?;
        {
            let mut insert = tx
                .prepare(
                    "INSERT INTO changes (campaign, run_id, previous_run, domain, profile, kind, check_id, \
                     from_status, to_status, text) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                )
                .db()?;
            for c in changes {
                insert
                    .execute(params![
                        campaign,
                        run,
                        c.previous_run,
                        c.domain,
                        c.profile,
                        c.kind.as_str(),
                        c.check_id,
                        c.from_status.as_str(),
                        c.to_status.as_str(),
                        c.text
                    ])
                    .db()?;
            }
        }
        tx.commit().db()
    }

    fn changes(&self, run: Option<i64>, domain: Option<&str>, limit: i64) -> Result<Vec<Change>> {
        // One statement per shape, so each can use its index ("?1 IS NULL OR"
        // would make SQLite scan the table).
        let filter = match (run, domain) {
            (Some(_), Some(_)) => "run_id = ?1 AND domain = ?2",
            (Some(_), None) => "run_id = ?1 AND ?2 IS NULL",
            (None, Some(_)) => "?1 IS NULL AND domain = ?2",
            (None, None) => "?1 IS NULL AND ?2 IS NULL",
        };
        let mut stmt = self
            .conn
            .prepare_cached(&format!(
                "SELECT run_id, previous_run, domain, profile, kind, check_id, from_status, to_status, text \
                 FROM changes WHERE {filter} ORDER BY run_id DESC, id LIMIT ?3"
            ))
            .db()?;
        collect(
            stmt.query_map(params![run, domain, limit], |r| {
                Ok(Change {
                    run_id: r.get(0)?,
                    previous_run: r.get(1)?,
                    domain: r.get(2)?,
                    profile: r.get(3)?,
                    kind: parsed(r, 4)?,
                    check_id: r.get(5)?,
                    from_status: parsed(r, 6)?,
                    to_status: parsed(r, 7)?,
                    text: r.get(8)?,
                })
            })
            .db()?,
        )
    }

    fn change_groups(&self, runs: &[i64], profile: &str, examples: i64) -> Result<Vec<ChangeGroupRow>> {
        let ids = serde_json::to_string(runs)?;
        // Bare columns beside MIN(id) come from the row holding the minimum
        // (SQLite), so the sample is the first change of the group.
        let mut stmt = self
            .conn
            .prepare(
                "SELECT kind, check_id, COUNT(*), COUNT(DISTINCT domain), MIN(id), text, from_status, to_status \
                 FROM changes WHERE run_id IN (SELECT value FROM json_each(?1)) AND profile = ?2 \
                 GROUP BY kind, check_id ORDER BY kind, COUNT(*) DESC, check_id",
            )
            .db()?;
        let mut groups: Vec<ChangeGroupRow> = collect(
            stmt.query_map(params![ids, profile], |r| {
                Ok(ChangeGroupRow {
                    kind: parsed(r, 0)?,
                    check_id: r.get(1)?,
                    changes: r.get(2)?,
                    domains: r.get(3)?,
                    sample_text: r.get(5)?,
                    sample_from: parsed(r, 6)?,
                    sample_to: parsed(r, 7)?,
                    examples: Vec::new(),
                })
            })
            .db()?,
        )?;
        let mut stmt = self
            .conn
            .prepare(
                "SELECT kind, check_id, domain FROM ( \
                   SELECT kind, check_id, domain, \
                   ROW_NUMBER() OVER (PARTITION BY kind, check_id ORDER BY first) AS n \
                   FROM (SELECT kind, check_id, domain, MIN(id) AS first FROM changes \
                         WHERE run_id IN (SELECT value FROM json_each(?1)) AND profile = ?2 \
                         GROUP BY kind, check_id, domain)) \
                 WHERE n <= ?3 ORDER BY kind, check_id, n",
            )
            .db()?;
        let rows: Vec<(ChangeKind, String, String)> = collect(
            stmt.query_map(params![ids, profile, examples], |r| {
                Ok((parsed(r, 0)?, r.get(1)?, r.get(2)?))
            })
            .db()?,
        )?;
        for (kind, check, domain) in rows {
            if let Some(g) = groups.iter_mut().find(|g| g.kind == kind && g.check_id == check) {
                g.examples.push(domain);
            }
        }
        Ok(groups)
    }
}
