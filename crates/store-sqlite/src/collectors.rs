use crate::traffic::{insert_traffic, merge_stored_sketch};
use crate::{Db, SqliteStore, collect};
use rusqlite::{OptionalExtension, TransactionBehavior, params};
use v6scope_store_api::{
    BatchMerge, BatchOutcome, CollectorBatch, CollectorRow, Collectors, MeasurementPoint, OperatorFigure,
    OperatorFigureRow, Result, StoreError, now_utc,
};

const COLLECTOR_COLUMNS: &str = "id, name, operator, created_at, revoked_at IS NOT NULL, last_push, \
     last_interval_end, batches, rows, duplicates, spool_dropped, point";

fn corrupt(column: usize, e: String) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(column, rusqlite::types::Type::Text, e.into())
}

fn collector_of(r: &rusqlite::Row<'_>) -> rusqlite::Result<CollectorRow> {
    Ok(CollectorRow {
        id: r.get(0)?,
        name: r.get(1)?,
        operator: r.get(2)?,
        created_at: r.get(3)?,
        revoked: r.get(4)?,
        last_push: r.get(5)?,
        last_interval_end: r.get(6)?,
        batches: r.get(7)?,
        rows: r.get(8)?,
        duplicates: r.get(9)?,
        spool_dropped: r.get(10)?,
        point: match r.get::<_, String>(11)?.as_str() {
            "" => None,
            text => Some(text.parse().map_err(|e| corrupt(11, e))?),
        },
    })
}

fn figure_of(r: &rusqlite::Row<'_>) -> rusqlite::Result<OperatorFigureRow> {
    Ok(OperatorFigureRow {
        operator: r.get(0)?,
        version: r.get(4)?,
        submission: r.get(5)?,
        collector: r.get(15)?,
        submitted_at: r.get(16)?,
        figure: OperatorFigure {
            point: r.get::<_, String>(1)?.parse().map_err(|e| corrupt(1, e))?,
            site: r.get(2)?,
            period: r.get(3)?,
            unit: r.get::<_, String>(6)?.parse().map_err(|e| corrupt(6, e))?,
            ipv4_value: r.get(7)?,
            ipv6_value: r.get(8)?,
            ipv4_bytes: r.get(9)?,
            ipv6_bytes: r.get(10)?,
            active_connections: r.get(11)?,
            ipv6_users: r.get(12)?,
            users: r.get(13)?,
            iot_connections: r.get(14)?,
        },
    })
}

