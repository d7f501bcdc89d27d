use crate::traffic::{insert_traffic, merge_stored_sketch};
use crate::{Db, PostgresStore, get};
use postgres::Row;
use v6scope_store_api::{
    BatchMerge, BatchOutcome, CollectorBatch, CollectorRow, Collectors, MeasurementPoint, OperatorFigure,
    OperatorFigureRow, Result, StoreError, now_utc,
};

const COLLECTOR_COLUMNS: &str = "id, name, operator, created_at, revoked_at IS NOT NULL, last_push, \
     last_interval_end, batches, rows, duplicates, spool_dropped, point";

fn collector_of(r: &Row) -> Result<CollectorRow> {
    Ok(CollectorRow {
        id: get(r, 0)?,
        name: get(r, 1)?,
        operator: get(r, 2)?,
        created_at: get(r, 3)?,
        revoked: get(r, 4)?,
        last_push: get(r, 5)?,
        last_interval_end: get(r, 6)?,
        batches: get(r, 7)?,
        rows: get(r, 8)?,
        duplicates: get(r, 9)?,
        spool_dropped: get(r, 10)?,
        point: match get::<String>(r, 11)?.as_str() {
            "" => None,
            text => Some(text.parse().map_err(StoreError::Corrupt)?),
        },
    })
}

fn figure_of(r: &Row) -> Result<OperatorFigureRow> {
    Ok(OperatorFigureRow {
        operator: get(r, 0)?,
        version: get(r, 4)?,
        submission: get(r, 5)?,
        collector: get(r, 15)?,
        submitted_at: get(r, 16)?,
        figure: OperatorFigure {
            point: get::<String>(r, 1)?.parse().map_err(StoreError::Corrupt)?,
            site: get(r, 2)?,
            period: get(r, 3)?,
            unit: get::<String>(r, 6)?.parse().map_err(StoreError::Corrupt)?,
            ipv4_value: get(r, 7)?,
            ipv6_value: get(r, 8)?,
            ipv4_bytes: get(r, 9)?,
            ipv6_bytes: get(r, 10)?,
            active_connections: get(r, 11)?,
            ipv6_users: get(r, 12)?,
            users: get(r, 13)?,
            iot_connections: get(r, 14)?,
        },
    })
}

impl Collectors for PostgresStore {
    fn add_collector(
        &mut self,
        name: &str,
        operator: &str,
        point: Option<MeasurementPoint>,
        token_hash: &str,
    ) -> Result<i64> {
        let point = point.map_or("", MeasurementPoint::as_str);
        self.with(|c| {
            let row = c
                .query_one(
                    "INSERT INTO collectors (name, operator, point, token_hash, created_at) \
                     VALUES ($1, $2, $3, $4, $5) RETURNING id",
                    &[&name, &operator, &point, &token_hash, &now_utc()],
                )
                .db()
                .map_err(|e| match e {
                    StoreError::Conflict(_) => StoreError::Conflict(format!("a collector named '{name}' exists")),
                    other => other,
                })?;
            get(&row, 0)
        })
    }

    fn revoke_collector(&mut self, name: &str) -> Result<bool> {
        self.with(|c| {
            let changed = c
                .execute(
                    "UPDATE collectors SET revoked_at = coalesce(revoked_at, $2) WHERE name = $1",
                    &[&name, &now_utc()],
                )
                .db()?;
            Ok(changed > 0)
        })
    }

    fn collectors(&self) -> Result<Vec<CollectorRow>> {
        self.with(|c| {
            c.query(
                &format!("SELECT {COLLECTOR_COLUMNS} FROM collectors ORDER BY name COLLATE \"C\""),
                &[],
            )
            .db()?
            .iter()
            .map(collector_of)
            .collect()
        })
    }

    fn collector_by_token(&self, token_hash: &str) -> Result<Option<CollectorRow>> {
        self.with(|c| {
            c.query_opt(
                &format!("SELECT {COLLECTOR_COLUMNS} FROM collectors WHERE token_hash = $1 AND revoked_at IS NULL"),
                &[&token_hash],
            )
            .db()?
            .as_ref()
            .map(collector_of)
            .transpose()
        })
    }

