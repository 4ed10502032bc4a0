-- A program's earning rules, versioned (issue 13: a till purchase in one round trip). Each
-- worker keeps the rules an earn-only purchase needs in memory (`wallet/ledger/earn_fast.py`)
-- with the `rules_version` it loaded; the purchase's one statement checks that the version is
-- still the program's and writes nothing otherwise (the worker reloads and the purchase takes
-- the two-trip path). Every change of what that computation reads bumps it: the currency, the
-- earn rate, the points' validity, the tiers and the largest purchase amount (0017).
ALTER TABLE programs ADD COLUMN rules_version bigint NOT NULL DEFAULT 0;

CREATE FUNCTION programs_rules_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.rules_version := OLD.rules_version + 1;
    RETURN NEW;
END $$;

CREATE TRIGGER programs_rules_changed BEFORE UPDATE ON programs
    FOR EACH ROW WHEN (NEW.currency IS DISTINCT FROM OLD.currency
                       OR NEW.earn_points IS DISTINCT FROM OLD.earn_points
                       OR NEW.earn_per_amount IS DISTINCT FROM OLD.earn_per_amount
                       OR NEW.points_expiry_days IS DISTINCT FROM OLD.points_expiry_days
                       OR NEW.tiers IS DISTINCT FROM OLD.tiers
                       OR NEW.max_purchase_amount IS DISTINCT FROM OLD.max_purchase_amount)
    EXECUTE FUNCTION programs_rules_changed();