impl Collectors for SqliteStore {
    fn add_collector(
        &mut self,
        name: &str,
        operator: &str,
        point: Option<MeasurementPoint>,
        token_hash: &str,
    ) -> Result<i64> {
        self.conn
            .execute(
                "INSERT INTO collectors (name, operator, point, token_hash, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![
                    name,
                    operator,
                    point.map_or("", MeasurementPoint::as_str),
                    token_hash,
                    now_utc()
                ],
            )
            .db()
            .map_err(|e| match e {
                StoreError::Conflict(_) => StoreError::Conflict(format!("a collector named '{name}' exists")),
                other => other,
            })?;
        Ok(self.conn.last_insert_rowid())
    }

    fn revoke_collector(&mut self, name: &str) -> Result<bool> {
        let changed = self
            .conn
            .execute(
                "UPDATE collectors SET revoked_at = coalesce(revoked_at, ?2) WHERE name = ?1",
                params![name, now_utc()],
            )
            .db()?;
        Ok(changed > 0)
    }

    fn collectors(&self) -> Result<Vec<CollectorRow>> {
        let mut stmt = self
            .conn
            .prepare(&format!("SELECT {COLLECTOR_COLUMNS} FROM collectors ORDER BY name"))
            .db()?;
        collect(stmt.query_map([], collector_of).db()?)
    }

    fn collector_by_token(&self, token_hash: &str) -> Result<Option<CollectorRow>> {
        self.conn
            .query_row(
                &format!("SELECT {COLLECTOR_COLUMNS} FROM collectors WHERE token_hash = ?1 AND revoked_at IS NULL"),
                params![token_hash],
                collector_of,
            )
            .optional()
            .db()
    }

    fn store_batch(
        &mut self,
        collector: i64,
        batch: &CollectorBatch<'_>,
        merge: &mut BatchMerge<'_>,
        now: i64,
    ) -> Result<BatchOutcome> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .db()?;
        let name: String = tx
            .query_row("SELECT name FROM collectors WHERE id = ?1", params![collector], |r| {
                r.get(0)
            })
            .db()?;
        let rows = (batch.traffic.len() + batch.sketches.len()) as i64;
        let fresh = tx
            .execute(
                "INSERT INTO collector_batches (collector_id, stream, seq, received_at, first_start, last_end, rows) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT DO NOTHING",
                params![
                    collector,
                    batch.stream,
                    batch.seq,
                    now,
                    batch.first_start,
                    batch.last_end,
                    rows
                ],
            )
            .db()?
            == 1;
        if fresh {
            insert_traffic(&tx, batch.traffic, Some(&format!("collector:{name}")))?;
            for s in batch.sketches {
                merge_stored_sketch(&tx, &s.day, &s.organisation, &s.kind, &mut |stored| {
                    merge(stored, &s.sketch)
                })?;
            }
        }
        tx.execute(
            "UPDATE collectors SET last_push = ?2, \
             last_interval_end = max(coalesce(last_interval_end, 0), ?3), \
             batches = batches + ?4, rows = rows + ?5, duplicates = duplicates + ?6, spool_dropped = ?7 \
             WHERE id = ?1",
            params![
                collector,
                now,
                batch.last_end,
                i64::from(fresh),
                if fresh { rows } else { 0 },
                i64::from(!fresh),
                batch.spool_dropped
            ],
        )
        .db()?;
        tx.commit().db()?;
        Ok(if fresh {
            BatchOutcome::Stored
        } else {
            BatchOutcome::Duplicate
        })
    }

    fn batch_stored(&self, collector: i64, stream: &str, seq: i64) -> Result<bool> {
        self.conn
            .query_row(
                "SELECT count(*) FROM collector_batches WHERE collector_id = ?1 AND stream = ?2 AND seq = ?3",
                params![collector, stream, seq],
                |r| r.get::<_, i64>(0),
            )
            .db()
            .map(|n| n > 0)
    }

    fn submit_operator_figures(
        &mut self,
        operator: &str,
        collector: &str,
        format: &str,
        figures: &[OperatorFigure],
    ) -> Result<(i64, Vec<i64>)> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .db()?;
        tx.execute(
            "INSERT INTO operator_submissions (operator, collector, submitted_at, format, rows) \
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![operator, collector, now_utc(), format, figures.len() as i64],
        )
        .db()?;
        let submission = tx.last_insert_rowid();
        let mut versions = Vec::with_capacity(figures.len());
        {
            let mut next = tx
                .prepare(
                    "SELECT coalesce(max(version), 0) + 1 FROM operator_figures \
                     WHERE operator = ?1 AND point = ?2 AND site = ?3 AND period = ?4",
                )
                .db()?;
            let mut insert = tx
                .prepare(
                    "INSERT INTO operator_figures (operator, point, site, period, version, submission_id, unit, \
                     ipv4_value, ipv6_value, ipv4_bytes, ipv6_bytes, active_connections, ipv6_users, users, \
                     iot_connections) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
                )
                .db()?;
            for f in figures {
                let version: i64 = next
                    .query_row(params![operator, f.point.as_str(), f.site, f.period], |r| r.get(0))
                    .db()?;
                insert
                    .execute(params![
                        operator,
                        f.point.as_str(),
                        f.site,
                        f.period,
                        version,
                        submission,
                        f.unit.as_str(),
                        f.ipv4_value,
                        f.ipv6_value,
                        f.ipv4_bytes,
                        f.ipv6_bytes,
                        f.active_connections,
                        f.ipv6_users,
                        f.users,
                        f.iot_connections
                    ])
                    .db()?;
                versions.push(version);
            }
        }
        tx.commit().db()?;
        Ok((submission, versions))
    }

    fn operator_figures(&self, first: &str, last: &str) -> Result<Vec<OperatorFigureRow>> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT f.operator, f.point, f.site, f.period, f.version, f.submission_id, f.unit, f.ipv4_value, \
                 f.ipv6_value, f.ipv4_bytes, f.ipv6_bytes, f.active_connections, f.ipv6_users, f.users, \
                 f.iot_connections, s.collector, s.submitted_at \
                 FROM operator_figures f JOIN operator_submissions s ON s.id = f.submission_id \
                 WHERE f.period >= ?1 AND f.period <= ?2 \
                 ORDER BY f.operator, f.point, f.site, f.period, f.version",
            )
            .db()?;
        collect(stmt.query_map(params![first, last], figure_of).db()?)
    }
}
