use crate::traffic::{insert_traffic, merge_stored_sketch};
use crate::{Db, PostgresStore, get};
use postgres::Row;
use v6scope_store_api::{
    BatchMerge, BatchOutcome, CollectorBatch, CollectorRow, Collectors, Result, StoreError, now_utc,
};

const COLLECTOR_COLUMNS: &str = "id, name, operator, created_at, revoked_at IS NOT NULL, last_push, \
     last_interval_end, batches, rows, duplicates, spool_dropped";

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
    })
}

impl Collectors for PostgresStore {
    fn add_collector(&mut self, name: &str, operator: &str, token_hash: &str) -> Result<i64> {
        self.with(|c| {
            let row = c
                .query_one(
                    "INSERT INTO collectors (name, operator, token_hash, created_at) VALUES ($1, $2, $3, $4) \
                     RETURNING id",
                    &[&name, &operator, &token_hash, &now_utc()],
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
}
