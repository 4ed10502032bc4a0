-- Per-program limits on money at the till (issue 14, bug 7): the largest purchase amount, the
-- largest top-up and the most a purse (stored value) may hold, in minor units. The defaults
-- suit a retailer in euros: 10,000.00 (the EU's ceiling on cash payments), 500.00 and
-- 1,500.00 (e-money rules cap purses). Existing programs take the defaults.
ALTER TABLE programs
    ADD COLUMN max_purchase_amount bigint NOT NULL DEFAULT 1000000
        CONSTRAINT programs_max_purchase_amount_positive CHECK (max_purchase_amount > 0),
    ADD COLUMN max_top_up_amount bigint NOT NULL DEFAULT 50000
        CONSTRAINT programs_max_top_up_amount_positive CHECK (max_top_up_amount > 0),
    ADD COLUMN max_stored_value_balance bigint NOT NULL DEFAULT 150000
        CONSTRAINT programs_max_stored_value_balance_positive
        CHECK (max_stored_value_balance > 0);

-- The purse's ceiling as a last net under the service's checks (which refuse first, with a
-- 422 naming the limit): a stored-value balance may not *grow* above its program's ceiling.
-- Only growth is checked, so a ceiling lowered below a member's balance takes nothing away,
-- and spending from such a purse still works. The WHEN clause keeps the function off every
-- update that does not add stored value (purchases, points).
CREATE FUNCTION wallet_accounts_purse_cap() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    cap bigint;
BEGIN
    SELECT max_stored_value_balance INTO cap FROM programs WHERE id = NEW.program_id;
    IF NEW.stored_value_balance > cap THEN
        RAISE EXCEPTION 'wallet account % would hold % of stored value, above its program''s '
                        'max_stored_value_balance (%)', NEW.id, NEW.stored_value_balance, cap
            USING ERRCODE = 'check_violation', CONSTRAINT = 'wallet_accounts_purse_cap';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER wallet_accounts_purse_cap
    BEFORE UPDATE OF stored_value_balance ON wallet_accounts
    FOR EACH ROW WHEN (NEW.stored_value_balance > OLD.stored_value_balance)
    EXECUTE FUNCTION wallet_accounts_purse_cap();
