-- The rewards catalogue: rewards a program's members buy with points, their revisions, and
-- the vouchers a claim creates.
--
-- Invariants enforced here whatever the code does:
-- * a reward is never claimed more often than its stock: `claimed` is taken by the claim's
--   own conditional UPDATE (`... WHERE stock IS NULL OR claimed < stock`), and a CHECK forbids
--   `claimed > stock` anyway (so a manager cannot lower the stock below what was claimed);
-- * a member never holds more vouchers of a reward than its per-member limit: each voucher
--   carries its number among that member's claims of that reward (`claim_no`, 1, 2, ...),
--   unique per (reward, wallet account), and is inserted only while `claim_no <= limit`;
--   two racing claims would compute the same number and one would fail the unique index;
-- * a voucher is used at most once: the till's UPDATE only takes an `active` voucher, and a
--   used voucher carries when, where and (inside a purchase) by which transaction;
-- * the points a claim spends are ordinary ledger entries (`reward_claim`, FIFO over lots),
--   and points returned when an unused voucher expires are one `reward_return` entry with its
--   own lot; a stored-value reward credits the purse with one `reward_credit` entry.
--
-- Vouchers reference the pseudonymous wallet account, never the member, like the ledger:
-- erasing a member leaves them without identity. An erased member's unused vouchers are
-- cancelled by the trigger below (their tokens and cards are dead: nobody may use them).

-- Whether the points of a voucher that expires unused come back to the member.
ALTER TABLE programs
    ADD COLUMN voucher_expiry_returns_points boolean NOT NULL DEFAULT true;

-- New ledger entry kinds and lot source, added to whatever the CHECKs allow by now (other
-- migrations may have added their own kinds: keep them, add ours). The constraints are
-- rebuilt as `IN ('a', 'b', ...)`, the form the next migration can read the same way.
DO $$
DECLARE
    allowed text[];
BEGIN
    SELECT array_agg(DISTINCT v[1] ORDER BY v[1]) INTO allowed
      FROM pg_constraint c,
           regexp_matches(pg_get_constraintdef(c.oid), '''([a-z_]+)''', 'g') AS v
     WHERE c.conrelid = 'ledger_entries'::regclass AND c.conname = 'ledger_entries_kind_check';
    allowed := allowed || ARRAY['reward_claim', 'reward_return', 'reward_credit'];
    ALTER TABLE ledger_entries DROP CONSTRAINT ledger_entries_kind_check;
    EXECUTE format('ALTER TABLE ledger_entries ADD CONSTRAINT ledger_entries_kind_check '
                   'CHECK (kind IN (%s))',
                   (SELECT string_agg(quote_literal(k), ', ') FROM unnest(allowed) AS k));

    SELECT array_agg(DISTINCT v[1] ORDER BY v[1]) INTO allowed
      FROM pg_constraint c,
           regexp_matches(pg_get_constraintdef(c.oid), '''([a-z_]+)''', 'g') AS v
     WHERE c.conrelid = 'points_lots'::regclass AND c.conname = 'points_lots_source_check';
    allowed := allowed || ARRAY['reward_return'];
    ALTER TABLE points_lots DROP CONSTRAINT points_lots_source_check;
    EXECUTE format('ALTER TABLE points_lots ADD CONSTRAINT points_lots_source_check '
                   'CHECK (source IN (%s))',
                   (SELECT string_agg(quote_literal(k), ', ') FROM unnest(allowed) AS k));
END $$;

ALTER TABLE ledger_entries ADD CONSTRAINT ledger_entries_reward_sign CHECK (CASE kind
    WHEN 'reward_claim'  THEN points < 0 AND stored_value = 0
    WHEN 'reward_return' THEN points > 0 AND stored_value = 0
    WHEN 'reward_credit' THEN stored_value > 0 AND points = 0
    ELSE true END);

CREATE TABLE rewards (
    id                   uuid PRIMARY KEY,
    program_id           uuid NOT NULL REFERENCES programs(id) ON DELETE CASCADE,
    name                 text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    description          text NOT NULL DEFAULT '' CHECK (length(description) <= 2000),
    image_url            text CHECK (length(image_url) BETWEEN 1 AND 2048),
    points_cost          bigint NOT NULL CHECK (points_cost > 0),
    -- voucher: a product or service (value: its face value, optional); amount_off: a fixed
    -- discount of `value` minor units; stored_value: `value` credited to the purse at once
    kind                 text NOT NULL CHECK (kind IN ('voucher', 'amount_off', 'stored_value')),
    value                bigint CHECK (value > 0),
    stock                integer CHECK (stock >= 0),       -- NULL: unlimited
    claimed              integer NOT NULL DEFAULT 0 CHECK (claimed >= 0),
    per_member_limit     integer CHECK (per_member_limit > 0),  -- NULL: no limit
    claimable_from       timestamptz,
    claimable_until      timestamptz,
    voucher_valid_for_s  integer NOT NULL CHECK (voucher_valid_for_s > 0),
    tiers                text[] NOT NULL DEFAULT '{}',     -- empty: every tier (and none)
    store_ids            uuid[] NOT NULL DEFAULT '{}',     -- empty: every store
    status               text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'retired')),
    revision             integer NOT NULL DEFAULT 1 CHECK (revision > 0),
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now(),
    retired_at           timestamptz,
    CONSTRAINT rewards_stock CHECK (stock IS NULL OR claimed <= stock),
    CONSTRAINT rewards_value CHECK (kind = 'voucher' OR value IS NOT NULL),
    CONSTRAINT rewards_window CHECK (claimable_from < claimable_until),
    CHECK ((status = 'retired') = (retired_at IS NOT NULL))
);
CREATE INDEX rewards_program ON rewards (program_id, created_at, id);

