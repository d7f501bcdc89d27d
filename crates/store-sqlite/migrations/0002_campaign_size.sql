-- The campaign's size, kept with it: counting a million targets on every
-- page was the overview's main cost.
ALTER TABLE campaigns ADD COLUMN targets INTEGER NOT NULL DEFAULT 0;
UPDATE campaigns SET targets = (SELECT COUNT(*) FROM campaign_targets t WHERE t.campaign = campaigns.name);
