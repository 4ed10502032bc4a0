-- The ledger: till transactions, points lots and the append-only ledger entries.
--
-- Invariants, enforced here whatever the code does:
-- * every change of points or stored value is one row of `ledger_entries`, never updated or
--   deleted (triggers refuse UPDATE, DELETE and TRUNCATE);
-- * each entry's balance_after equals the previous entry's balance_after (of the same wallet
--   account) plus its own delta, so a balance is the sum of its entries by construction;
-- * the cached balances on `wallet_accounts` equal the latest entry's balance_after at
--   commit (deferred constraint trigger), and never go below zero (CHECKs);
-- * a points lot never holds more than it was given nor less than nothing;
-- * a purchase's refunds never exceed its amount; a receipt is recorded once per store.
-- The ledger references wallet_accounts, never members: erasing a member leaves the books
-- intact and anonymous, and nothing here ever needs deleting.
--
-- Why program_id and store_id carry no FOREIGN KEY here: a foreign key check takes a KEY
-- SHARE lock on the referenced row, so every concurrent purchase would lock the same program
-- and store rows (multixacts on the hottest rows of the database). The till validates both
-- before writing, programs are never deleted while they have wallet accounts (RESTRICT) and
-- stores are only soft-deleted; the wallet account (locked anyway) and the transaction keep
-- their foreign keys.

CREATE TABLE transactions (
    id                       uuid PRIMARY KEY,
    program_id               uuid NOT NULL,        -- no FK: see the header
    wallet_account_id        uuid NOT NULL REFERENCES wallet_accounts(id) ON DELETE RESTRICT,
    store_id                 uuid NOT NULL,        -- no FK: see the header
    staff_id                 uuid,                 -- the account that rang it up (no FK: audit)
    kind                     text NOT NULL CHECK (kind IN ('purchase', 'refund', 'topup')),
    receipt_id               text CHECK (length(receipt_id) BETWEEN 1 AND 100),
    amount                   bigint NOT NULL CHECK (amount >= 0),
    currency                 char(3) NOT NULL,
    original_transaction_id  uuid REFERENCES transactions(id) ON DELETE RESTRICT,
    points_earned            bigint NOT NULL DEFAULT 0 CHECK (points_earned >= 0),
    points_redeemed          bigint NOT NULL DEFAULT 0 CHECK (points_redeemed >= 0),
    stored_value_spent       bigint NOT NULL DEFAULT 0 CHECK (stored_value_spent >= 0),
    discount                 bigint NOT NULL DEFAULT 0 CHECK (discount >= 0),
    -- purchases: the sum of the amounts of their refunds so far
    refunded_amount          bigint NOT NULL DEFAULT 0
                             CHECK (refunded_amount >= 0 AND refunded_amount <= amount),
    -- refunds: what this refund moved, and the earned points it could not take back
    points_taken_back        bigint NOT NULL DEFAULT 0 CHECK (points_taken_back >= 0),
    points_returned          bigint NOT NULL DEFAULT 0 CHECK (points_returned >= 0),
    stored_value_returned    bigint NOT NULL DEFAULT 0 CHECK (stored_value_returned >= 0),
    points_shortfall         bigint NOT NULL DEFAULT 0 CHECK (points_shortfall >= 0),
    at                       timestamptz NOT NULL,
    CHECK ((kind = 'purchase') = (receipt_id IS NOT NULL)),
    CHECK ((kind = 'refund') = (original_transaction_id IS NOT NULL))
);
CREATE UNIQUE INDEX transactions_receipt
    ON transactions (program_id, store_id, receipt_id) WHERE kind = 'purchase';
CREATE INDEX transactions_account ON transactions (wallet_account_id, at);

-- Points are earned in lots; redemption and expiry consume lots, oldest first.
CREATE TABLE points_lots (
    id                 uuid PRIMARY KEY,
    wallet_account_id  uuid NOT NULL REFERENCES wallet_accounts(id) ON DELETE RESTRICT,
    source             text NOT NULL
                       CHECK (source IN ('earn', 'refund_redeem', 'adjust', 'offer_bonus')),
    transaction_id     uuid REFERENCES transactions(id) ON DELETE RESTRICT,
    earned_at          timestamptz NOT NULL,
    expires_at         timestamptz NOT NULL CHECK (expires_at >= earned_at),
    points             bigint NOT NULL CHECK (points > 0),
    remaining          bigint NOT NULL CHECK (remaining >= 0 AND remaining <= points)
);
-- FIFO order of a wallet's open lots, and the due lots of the expiry job.
CREATE INDEX points_lots_open
    ON points_lots (wallet_account_id, expires_at, earned_at, id) WHERE remaining > 0;
CREATE INDEX points_lots_due ON points_lots (expires_at) WHERE remaining > 0;
CREATE INDEX points_lots_transaction ON points_lots (transaction_id)
    WHERE transaction_id IS NOT NULL;

-- Points earned per UTC day (net of refunds), for tiers on the trailing 12 months: summing
-- at most 366 small rows stays cheap however many purchases a card makes.
CREATE TABLE tier_points_daily (
    wallet_account_id  uuid NOT NULL REFERENCES wallet_accounts(id) ON DELETE RESTRICT,
    day                date NOT NULL,
    points             bigint NOT NULL,
    PRIMARY KEY (wallet_account_id, day)
);

