-- What users met (issue 10, items 14-20).

-- An offer the member opened in the app (`POST /v1/me/offers/{id}/opened`, idempotent: the
-- first opening is kept). Campaign statistics count issued, opened and redeemed offers.
ALTER TABLE offers ADD COLUMN opened_at timestamptz;
ALTER TABLE offers ADD CONSTRAINT offers_opened_after_issue
    CHECK (opened_at IS NULL OR opened_at >= issued_at);

-- Campaign statistics over a date range and per day read a campaign's offers by time.
CREATE INDEX offers_campaign_issued ON offers (campaign_id, issued_at);

-- /metrics reports how many members' stored-value PINs are locked now (a brute-force alarm):
-- only rows ever locked are indexed.
CREATE INDEX members_pin_locked ON members (pin_locked_until) WHERE pin_locked_until IS NOT NULL;
