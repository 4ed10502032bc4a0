"""The catalogue's SQL: rewards, their revisions and their statistics, with the program facts
their rules need. Functions take a connection and never open transactions (the services own
them); this module and `vouchers_repo.py` are the only ones of the area that catch asyncpg
exceptions."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

import asyncpg
import msgspec

from wallet.kernel.db import Conn
from wallet.kernel.errors import NotFound, RuleViolation
from wallet.kernel.model import Tier
from wallet.rewards.rules import Reward, RewardSpec, RewardStatus

_TIERS = msgspec.json.Decoder(list[Tier])
_json = msgspec.json.Encoder()

COLUMNS = """id, program_id, name, description, image_url, points_cost, kind, value, stock,
  claimed, per_member_limit, claimable_from, claimable_until, voucher_valid_for_s, tiers,
  store_ids, status, revision, created_at, updated_at, retired_at"""


def reward_of(row: asyncpg.Record) -> Reward:
    spec = RewardSpec(
        name=row["name"], description=row["description"], image_url=row["image_url"],
        points_cost=row["points_cost"], kind=row["kind"], value=row["value"],
        stock=row["stock"], per_member_limit=row["per_member_limit"],
        claimable_from=row["claimable_from"], claimable_until=row["claimable_until"],
        voucher_valid_for_s=row["voucher_valid_for_s"], tiers=tuple(row["tiers"]),
        store_ids=tuple(row["store_ids"]))
    return Reward(id=row["id"], program_id=row["program_id"], spec=spec, status=row["status"],
                  claimed=row["claimed"], revision=row["revision"],
                  created_at=row["created_at"], updated_at=row["updated_at"],
                  retired_at=row["retired_at"])


class ProgramFacts(msgspec.Struct, frozen=True, kw_only=True):
    tier_names: tuple[str, ...]
    stored_value: bool
    points_expiry_days: int
    voucher_expiry_returns_points: bool


PROGRAM_FACTS = """
SELECT tiers::text AS tiers, stored_value, points_expiry_days, voucher_expiry_returns_points
FROM programs WHERE id = $1
"""


async def program_facts(conn: Conn, program_id: uuid.UUID) -> ProgramFacts:
    row = await conn.fetchrow(PROGRAM_FACTS, program_id)
    if row is None:
        raise NotFound("no such program", field="program_id")
    return ProgramFacts(tier_names=tuple(t.name for t in _TIERS.decode(row["tiers"])),
                        stored_value=row["stored_value"],
                        points_expiry_days=row["points_expiry_days"],
                        voucher_expiry_returns_points=row["voucher_expiry_returns_points"])


LIVE_STORES = """
SELECT id FROM stores WHERE program_id = $1 AND deleted_at IS NULL AND id = ANY($2::uuid[])
"""


async def live_stores(conn: Conn, program_id: uuid.UUID,
                      store_ids: tuple[uuid.UUID, ...]) -> set[uuid.UUID]:
    """Those of `store_ids` that are live stores of the program."""
    if not store_ids:
        return set()
    return {r["id"] for r in await conn.fetch(LIVE_STORES, program_id, list(store_ids))}


def _spec_args(spec: RewardSpec) -> tuple[object, ...]:
    return (spec.name, spec.description, spec.image_url, spec.points_cost, spec.kind,
            spec.value, spec.stock, spec.per_member_limit, spec.claimable_from,
            spec.claimable_until, spec.voucher_valid_for_s, list(spec.tiers),
            list(spec.store_ids))


INSERT = f"""
INSERT INTO rewards (id, program_id, created_at, updated_at, name, description, image_url,
                     points_cost, kind, value, stock, per_member_limit, claimable_from,
                     claimable_until, voucher_valid_for_s, tiers, store_ids)
VALUES ($1, $2, $3, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15::text[],
        $16::uuid[])
