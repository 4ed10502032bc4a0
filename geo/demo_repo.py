"""The demo program's rows — a small coffee chain in Paris — and the SQL that seeds them
(`loyalty demo`, `make run`).

Idempotent: every row has a fixed id and is inserted with `ON CONFLICT DO NOTHING`, so a second
run changes nothing (not even a password someone changed since); the rewards catalogue is
created once, when the program has no reward yet. Passwords are hashed by the
caller's hasher (the production argon2id parameters), and only for rows that are actually new.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import msgspec

from geo.zones import decode_zone, validate_zone, zone_to_geojson
from wallet.kernel.hashing import Hasher
from wallet.kernel.model import Tier
from wallet.members.cards import CARD_PREFIX, luhn_check_digit
from wallet.privacy import notice_repo
from wallet.privacy.notice import Notice
from wallet.rewards import rewards_repo
from wallet.rewards.rules import RewardSpec


def _id(n: int) -> uuid.UUID:
    return uuid.UUID(f"c0ffee00-0000-4000-8000-{n:012d}")


PROGRAM_ID = _id(1)
MANAGER_ID, STAFF_ID, MEMBER_ID = _id(10), _id(11), _id(20)
WALLET_ID, CARD_ID = _id(21), _id(22)
MANAGER_EMAIL, MANAGER_PASSWORD = "manager@demo.example", "lumiere-manager-demo"
STAFF_EMAIL, STAFF_PASSWORD = "staff@demo.example", "lumiere-staff-demo"
MEMBER_EMAIL, MEMBER_PASSWORD, MEMBER_PIN = "alice@demo.example", "lumiere-alice-demo", "12345"
CARD_NUMBER = CARD_PREFIX + "00000000000001" + luhn_check_digit(CARD_PREFIX + "00000000000001")

TIERS = (Tier(name="Bronze", min_points_12m=0, multiplier_milli=1000),
         Tier(name="Silver", min_points_12m=500, multiplier_milli=1250),
         Tier(name="Gold", min_points_12m=2000, multiplier_milli=1500))


def _circle(lon: float, lat: float, radius_m: float) -> dict[str, Any]:
    return {"type": "Circle", "center": [lon, lat], "radius_m": radius_m}


def _polygon(*ring: tuple[float, float]) -> dict[str, Any]:
    return {"type": "Polygon", "coordinates": [[list(p) for p in (*ring, ring[0])]]}


# (id, code, name, zone): real addresses, zones sized to the square or street in front.
STORES: tuple[tuple[uuid.UUID, str, str, dict[str, Any]], ...] = (
    (_id(101), "OPERA", "Café Lumière Opéra — 2 rue Scribe", _circle(2.3316, 48.8708, 100)),
    (_id(102), "LOUVRE", "Café Lumière Louvre — 160 rue de Rivoli",
     _circle(2.3404, 48.8618, 80)),
    (_id(103), "BASTILLE", "Café Lumière Bastille — 2 rue de la Roquette",
     _circle(2.3703, 48.8537, 120)),
    (_id(104), "MONTMARTRE", "Café Lumière Montmartre — place du Tertre",
     _circle(2.3407, 48.8865, 150)),
    (_id(105), "MARAIS", "Café Lumière Marais — 27 rue des Rosiers",
     _polygon((2.3583, 48.8567), (2.3601, 48.8569), (2.3600, 48.8577), (2.3582, 48.8575))),
    (_id(106), "GARE-DE-LYON", "Café Lumière Gare de Lyon — hall 1",
     _polygon((2.3727, 48.8441), (2.3746, 48.8443), (2.3748, 48.8450), (2.3736, 48.8454),
              (2.3725, 48.8448))),
)
STAFF_STORES = [_id(101), _id(102)]

INSERT_PROGRAM = """
INSERT INTO programs (id, name, currency, timezone, earn_points, earn_per_amount,
                      points_expiry_days, tiers, stored_value, locale)
