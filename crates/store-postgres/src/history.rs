use crate::{Db, PostgresStore, get, parsed, parsed_opt};
use postgres::Row;
use v6scope_model::Verdict;
use v6scope_store_api::{
    Change, ChangeGroupRow, ChangeKind, History, ProviderUseRow, Result, Slice, TargetFilter, TargetRow, TimelinePoint,
};

/// Columns 0-6 of a target row.
const TARGET_ROW: &str = "t.idx, t.domain, t.category, t.organisation, t.region, v.status, v.score";

fn target_row(r: &Row) -> Result<TargetRow> {
    Ok(TargetRow {
        idx: get(r, 0)?,
        domain: get(r, 1)?,
        category: get(r, 2)?,
        organisation: get(r, 3)?,
        region: get(r, 4)?,
        status: parsed_opt(r, 5)?,
        score: get(r, 6)?,
    })
}

fn slice(r: &Row) -> Result<Slice> {
    Ok(Slice {
        dimension: get(r, 0)?,
        key: get(r, 1)?,
        targets: get(r, 2)?,
        pass: get(r, 3)?,
        score: get(r, 4)?,
    })
}

impl History for PostgresStore {
    fn put_summary(&mut self, run: i64, profile: &str, slices: &[Slice], uses: &[ProviderUseRow]) -> Result<()> {
        self.with(|c| {
            let mut tx = c.transaction().db()?;
            tx.execute(
                "DELETE FROM run_summary WHERE run_id = $1 AND profile = $2",
                &[&run, &profile],
            )
            .db()?;
            let dimension: Vec<&str> = slices.iter().map(|s| s.dimension.as_str()).collect();
            let key: Vec<&str> = slices.iter().map(|s| s.key.as_str()).collect();
            let targets: Vec<i64> = slices.iter().map(|s| s.targets).collect();
            let pass: Vec<i64> = slices.iter().map(|s| s.pass).collect();
            let score: Vec<f64> = slices.iter().map(|s| s.score).collect();
            tx.execute(
                "INSERT INTO run_summary (run_id, profile, dimension, key, targets, pass, score) \
                 SELECT DISTINCT ON (dimension, key) $1, $2, dimension, key, targets, pass, score \
                 FROM UNNEST($3::text[], $4::text[], $5::bigint[], $6::bigint[], $7::float8[]) \
                 WITH ORDINALITY AS s(dimension, key, targets, pass, score, n) ORDER BY dimension, key, n DESC",
                &[&run, &profile, &dimension, &key, &targets, &pass, &score],
            )
            .db()?;
            let idx: Vec<i64> = uses.iter().map(|u| u.idx).collect();
            let provider: Vec<&str> = uses.iter().map(|u| u.provider.as_str()).collect();
            let role: Vec<&str> = uses.iter().map(|u| u.role.as_str()).collect();
            let ipv6: Vec<bool> = uses.iter().map(|u| u.ipv6).collect();
            let evidence: Vec<&str> = uses.iter().map(|u| u.evidence.as_str()).collect();
            tx.execute(
                "INSERT INTO provider_uses (run_id, idx, provider, role, ipv6, evidence) \
                 SELECT DISTINCT ON (idx, provider, role) $1, idx, provider, role, ipv6, evidence \
                 FROM UNNEST($2::bigint[], $3::text[], $4::text[], $5::bool[], $6::text[]) \
                 WITH ORDINALITY AS u(idx, provider, role, ipv6, evidence, n) ORDER BY idx, provider, role, n DESC \
                 ON CONFLICT (run_id, idx, provider, role) DO UPDATE SET ipv6 = excluded.ipv6, \
                 evidence = excluded.evidence",
                &[&run, &idx, &provider, &role, &ipv6, &evidence],
            )
            .db()?;
            tx.commit().db()
        })
    }

    fn summary(&self, run: i64, profile: &str, dimension: Option<&str>) -> Result<Vec<Slice>> {
        self.with(|c| {
            c.query(
                "SELECT dimension, key, targets, pass, score FROM run_summary \
                 WHERE run_id = $1 AND profile = $2 AND ($3::text IS NULL OR dimension = $3) \
                 ORDER BY dimension COLLATE \"C\", key COLLATE \"C\"",
                &[&run, &profile, &dimension],
            )
            .db()?
            .iter()
            .map(slice)
            .collect()
        })
    }