    fn store_batch(
        &mut self,
        collector: i64,
        batch: &CollectorBatch<'_>,
        merge: &mut BatchMerge<'_>,
        now: i64,
    ) -> Result<BatchOutcome> {
        self.with(|c| {
            let mut tx = c.transaction().db()?;
            // The collector's row lock orders its batches: a batch resent
            // while the first copy is being stored waits, then is a duplicate.
            let name: String = get(
                &tx.query_one("SELECT name FROM collectors WHERE id = $1 FOR UPDATE", &[&collector])
                    .db()?,
                0,
            )?;
            let rows = (batch.traffic.len() + batch.sketches.len()) as i64;
            let fresh = tx
                .execute(
                    "INSERT INTO collector_batches (collector_id, stream, seq, received_at, first_start, last_end, \
                     rows) VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING",
                    &[
                        &collector,
                        &batch.stream,
                        &batch.seq,
                        &now,
                        &batch.first_start,
                        &batch.last_end,
                        &rows,
                    ],
                )
                .db()?
                == 1;
            if fresh {
                insert_traffic(&mut tx, batch.traffic, Some(&format!("collector:{name}")))?;
                for s in batch.sketches {
                    merge_stored_sketch(&mut tx, &s.day, &s.organisation, &s.kind, &mut |stored| {
                        merge(stored, &s.sketch)
                    })?;
                }
            }
            tx.execute(
                "UPDATE collectors SET last_push = $2, \
                 last_interval_end = greatest(coalesce(last_interval_end, 0), $3), \
                 batches = batches + $4, rows = rows + $5, duplicates = duplicates + $6, spool_dropped = $7 \
                 WHERE id = $1",
                &[
                    &collector,
                    &now,
                    &batch.last_end,
                    &i64::from(fresh),
                    &if fresh { rows } else { 0 },
                    &i64::from(!fresh),
                    &batch.spool_dropped,
                ],
            )
            .db()?;
            tx.commit().db()?;
            Ok(if fresh {
                BatchOutcome::Stored
            } else {
                BatchOutcome::Duplicate
            })
        })
    }

    fn batch_stored(&self, collector: i64, stream: &str, seq: i64) -> Result<bool> {
        self.with(|c| {
            let row = c
                .query_one(
                    "SELECT count(*) FROM collector_batches WHERE collector_id = $1 AND stream = $2 AND seq = $3",
                    &[&collector, &stream, &seq],
                )
                .db()?;
            Ok(get::<i64>(&row, 0)? > 0)
        })
    }

    fn submit_operator_figures(
        &mut self,
        operator: &str,
        collector: &str,
        format: &str,
        figures: &[OperatorFigure],
    ) -> Result<(i64, Vec<i64>)> {
        self.with(|c| {
            let mut tx = c.transaction().db()?;
            // One submission of an operator at a time: versions count up
            // without gaps or clashes.
            tx.execute(
                "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
                &[&format!("operator-figures\u{1f}{operator}")],
            )
            .db()?;
            let submission: i64 = get(
                &tx.query_one(
                    "INSERT INTO operator_submissions (operator, collector, submitted_at, format, rows) \
                     VALUES ($1, $2, $3, $4, $5) RETURNING id",
                    &[&operator, &collector, &now_utc(), &format, &(figures.len() as i64)],
                )
                .db()?,
                0,
            )?;
            let mut versions = Vec::with_capacity(figures.len());
            for f in figures {
                let point = f.point.as_str();
                let version: i64 = get(
                    &tx.query_one(
                        "INSERT INTO operator_figures (operator, point, site, period, version, submission_id, \
                         unit, ipv4_value, ipv6_value, ipv4_bytes, ipv6_bytes, active_connections, ipv6_users, \
                         users, iot_connections) \
                         SELECT $1, $2, $3, $4, coalesce(max(version), 0) + 1, $5, $6, $7, $8, $9, $10, $11, $12, \
                         $13, $14 FROM operator_figures WHERE operator = $1 AND point = $2 AND site = $3 \
                         AND period = $4 RETURNING version",
                        &[
                            &operator,
                            &point,
                            &f.site,
                            &f.period,
                            &submission,
                            &f.unit.as_str(),
                            &f.ipv4_value,
                            &f.ipv6_value,
                            &f.ipv4_bytes,
                            &f.ipv6_bytes,
                            &f.active_connections,
                            &f.ipv6_users,
                            &f.users,
                            &f.iot_connections,
                        ],
                    )
                    .db()?,
                    0,
                )?;
                versions.push(version);
            }
            tx.commit().db()?;
            Ok((submission, versions))
        })
    }

    fn operator_figures(&self, first: &str, last: &str) -> Result<Vec<OperatorFigureRow>> {
        self.with(|c| {
            c.query(
                "SELECT f.operator, f.point, f.site, f.period, f.version, f.submission_id, f.unit, f.ipv4_value, \
                 f.ipv6_value, f.ipv4_bytes, f.ipv6_bytes, f.active_connections, f.ipv6_users, f.users, \
                 f.iot_connections, s.collector, s.submitted_at \
                 FROM operator_figures f JOIN operator_submissions s ON s.id = f.submission_id \
                 WHERE f.period >= $1 AND f.period <= $2 \
                 ORDER BY f.operator COLLATE \"C\", f.point COLLATE \"C\", f.site COLLATE \"C\", f.period, f.version",
                &[&first, &last],
            )
            .db()?
            .iter()
            .map(figure_of)
            .collect()
        })
    }
}
