use crate::runs::{insert_targets, target_of};
use crate::{Db, PostgresStore, get};
use v6scope_model::Target;
use v6scope_store_api::{CampaignRow, Campaigns, Result, now_utc};

impl Campaigns for PostgresStore {
    fn put_campaign(&mut self, name: &str, targets: &[Target]) -> Result<()> {
        self.with(|c| {
            let mut tx = c.transaction().db()?;
            tx.execute(
                "INSERT INTO campaigns (name, created_at, targets) VALUES ($1, $2, $3) \
                 ON CONFLICT (name) DO UPDATE SET targets = excluded.targets",
                &[&name, &now_utc(), &(targets.len() as i64)],
            )
            .db()?;
            tx.execute("DELETE FROM campaign_targets WHERE campaign = $1", &[&name])
                .db()?;
            insert_targets(
                &mut tx,
                "INSERT INTO campaign_targets (campaign, idx, domain, category, organisation, region) \
                 SELECT $1, * FROM UNNEST($2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[])",
                &name,
                targets,
            )?;
            tx.commit().db()
        })
    }

    fn campaigns(&self) -> Result<Vec<CampaignRow>> {
        self.with(|c| {
            c.query(
                "SELECT name, created_at, targets FROM campaigns ORDER BY name COLLATE \"C\"",
                &[],
            )
            .db()?
            .iter()
            .map(|r| {
                Ok(CampaignRow {
                    name: get(r, 0)?,
                    created_at: get(r, 1)?,
                    targets: get(r, 2)?,
                })
            })
            .collect()
        })
    }

    fn campaign_targets(&self, name: &str) -> Result<Option<Vec<Target>>> {
        if !self.campaign_exists(name)? {
            return Ok(None);
        }
        self.with(|c| {
            c.query(
                "SELECT domain, category, organisation, region FROM campaign_targets WHERE campaign = $1 ORDER BY idx",
                &[&name],
            )
            .db()?
            .iter()
            .map(|r| target_of(r, 0))
            .collect::<Result<Vec<_>>>()
            .map(Some)
        })
    }

    fn campaign_exists(&self, name: &str) -> Result<bool> {
        self.with(|c| {
            Ok(c.query_opt("SELECT 1 FROM campaigns WHERE name = $1", &[&name])
                .db()?
                .is_some())
        })
    }

    fn delete_campaign(&mut self, name: &str) -> Result<bool> {
        self.with(|c| {
            let mut tx = c.transaction().db()?;
            for table in ["campaign_targets", "schedules", "campaign_hooks"] {
                tx.execute(&format!("DELETE FROM {table} WHERE campaign = $1"), &[&name])
                    .db()?;
            }
            let n = tx.execute("DELETE FROM campaigns WHERE name = $1", &[&name]).db()?;
            tx.commit().db()?;
            Ok(n > 0)
        })
    }

    fn set_webhook(&mut self, campaign: &str, url: Option<&str>) -> Result<()> {
        self.with(|c| {
            match url {
                Some(u) => c.execute(
                    "INSERT INTO campaign_hooks (campaign, webhook) VALUES ($1, $2) \
                     ON CONFLICT (campaign) DO UPDATE SET webhook = excluded.webhook",
                    &[&campaign, &u],
                ),
                None => c.execute("DELETE FROM campaign_hooks WHERE campaign = $1", &[&campaign]),
            }
            .db()?;
            Ok(())
        })
    }

    fn webhook(&self, campaign: &str) -> Result<Option<String>> {
        self.with(|c| {
            c.query_opt("SELECT webhook FROM campaign_hooks WHERE campaign = $1", &[&campaign])
                .db()?
                .map(|r| get(&r, 0))
                .transpose()
        })
    }
}