    fn provider_uses(&self, run: i64) -> Result<Vec<ProviderUseRow>> {
        self.with(|c| {
            c.query(
                "SELECT idx, provider, role, ipv6, evidence FROM provider_uses WHERE run_id = $1 \
                 ORDER BY provider COLLATE \"C\", role COLLATE \"C\", idx",
                &[&run],
            )
            .db()?
            .iter()
            .map(|r| {
                Ok(ProviderUseRow {
                    idx: get(r, 0)?,
                    provider: get(r, 1)?,
                    role: get(r, 2)?,
                    ipv6: get(r, 3)?,
                    evidence: get(r, 4)?,
                })
            })
            .collect()
        })
    }

    fn for_each_target_verdict(&self, run: i64, profile: &str, f: &mut dyn FnMut(TargetRow)) -> Result<()> {
        self.for_each_chunk(
            run,
            |c, from, until| {
                c.query(
                    &format!(
                        "SELECT {TARGET_ROW} FROM targets t \
                         LEFT JOIN verdicts v ON v.run_id = t.run_id AND v.idx = t.idx AND v.profile = $2 \
                         AND v.idx >= $3 AND v.idx < $4 \
                         WHERE t.run_id = $1 AND t.idx >= $3 AND t.idx < $4 ORDER BY t.idx"
                    ),
                    &[&run, &profile, &from, &until],
                )
                .db()?
                .iter()
                .map(target_row)
                .collect()
            },
            f,
        )
    }

    fn targets_page(
        &self,
        run: i64,
        profile: &str,
        filter: &TargetFilter,
        limit: i64,
        offset: i64,
    ) -> Result<(Vec<TargetRow>, i64)> {
        // Each statement is planned with its parameters (unnamed statements
        // get custom plans), so an unset filter costs nothing.
        const FROM: &str = "FROM verdicts v JOIN targets t ON t.run_id = v.run_id AND t.idx = v.idx \
             WHERE v.run_id = $1 AND v.profile = $2 AND ($3::text IS NULL OR t.category = $3) \
             AND ($4::text IS NULL OR t.region = $4) AND ($5::text IS NULL OR t.organisation = $5) \
             AND ($6::text IS NULL OR v.status = $6)";
        let status = filter.status.map(|s| s.as_str());
        let slice = filter.summary_slice();
        self.with(|c| {
            let rows = c
                .query(
                    &format!("SELECT {TARGET_ROW} {FROM} ORDER BY v.score, v.idx LIMIT $7 OFFSET $8"),
                    &[
                        &run,
                        &profile,
                        &filter.category,
                        &filter.region,
                        &filter.organisation,
                        &status,
                        &limit,
                        &offset,
                    ],
                )
                .db()?
                .iter()
                .map(target_row)
                .collect::<Result<Vec<_>>>()?;
            let mut total = None;
            if let Some((dimension, key)) = &slice {
                // A slice absent from a summarised run has no targets.
                let r = c
                    .query_one(
                        "SELECT (SELECT targets FROM run_summary WHERE run_id = $1 AND profile = $2 \
                         AND dimension = $3 AND key = $4), \
                         EXISTS (SELECT 1 FROM run_summary WHERE run_id = $1 AND profile = $2 AND dimension = 'all')",
                        &[&run, &profile, dimension, key],
                    )
                    .db()?;
                let summarised: Option<i64> = get(&r, 0)?;
                let has_summary: bool = get(&r, 1)?;
                total = summarised.or(has_summary.then_some(0));
            }
            let total = match total {
                Some(n) => n,
                None => get(
                    &c.query_one(
                        &format!("SELECT COUNT(*) {FROM}"),
                        &[
                            &run,
                            &profile,
                            &filter.category,
                            &filter.region,
                            &filter.organisation,
                            &status,
                        ],
                    )
                    .db()?,
                    0,
                )?,
            };
            Ok((rows, total))
        })
    }

