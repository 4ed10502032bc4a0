-- Shared wallet core: stores with their zones, the pseudonymous wallet account that carries
-- balances (so the financial ledger never points at a member directly: erasing the member
-- row leaves the books intact and anonymous), and cards.

CREATE TABLE stores (
    id            uuid PRIMARY KEY,
    program_id    uuid NOT NULL REFERENCES programs(id) ON DELETE CASCADE,
    code          text NOT NULL CHECK (length(code) BETWEEN 1 AND 64),
    name          text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    zone          jsonb NOT NULL,          -- GeoJSON Polygon | MultiPolygon | Circle, [lon, lat]
    zone_version  integer NOT NULL DEFAULT 1 CHECK (zone_version > 0),
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    deleted_at    timestamptz              -- soft delete: the ledger keeps pointing at it
);
CREATE UNIQUE INDEX stores_code_per_program ON stores (program_id, code) WHERE deleted_at IS NULL;
CREATE INDEX stores_program ON stores (program_id) WHERE deleted_at IS NULL;

-- Balances are cached sums of ledger entries, kept equal in the same transaction; the CHECKs
-- make a negative balance impossible whatever the code does.
CREATE TABLE wallet_accounts (
    id                    uuid PRIMARY KEY,
    program_id            uuid NOT NULL REFERENCES programs(id) ON DELETE RESTRICT,
    points_balance        bigint NOT NULL DEFAULT 0 CHECK (points_balance >= 0),
    stored_value_balance  bigint NOT NULL DEFAULT 0 CHECK (stored_value_balance >= 0),
    tier                  text,
    created_at            timestamptz NOT NULL DEFAULT now()
);

ALTER TABLE members
    ADD COLUMN wallet_account_id uuid NOT NULL UNIQUE REFERENCES wallet_accounts(id),
    ADD COLUMN pin_hash          text,
    ADD COLUMN pin_failures      integer NOT NULL DEFAULT 0 CHECK (pin_failures >= 0),
    ADD COLUMN pin_locked_until  timestamptz;

CREATE TABLE cards (
    id          uuid PRIMARY KEY,
    member_id   uuid NOT NULL REFERENCES members(id) ON DELETE CASCADE,
    program_id  uuid NOT NULL REFERENCES programs(id) ON DELETE CASCADE,
    number      text NOT NULL UNIQUE CHECK (number ~ '^[0-9]{12,19}$'),
    status      text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'blocked')),
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX cards_member ON cards (member_id);