CREATE TABLE ledger_entries (
    id                          uuid PRIMARY KEY,
    seq                         bigint GENERATED ALWAYS AS IDENTITY,  -- order of appending
    wallet_account_id           uuid NOT NULL REFERENCES wallet_accounts(id) ON DELETE RESTRICT,
    program_id                  uuid NOT NULL,  -- no FK: see the header
    at                          timestamptz NOT NULL,
    kind                        text NOT NULL CHECK (kind IN (
                                    'earn', 'redeem', 'expire', 'refund_earn', 'refund_redeem',
                                    'stored_value_topup', 'stored_value_spend',
                                    'stored_value_refund', 'adjust', 'offer_bonus')),
    points                      bigint NOT NULL,
    stored_value                bigint NOT NULL,
    store_id                    uuid,           -- no FK: see the header
    transaction_id              uuid REFERENCES transactions(id) ON DELETE RESTRICT,
    lot_id                      uuid REFERENCES points_lots(id) ON DELETE RESTRICT,
    points_balance_after        bigint NOT NULL CHECK (points_balance_after >= 0),
    stored_value_balance_after  bigint NOT NULL CHECK (stored_value_balance_after >= 0),
    CONSTRAINT ledger_entries_nonzero CHECK (points <> 0 OR stored_value <> 0),
    CONSTRAINT ledger_entries_sign CHECK (CASE kind
        WHEN 'earn'                THEN points > 0 AND stored_value = 0
        WHEN 'offer_bonus'         THEN points > 0 AND stored_value = 0
        WHEN 'refund_redeem'       THEN points > 0 AND stored_value = 0
        WHEN 'redeem'              THEN points < 0 AND stored_value = 0
        WHEN 'expire'              THEN points < 0 AND stored_value = 0
        WHEN 'refund_earn'         THEN points < 0 AND stored_value = 0
        WHEN 'stored_value_topup'  THEN stored_value > 0 AND points = 0
        WHEN 'stored_value_refund' THEN stored_value > 0 AND points = 0
        WHEN 'stored_value_spend'  THEN stored_value < 0 AND points = 0
        ELSE true END)
);
CREATE INDEX ledger_entries_account ON ledger_entries (wallet_account_id, seq);

CREATE FUNCTION ledger_entries_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'ledger_entries is append-only: % refused', TG_OP
        USING ERRCODE = 'restrict_violation';
END $$;
CREATE TRIGGER ledger_entries_no_update_delete BEFORE UPDATE OR DELETE ON ledger_entries
    FOR EACH ROW EXECUTE FUNCTION ledger_entries_append_only();
CREATE TRIGGER ledger_entries_no_truncate BEFORE TRUNCATE ON ledger_entries
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_entries_append_only();

-- Each new entry continues its account's chain: balance_after = previous + delta. Writers
-- hold the wallet_accounts row lock (SELECT ... FOR UPDATE), so the previous entry is stable.
CREATE FUNCTION ledger_entries_chain() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    prev_points bigint := 0;
    prev_value  bigint := 0;
BEGIN
    SELECT points_balance_after, stored_value_balance_after INTO prev_points, prev_value
      FROM ledger_entries WHERE wallet_account_id = NEW.wallet_account_id
     ORDER BY seq DESC LIMIT 1;
    IF NOT FOUND THEN
        prev_points := 0;
        prev_value := 0;
    END IF;
    IF NEW.points_balance_after <> prev_points + NEW.points
       OR NEW.stored_value_balance_after <> prev_value + NEW.stored_value THEN
        RAISE EXCEPTION 'ledger entry breaks the balance chain of wallet account %',
            NEW.wallet_account_id
            USING ERRCODE = 'check_violation', CONSTRAINT = 'ledger_entries_chain';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER ledger_entries_chain BEFORE INSERT ON ledger_entries
    FOR EACH ROW EXECUTE FUNCTION ledger_entries_chain();

-- The cached balances equal the latest entry at commit (checked once per changed account).
CREATE FUNCTION wallet_accounts_match_ledger() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    cur_points bigint;
    cur_value  bigint;
    led_points bigint := 0;
    led_value  bigint := 0;
BEGIN
    SELECT points_balance, stored_value_balance INTO cur_points, cur_value
      FROM wallet_accounts WHERE id = NEW.id;
    SELECT points_balance_after, stored_value_balance_after INTO led_points, led_value
      FROM ledger_entries WHERE wallet_account_id = NEW.id ORDER BY seq DESC LIMIT 1;
    IF NOT FOUND THEN
        led_points := 0;
        led_value := 0;
    END IF;
    IF cur_points IS DISTINCT FROM led_points OR cur_value IS DISTINCT FROM led_value THEN
        RAISE EXCEPTION 'wallet account % balances differ from its ledger', NEW.id
            USING ERRCODE = 'check_violation', CONSTRAINT = 'wallet_accounts_match_ledger';
    END IF;
    RETURN NULL;
END $$;
CREATE CONSTRAINT TRIGGER wallet_accounts_match_ledger
    AFTER UPDATE OF points_balance, stored_value_balance ON wallet_accounts
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION wallet_accounts_match_ledger();