    fn best_targets(&self, run: i64, profile: &str, limit: i64) -> Result<Vec<TargetRow>> {
        self.with(|c| {
            c.query(
                &format!(
                    "SELECT {TARGET_ROW} FROM verdicts v JOIN targets t ON t.run_id = v.run_id AND t.idx = v.idx \
                     WHERE v.run_id = $1 AND v.profile = $2 ORDER BY v.score DESC, v.idx DESC LIMIT $3"
                ),
                &[&run, &profile, &limit],
            )
            .db()?
            .iter()
            .map(target_row)
            .collect()
        })
    }

    fn worst_targets(&self, run: i64, profile: &str, limit: i64) -> Result<Vec<(TargetRow, Verdict)>> {
        self.with(|c| {
            c.query(
                "SELECT v.idx, v.domain, t.category, t.organisation, t.region, v.status, v.score, v.body \
                 FROM verdicts v LEFT JOIN targets t ON t.run_id = v.run_id AND t.idx = v.idx \
                 WHERE v.run_id = $1 AND v.profile = $2 ORDER BY v.score, v.idx LIMIT $3",
                &[&run, &profile, &limit],
            )
            .db()?
            .iter()
            .map(|r| Ok((target_row(r)?, serde_json::from_str(get(r, 7)?)?)))
            .collect()
        })
    }

    fn timeline(&self, source: &str, domain: &str) -> Result<Vec<TimelinePoint>> {
        self.with(|c| {
            c.query(
                "SELECT r.id, r.started_at, v.profile, v.status, v.score FROM targets t \
                 JOIN runs r ON r.id = t.run_id \
                 JOIN verdicts v ON v.run_id = t.run_id AND v.idx = t.idx \
                 WHERE t.domain = $1 AND r.source = $2 ORDER BY r.id, v.profile COLLATE \"C\"",
                &[&domain, &source],
            )
            .db()?
            .iter()
            .map(|r| {
                Ok(TimelinePoint {
                    run_id: get(r, 0)?,
                    started_at: get(r, 1)?,
                    profile: get(r, 2)?,
                    status: parsed(r, 3)?,
                    score: get(r, 4)?,
                })
            })
            .collect()
        })
    }

    fn for_each_verdict_pair(
        &self,
        run: i64,
        previous: i64,
        profile: &str,
        f: &mut dyn FnMut(Verdict, Verdict),
    ) -> Result<()> {
        self.for_each_chunk(
            run,
            |c, from, until| {
                c.query(
                    "SELECT p.body, n.body FROM verdicts n \
                     JOIN targets tn ON tn.run_id = n.run_id AND tn.idx = n.idx AND tn.idx >= $4 AND tn.idx < $5 \
                     JOIN targets tp ON tp.domain = tn.domain AND tp.run_id = $2 \
                     JOIN verdicts p ON p.run_id = tp.run_id AND p.idx = tp.idx AND p.profile = n.profile \
                     WHERE n.run_id = $1 AND n.profile = $3 AND n.idx >= $4 AND n.idx < $5 ORDER BY n.idx, tp.idx",
                    &[&run, &previous, &profile, &from, &until],
                )
                .db()?
                .iter()
                .map(|r| Ok((serde_json::from_str(get(r, 0)?)?, serde_json::from_str(get(r, 1)?)?)))
                .collect()
            },
            &mut |(then, now)| f(then, now),
        )
    }

