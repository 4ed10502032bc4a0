-- Foundation: programs, operator/staff accounts, members (identity only), refresh tokens and
-- the idempotency store shared by every retried write.

CREATE TABLE programs (
    id                  uuid PRIMARY KEY,
    name                text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    currency            char(3) NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    timezone            text NOT NULL,
    earn_points         integer NOT NULL CHECK (earn_points >= 0),
    earn_per_amount     integer NOT NULL CHECK (earn_per_amount > 0),
    points_expiry_days  integer NOT NULL CHECK (points_expiry_days > 0),
    tiers               jsonb NOT NULL DEFAULT '[]',
    stored_value        boolean NOT NULL DEFAULT false,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now()
);

-- Admins (program_id NULL), managers and staff. Staff act only for their store_ids.
CREATE TABLE accounts (
    id             uuid PRIMARY KEY,
    program_id     uuid REFERENCES programs(id) ON DELETE CASCADE,
    email          text NOT NULL CHECK (length(email) BETWEEN 3 AND 254),
    password_hash  text NOT NULL,
    role           text NOT NULL CHECK (role IN ('admin', 'manager', 'staff')),
    store_ids      uuid[] NOT NULL DEFAULT '{}',
    created_at     timestamptz NOT NULL DEFAULT now(),
    CHECK ((role = 'admin') = (program_id IS NULL))
);
CREATE UNIQUE INDEX accounts_email_per_program
    ON accounts (coalesce(program_id, '00000000-0000-0000-0000-000000000000'::uuid), lower(email));

-- A member's identity. Other personal data hangs off this row (see 0002 onwards).
CREATE TABLE members (
    id             uuid PRIMARY KEY,
    program_id     uuid NOT NULL REFERENCES programs(id) ON DELETE RESTRICT,
    email          text NOT NULL CHECK (length(email) BETWEEN 3 AND 254),
    password_hash  text NOT NULL,
    first_name     text NOT NULL CHECK (length(first_name) BETWEEN 1 AND 100),
    locale         text NOT NULL DEFAULT 'en' CHECK (length(locale) BETWEEN 2 AND 35),
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    last_active_at timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX members_email_per_program ON members (program_id, lower(email));

-- Refresh tokens: only a hash is stored. A family is one login; rotating a token marks it
-- used, and presenting a used one again revokes the whole family (token theft detection).
CREATE TABLE refresh_tokens (
    token_hash   bytea PRIMARY KEY,
    family_id    uuid NOT NULL,
    subject_id   uuid NOT NULL,
    role         text NOT NULL,
    program_id   uuid,
    expires_at   timestamptz NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    used_at      timestamptz,
    revoked_at   timestamptz
);
CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id);
CREATE INDEX refresh_tokens_subject ON refresh_tokens (subject_id);

-- Idempotency: a retried request with the same key and body gets the first response back.
-- `scope` separates callers (the account or member that sent it) and routes.
CREATE TABLE idempotency_keys (
    scope          text NOT NULL,
    key            text NOT NULL CHECK (length(key) BETWEEN 1 AND 200),
    request_hash   bytea NOT NULL,
    status_code    integer NOT NULL,
    response_body  bytea NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (scope, key)
);
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);
