use crate::traffic::{insert_traffic, merge_stored_sketch};
use crate::{Db, SqliteStore, collect};
use rusqlite::{OptionalExtension, TransactionBehavior, params};
use v6scope_store_api::{
    BatchMerge, BatchOutcome, CollectorBatch, CollectorRow, Collectors, Result, StoreError, now_utc,
};

const COLLECTOR_COLUMNS: &str = "id, name, operator, created_at, revoked_at IS NOT NULL, last_push, \
     last_interval_end, batches, rows, duplicates, spool_dropped";

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
    })
}

impl Collectors for SqliteStore {
    fn add_collector(&mut self, name: &str, operator: &str, token_hash: &str) -> Result<i64> {
        self.conn
            .execute(
                "INSERT INTO collectors (name, operator, token_hash, created_at) VALUES (?1, ?2, ?3, ?4)",
                params![name, operator, token_hash, now_utc()],
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
}
