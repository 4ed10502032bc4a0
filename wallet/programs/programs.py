"""Programs: the rules of validation (pure), their SQL, and the services that own transactions.

A program's tiers are stored as a JSON array of `wallet.model.Tier` (`name`,
`min_points_12m`, `multiplier_milli`) sorted by threshold; `program_from_row` turns a
`programs` row back into a `Program`, for any module that needs one.
"""

from __future__ import annotations

import math
import uuid
import zoneinfo
from collections.abc import Sequence
from datetime import datetime

import asyncpg
import msgspec

from wallet.kernel.db import Conn
from wallet.kernel.errors import Conflict, NotFound, RuleViolation
from wallet.kernel.model import Limits, Program, Tier

# --- the pure core ------------------------------------------------------------------------


class ProgramSpec(msgspec.Struct, frozen=True, kw_only=True):
    """Everything that defines a program, already shape-checked at the boundary."""

    name: str
    currency: str
    timezone: str
    earn_points: int
    earn_per_amount: int
    points_expiry_days: int
    tiers: tuple[Tier, ...]
    stored_value: bool
    voucher_expiry_returns_points: bool = True
    locale: str = "en"
    cross_store_refunds: bool = True
    limits: Limits = Limits()


class LimitChanges(msgspec.Struct, frozen=True, kw_only=True):
    """Some of a program's limits; UNSET ones stay as they are."""

    max_purchase_amount: int | msgspec.UnsetType = msgspec.UNSET
    max_top_up_amount: int | msgspec.UnsetType = msgspec.UNSET
    max_stored_value_balance: int | msgspec.UnsetType = msgspec.UNSET


class ProgramChanges(msgspec.Struct, frozen=True, kw_only=True):
    """A partial update: UNSET fields stay as they are."""

    name: str | msgspec.UnsetType = msgspec.UNSET
    currency: str | msgspec.UnsetType = msgspec.UNSET
    timezone: str | msgspec.UnsetType = msgspec.UNSET
    earn_points: int | msgspec.UnsetType = msgspec.UNSET
    earn_per_amount: int | msgspec.UnsetType = msgspec.UNSET
    points_expiry_days: int | msgspec.UnsetType = msgspec.UNSET
    tiers: tuple[Tier, ...] | msgspec.UnsetType = msgspec.UNSET
    stored_value: bool | msgspec.UnsetType = msgspec.UNSET
    voucher_expiry_returns_points: bool | msgspec.UnsetType = msgspec.UNSET
    locale: str | msgspec.UnsetType = msgspec.UNSET
    cross_store_refunds: bool | msgspec.UnsetType = msgspec.UNSET
    limits: LimitChanges | msgspec.UnsetType = msgspec.UNSET


def multiplier_milli(multiplier: float, *, field: str) -> int:
    """1.25 → 1250. Refuses what thousandths cannot hold exactly (1.2345), rather than
    silently rounding a manager's number."""
    milli = round(multiplier * 1000)
    if not math.isfinite(multiplier) or abs(multiplier * 1000 - milli) > 1e-6:
        raise RuleViolation("an earn multiplier has at most three decimals", field=field)
    return milli


def check_timezone(name: str, *, field: str = "timezone") -> str:
    """`name` if it is an IANA time zone this machine knows (e.g. "Europe/Paris")."""
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
        raise RuleViolation(f"unknown IANA time zone {name!r}", field=field) from exc
    return name


def check_tiers(tiers: Sequence[Tier], *, field: str = "tiers") -> tuple[Tier, ...]:
    """Tiers with unique names and unique thresholds, sorted by threshold (ascending).

    Errors name the offending item by its index in the input.
    """
    names: set[str] = set()
    thresholds: set[int] = set()
    for i, tier in enumerate(tiers):
        if tier.name.casefold() in names:
            raise RuleViolation(f"tier name {tier.name!r} is used twice",
                                field=f"{field}[{i}].name")
        if tier.min_points_12m in thresholds:
            raise RuleViolation(f"two tiers start at {tier.min_points_12m} points",
                                field=f"{field}[{i}].min_points_12m")
        names.add(tier.name.casefold())
        thresholds.add(tier.min_points_12m)
    return tuple(sorted(tiers, key=lambda t: t.min_points_12m))


