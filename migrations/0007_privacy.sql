-- Privacy by design: the access log, what erasure and retention need, and bounds on every
-- free-text column of a member's data.
--
-- The access log records every read of a member's personal data by staff, managers and
-- admins: who (actor id and role), what (action), why (purpose), when, whose. It holds no copy
-- of the data read. When a member is erased, their rows stay for the actor's accountability
-- but lose the member (ON DELETE SET NULL): the log then says "someone's data", never whose.

CREATE TABLE access_log (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    at          timestamptz NOT NULL DEFAULT now(),
    member_id   uuid REFERENCES members(id) ON DELETE SET NULL,
    program_id  uuid NOT NULL,           -- no FK: programs with members are never deleted
    actor_id    uuid NOT NULL,           -- the token's `sub` (accounts, or CLI-minted admins)
    actor_role  text NOT NULL CHECK (actor_role IN ('staff', 'manager', 'admin')),
    action      text NOT NULL CHECK (action ~ '^[a-z][a-z0-9_.]{0,63}$'),
    purpose     text NOT NULL CHECK (purpose ~ '^[a-z][a-z0-9_]{0,63}$'),
    store_id    uuid                     -- the till's store, when read at a till
);
-- The member's own view (newest first) and the ON DELETE SET NULL of an erasure.
CREATE INDEX access_log_member ON access_log (member_id, at DESC, id DESC)
    WHERE member_id IS NOT NULL;
-- Breach notification: what one actor read in a time window.
CREATE INDEX access_log_actor ON access_log (actor_id, at, id);
-- Retention.
CREATE INDEX access_log_at ON access_log (at);

-- Idle accounts are found by their last activity (login, refresh, pings; see
-- wallet/members_repo.touch_active, at most one write per member per day).
CREATE INDEX members_last_active ON members (last_active_at);

-- Visits are purged by the time they ended (or were last seen, if still open).
CREATE INDEX visits_ended ON visits ((coalesce(exited_at, last_seen_at)));

-- Withdrawn consents are purged once the proof is no longer needed: candidates are the
-- withdrawals older than the period; the latest-row check uses member_consents_latest.
CREATE INDEX member_consents_withdrawals ON member_consents (recorded_at) WHERE NOT granted;

-- Expired refresh tokens are purged (they can no longer be used, nor detect reuse).
CREATE INDEX refresh_tokens_expires ON refresh_tokens (expires_at);

-- Offers outlive their member: erasing a member (or the retention of expired offers)
-- anonymises their offers instead of deleting them, so campaign statistics stay right.
ALTER TABLE offers ALTER COLUMN member_id DROP NOT NULL;
ALTER TABLE offers DROP CONSTRAINT offers_member_id_fkey;
ALTER TABLE offers ADD CONSTRAINT offers_member_id_fkey
    FOREIGN KEY (member_id) REFERENCES members(id) ON DELETE SET NULL;
CREATE INDEX offers_expires ON offers (expires_at) WHERE member_id IS NOT NULL;

-- Visits as campaign statistics need them, with nothing that leads to a person: the store
-- and the time a visit began (no member, no visit id). Written by a trigger when a visit is recorded, so erasing a
-- member or purging old visits (which delete the visits themselves) leaves the counts right.
CREATE TABLE visit_counts (
    program_id  uuid NOT NULL,
    store_id    uuid NOT NULL,
    entered_at  timestamptz NOT NULL
);
CREATE INDEX visit_counts_store ON visit_counts (store_id, entered_at);

CREATE FUNCTION visits_counted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO visit_counts (program_id, store_id, entered_at)
    VALUES (NEW.program_id, NEW.store_id, NEW.entered_at);
    RETURN NULL;
END $$;
CREATE TRIGGER visits_counted AFTER INSERT ON visits
    FOR EACH ROW EXECUTE FUNCTION visits_counted();

-- Every text column of a member's data is bounded (no unbounded free text: nowhere to put
-- what the product must not hold). Hashes are produced by the server, bounded all the same.
ALTER TABLE members
    ADD CONSTRAINT members_password_hash_length CHECK (length(password_hash) <= 512),
    ADD CONSTRAINT members_pin_hash_length CHECK (length(pin_hash) <= 512);
ALTER TABLE wallet_accounts
    ADD CONSTRAINT wallet_accounts_tier_length CHECK (length(tier) BETWEEN 1 AND 50);
ALTER TABLE offers
    ADD CONSTRAINT offers_title_length CHECK (length(title) BETWEEN 1 AND 200),
    ADD CONSTRAINT offers_body_length CHECK (length(body) <= 2000);
