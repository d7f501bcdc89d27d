ALTER TABLE campaigns ADD COLUMN targets BIGINT NOT NULL DEFAULT 0;
UPDATE campaigns SET targets = (SELECT COUNT(*) FROM campaign_targets t WHERE t.campaign = campaigns.name);
