//! The embedded store: one SQLite file (WAL) holding runs, their targets,
//! the observations made and the verdicts given.
//!
//! Results are written in transactions of whole targets, keyed by
//! (run, target index), so a run killed at any point can be resumed with
//! nothing lost and nothing duplicated.

use rusqlite::{Connection, OptionalExtension, params};
use std::path::Path;
use v6scope_model::{DomainObservation, Family, Target, Verdict};

mod platform;
mod reports;
pub use platform::{
    Change, ChangeKind, Job, JobState, ProviderUseRow, RunRow, Schedule, Slice, TargetFilter, TargetRow, TimelinePoint,
};
pub use reports::ChangeGroupRow;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("store: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("store: stored JSON does not decode: {0}")]
    Json(#[from] serde_json::Error),
    #[error("run {0} does not exist in this store")]
    NoSuchRun(i64),
    #[error("job {0} does not exist in this store")]
    NoSuchJob(i64),
}

pub type Result<T> = std::result::Result<T, StoreError>;

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS runs (
    id          INTEGER PRIMARY KEY,
    started_at  TEXT NOT NULL,
    finished_at TEXT,
    source      TEXT NOT NULL,
    profiles    TEXT NOT NULL,
    config      TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS targets (
    run_id       INTEGER NOT NULL REFERENCES runs(id),
    idx          INTEGER NOT NULL,
    domain       TEXT NOT NULL,
    category     TEXT,
    organisation TEXT,
    region       TEXT,
    PRIMARY KEY (run_id, idx)
);
CREATE TABLE IF NOT EXISTS observations (
    run_id INTEGER NOT NULL,
    idx    INTEGER NOT NULL,
    domain TEXT NOT NULL,
    body   TEXT NOT NULL,
    PRIMARY KEY (run_id, idx)
);
CREATE TABLE IF NOT EXISTS verdicts (
    run_id  INTEGER NOT NULL,
    idx     INTEGER NOT NULL,
    profile TEXT NOT NULL,
    domain  TEXT NOT NULL,
    status  TEXT NOT NULL,
    score   REAL NOT NULL,
    body    TEXT NOT NULL,
    PRIMARY KEY (run_id, idx, profile)
);
CREATE INDEX IF NOT EXISTS verdicts_by_status ON verdicts (run_id, profile, status);
CREATE TABLE IF NOT EXISTS traffic (
    start        INTEGER NOT NULL,
    seconds      INTEGER NOT NULL,
    source       TEXT NOT NULL,
    exporter     TEXT NOT NULL,
    interface    INTEGER NOT NULL,
    asn          INTEGER NOT NULL,
    organisation TEXT NOT NULL,
    region       TEXT NOT NULL,
    family       INTEGER NOT NULL,
    bytes        INTEGER NOT NULL,
    packets      INTEGER NOT NULL,
    records      INTEGER NOT NULL,
    scaled       INTEGER NOT NULL,
    PRIMARY KEY (start, seconds, source, exporter, interface, asn, organisation, region, family, scaled)
);
CREATE TABLE IF NOT EXISTS campaigns (
    name        TEXT PRIMARY KEY,
    created_at  TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS campaign_targets (
    campaign     TEXT NOT NULL REFERENCES campaigns(name),
    idx          INTEGER NOT NULL,
    domain       TEXT NOT NULL,
    category     TEXT,
    organisation TEXT,
    region       TEXT,
    PRIMARY KEY (campaign, idx)
);
CREATE TABLE IF NOT EXISTS sketches (
    day          TEXT NOT NULL,
    organisation TEXT NOT NULL,
    kind         TEXT NOT NULL,
    sketch       BLOB NOT NULL,
    PRIMARY KEY (day, organisation, kind)
);
"#;

/// The family as the traffic table stores it: 4 or 6.
fn family_number(family: Family) -> i64 {
    match family {
        Family::Ipv4 => 4,
        Family::Ipv6 => 6,
    }
}

/// The family of a stored 4 or 6; anything else is a corrupt row.
pub(crate) fn family_of(row: &rusqlite::Row<'_>, column: usize) -> rusqlite::Result<Family> {
    match row.get::<_, i64>(column)? {
        4 => Ok(Family::Ipv4),
        6 => Ok(Family::Ipv6),
        other => Err(rusqlite::Error::FromSqlConversionFailure(
            column,
            rusqlite::types::Type::Integer,
            format!("address family {other}").into(),
        )),
    }
}

/// Totals of one period and family.
#[derive(Debug, Clone, PartialEq)]
pub struct TrafficTotal {
    pub period: String,
    /// The group's value (empty without a group).
    pub group: String,
    pub family: Family,
    pub bytes: i64,
    pub packets: i64,
    pub records: i64,
}

/// Traffic counters of one interval and group, added to what is stored.
#[derive(Debug, Clone, PartialEq)]
pub struct TrafficRow {
    pub start: i64,
    pub seconds: i64,
    /// `udp://...`, `pcap:FILE` or `log:FILE`.
    pub source: String,
    pub exporter: String,
    pub interface: i64,
    pub asn: i64,
    pub organisation: String,
    pub region: String,
    pub family: Family,
    pub bytes: i64,
    pub packets: i64,
    pub records: i64,
    /// False for records whose sampling rate is unknown (not scaled).
    pub scaled: bool,
}

const INSERT_VERDICT: &str = "INSERT OR REPLACE INTO verdicts (run_id, idx, profile, domain, status, score, body) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)";

fn insert_verdict(stmt: &mut rusqlite::Statement<'_>, run: i64, idx: i64, v: &Verdict) -> Result<()> {
    stmt.execute(params![
        run,
        idx,
        v.profile,
        v.domain,
        v.status.as_str(),
        v.score,
        serde_json::to_string(v)?
    ])?;
    Ok(())
}

/// The runs table keeps a run's profiles as one comma-separated column.
fn split_profiles(column: &str) -> Vec<String> {
    column
        .split(',')
        .filter(|p| !p.is_empty())
        .map(str::to_string)
        .collect()
}

/// A run as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct RunInfo {
    pub id: i64,
    pub started_at: String,
    pub finished_at: Option<String>,
    pub source: String,
    pub profiles: Vec<String>,
    pub config: String,
    pub targets: i64,
    pub done: i64,
}

/// One target's results, written together.
pub struct TargetResult<'a> {
    pub idx: i64,
    pub observation: &'a DomainObservation,
    pub verdicts: &'a [Verdict],
}

pub struct Store {
    conn: Connection,
}

impl Store {
    pub fn open(path: impl AsRef<Path>) -> Result<Store> {
        let conn = Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        conn.execute_batch(SCHEMA)?;
        conn.execute_batch(platform::SCHEMA)?;
        platform::migrate(&conn)?;
        Ok(Store { conn })
    }

    pub fn create_run(&mut self, source: &str, profiles: &[String], config: &str) -> Result<i64> {
        self.conn.execute(
            "INSERT INTO runs (started_at, source, profiles, config) VALUES (strftime('%Y-%m-%dT%H:%M:%SZ','now'), ?1, ?2, ?3)",
            params![source, profiles.join(","), config],
        )?;
        Ok(self.conn.last_insert_rowid())
    }

    /// Records the run's targets (in order) in one transaction.
    pub fn add_targets(&mut self, run: i64, targets: &[Target]) -> Result<()> {
        let tx = self.conn.transaction()?;
        {
            let mut insert = tx.prepare(
                "INSERT OR IGNORE INTO targets (run_id, idx, domain, category, organisation, region) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?;
            for (idx, t) in targets.iter().enumerate() {
                insert.execute(params![run, idx as i64, t.domain, t.category, t.organisation, t.region])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Targets of a run that have no stored observation yet, in order.
    pub fn pending_targets(&self, run: i64) -> Result<Vec<(i64, Target)>> {
        self.run(run)?;
        let mut stmt = self.conn.prepare(
            "SELECT t.idx, t.domain, t.category, t.organisation, t.region FROM targets t
             WHERE t.run_id = ?1 AND NOT EXISTS (SELECT 1 FROM observations o WHERE o.run_id = t.run_id AND o.idx = t.idx)
             ORDER BY t.idx",
        )?;
        let rows = stmt.query_map(params![run], |r| {
            Ok((
                r.get(0)?,
                Target {
                    domain: r.get(1)?,
                    category: r.get(2)?,
                    organisation: r.get(3)?,
                    region: r.get(4)?,
                },
            ))
        })?;
        Ok(rows.collect::<std::result::Result<_, _>>()?)
    }

    /// Adds traffic counters (a row for the same interval and group is
    /// summed), in one transaction.
    pub fn add_traffic(&mut self, rows: &[TrafficRow]) -> Result<()> {
        let tx = self.conn.transaction()?;
        {
            let mut upsert = tx.prepare(
                "INSERT INTO traffic (start, seconds, source, exporter, interface, asn, organisation, region, family, \
                 bytes, packets, records, scaled) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13) \
                 ON CONFLICT DO UPDATE SET bytes = bytes + excluded.bytes, packets = packets + excluded.packets, \
                 records = records + excluded.records",
            )?;
            for r in rows {
                upsert.execute(params![
                    r.start,
                    r.seconds,
                    r.source,
                    r.exporter,
                    r.interface,
                    r.asn,
                    r.organisation,
                    r.region,
                    family_number(r.family),
                    r.bytes,
                    r.packets,
                    r.records,
                    r.scaled
                ])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Records whose sampling rate nobody stated, per period and exporter,
    /// unscaled: their bytes give an IPv6 share within an exporter (the same
    /// rate applies to both families) but no volume.
    pub fn traffic_unscaled(&self, period: &str) -> Result<Vec<TrafficTotal>> {
        self.traffic_totals(period, "exporter", false)
    }

    /// IPv4 and IPv6 totals per period (`hour`, `day`, `month`, or
    /// `minute`), optionally per `group` (`exporter`, `interface`, `asn`,
    /// `organisation`, `region` or `source`), scaled rows only.
    pub fn traffic_by(&self, period: &str, group: Option<&str>) -> Result<Vec<TrafficTotal>> {
        // The column name comes from a fixed list, never from the caller's text.
        let column = match group {
            Some("exporter") => "exporter",
            Some("interface") => "CAST(interface AS TEXT)",
            Some("asn") => "CAST(asn AS TEXT)",
            Some("organisation") => "organisation",
            Some("region") => "region",
            Some("source") => "source",
            _ => "''",
        };
        self.traffic_totals(period, column, true)
    }

    fn traffic_totals(&self, period: &str, column: &str, scaled: bool) -> Result<Vec<TrafficTotal>> {
        let format = match period {
            "minute" => "%Y-%m-%dT%H:%M",
            "hour" => "%Y-%m-%dT%H",
            "month" => "%Y-%m",
            _ => "%Y-%m-%d",
        };
        let mut stmt = self.conn.prepare(&format!(
            "SELECT strftime(?1, start, 'unixepoch') AS p, {column} AS g, family, SUM(bytes), SUM(packets), \
             SUM(records) FROM traffic WHERE scaled = ?2 GROUP BY p, g, family ORDER BY p, g, family"
        ))?;
        let rows = stmt.query_map(params![format, scaled], |r| {
            Ok(TrafficTotal {
                period: r.get(0)?,
                group: r.get(1)?,
                family: family_of(r, 2)?,
                bytes: r.get(3)?,
                packets: r.get(4)?,
                records: r.get(5)?,
            })
        })?;
        Ok(rows.collect::<std::result::Result<_, _>>()?)
    }

    /// The stored sketch of a day, organisation and kind (`subscribers`,
    /// `addresses`, ...), to merge into.
    pub fn sketch(&self, day: &str, organisation: &str, kind: &str) -> Result<Option<Vec<u8>>> {
        Ok(self
            .conn
            .query_row(
                "SELECT sketch FROM sketches WHERE day = ?1 AND organisation = ?2 AND kind = ?3",
                params![day, organisation, kind],
                |r| r.get(0),
            )
            .optional()?)
    }

    /// Sketches between two days (inclusive), for rolling windows.
    pub fn sketches(&self, first_day: &str, last_day: &str, kind: &str) -> Result<Vec<(String, String, Vec<u8>)>> {
        let mut stmt = self.conn.prepare(
            "SELECT day, organisation, sketch FROM sketches WHERE day >= ?1 AND day <= ?2 AND kind = ?3 ORDER BY day",
        )?;
        let rows = stmt.query_map(params![first_day, last_day, kind], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })?;
        Ok(rows.collect::<std::result::Result<_, _>>()?)
    }

    /// Replaces a sketch (the caller merged it with the stored one).
    pub fn put_sketch(&mut self, day: &str, organisation: &str, kind: &str, sketch: &[u8]) -> Result<()> {
        self.conn.execute(
            "INSERT OR REPLACE INTO sketches (day, organisation, kind, sketch) VALUES (?1, ?2, ?3, ?4)",
            params![day, organisation, kind, sketch],
        )?;
        Ok(())
    }

    /// Creates or replaces a campaign's target list, in one transaction.
    pub fn put_campaign(&mut self, name: &str, targets: &[Target]) -> Result<()> {
        let tx = self.conn.transaction()?;
        tx.execute(
            "INSERT OR IGNORE INTO campaigns (name, created_at) VALUES (?1, strftime('%Y-%m-%dT%H:%M:%SZ','now'))",
            params![name],
        )?;
        tx.execute(
            "UPDATE campaigns SET targets = ?2 WHERE name = ?1",
            params![name, targets.len() as i64],
        )?;
        tx.execute("DELETE FROM campaign_targets WHERE campaign = ?1", params![name])?;
        {
            let mut insert = tx.prepare(
                "INSERT INTO campaign_targets (campaign, idx, domain, category, organisation, region) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?;
            for (idx, t) in targets.iter().enumerate() {
                insert.execute(params![
                    name,
                    idx as i64,
                    t.domain,
                    t.category,
                    t.organisation,
                    t.region
                ])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Campaigns with their number of targets.
    pub fn campaigns(&self) -> Result<Vec<(String, String, i64)>> {
        let mut stmt = self
            .conn
            .prepare("SELECT name, created_at, targets FROM campaigns ORDER BY name")?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
        Ok(rows.collect::<std::result::Result<_, _>>()?)
    }

    /// A campaign's targets in order; none if there is no such campaign.
    pub fn campaign_targets(&self, name: &str) -> Result<Option<Vec<Target>>> {
        let exists: Option<String> = self
            .conn
            .query_row("SELECT name FROM campaigns WHERE name = ?1", params![name], |r| {
                r.get(0)
            })
            .optional()?;
        if exists.is_none() {
            return Ok(None);
        }
        let mut stmt = self.conn.prepare(
            "SELECT domain, category, organisation, region FROM campaign_targets WHERE campaign = ?1 ORDER BY idx",
        )?;
        let rows = stmt.query_map(params![name], |r| {
            Ok(Target {
                domain: r.get(0)?,
                category: r.get(1)?,
                organisation: r.get(2)?,
                region: r.get(3)?,
            })
        })?;
        Ok(Some(rows.collect::<std::result::Result<_, _>>()?))
    }

    /// Stores a batch of finished targets atomically.
    pub fn save_results(&mut self, run: i64, batch: &[TargetResult<'_>]) -> Result<()> {
        let tx = self.conn.transaction()?;
        {
            let mut obs =
                tx.prepare("INSERT OR REPLACE INTO observations (run_id, idx, domain, body) VALUES (?1, ?2, ?3, ?4)")?;
            let mut ver = tx.prepare(INSERT_VERDICT)?;
            for r in batch {
                obs.execute(params![
                    run,
                    r.idx,
                    r.observation.target.domain,
                    serde_json::to_string(r.observation)?
                ])?;
                for v in r.verdicts {
                    insert_verdict(&mut ver, run, r.idx, v)?;
                }
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Stores verdicts of an existing run (re-judging).
    pub fn save_verdicts(&mut self, run: i64, verdicts: &[(i64, Verdict)]) -> Result<()> {
        let tx = self.conn.transaction()?;
        {
            let mut ver = tx.prepare(INSERT_VERDICT)?;
            for (idx, v) in verdicts {
                insert_verdict(&mut ver, run, *idx, v)?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    pub fn finish_run(&mut self, run: i64) -> Result<()> {
        self.conn.execute(
            "UPDATE runs SET finished_at = strftime('%Y-%m-%dT%H:%M:%SZ','now') WHERE id = ?1",
            params![run],
        )?;
        Ok(())
    }

    pub fn run(&self, run: i64) -> Result<RunInfo> {
        self.conn
            .query_row(
                "SELECT id, started_at, finished_at, source, profiles, config,
                        (SELECT COUNT(*) FROM targets WHERE run_id = runs.id),
                        (SELECT COUNT(*) FROM observations WHERE run_id = runs.id)
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
            .optional()?
            .ok_or(StoreError::NoSuchRun(run))
    }

    pub fn runs(&self) -> Result<Vec<RunInfo>> {
        let ids: Vec<i64> = {
            let mut stmt = self.conn.prepare("SELECT id FROM runs ORDER BY id")?;
            stmt.query_map([], |r| r.get(0))?
                .collect::<std::result::Result<_, _>>()?
        };
        ids.into_iter().map(|id| self.run(id)).collect()
    }

    /// Per category of a run's targets: (category, targets, targets whose
    /// verdict under `profile` is pass). Targets without a verdict count as
    /// not passing.
    pub fn support_by_category(&self, run: i64, profile: &str) -> Result<Vec<(String, i64, i64)>> {
        let mut stmt = self.conn.prepare(
            "SELECT COALESCE(t.category, ''), COUNT(*), COALESCE(SUM(v.status = 'pass'), 0) FROM targets t \
             LEFT JOIN verdicts v ON v.run_id = t.run_id AND v.idx = t.idx AND v.profile = ?2 \
             WHERE t.run_id = ?1 GROUP BY 1 ORDER BY 1",
        )?;
        let rows = stmt.query_map(params![run, profile], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
        Ok(rows.collect::<std::result::Result<_, _>>()?)
    }

    /// Streams a run's observations in target order.
    pub fn for_each_observation(&self, run: i64, mut f: impl FnMut(i64, DomainObservation)) -> Result<()> {
        self.run(run)?;
        let mut stmt = self
            .conn
            .prepare("SELECT idx, body FROM observations WHERE run_id = ?1 ORDER BY idx")?;
        let mut rows = stmt.query(params![run])?;
        while let Some(row) = rows.next()? {
            let idx: i64 = row.get(0)?;
            let body: String = row.get(1)?;
            f(idx, serde_json::from_str(&body)?);
        }
        Ok(())
    }

    /// A run's verdicts under one profile, in target order.
    pub fn verdicts(&self, run: i64, profile: &str) -> Result<Vec<(i64, Verdict)>> {
        let mut stmt = self
            .conn
            .prepare("SELECT idx, body FROM verdicts WHERE run_id = ?1 AND profile = ?2 ORDER BY idx")?;
        let rows = stmt.query_map(params![run, profile], |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (idx, body) = row?;
            out.push((idx, serde_json::from_str(&body)?));
        }
        Ok(out)
    }

    /// Count of stored observations per target index (for integrity checks).
    pub fn observation_count(&self, run: i64) -> Result<(i64, i64)> {
        Ok(self.conn.query_row(
            "SELECT COUNT(*), COUNT(DISTINCT idx) FROM observations WHERE run_id = ?1",
            params![run],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use v6scope_model::*;

    fn observation(domain: &str) -> DomainObservation {
        DomainObservation {
            schema_version: SCHEMA_VERSION,
            target: Target {
                domain: domain.into(),
                ..Default::default()
            },
            started_at_ms: 0,
            duration_ms: 1.0,
            vantage: Vantage {
                ipv4: true,
                ipv6: true,
                detail: vec![],
                resolver_problems: vec![],
            },
            names: vec![],
            zone: ZoneObservation::default(),
            mail: MailObservation {
                status: MxStatus::NoMx,
                hosts: vec![],
                error: None,
            },
            web: vec![],
            site: None,
            error: None,
        }
    }

    #[test]
    fn pending_shrinks_as_results_land_and_survives_reopen() {
        let dir = std::env::temp_dir().join(format!("v6scope-store-{}", std::process::id()));
        let _ = std::fs::remove_file(&dir);
        let targets: Vec<Target> = ["a.test", "b.test", "c.test"]
            .iter()
            .map(|d| Target {
                domain: d.to_string(),
                ..Default::default()
            })
            .collect();
        let run = {
            let mut store = Store::open(&dir).unwrap();
            let run = store.create_run("list.txt", &["internetnl".into()], "{}").unwrap();
            store.add_targets(run, &targets).unwrap();
            let o = observation("b.test");
            store
                .save_results(
                    run,
                    &[TargetResult {
                        idx: 1,
                        observation: &o,
                        verdicts: &[],
                    }],
                )
                .unwrap();
            run
        };
        let mut store = Store::open(&dir).unwrap();
        let pending: Vec<String> = store
            .pending_targets(run)
            .unwrap()
            .into_iter()
            .map(|(_, t)| t.domain)
            .collect();
        assert_eq!(pending, vec!["a.test", "c.test"]);
        // Saving the same target twice never duplicates it.
        let o = observation("b.test");
        store
            .save_results(
                run,
                &[TargetResult {
                    idx: 1,
                    observation: &o,
                    verdicts: &[],
                }],
            )
            .unwrap();
        assert_eq!(store.observation_count(run).unwrap(), (1, 1));
        let info = store.run(run).unwrap();
        assert_eq!((info.targets, info.done), (3, 1));
        assert!(matches!(store.run(999), Err(StoreError::NoSuchRun(999))));
        std::fs::remove_file(&dir).unwrap();
    }
}