    fn put_changes(&mut self, campaign: &str, run: i64, changes: &[Change]) -> Result<()> {
        let previous: Vec<i64> = changes.iter().map(|c| c.previous_run).collect();
        let domain: Vec<&str> = changes.iter().map(|c| c.domain.as_str()).collect();
        let profile: Vec<&str> = changes.iter().map(|c| c.profile.as_str()).collect();
        let kind: Vec<&str> = changes.iter().map(|c| c.kind.as_str()).collect();
        let check: Vec<&str> = changes.iter().map(|c| c.check_id.as_str()).collect();
        let from: Vec<&str> = changes.iter().map(|c| c.from_status.as_str()).collect();
        let to: Vec<&str> = changes.iter().map(|c| c.to_status.as_str()).collect();
        let text: Vec<&str> = changes.iter().map(|c| c.text.as_str()).collect();
        self.with(|c| {
            let mut tx = c.transaction().db()?;
            tx.execute("DELETE FROM changes WHERE run_id = $1", &[&run]).db()?;
            // Ids follow the list's order (ORDINALITY), as row-by-row inserts would.
            tx.execute(
                "INSERT INTO changes (campaign, run_id, previous_run, domain, profile, kind, check_id, from_status, \
                 to_status, text) \
                 SELECT $1, $2, previous_run, domain, profile, kind, check_id, from_status, to_status, text \
                 FROM UNNEST($3::bigint[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], \
                 $10::text[]) WITH ORDINALITY \
                 AS c(previous_run, domain, profile, kind, check_id, from_status, to_status, text, n) ORDER BY n",
                &[
                    &campaign, &run, &previous, &domain, &profile, &kind, &check, &from, &to, &text,
                ],
            )
            .db()?;
            tx.commit().db()
        })
    }

    fn changes(&self, run: Option<i64>, domain: Option<&str>, limit: i64) -> Result<Vec<Change>> {
        self.with(|c| {
            c.query(
                "SELECT run_id, previous_run, domain, profile, kind, check_id, from_status, to_status, text \
                 FROM changes WHERE ($1::bigint IS NULL OR run_id = $1) AND ($2::text IS NULL OR domain = $2) \
                 ORDER BY run_id DESC, id LIMIT $3",
                &[&run, &domain, &limit],
            )
            .db()?
            .iter()
            .map(|r| {
                Ok(Change {
                    run_id: get(r, 0)?,
                    previous_run: get(r, 1)?,
                    domain: get(r, 2)?,
                    profile: get(r, 3)?,
                    kind: parsed(r, 4)?,
                    check_id: get(r, 5)?,
                    from_status: parsed(r, 6)?,
                    to_status: parsed(r, 7)?,
                    text: get(r, 8)?,
                })
            })
            .collect()
        })
    }

    fn change_groups(&self, runs: &[i64], profile: &str, examples: i64) -> Result<Vec<ChangeGroupRow>> {
        let runs = runs.to_vec();
        self.with(|c| {
            // The sample is the group's first change (its lowest id).
            let mut groups: Vec<ChangeGroupRow> = c
                .query(
                    "SELECT g.kind, g.check_id, g.n, g.d, s.text, s.from_status, s.to_status FROM \
                     (SELECT kind, check_id, COUNT(*) AS n, COUNT(DISTINCT domain) AS d, MIN(id) AS first \
                      FROM changes WHERE run_id = ANY($1) AND profile = $2 GROUP BY kind, check_id) g \
                     JOIN changes s ON s.id = g.first \
                     ORDER BY g.kind COLLATE \"C\", g.n DESC, g.check_id COLLATE \"C\"",
                    &[&runs, &profile],
                )
                .db()?
                .iter()
                .map(|r| {
                    Ok(ChangeGroupRow {
                        kind: parsed(r, 0)?,
                        check_id: get(r, 1)?,
                        changes: get(r, 2)?,
                        domains: get(r, 3)?,
                        sample_text: get(r, 4)?,
                        sample_from: parsed(r, 5)?,
                        sample_to: parsed(r, 6)?,
                        examples: Vec::new(),
                    })
                })
                .collect::<Result<_>>()?;
            let rows = c
                .query(
                    "SELECT kind, check_id, domain FROM ( \
                       SELECT kind, check_id, domain, \
                       ROW_NUMBER() OVER (PARTITION BY kind, check_id ORDER BY first) AS n \
                       FROM (SELECT kind, check_id, domain, MIN(id) AS first FROM changes \
                             WHERE run_id = ANY($1) AND profile = $2 GROUP BY kind, check_id, domain) f) e \
                     WHERE n <= $3 ORDER BY kind, check_id, n",
                    &[&runs, &profile, &examples],
                )
                .db()?;
            for r in &rows {
                let kind: ChangeKind = parsed(r, 0)?;
                let check: &str = get(r, 1)?;
                if let Some(g) = groups.iter_mut().find(|g| g.kind == kind && g.check_id == check) {
                    g.examples.push(get(r, 2)?);
                }
            }
            Ok(groups)
        })
    }
}