RETURNING {COLUMNS}
"""


async def insert(conn: Conn, program_id: uuid.UUID, spec: RewardSpec, now: datetime) -> Reward:
    row = await conn.fetchrow(INSERT, uuid.uuid4(), program_id, now, *_spec_args(spec))
    assert row is not None
    return reward_of(row)


SELECT_ONE = f"SELECT {COLUMNS} FROM rewards WHERE id = $1 AND program_id = $2"


async def get(conn: Conn, program_id: uuid.UUID, reward_id: uuid.UUID, *,
              for_update: bool = False) -> Reward:
    """The reward, or NotFound naming `reward_id` (also for a reward of another program)."""
    row = await conn.fetchrow(SELECT_ONE + (" FOR UPDATE" if for_update else ""),
                              reward_id, program_id)
    if row is None:
        raise NotFound("no such reward in this program", field="reward_id")
    return reward_of(row)


SELECT_PAGE = f"""
SELECT {COLUMNS} FROM rewards
WHERE program_id = $1 AND ($2::text IS NULL OR status = $2)
  AND ($3::timestamptz IS NULL OR (created_at, id) > ($3, $4::uuid))
ORDER BY created_at, id
LIMIT $5
"""


async def page(conn: Conn, program_id: uuid.UUID, *, status: RewardStatus | None,
               after: tuple[datetime, uuid.UUID] | None, limit: int) -> list[Reward]:
    """The program's rewards, oldest first, after the key `after` (exclusive)."""
    rows = await conn.fetch(SELECT_PAGE, program_id, status, after[0] if after else None,
                            after[1] if after else None, limit)
    return [reward_of(r) for r in rows]


VISIBLE_PAGE = f"""
SELECT {COLUMNS} FROM rewards
WHERE program_id = $1 AND status = 'active'
  AND (claimable_until IS NULL OR claimable_until > $2)
  AND (cardinality(tiers) = 0 OR $3::text = ANY (tiers))
  AND ($4::timestamptz IS NULL OR (created_at, id) > ($4, $5::uuid))
ORDER BY created_at, id
LIMIT $6
"""


async def visible_page(conn: Conn, program_id: uuid.UUID, *, tier: str | None, now: datetime,
                       after: tuple[datetime, uuid.UUID] | None, limit: int) -> list[Reward]:
    """The active rewards a member in `tier` sees whose window has not closed at `now`,
    oldest first, after the key `after` (exclusive)."""
    rows = await conn.fetch(VISIBLE_PAGE, program_id, now, tier, after[0] if after else None,
                            after[1] if after else None, limit)
    return [reward_of(r) for r in rows]


POINTS_AVAILABLE = """
SELECT w.points_balance - coalesce((SELECT sum(l.remaining) FROM points_lots l
                                     WHERE l.wallet_account_id = w.id AND l.remaining > 0
                                       AND l.expires_at <= $2), 0)::bigint
FROM wallet_accounts w WHERE w.id = $1
"""


async def points_available(conn: Conn, account_id: uuid.UUID, now: datetime) -> int:
    """The points a claim at `now` can spend: the balance less the lots due to expire."""
    return int(await conn.fetchval(POINTS_AVAILABLE, account_id, now) or 0)


UPDATE = f"""
UPDATE rewards SET name = $2, description = $3, image_url = $4, points_cost = $5, kind = $6,
       value = $7, stock = $8, per_member_limit = $9, claimable_from = $10,
       claimable_until = $11, voucher_valid_for_s = $12, tiers = $13::text[],
       store_ids = $14::uuid[], revision = revision + 1, updated_at = $15
WHERE id = $1
RETURNING {COLUMNS}
"""


async def update(conn: Conn, reward_id: uuid.UUID, spec: RewardSpec, now: datetime) -> Reward:
    """Replace the definition (lock the row first). A stock below the vouchers claimed (by
    a claim that committed after the lock's read) is refused naming `stock`."""
    try:
        row = await conn.fetchrow(UPDATE, reward_id, *_spec_args(spec), now)
    except asyncpg.CheckViolationError as exc:
        if exc.constraint_name == "rewards_stock":
            raise RuleViolation("the stock is below the vouchers already claimed",
                                field="stock") from exc
        raise
    assert row is not None
    return reward_of(row)


