-- Wallet passes: the member's card in Apple Wallet (.pkpass) and Google Wallet, kept current.
--
-- A pass is a row per member and kind; its content is never stored: it is rendered from the
-- member's balances, tier, card and offers each time a device or Google asks for it. What is
-- stored is what the protocols need: the serial, the per-pass `ApplePass` token, the devices
-- registered for updates (Apple), and an update tag.
--
-- Updates are a transactional outbox in two steps, so the till never waits on a push:
-- 1. triggers append a row to `pass_changes` in the transaction that changed what a pass
--    shows (balances, tier, an offer issued, the first name shown on it): one INSERT, never
--    an UPDATE of a shared row, never a foreign-key check, so a till cannot block on it;
-- 2. one background worker at a time (wallet/passes/delivery.py) turns changes into a new
--    update tag of the pass (`update_seq`, `modified_at`) and one push row per registered
--    device (APNs) or per Google object, then sends the pushes with retries.
--
-- Erasure: deleting the member sets `passes.member_id` to NULL (ON DELETE SET NULL); the
-- triggers below void the pass (no member, no wallet account, `voided_at` set), delete its
-- device registrations and queue one last update so devices learn it is void. The devices
-- that still have to learn it are kept in `pass_farewells`, linked only to the voided,
-- anonymous pass, until they unregister or the farewell period ends.

-- The program's look on passes, and the flagship stores every member's pass shows.
CREATE TABLE pass_designs (
    program_id          uuid PRIMARY KEY REFERENCES programs(id) ON DELETE CASCADE,
    background_color    text NOT NULL CHECK (background_color ~ '^#[0-9a-f]{6}$'),
    foreground_color    text NOT NULL CHECK (foreground_color ~ '^#[0-9a-f]{6}$'),
    label_color         text NOT NULL CHECK (label_color ~ '^#[0-9a-f]{6}$'),
    featured_store_ids  uuid[] NOT NULL DEFAULT '{}'
                        CHECK (cardinality(featured_store_ids) <= 10),
    updated_at          timestamptz NOT NULL DEFAULT now()
);

CREATE SEQUENCE pass_update_seq;

CREATE TABLE passes (
    id                 uuid PRIMARY KEY,
    kind               text NOT NULL CHECK (kind IN ('apple', 'google')),
    serial             text NOT NULL UNIQUE CHECK (serial ~ '^[A-Za-z0-9_-]{16,64}$'),
    auth_token         text NOT NULL CHECK (length(auth_token) BETWEEN 32 AND 128),
    program_id         uuid NOT NULL REFERENCES programs(id) ON DELETE CASCADE,
    member_id          uuid REFERENCES members(id) ON DELETE SET NULL,
    -- no FK: read by the trigger on wallet_accounts; cleared with member_id
    wallet_account_id  uuid,
    show_name          boolean NOT NULL DEFAULT false,  -- the member chose to show it
    created_at         timestamptz NOT NULL DEFAULT now(),
    update_seq         bigint NOT NULL DEFAULT 0,  -- the update tag devices list since
    modified_at        timestamptz NOT NULL DEFAULT date_trunc('second', now()),
    voided_at          timestamptz,
    CHECK ((member_id IS NULL) = (voided_at IS NOT NULL)),
    CHECK (wallet_account_id IS NULL OR member_id IS NOT NULL)
);
CREATE UNIQUE INDEX passes_member_kind ON passes (member_id, kind) WHERE member_id IS NOT NULL;
CREATE INDEX passes_wallet_account ON passes (wallet_account_id)
    WHERE wallet_account_id IS NOT NULL;
CREATE INDEX passes_voided ON passes (voided_at) WHERE voided_at IS NOT NULL;

-- Apple devices registered for a pass's updates (PassKit web service).
CREATE TABLE pass_registrations (
    device_library_id  text NOT NULL CHECK (device_library_id ~ '^[A-Za-z0-9._-]{1,128}$'),
    pass_id            uuid NOT NULL REFERENCES passes(id) ON DELETE CASCADE,
    push_token         text NOT NULL CHECK (push_token ~ '^[A-Za-z0-9]{1,200}$'),
    registered_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (device_library_id, pass_id)
);
CREATE INDEX pass_registrations_pass ON pass_registrations (pass_id);

-- Devices of an erased member's voided pass, until they fetched the void or the period ended.
CREATE TABLE pass_farewells (
    device_library_id  text NOT NULL,
    pass_id            uuid NOT NULL REFERENCES passes(id) ON DELETE CASCADE,
    push_token         text NOT NULL,
    created_at         timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (device_library_id, pass_id)
);
CREATE INDEX pass_farewells_pass ON pass_farewells (pass_id);
CREATE INDEX pass_farewells_created ON pass_farewells (created_at);