def entry_tier(tiers: Sequence[Tier]) -> Tier | None:
    """The tier a new member starts in: the one whose threshold is 0, if any."""
    return next((t for t in tiers if t.min_points_12m == 0), None)


# With the earn rate, the purchase ceiling bounds the points one purchase can earn.
MAX_POINTS_PER_PURCHASE = 10**9
MAX_MULTIPLIER_MILLI = 10_000  # tiers multiply by x10 at most (the API's bound)


def check_limits(spec: ProgramSpec) -> None:
    """Limits that keep a purchase's points bounded: at the purchase ceiling and the highest
    tier multiplier, one purchase earns at most `MAX_POINTS_PER_PURCHASE` points (offer
    multipliers and bonuses aside), so no amount the till accepts makes points explode."""
    most = (spec.limits.max_purchase_amount * spec.earn_points * MAX_MULTIPLIER_MILLI
            // (spec.earn_per_amount * 1000))
    if most > MAX_POINTS_PER_PURCHASE:
        raise RuleViolation(
            f"with this earn rate, one purchase of {spec.limits.max_purchase_amount} could earn "
            f"{most} points (at most {MAX_POINTS_PER_PURCHASE}): lower "
            "limits.max_purchase_amount or the earn rate", field="limits.max_purchase_amount")


def check_spec(spec: ProgramSpec) -> ProgramSpec:
    """The spec with its tiers sorted, or a RuleViolation naming the field."""
    check_timezone(spec.timezone)
    check_limits(spec)
    return msgspec.structs.replace(spec, tiers=check_tiers(spec.tiers))


def apply_changes(current: Program, changes: ProgramChanges) -> ProgramSpec:
    """The spec `current` becomes with `changes` applied, validated."""
    fields = {f: getattr(current, f) for f in ProgramSpec.__struct_fields__}
    fields.update({f: v for f in ProgramChanges.__struct_fields__
                   if (v := getattr(changes, f)) is not msgspec.UNSET})
    if isinstance(changes.limits, LimitChanges):
        fields["limits"] = msgspec.structs.replace(current.limits, **{
            f: v for f in LimitChanges.__struct_fields__
            if (v := getattr(changes.limits, f)) is not msgspec.UNSET})
    return check_spec(ProgramSpec(**fields))


# --- SQL ------------------------------------------------------------------------------------

_TIERS = msgspec.json.Decoder(tuple[Tier, ...])


def program_from_row(row: asyncpg.Record) -> Program:
    """A `programs` row (every column) as a Program."""
    return Program(
        id=row["id"], name=row["name"], currency=row["currency"], timezone=row["timezone"],
        earn_points=row["earn_points"], earn_per_amount=row["earn_per_amount"],
        points_expiry_days=row["points_expiry_days"], tiers=_TIERS.decode(row["tiers"]),
        stored_value=row["stored_value"], created_at=row["created_at"],
        updated_at=row["updated_at"],
        voucher_expiry_returns_points=row["voucher_expiry_returns_points"],
        locale=row["locale"], cross_store_refunds=row["cross_store_refunds"],
        limits=limits_from_row(row))


def limits_from_row(row: asyncpg.Record) -> Limits:
    """The `max_*` columns of a row (of `programs`, or a query that selects them)."""
    return Limits(max_purchase_amount=row["max_purchase_amount"],
                  max_top_up_amount=row["max_top_up_amount"],
                  max_stored_value_balance=row["max_stored_value_balance"])


INSERT_PROGRAM = """
INSERT INTO programs (id, name, currency, timezone, earn_points, earn_per_amount,
                      points_expiry_days, tiers, stored_value, voucher_expiry_returns_points,
                      locale, cross_store_refunds, max_purchase_amount, max_top_up_amount,
                      max_stored_value_balance)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb, $9, $10, $11, $12, $13, $14, $15)
RETURNING *
"""


async def insert_program(conn: Conn, spec: ProgramSpec) -> Program:
    row = await conn.fetchrow(
        INSERT_PROGRAM, uuid.uuid4(), spec.name, spec.currency, spec.timezone, spec.earn_points,
        spec.earn_per_amount, spec.points_expiry_days, msgspec.json.encode(spec.tiers).decode(),
        spec.stored_value, spec.voucher_expiry_returns_points, spec.locale,
        spec.cross_store_refunds, *_limit_args(spec.limits))
    assert row is not None
    return program_from_row(row)


def _limit_args(limits: Limits) -> tuple[int, int, int]:
    return (limits.max_purchase_amount, limits.max_top_up_amount,
            limits.max_stored_value_balance)


SELECT_PROGRAM = "SELECT * FROM programs WHERE id = $1"
SELECT_PROGRAM_FOR_UPDATE = "SELECT * FROM programs WHERE id = $1 FOR UPDATE"


async def fetch_program(conn: Conn, program_id: uuid.UUID, *,
                        for_update: bool = False) -> Program:
    """The program, or NotFound. `for_update` locks its row until the transaction ends."""
    row = await conn.fetchrow(SELECT_PROGRAM_FOR_UPDATE if for_update else SELECT_PROGRAM,
                              program_id)
    if row is None:
        raise NotFound("no such program", field="program_id")
    return program_from_row(row)


UPDATE_PROGRAM = """
UPDATE programs SET name = $2, currency = $3, timezone = $4, earn_points = $5,
       earn_per_amount = $6, points_expiry_days = $7, tiers = $8::jsonb, stored_value = $9,
       voucher_expiry_returns_points = $10, locale = $11, cross_store_refunds = $12,
       max_purchase_amount = $13, max_top_up_amount = $14, max_stored_value_balance = $15,
       updated_at = now()
WHERE id = $1
RETURNING *
"""


async def update_program_row(conn: Conn, program_id: uuid.UUID,
                             spec: ProgramSpec) -> Program:
    row = await conn.fetchrow(
        UPDATE_PROGRAM, program_id, spec.name, spec.currency, spec.timezone, spec.earn_points,
        spec.earn_per_amount, spec.points_expiry_days, msgspec.json.encode(spec.tiers).decode(),
        spec.stored_value, spec.voucher_expiry_returns_points, spec.locale,
        spec.cross_store_refunds, *_limit_args(spec.limits))
    if row is None:
        raise NotFound("no such program", field="program_id")
    return program_from_row(row)


LIST_PROGRAMS = """
SELECT * FROM programs
WHERE ($1::timestamptz IS NULL OR (created_at, id) > ($1::timestamptz, $2::uuid))
ORDER BY created_at, id
LIMIT $3
"""


async def list_programs(pool: asyncpg.Pool, *, limit: int,
                        after: tuple[datetime, uuid.UUID] | None) -> list[Program]:
    """Every program, oldest first, strictly after `after` (a keyset cursor)."""
    at, id_ = after if after else (None, None)
    async with pool.acquire() as conn:
        return [program_from_row(r) for r in await conn.fetch(LIST_PROGRAMS, at, id_, limit)]


HAS_WALLETS = "SELECT EXISTS (SELECT 1 FROM wallet_accounts WHERE program_id = $1)"


async def has_wallets(conn: Conn, program_id: uuid.UUID) -> bool:
    return bool(await conn.fetchval(HAS_WALLETS, program_id))


# --- services -------------------------------------------------------------------------------


async def create_program(pool: asyncpg.Pool, spec: ProgramSpec) -> Program:
    """Validate and store a new program."""
    spec = check_spec(spec)
    async with pool.acquire() as conn:
        return await insert_program(conn, spec)


async def get_program(pool: asyncpg.Pool, program_id: uuid.UUID) -> Program:
    async with pool.acquire() as conn:
        return await fetch_program(conn, program_id)


async def update_program(pool: asyncpg.Pool, program_id: uuid.UUID,
                         changes: ProgramChanges) -> Program:
    """Apply a partial update. The currency is fixed once members hold balances in it."""
    async with pool.acquire() as conn, conn.transaction():
        current = await fetch_program(conn, program_id, for_update=True)
        spec = apply_changes(current, changes)
        if spec.currency != current.currency and await has_wallets(conn, program_id):
            raise Conflict("the currency cannot change once the program has members",
                           field="currency")
        return await update_program_row(conn, program_id, spec)
