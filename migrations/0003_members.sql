-- Members' consents and preferences.
--
-- Consent is append-only: every grant or withdrawal is one row, with its proof (when, which
-- policy version, from which channel). The current state of a purpose is its latest row (by
-- `id`, which only grows); a purpose without rows is not granted: nothing is on by default.
-- Rows go with the member (ON DELETE CASCADE) when the member is erased.

CREATE TABLE member_consents (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    member_id       uuid NOT NULL REFERENCES members(id) ON DELETE CASCADE,
    purpose         text NOT NULL CHECK (purpose IN
                        ('location_offers', 'marketing', 'personalisation', 'partner_sharing')),
    granted         boolean NOT NULL,
    policy_version  text NOT NULL CHECK (length(policy_version) BETWEEN 1 AND 64),
    source          text NOT NULL CHECK (source ~ '^[a-z][a-z0-9_-]{0,31}$'),
    recorded_at     timestamptz NOT NULL DEFAULT now()
);
-- "Latest row of (member, purpose)" is one backward index scan: the pings path checks it.
CREATE INDEX member_consents_latest ON member_consents (member_id, purpose, id DESC);

-- How often, when and through which channels a member agrees to hear from the program.
-- No row = the defaults (no personal daily cap, no quiet hours, push and in-app).
-- Quiet hours are wall-clock times in the program's time zone; from > to spans midnight.
CREATE TABLE member_preferences (
    member_id           uuid PRIMARY KEY REFERENCES members(id) ON DELETE CASCADE,
    max_offers_per_day  integer CHECK (max_offers_per_day BETWEEN 0 AND 100),
    quiet_from          time(0),
    quiet_to            time(0),
    channels            text[] NOT NULL DEFAULT '{push,in_app}'
                        CHECK (channels <@ ARRAY['push', 'email', 'sms', 'in_app']),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    CHECK ((quiet_from IS NULL) = (quiet_to IS NULL)),
    CHECK (quiet_from IS DISTINCT FROM quiet_to OR quiet_from IS NULL)
);
