use crate::{Db, SqliteStore, collect};
use rusqlite::{OptionalExtension, TransactionBehavior, params};
use v6scope_store_api::{
    Period, Result, SketchMerge, SketchRow, StoreError, Traffic, TrafficCounters, TrafficGroup, TrafficRow,
    TrafficTotal, family_from_number, family_number,
};

fn strftime_format(period: Period) -> &'static str {
    match period {
        Period::Minute => "%Y-%m-%dT%H:%M",
        Period::Hour => "%Y-%m-%dT%H",
        Period::Day => "%Y-%m-%d",
        Period::Month => "%Y-%m",
    }
}

/// The column of a group (from this fixed list, never from a caller's text).
fn group_column(group: Option<TrafficGroup>) -> &'static str {
    match group {
        Some(TrafficGroup::Exporter) => "exporter",
        Some(TrafficGroup::Interface) => "CAST(interface AS TEXT)",
        Some(TrafficGroup::Asn) => "CAST(asn AS TEXT)",
        Some(TrafficGroup::Organisation) => "organisation",
        Some(TrafficGroup::Region) => "region",
        Some(TrafficGroup::Source) => "source",
        None => "''",
    }
}

fn total(r: &rusqlite::Row<'_>) -> rusqlite::Result<TrafficTotal> {
    let family: i64 = r.get(2)?;
    Ok(TrafficTotal {
        period: r.get(0)?,
        group: r.get(1)?,
        family: family_from_number(family)
            .map_err(|e| rusqlite::Error::FromSqlConversionFailure(2, rusqlite::types::Type::Integer, e.into()))?,
        bytes: r.get(3)?,
        packets: r.get(4)?,
        records: r.get(5)?,
    })
}

/// Adds traffic rows inside the caller's transaction, under `source` when
/// given instead of the rows' own.
pub(crate) fn insert_traffic(conn: &rusqlite::Connection, rows: &[TrafficRow], source: Option<&str>) -> Result<()> {
    let mut upsert = conn
        .prepare_cached(
            "INSERT INTO traffic (start, seconds, source, exporter, interface, asn, organisation, region, \
             family, bytes, packets, records, scaled) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13) \
             ON CONFLICT DO UPDATE SET bytes = bytes + excluded.bytes, packets = packets + excluded.packets, \
             records = records + excluded.records",
        )
        .db()?;
    for r in rows {
        upsert
            .execute(params![
                r.start,
                r.seconds,
                source.unwrap_or(&r.source),
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
            ])
            .db()?;
    }
    Ok(())
}

/// Reads, merges and writes one sketch inside the caller's (write-locked)
/// transaction.
pub(crate) fn merge_stored_sketch(
    conn: &rusqlite::Connection,
    day: &str,
    organisation: &str,
    kind: &str,
    merge: &mut SketchMerge<'_>,
) -> Result<()> {
    let stored: Option<Vec<u8>> = conn
        .query_row(
            "SELECT sketch FROM sketches WHERE day = ?1 AND organisation = ?2 AND kind = ?3",
            params![day, organisation, kind],
            |r| r.get(0),
        )
        .optional()
        .db()?;
    let merged = merge(stored.as_deref()).map_err(StoreError::Corrupt)?;
    conn.execute(
        "INSERT INTO sketches (day, organisation, kind, sketch) VALUES (?1, ?2, ?3, ?4) \
         ON CONFLICT (day, organisation, kind) DO UPDATE SET sketch = excluded.sketch",
        params![day, organisation, kind, merged],
    )
    .db()?;
    Ok(())
}

impl SqliteStore {
    fn traffic_totals(&self, period: Period, column: &str, scaled: bool) -> Result<Vec<TrafficTotal>> {
        let mut stmt = self
            .conn
            .prepare(&format!(
                "SELECT strftime(?1, start, 'unixepoch') AS p, {column} AS g, family, SUM(bytes), SUM(packets), \
                 SUM(records) FROM traffic WHERE scaled = ?2 GROUP BY p, g, family ORDER BY p, g, family"
            ))
            .db()?;
        collect(stmt.query_map(params![strftime_format(period), scaled], total).db()?)
    }
}

impl TrafficCounters for SqliteStore {
    fn add_traffic(&mut self, rows: &[TrafficRow]) -> Result<()> {
        let tx = self.conn.transaction().db()?;
        insert_traffic(&tx, rows, None)?;
        tx.commit().db()
    }

    fn traffic_by(&self, period: Period, group: Option<TrafficGroup>) -> Result<Vec<TrafficTotal>> {
        self.traffic_totals(period, group_column(group), true)
    }

    fn traffic_unscaled(&self, period: Period) -> Result<Vec<TrafficTotal>> {
        self.traffic_totals(period, "exporter", false)
    }

    fn traffic_months(&self, from: i64, until: i64) -> Result<Vec<TrafficTotal>> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT strftime('%Y-%m', start, 'unixepoch') AS p, '', family, SUM(bytes), SUM(packets), \
                 SUM(records) FROM traffic WHERE start >= ?1 AND start < ?2 AND scaled \
                 GROUP BY p, family ORDER BY p, family",
            )
            .db()?;
        collect(stmt.query_map(params![from, until], total).db()?)
    }
}

impl Traffic for SqliteStore {
    fn sketch(&self, day: &str, organisation: &str, kind: &str) -> Result<Option<Vec<u8>>> {
        self.conn
            .query_row(
                "SELECT sketch FROM sketches WHERE day = ?1 AND organisation = ?2 AND kind = ?3",
                params![day, organisation, kind],
                |r| r.get(0),
            )
            .optional()
            .db()
    }

    fn sketches(&self, first_day: &str, last_day: &str, kind: &str) -> Result<Vec<SketchRow>> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT day, organisation, sketch FROM sketches WHERE day >= ?1 AND day <= ?2 AND kind = ?3 \
                 ORDER BY day, organisation",
            )
            .db()?;
        collect(
            stmt.query_map(params![first_day, last_day, kind], |r| {
                Ok(SketchRow {
                    day: r.get(0)?,
                    organisation: r.get(1)?,
                    sketch: r.get(2)?,
                })
            })
            .db()?,
        )
    }

    fn merge_sketch(&mut self, day: &str, organisation: &str, kind: &str, merge: &mut SketchMerge<'_>) -> Result<()> {
        // IMMEDIATE takes the write lock before the read, so another
        // process cannot read the same old sketch in between.
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .db()?;
        merge_stored_sketch(&tx, day, organisation, kind, merge)?;
        tx.commit().db()
    }

    fn latest_sketch_day(&self, kind: &str, until: &str) -> Result<Option<String>> {
        self.conn
            .query_row(
                "SELECT MAX(day) FROM sketches WHERE kind = ?1 AND day <= ?2",
                params![kind, until],
                |r| r.get(0),
            )
            .db()
    }
}