VALUES ($1, 'Café Lumière', 'EUR', 'Europe/Paris', 1, 100, 365, $2::jsonb, true, 'fr-FR')
ON CONFLICT DO NOTHING
"""
INSERT_STORE = """
INSERT INTO stores (id, program_id, code, name, zone) VALUES ($1, $2, $3, $4, $5::jsonb)
ON CONFLICT DO NOTHING
RETURNING id
"""
EXISTS = "SELECT EXISTS (SELECT 1 FROM accounts WHERE id = $1) OR " \
         "EXISTS (SELECT 1 FROM members WHERE id = $1)"
INSERT_ACCOUNT = """
INSERT INTO accounts (id, program_id, email, password_hash, role, store_ids)
VALUES ($1, $2, $3, $4, $5, $6::uuid[])
ON CONFLICT DO NOTHING
"""
INSERT_MEMBER = [
    """INSERT INTO wallet_accounts (id, program_id, tier) VALUES ($1, $2, 'Bronze')
       ON CONFLICT DO NOTHING""",
    """INSERT INTO members (id, program_id, email, password_hash, first_name, locale,
                            wallet_account_id, pin_hash)
       VALUES ($1, $2, $3, $4, 'Alice', 'fr-FR', $5, $6) ON CONFLICT DO NOTHING""",
    """INSERT INTO cards (id, member_id, program_id, number) VALUES ($1, $2, $3, $4)
       ON CONFLICT DO NOTHING""",
    """INSERT INTO member_consents (member_id, purpose, granted, policy_version, source)
       VALUES ($1, 'location_offers', true, $2, 'demo')""",
]


# The rewards catalogue: a product voucher, a discount and stored value (created once).
REWARDS = (
    RewardSpec(name="Un espresso offert", description="Au comptoir, dans tous nos cafés.",
               points_cost=150, kind="voucher", value=250, voucher_valid_for_s=30 * 86_400),
    RewardSpec(name="5 € de remise", description="Sur un achat de votre choix.",
               points_cost=400, kind="amount_off", value=500, voucher_valid_for_s=60 * 86_400,
               per_member_limit=3),
    RewardSpec(name="10 € sur le porte-monnaie", description="Crédités tout de suite.",
               points_cost=800, kind="stored_value", value=1000, voucher_valid_for_s=86_400,
               stock=100, tiers=("Silver", "Gold")),
)
HAS_REWARDS = "SELECT EXISTS (SELECT 1 FROM rewards WHERE program_id = $1)"


async def _new(conn: asyncpg.Connection, row_id: uuid.UUID) -> bool:
    return not await conn.fetchval(EXISTS, row_id)


async def seed_rows(conn: asyncpg.Connection, *, hasher: Hasher, max_extent_m: float,
                    notice: Notice) -> None:
    """Insert the demo rows that do not exist yet, in one transaction. `notice` is the
    privacy notice the server shows: published here, the demo member's consent names it."""
    async with conn.transaction():
        await notice_repo.publish(conn, notice)
        await conn.execute(INSERT_PROGRAM, PROGRAM_ID, msgspec.json.encode(TIERS).decode())
        for store_id, code, name, raw in STORES:
            zone = zone_to_geojson(validate_zone(decode_zone(raw), max_extent_m=max_extent_m))
            await conn.fetchval(INSERT_STORE, store_id, PROGRAM_ID, code, name,
                                msgspec.json.encode(zone).decode())
        for acc_id, email, password, role, stores in (
                (MANAGER_ID, MANAGER_EMAIL, MANAGER_PASSWORD, "manager", []),
                (STAFF_ID, STAFF_EMAIL, STAFF_PASSWORD, "staff", STAFF_STORES)):
            if await _new(conn, acc_id):
                await conn.execute(INSERT_ACCOUNT, acc_id, PROGRAM_ID, email,
                                   await hasher.hash_async(password), role, stores)
        if await _new(conn, MEMBER_ID):
            wallet, member, card, consent = INSERT_MEMBER
            await conn.execute(wallet, WALLET_ID, PROGRAM_ID)
            await conn.execute(member, MEMBER_ID, PROGRAM_ID, MEMBER_EMAIL,
                               await hasher.hash_async(MEMBER_PASSWORD), WALLET_ID,
                               await hasher.hash_async(MEMBER_PIN))
            await conn.execute(card, CARD_ID, MEMBER_ID, PROGRAM_ID, CARD_NUMBER)
            await conn.execute(consent, MEMBER_ID, notice.version)
        if not await conn.fetchval(HAS_REWARDS, PROGRAM_ID):
            start = datetime.now(UTC)
            for i, spec in enumerate(REWARDS):  # a millisecond apart: the catalogue's order
                now = start + timedelta(milliseconds=i)
                reward = await rewards_repo.insert(conn, PROGRAM_ID, spec, now)
                await rewards_repo.record_revision(conn, before=None, after=reward,
                                                   by=MANAGER_ID, action="create", now=now)


class DemoFigures(msgspec.Struct, frozen=True, kw_only=True):
    """The demo program as it is now (it may have been changed since it was seeded)."""

    name: str
    currency: str
    timezone: str
    store_codes: tuple[str, ...]  # live stores, by code
    staff_store_codes: tuple[str, ...]
    members: int
    active_campaigns: int
    rewards: tuple[str, ...]  # active rewards, catalogue order


FIGURES = """
SELECT p.name, p.currency, p.timezone,
       ARRAY(SELECT code FROM stores WHERE program_id = p.id AND deleted_at IS NULL
              ORDER BY code) AS store_codes,
       ARRAY(SELECT s.code FROM stores s JOIN accounts a ON s.id = ANY(a.store_ids)
              WHERE a.id = $2 AND s.deleted_at IS NULL ORDER BY s.code) AS staff_store_codes,
       (SELECT count(*) FROM members WHERE program_id = p.id) AS members,
       (SELECT count(*) FROM campaigns WHERE program_id = p.id AND status = 'active')
           AS active_campaigns,
       ARRAY(SELECT name FROM rewards WHERE program_id = p.id AND status = 'active'
              ORDER BY created_at, id) AS rewards
FROM programs p WHERE p.id = $1
"""


async def figures(conn: asyncpg.Connection) -> DemoFigures | None:
    """What the demo program holds now (None if it was deleted)."""
    row = await conn.fetchrow(FIGURES, PROGRAM_ID, STAFF_ID)
    if row is None:
        return None
    return DemoFigures(name=row["name"], currency=row["currency"], timezone=row["timezone"],
                       store_codes=tuple(row["store_codes"]),
                       staff_store_codes=tuple(row["staff_store_codes"]),
                       members=row["members"], active_campaigns=row["active_campaigns"],
                       rewards=tuple(row["rewards"]))
