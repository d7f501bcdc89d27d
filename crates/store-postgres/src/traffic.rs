use crate::{Db, PostgresStore, get};
use postgres::{GenericClient, Row};
use std::collections::HashMap;
use v6scope_store_api::{
    Period, Result, SketchMerge, SketchRow, StoreError, Traffic, TrafficCounters, TrafficGroup, TrafficRow,
    TrafficTotal, family_from_number, family_number,
};

fn to_char_format(period: Period) -> &'static str {
    match period {
        Period::Minute => "YYYY-MM-DD\"T\"HH24:MI",
        Period::Hour => "YYYY-MM-DD\"T\"HH24",
        Period::Day => "YYYY-MM-DD",
        Period::Month => "YYYY-MM",
    }
}

/// The column of a group (from this fixed list, never from a caller's text).
fn group_column(group: Option<TrafficGroup>) -> &'static str {
    match group {
        Some(TrafficGroup::Exporter) => "exporter",
        Some(TrafficGroup::Interface) => "interface::text",
        Some(TrafficGroup::Asn) => "asn::text",
        Some(TrafficGroup::Organisation) => "organisation",
        Some(TrafficGroup::Region) => "region",
        Some(TrafficGroup::Source) => "source",
        None => "''::text",
    }
}

fn total(r: &Row) -> Result<TrafficTotal> {
    Ok(TrafficTotal {
        period: get(r, 0)?,
        group: get(r, 1)?,
        family: family_from_number(get(r, 2)?).map_err(StoreError::Corrupt)?,
        bytes: get(r, 3)?,
        packets: get(r, 4)?,
        records: get(r, 5)?,
    })
}

/// The period of a Unix-seconds column, in UTC, as SQLite's strftime writes it.
fn period_of(format: &str) -> String {
    format!("to_char(to_timestamp(start) AT TIME ZONE 'UTC', '{format}')")
}

/// Reads, merges and writes one sketch inside the caller's transaction,
/// under a transaction-scoped advisory lock on its key: a row lock cannot
/// cover a row that does not exist yet, and two first writers would both
/// read nothing.
pub(crate) fn merge_stored_sketch(
    tx: &mut postgres::Transaction<'_>,
    day: &str,
    organisation: &str,
    kind: &str,
    merge: &mut SketchMerge<'_>,
) -> Result<()> {
    let key = format!("sketch\u{1f}{day}\u{1f}{organisation}\u{1f}{kind}");
    tx.execute("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", &[&key])
        .db()?;
    let stored: Option<Vec<u8>> = tx
        .query_opt(
            "SELECT sketch FROM sketches WHERE day = $1 AND organisation = $2 AND kind = $3",
            &[&day, &organisation, &kind],
        )
        .db()?
        .map(|r| get(&r, 0))
        .transpose()?;
    let merged = merge(stored.as_deref()).map_err(StoreError::Corrupt)?;
    tx.execute(
        "INSERT INTO sketches (day, organisation, kind, sketch) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (day, organisation, kind) DO UPDATE SET sketch = excluded.sketch",
        &[&day, &organisation, &kind, &merged],
    )
    .db()?;
    Ok(())
}

impl PostgresStore {
    fn traffic_totals(&self, period: Period, column: &str, scaled: bool) -> Result<Vec<TrafficTotal>> {
        let p = period_of(to_char_format(period));
        self.with(|c| {
            c.query(
                &format!(
                    "SELECT {p} AS p, ({column}) COLLATE \"C\" AS g, family, SUM(bytes)::bigint, SUM(packets)::bigint, \
                     SUM(records)::bigint FROM traffic WHERE scaled = $1 GROUP BY 1, 2, 3 \
                     ORDER BY 1, 2, 3"
                ),
                &[&scaled],
            )
            .db()?
            .iter()
            .map(total)
            .collect()
        })
    }
}

type TrafficKey<'a> = (i64, i64, &'a str, &'a str, i64, i64, &'a str, &'a str, i64, bool);