-- Step 1 of the outbox: what changed, appended by triggers (no FK: see the header).
CREATE TABLE pass_changes (
    id       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    pass_id  uuid NOT NULL,
    at       timestamptz NOT NULL DEFAULT now()
);

-- Step 2: one pending push per (pass, target, device); a newer change merges into it.
CREATE TABLE pass_pushes (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    pass_id          uuid NOT NULL REFERENCES passes(id) ON DELETE CASCADE,
    target           text NOT NULL CHECK (target IN ('apns', 'google')),
    push_token       text NOT NULL DEFAULT '',  -- APNs device token; '' for Google
    attempts         integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_attempt_at  timestamptz NOT NULL,
    last_error       text CHECK (length(last_error) <= 500),
    created_at       timestamptz NOT NULL DEFAULT now(),
    UNIQUE (pass_id, target, push_token)
);
CREATE INDEX pass_pushes_due ON pass_pushes (next_attempt_at);

-- What a pass shows changed: balances or tier (every till operation, expiry, erasure...).
CREATE FUNCTION passes_account_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO pass_changes (pass_id)
    SELECT id FROM passes WHERE wallet_account_id = NEW.id;
    RETURN NULL;
END $$;
CREATE TRIGGER wallet_accounts_pass_changes
    AFTER UPDATE OF points_balance, stored_value_balance, tier ON wallet_accounts
    FOR EACH ROW WHEN (OLD.points_balance IS DISTINCT FROM NEW.points_balance
                       OR OLD.stored_value_balance IS DISTINCT FROM NEW.stored_value_balance
                       OR OLD.tier IS DISTINCT FROM NEW.tier)
    EXECUTE FUNCTION passes_account_changed();

-- An offer issued to the member (the pass lists the offers waiting for them).
CREATE FUNCTION passes_offer_issued() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO pass_changes (pass_id)
    SELECT id FROM passes WHERE member_id = NEW.member_id;
    RETURN NULL;
END $$;
CREATE TRIGGER offers_pass_changes AFTER INSERT ON offers
    FOR EACH ROW WHEN (NEW.member_id IS NOT NULL) EXECUTE FUNCTION passes_offer_issued();

-- The first name, on the passes that show it.
CREATE FUNCTION passes_name_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO pass_changes (pass_id)
    SELECT id FROM passes WHERE member_id = NEW.id AND show_name;
    RETURN NULL;
END $$;
CREATE TRIGGER members_pass_changes AFTER UPDATE OF first_name ON members
    FOR EACH ROW WHEN (OLD.first_name IS DISTINCT FROM NEW.first_name)
    EXECUTE FUNCTION passes_name_changed();

-- Erasure (member_id set to NULL by the foreign key): the pass becomes void and anonymous.
CREATE FUNCTION passes_void() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.voided_at := now();
    NEW.wallet_account_id := NULL;
    NEW.show_name := false;
    RETURN NEW;
END $$;
CREATE TRIGGER passes_void BEFORE UPDATE OF member_id ON passes
    FOR EACH ROW WHEN (OLD.member_id IS NOT NULL AND NEW.member_id IS NULL)
    EXECUTE FUNCTION passes_void();

CREATE FUNCTION passes_voided() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    WITH gone AS (DELETE FROM pass_registrations WHERE pass_id = NEW.id
                  RETURNING device_library_id, pass_id, push_token)
    INSERT INTO pass_farewells (device_library_id, pass_id, push_token)
    SELECT device_library_id, pass_id, push_token FROM gone
    ON CONFLICT DO NOTHING;
    INSERT INTO pass_changes (pass_id) VALUES (NEW.id);
    RETURN NULL;
END $$;
CREATE TRIGGER passes_voided AFTER UPDATE OF member_id ON passes
    FOR EACH ROW WHEN (OLD.member_id IS NOT NULL AND NEW.member_id IS NULL)
    EXECUTE FUNCTION passes_voided();

-- The access log also shows the member what the delivery service sent to Google Wallet
-- (actor role `service`: a processor acting for the operator, not a person).
ALTER TABLE access_log DROP CONSTRAINT access_log_actor_role_check;
ALTER TABLE access_log ADD CONSTRAINT access_log_actor_role_check
    CHECK (actor_role IN ('staff', 'manager', 'admin', 'service'));
