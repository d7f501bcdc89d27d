//! Small queries for the monthly report (crates/report/src/monthly.rs):
//! each reads an aggregate or a bounded number of rows, so a report over a
//! 100 000-target campaign never loads the whole run.

use crate::{Result, Store, TargetRow, TrafficTotal};
use rusqlite::{OptionalExtension, params};
use serde::{Deserialize, Serialize};
use v6scope_model::Verdict;

/// Changes of one kind and check over a set of runs, with the first few
/// domains.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChangeGroupRow {
    /// `regression` or `improvement`.
    pub kind: crate::ChangeKind,
    pub check_id: String,
    /// Transitions counted (a domain may change in several runs).
    pub changes: i64,
    /// Distinct domains.
    pub domains: i64,
    /// The text, from and to status of the first change (for the check's title).
    pub sample_text: String,
    pub sample_from: String,
    pub sample_to: String,
    /// Up to the requested number of distinct domains, first changed first.
    pub examples: Vec<String>,
}

impl Store {
    /// Sets when a run started ("YYYY-MM-DDTHH:MM:SSZ"): for tests and the
    /// benchmark generator, which make runs of past months.
    pub fn set_run_started_at(&mut self, run: i64, started_at: &str) -> Result<()> {
        let n = self.conn.execute(
            "UPDATE runs SET started_at = ?2 WHERE id = ?1",
            params![run, started_at],
        )?;
        if n == 0 {
            return Err(crate::StoreError::NoSuchRun(run));
        }
        Ok(())
    }

    /// Whether a campaign of that name exists (without reading its targets).
    pub fn campaign_exists(&self, name: &str) -> Result<bool> {
        Ok(self
            .conn
            .query_row("SELECT 1 FROM campaigns WHERE name = ?1", params![name], |_| Ok(()))
            .optional()?
            .is_some())
    }

    /// Changes of `runs` under `profile`, grouped by kind and check, most
    /// frequent first, each with up to `examples` domains.
    pub fn change_groups(&self, runs: &[i64], profile: &str, examples: i64) -> Result<Vec<ChangeGroupRow>> {
        let ids = serde_json::to_string(runs)?;
        // Bare columns beside MIN(id) come from the row holding the minimum
        // (SQLite), so the sample is the first change of the group.
        let mut stmt = self.conn.prepare(
            "SELECT kind, check_id, COUNT(*), COUNT(DISTINCT domain), MIN(id), text, from_status, to_status \
             FROM changes WHERE run_id IN (SELECT value FROM json_each(?1)) AND profile = ?2 \
             GROUP BY kind, check_id ORDER BY kind, COUNT(*) DESC, check_id",
        )?;
        let mut groups: Vec<ChangeGroupRow> = stmt
            .query_map(params![ids, profile], |r| {
                Ok(ChangeGroupRow {
                    kind: r.get(0)?,
                    check_id: r.get(1)?,
                    changes: r.get(2)?,
                    domains: r.get(3)?,
                    sample_text: r.get(5)?,
                    sample_from: r.get(6)?,
                    sample_to: r.get(7)?,
                    examples: Vec::new(),
                })
            })?
            .collect::<std::result::Result<_, _>>()?;
        let mut stmt = self.conn.prepare(
            "SELECT kind, check_id, domain FROM ( \
               SELECT kind, check_id, domain, ROW_NUMBER() OVER (PARTITION BY kind, check_id ORDER BY first) AS n \
               FROM (SELECT kind, check_id, domain, MIN(id) AS first FROM changes \
                     WHERE run_id IN (SELECT value FROM json_each(?1)) AND profile = ?2 \
                     GROUP BY kind, check_id, domain)) \
             WHERE n <= ?3 ORDER BY kind, check_id, n",
        )?;
        let rows = stmt.query_map(params![ids, profile, examples], |r| {
            Ok((
                r.get::<_, crate::ChangeKind>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
            ))
        })?;
        for row in rows {
            let (kind, check, domain) = row?;
            if let Some(g) = groups.iter_mut().find(|g| g.kind == kind && g.check_id == check) {
                g.examples.push(domain);
            }
        }
        Ok(groups)
    }

    /// The `limit` lowest-scoring judged targets of a run under a profile,
    /// with their verdicts; read through the score index, so only these
    /// verdict bodies are decoded.
    pub fn worst_targets(&self, run: i64, profile: &str, limit: i64) -> Result<Vec<(TargetRow, Verdict)>> {
        let mut stmt = self.conn.prepare(
            "SELECT v.idx, v.domain, t.category, t.organisation, t.region, v.status, v.score, v.body \
             FROM verdicts v LEFT JOIN targets t ON t.run_id = v.run_id AND t.idx = v.idx \
             WHERE v.run_id = ?1 AND v.profile = ?2 ORDER BY v.score, v.idx LIMIT ?3",
        )?;
        let mut rows = stmt.query(params![run, profile, limit])?;
        let mut out = Vec::new();
        while let Some(r) = rows.next()? {
            let body: String = r.get(7)?;
            out.push((crate::platform::target_row(r)?, serde_json::from_str(&body)?));
        }
        Ok(out)
    }

    /// IPv4 and IPv6 totals per month ("YYYY-MM") of the traffic in
    /// [`from`, `until`) (Unix seconds), scaled rows only: `traffic_by`
    /// restricted to a range through the primary key.
    pub fn traffic_months(&self, from: i64, until: i64) -> Result<Vec<TrafficTotal>> {
        let mut stmt = self.conn.prepare(
            "SELECT strftime('%Y-%m', start, 'unixepoch') AS p, family, SUM(bytes), SUM(packets), SUM(records) \
             FROM traffic WHERE start >= ?1 AND start < ?2 AND scaled GROUP BY p, family ORDER BY p, family",
        )?;
        let rows = stmt.query_map(params![from, until], |r| {
            Ok(TrafficTotal {
                period: r.get(0)?,
                group: String::new(),
                family: crate::family_of(r, 1)?,
                bytes: r.get(2)?,
                packets: r.get(3)?,
                records: r.get(4)?,
            })
        })?;
        Ok(rows.collect::<std::result::Result<_, _>>()?)
    }

    /// The latest day up to `until` ("YYYY-MM-DD") with a sketch of `kind`.
    pub fn latest_sketch_day(&self, kind: &str, until: &str) -> Result<Option<String>> {
        Ok(self.conn.query_row(
            "SELECT MAX(day) FROM sketches WHERE kind = ?1 AND day <= ?2",
            params![kind, until],
            |r| r.get(0),
        )?)
    }
}