RETIRE = f"""
UPDATE rewards SET status = 'retired', retired_at = $2, revision = revision + 1,
       updated_at = $2
WHERE id = $1
RETURNING {COLUMNS}
"""


async def retire(conn: Conn, reward_id: uuid.UUID, now: datetime) -> Reward:
    row = await conn.fetchrow(RETIRE, reward_id, now)
    assert row is not None
    return reward_of(row)


class Revision(msgspec.Struct, frozen=True, kw_only=True):
    revision: int
    changed_at: datetime
    changed_by: uuid.UUID
    action: Literal["create", "update", "retire"]
    before: msgspec.Raw | None
    after: msgspec.Raw


class _Snapshot(msgspec.Struct, frozen=True, kw_only=True):
    """A reward as a revision records it: its definition, status and revision."""

    status: RewardStatus
    revision: int
    spec: RewardSpec


def _snapshot(r: Reward) -> str:
    return _json.encode(_Snapshot(status=r.status, revision=r.revision, spec=r.spec)).decode()


RECORD_REVISION = """
INSERT INTO reward_revisions (reward_id, revision, changed_at, changed_by, action, before,
                              after)
VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7::jsonb)
"""


async def record_revision(conn: Conn, *, before: Reward | None, after: Reward,
                          by: uuid.UUID, action: Literal["create", "update", "retire"],
                          now: datetime) -> None:
    await conn.execute(RECORD_REVISION, after.id, after.revision, now, by, action,
                       _snapshot(before) if before else None, _snapshot(after))


REVISIONS = """
SELECT revision, changed_at, changed_by, action, before::text AS before, after::text AS after
FROM reward_revisions
WHERE reward_id = $1 AND ($2::integer IS NULL OR revision < $2)
ORDER BY revision DESC
LIMIT $3
"""


async def revisions(conn: Conn, reward_id: uuid.UUID, *, before: int | None,
                    limit: int) -> list[Revision]:
    """The reward's revisions, newest first, below revision `before` when given."""
    rows = await conn.fetch(REVISIONS, reward_id, before, limit)
    return [Revision(revision=r["revision"], changed_at=r["changed_at"],
                     changed_by=r["changed_by"], action=r["action"],
                     before=msgspec.Raw(r["before"].encode()) if r["before"] else None,
                     after=msgspec.Raw(r["after"].encode())) for r in rows]


class Stats(msgspec.Struct, frozen=True, kw_only=True):
    """What a reward achieved. `points_spent` counts every claim, `points_returned` what
    expired vouchers gave back (so the points it cost members are the difference)."""

    reward_id: uuid.UUID
    claimed: int
    active: int  # claimed, neither used, expired nor cancelled (expiry may be due)
    used: int  # includes stored-value rewards, credited (used) at claim
    expired: int
    cancelled: int  # unused vouchers of erased members
    points_spent: int
    points_returned: int
    stock: int | None
    stock_left: int | None


STATS = """
SELECT count(*) AS claimed,
       count(*) FILTER (WHERE status = 'active') AS active,
       count(*) FILTER (WHERE status = 'used') AS used,
       count(*) FILTER (WHERE status = 'expired') AS expired,
       count(*) FILTER (WHERE status = 'cancelled') AS cancelled,
       coalesce(sum(points_spent), 0)::bigint AS points_spent,
       coalesce(sum(points_returned), 0)::bigint AS points_returned
FROM vouchers WHERE reward_id = $1
"""


async def stats(conn: Conn, reward: Reward) -> Stats:
    row = await conn.fetchrow(STATS, reward.id)
    assert row is not None
    stock = reward.spec.stock
    return Stats(reward_id=reward.id, **dict(row), stock=stock,
                 stock_left=None if stock is None else max(0, stock - reward.claimed))
