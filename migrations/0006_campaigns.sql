-- Drive-to-store campaigns: campaigns and their revisions, the weather context per store,
-- issued offers, and the outbox that delivers them to the app's push service.
--
-- Invariants enforced here whatever the code does:
-- * one offer per campaign per visit (UNIQUE (campaign_id, visit_id));
-- * a campaign never issues more than its budget: `issued` is taken in the same statement
--   that inserts the offer (`UPDATE ... WHERE issued < max_issued`), and a CHECK forbids
--   `issued > max_issued` anyway;
-- * an offer is redeemed at most once (the till's write only marks it when redeemed_at IS NULL).

CREATE TABLE campaigns (
    id          uuid PRIMARY KEY,
    program_id  uuid NOT NULL REFERENCES programs(id) ON DELETE CASCADE,
    name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    status      text NOT NULL DEFAULT 'draft' CHECK (status IN ('draft', 'active', 'paused')),
    store_ids   uuid[] NOT NULL DEFAULT '{}',   -- empty: every store of the program
    -- trigger, schedule, audience, context, offer and caps, as geo.campaigns.CampaignRules
    rules       jsonb NOT NULL,
    starts_at   timestamptz NOT NULL,           -- copied from rules.schedule for queries
    ends_at     timestamptz NOT NULL,
    max_issued  integer CHECK (max_issued > 0),
    issued      integer NOT NULL DEFAULT 0 CHECK (issued >= 0),
    revision    integer NOT NULL DEFAULT 1 CHECK (revision > 0),
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    CHECK (starts_at < ends_at),
    CONSTRAINT campaigns_budget CHECK (max_issued IS NULL OR issued <= max_issued)
);
CREATE INDEX campaigns_program ON campaigns (program_id, created_at, id);
CREATE INDEX campaigns_active ON campaigns (program_id, ends_at) WHERE status = 'active';

-- Every change of a campaign's definition or status, with who made it and what it was
-- before and after: nothing changes under members' feet without a trace.
CREATE TABLE campaign_revisions (
    campaign_id  uuid NOT NULL REFERENCES campaigns(id) ON DELETE CASCADE,
    revision     integer NOT NULL,
    changed_at   timestamptz NOT NULL DEFAULT now(),
    changed_by   uuid NOT NULL,                 -- the manager or admin account (token `sub`)
    action       text NOT NULL CHECK (action IN ('create', 'update', 'activate', 'pause')),
    before       jsonb,
    after        jsonb NOT NULL,
    PRIMARY KEY (campaign_id, revision)
);

-- The latest weather observation per store, fed by an integration.
CREATE TABLE store_weather (
    store_id     uuid PRIMARY KEY REFERENCES stores(id) ON DELETE CASCADE,
    program_id   uuid NOT NULL REFERENCES programs(id) ON DELETE CASCADE,
    temp_c       double precision NOT NULL CHECK (temp_c BETWEEN -100 AND 70),
    condition    text NOT NULL
                 CHECK (condition IN ('clear', 'clouds', 'rain', 'snow', 'storm', 'fog')),
    observed_at  timestamptz NOT NULL,
    received_at  timestamptz NOT NULL DEFAULT now()
);

-- Offers issued to members. Title, body, reward and expiry are copied at issue time, so a
-- later change of the campaign never changes an offer a member already holds.
-- `visit_id` has no foreign key: visits are purged by retention, offers may outlive them.
CREATE TABLE offers (
    id                       uuid PRIMARY KEY,
    program_id               uuid NOT NULL REFERENCES programs(id) ON DELETE CASCADE,
    campaign_id              uuid NOT NULL REFERENCES campaigns(id) ON DELETE CASCADE,
    campaign_revision        integer NOT NULL,
    member_id                uuid NOT NULL REFERENCES members(id) ON DELETE CASCADE,
    visit_id                 uuid NOT NULL,
    store_id                 uuid NOT NULL,
    title                    text NOT NULL,
    body                     text NOT NULL,
    reward_kind              text NOT NULL CHECK (reward_kind IN
                                 ('bonus_points', 'points_multiplier', 'percent_off', 'amount_off')),
    reward_value             bigint NOT NULL CHECK (reward_value > 0),
    issued_at                timestamptz NOT NULL,
    expires_at               timestamptz NOT NULL CHECK (expires_at > issued_at),
    redeemed_at              timestamptz,
    redeemed_store_id        uuid,
    redeemed_transaction_id  uuid,
    CONSTRAINT offers_campaign_visit UNIQUE (campaign_id, visit_id),
    CHECK ((redeemed_at IS NULL) = (redeemed_transaction_id IS NULL))
);
CREATE INDEX offers_member ON offers (member_id, issued_at);
CREATE INDEX offers_campaign_store ON offers (campaign_id, store_id);

-- Offers waiting for (or done with) delivery to the configured webhook, written in the
-- transaction that issues the offer. Workers claim due rows with FOR UPDATE SKIP LOCKED.
CREATE TABLE offer_outbox (
    offer_id         uuid PRIMARY KEY REFERENCES offers(id) ON DELETE CASCADE,
    campaign_id      uuid NOT NULL,
    state            text NOT NULL DEFAULT 'pending'
                     CHECK (state IN ('pending', 'delivered', 'expired', 'skipped')),
    payload          jsonb NOT NULL,
    attempts         integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_attempt_at  timestamptz NOT NULL,
    last_error       text,
    delivered_at     timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX offer_outbox_due ON offer_outbox (next_attempt_at) WHERE state = 'pending';
CREATE INDEX offer_outbox_campaign ON offer_outbox (campaign_id, state);