/// Adds traffic rows through the caller's client or transaction, under
/// `source` when given instead of the rows' own.
pub(crate) fn insert_traffic(c: &mut impl GenericClient, rows: &[TrafficRow], source: Option<&str>) -> Result<()> {
    // One statement may not touch a row twice: rows of the same key are
    // summed here first.
    let mut summed: HashMap<TrafficKey<'_>, (i64, i64, i64)> = HashMap::new();
    let mut order = Vec::new();
    for r in rows {
        let key = (
            r.start,
            r.seconds,
            source.unwrap_or(r.source.as_str()),
            r.exporter.as_str(),
            r.interface,
            r.asn,
            r.organisation.as_str(),
            r.region.as_str(),
            family_number(r.family),
            r.scaled,
        );
        let entry = summed.entry(key).or_insert_with(|| {
            order.push(key);
            (0, 0, 0)
        });
        entry.0 += r.bytes;
        entry.1 += r.packets;
        entry.2 += r.records;
    }
    macro_rules! column {
        ($n:tt) => {
            order.iter().map(|k| k.$n).collect::<Vec<_>>()
        };
    }
    let (start, seconds, source, exporter) = (column!(0), column!(1), column!(2), column!(3));
    let (interface, asn, organisation, region) = (column!(4), column!(5), column!(6), column!(7));
    let (family, scaled) = (column!(8), column!(9));
    let counts: Vec<(i64, i64, i64)> = order.iter().map(|k| summed[k]).collect();
    let bytes: Vec<i64> = counts.iter().map(|c| c.0).collect();
    let packets: Vec<i64> = counts.iter().map(|c| c.1).collect();
    let records: Vec<i64> = counts.iter().map(|c| c.2).collect();
    c.execute(
        "INSERT INTO traffic (start, seconds, source, exporter, interface, asn, organisation, region, \
             family, bytes, packets, records, scaled) \
             SELECT * FROM UNNEST($1::bigint[], $2::bigint[], $3::text[], $4::text[], $5::bigint[], \
             $6::bigint[], $7::text[], $8::text[], $9::bigint[], $10::bigint[], $11::bigint[], $12::bigint[], \
             $13::bool[]) \
             ON CONFLICT (start, seconds, source, exporter, interface, asn, organisation, region, family, scaled) \
             DO UPDATE SET bytes = traffic.bytes + excluded.bytes, packets = traffic.packets + excluded.packets, \
             records = traffic.records + excluded.records",
        &[
            &start,
            &seconds,
            &source,
            &exporter,
            &interface,
            &asn,
            &organisation,
            &region,
            &family,
            &bytes,
            &packets,
            &records,
            &scaled,
        ],
    )
    .db()?;
    Ok(())
}

impl TrafficCounters for PostgresStore {
    fn add_traffic(&mut self, rows: &[TrafficRow]) -> Result<()> {
        self.with(|c| insert_traffic(c, rows, None))
    }

    fn traffic_by(&self, period: Period, group: Option<TrafficGroup>) -> Result<Vec<TrafficTotal>> {
        self.traffic_totals(period, group_column(group), true)
    }

    fn traffic_unscaled(&self, period: Period) -> Result<Vec<TrafficTotal>> {
        self.traffic_totals(period, "exporter", false)
    }

    fn traffic_months(&self, from: i64, until: i64) -> Result<Vec<TrafficTotal>> {
        let p = period_of(to_char_format(Period::Month));
        self.with(|c| {
            c.query(
                &format!(
                    "SELECT {p} AS p, ''::text, family, SUM(bytes)::bigint, SUM(packets)::bigint, \
                     SUM(records)::bigint FROM traffic WHERE start >= $1 AND start < $2 AND scaled \
                     GROUP BY 1, 3 ORDER BY 1, 3"
                ),
                &[&from, &until],
            )
            .db()?
            .iter()
            .map(total)
            .collect()
        })
    }
}

impl Traffic for PostgresStore {
    fn sketch(&self, day: &str, organisation: &str, kind: &str) -> Result<Option<Vec<u8>>> {
        self.with(|c| {
            c.query_opt(
                "SELECT sketch FROM sketches WHERE day = $1 AND organisation = $2 AND kind = $3",
                &[&day, &organisation, &kind],
            )
            .db()?
            .map(|r| get(&r, 0))
            .transpose()
        })
    }

    fn sketches(&self, first_day: &str, last_day: &str, kind: &str) -> Result<Vec<SketchRow>> {
        self.with(|c| {
            c.query(
                "SELECT day, organisation, sketch FROM sketches WHERE day >= $1 AND day <= $2 AND kind = $3 \
                 ORDER BY day COLLATE \"C\", organisation COLLATE \"C\"",
                &[&first_day, &last_day, &kind],
            )
            .db()?
            .iter()
            .map(|r| {
                Ok(SketchRow {
                    day: get(r, 0)?,
                    organisation: get(r, 1)?,
                    sketch: get(r, 2)?,
                })
            })
            .collect()
        })
    }

    fn merge_sketch(&mut self, day: &str, organisation: &str, kind: &str, merge: &mut SketchMerge<'_>) -> Result<()> {
        self.with(|c| {
            let mut tx = c.transaction().db()?;
            merge_stored_sketch(&mut tx, day, organisation, kind, merge)?;
            tx.commit().db()
        })
    }

    fn union_sketches(&self, first_day: &str, last_day: &str, kind: &str) -> Result<Option<Vec<SketchRow>>> {
        if !self.hll {
            return Ok(None);
        }
        // The extension has a cast from bytea but none back: its text form
        // is `\x` and hex.
        self.with(|c| {
            c.query(
                "SELECT organisation, decode(substr(hll_union_agg(sketch::hll)::text, 3), 'hex') FROM sketches \
                 WHERE day >= $1 AND day <= $2 AND kind = $3 GROUP BY organisation ORDER BY organisation COLLATE \"C\"",
                &[&first_day, &last_day, &kind],
            )
            .db()?
            .iter()
            .map(|r| {
                Ok(SketchRow {
                    day: last_day.to_string(),
                    organisation: get(r, 0)?,
                    sketch: get(r, 1)?,
                })
            })
            .collect::<Result<Vec<_>>>()
            .map(Some)
        })
    }

    fn latest_sketch_day(&self, kind: &str, until: &str) -> Result<Option<String>> {
        self.with(|c| {
            get(
                &c.query_one(
                    "SELECT MAX(day) FROM sketches WHERE kind = $1 AND day <= $2",
                    &[&kind, &until],
                )
                .db()?,
                0,
            )
        })
    }
}
