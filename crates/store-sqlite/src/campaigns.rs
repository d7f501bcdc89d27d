use crate::runs::target_of;
use crate::{Db, SqliteStore, collect};
use rusqlite::{OptionalExtension, params};
use v6scope_model::Target;
use v6scope_store_api::{CampaignRow, Campaigns, Result, now_utc};

impl Campaigns for SqliteStore {
    fn put_campaign(&mut self, name: &str, targets: &[Target]) -> Result<()> {
        let tx = self.conn.transaction().db()?;
        tx.execute(
            "INSERT INTO campaigns (name, created_at, targets) VALUES (?1, ?2, ?3) \
             ON CONFLICT (name) DO UPDATE SET targets = excluded.targets",
            params![name, now_utc(), targets.len() as i64],
        )
        .db()?;
        tx.execute("DELETE FROM campaign_targets WHERE campaign = ?1", params![name])
            .db()?;
        {
            let mut insert = tx
                .prepare(
                    "INSERT INTO campaign_targets (campaign, idx, domain, category, organisation, region) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                )
                .db()?;
            for (idx, t) in targets.iter().enumerate() {
                insert
                    .execute(params![
                        name,
                        idx as i64,
                        t.domain,
                        t.category,
                        t.organisation,
                        t.region
                    ])
                    .db()?;
            }
        }
        tx.commit().db()
    }

    fn campaigns(&self) -> Result<Vec<CampaignRow>> {
        let mut stmt = self
            .conn
            .prepare("SELECT name, created_at, targets FROM campaigns ORDER BY name")
            .db()?;
        collect(
            stmt.query_map([], |r| {
                Ok(CampaignRow {
                    name: r.get(0)?,
                    created_at: r.get(1)?,
                    targets: r.get(2)?,
                })
            })
            .db()?,
        )
    }

    fn campaign_targets(&self, name: &str) -> Result<Option<Vec<Target>>> {
        if !self.campaign_exists(name)? {
            return Ok(None);
        }
        let mut stmt = self
            .conn
            .prepare(
                "SELECT domain, category, organisation, region FROM campaign_targets WHERE campaign = ?1 ORDER BY idx",
            )
            .db()?;
        Ok(Some(collect(stmt.query_map(params![name], |r| target_of(r, 0)).db()?)?))
    }

    fn campaign_exists(&self, name: &str) -> Result<bool> {
        Ok(self
            .conn
            .query_row("SELECT 1 FROM campaigns WHERE name = ?1", params![name], |_| Ok(()))
            .optional()
            .db()?
            .is_some())
    }

    fn delete_campaign(&mut self, name: &str) -> Result<bool> {
        let tx = self.conn.transaction().db()?;
        tx.execute("DELETE FROM campaign_targets WHERE campaign = ?1", params![name])
            .db()?;
        tx.execute("DELETE FROM schedules WHERE campaign = ?1", params![name])
            .db()?;
        tx.execute("DELETE FROM campaign_hooks WHERE campaign = ?1", params![name])
            .db()?;
        let n = tx
            .execute("DELETE FROM campaigns WHERE name = ?1", params![name])
            .db()?;
        tx.commit().db()?;
        Ok(n > 0)
    }

    fn set_webhook(&mut self, campaign: &str, url: Option<&str>) -> Result<()> {
        match url {
            Some(u) => self.conn.execute(
                "INSERT INTO campaign_hooks (campaign, webhook) VALUES (?1, ?2) \
                 ON CONFLICT (campaign) DO UPDATE SET webhook = excluded.webhook",
                params![campaign, u],
            ),
            None => self
                .conn
                .execute("DELETE FROM campaign_hooks WHERE campaign = ?1", params![campaign]),
        }
        .db()?;
        Ok(())
    }

    fn webhook(&self, campaign: &str) -> Result<Option<String>> {
        self.conn
            .query_row(
                "SELECT webhook FROM campaign_hooks WHERE campaign = ?1",
                params![campaign],
                |r| r.get(0),
            )
            .optional()
            .db()
    }
}