-- Every change of a reward, with who made it and what it was before and after.
CREATE TABLE reward_revisions (
    reward_id   uuid NOT NULL REFERENCES rewards(id) ON DELETE CASCADE,
    revision    integer NOT NULL,
    changed_at  timestamptz NOT NULL DEFAULT now(),
    changed_by  uuid NOT NULL,                 -- the manager or admin account (token `sub`)
    action      text NOT NULL CHECK (action IN ('create', 'update', 'retire')),
    before      jsonb,
    after       jsonb NOT NULL,
    PRIMARY KEY (reward_id, revision)
);

-- Vouchers: name, kind, value, stores and expiry are copied at claim time, so a later change
-- of the reward never changes a voucher a member already holds. `program_id` has no foreign
-- key (as in the ledger: the reward's key already holds it).
CREATE TABLE vouchers (
    id                   uuid PRIMARY KEY,
    program_id           uuid NOT NULL,
    reward_id            uuid NOT NULL REFERENCES rewards(id) ON DELETE RESTRICT,
    reward_revision      integer NOT NULL,
    wallet_account_id    uuid NOT NULL REFERENCES wallet_accounts(id) ON DELETE RESTRICT,
    claim_no             integer NOT NULL CHECK (claim_no > 0),
    code                 text NOT NULL CHECK (code ~ '^[0-9A-HJKMNP-TV-Z]{10}$'),
    name                 text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    kind                 text NOT NULL CHECK (kind IN ('voucher', 'amount_off', 'stored_value')),
    value                bigint CHECK (value > 0),
    store_ids            uuid[] NOT NULL DEFAULT '{}',
    points_spent         bigint NOT NULL CHECK (points_spent >= 0),
    status               text NOT NULL DEFAULT 'active'
                         CHECK (status IN ('active', 'used', 'expired', 'cancelled')),
    claimed_at           timestamptz NOT NULL,
    expires_at           timestamptz NOT NULL CHECK (expires_at >= claimed_at),
    used_at              timestamptz,
    used_store_id        uuid,
    used_transaction_id  uuid REFERENCES transactions(id) ON DELETE RESTRICT,
    used_by              uuid,                  -- the staff or manager account
    ended_at             timestamptz,           -- expired or cancelled at
    points_returned      bigint NOT NULL DEFAULT 0
                         CHECK (points_returned >= 0 AND points_returned <= points_spent),
    CONSTRAINT vouchers_code UNIQUE (code),
    CONSTRAINT vouchers_claim_no UNIQUE (reward_id, wallet_account_id, claim_no),
    CHECK ((status = 'used') = (used_at IS NOT NULL)),
    CHECK ((status IN ('expired', 'cancelled')) = (ended_at IS NOT NULL)),
    CHECK (used_transaction_id IS NULL OR status = 'used')
);
CREATE INDEX vouchers_account ON vouchers (wallet_account_id, claimed_at DESC, id DESC);
CREATE INDEX vouchers_reward ON vouchers (reward_id, status);
CREATE INDEX vouchers_due ON vouchers (expires_at) WHERE status = 'active';
CREATE INDEX vouchers_transaction ON vouchers (used_transaction_id)
    WHERE used_transaction_id IS NOT NULL;

-- Erasure (and the idle-account purge, which erases) deletes the member row: their unused
-- vouchers are cancelled in that same transaction. Their points are not returned: the wallet
-- account has nobody behind it any more.
CREATE FUNCTION vouchers_cancel_on_erasure() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE vouchers SET status = 'cancelled', ended_at = now()
     WHERE wallet_account_id = OLD.wallet_account_id AND status = 'active';
    RETURN NULL;
END $$;
CREATE TRIGGER vouchers_cancel_on_erasure AFTER DELETE ON members
    FOR EACH ROW EXECUTE FUNCTION vouchers_cancel_on_erasure();
