"""Rows for ledger and till tests, inserted with plain SQL (no dependency on the programs and
members services), plus the credits made through the ledger's own repository so the
balance chain stays true."""

from __future__ import annotations

import json
import secrets
import uuid
from datetime import UTC, datetime
from typing import NamedTuple

import asyncpg

from wallet.ledger import account_repo, rules
from wallet.ledger import ledger_repo as ledger

Conn = asyncpg.Connection


async def program(conn: Conn, *, currency: str = "EUR", earn_points: int = 1,
                  earn_per_amount: int = 100, expiry_days: int = 365,
                  tiers: list[dict[str, object]] | None = None,
                  stored_value: bool = True) -> uuid.UUID:
    """A program: by default 1 point per 1.00 EUR, points valid a year, stored value on."""
    pid = uuid.uuid4()
    await conn.execute(
        "INSERT INTO programs (id, name, currency, timezone, earn_points, earn_per_amount, "
        "points_expiry_days, tiers, stored_value) VALUES ($1, $2, $3, 'Europe/Paris', $4, $5, "
        "$6, $7::jsonb, $8)", pid, f"program {pid.hex[:6]}", currency, earn_points,
        earn_per_amount, expiry_days, json.dumps(tiers or []), stored_value)
    return pid


async def store(conn: Conn, program_id: uuid.UUID) -> uuid.UUID:
    sid = uuid.uuid4()
    zone = {"type": "Circle", "center": [2.35, 48.85], "radius_m": 100}
    await conn.execute(
        "INSERT INTO stores (id, program_id, code, name, zone) VALUES ($1, $2, $3, $4, $5)",
        sid, program_id, f"S{sid.hex[:8]}", "A store", json.dumps(zone))
    return sid


class Member(NamedTuple):
    id: uuid.UUID
    account_id: uuid.UUID
    card_id: uuid.UUID
    card_number: str
    program_id: uuid.UUID


async def member(conn: Conn, program_id: uuid.UUID, *, pin_hash: str | None = None,
                 card_status: str = "active") -> Member:
    """A member with a wallet account (empty) and one card."""
    account_id, member_id, card_id = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    number = "9" + "".join(str(secrets.randbelow(10)) for _ in range(15))
    await conn.execute("INSERT INTO wallet_accounts (id, program_id) VALUES ($1, $2)",
                       account_id, program_id)
    await conn.execute(
        "INSERT INTO members (id, program_id, email, password_hash, first_name, "
        "wallet_account_id, pin_hash) VALUES ($1, $2, $3, 'x', 'Ada', $4, $5)",
        member_id, program_id, f"{member_id.hex[:10]}@example.com", account_id, pin_hash)
    await conn.execute(
        "INSERT INTO cards (id, member_id, program_id, number, status) "
        "VALUES ($1, $2, $3, $4, $5)", card_id, member_id, program_id, number, card_status)
    return Member(member_id, account_id, card_id, number, program_id)


async def credit(conn: Conn, m: Member, *, points: int = 0, stored_value: int = 0,
                 now: datetime | None = None, expiry_days: int = 365) -> None:
    """Credit points (one lot, `adjust`) and stored value through the ledger repository."""
    now = now or datetime.now(UTC)
    async with conn.transaction():
        locked = await account_repo.lock_account(conn, m.account_id)
        effect = rules.adjust(locked.balances, points=points, stored_value=stored_value,
                              now=now, lot_id=uuid.uuid4(), expiry_days=expiry_days)
        await ledger.apply(conn, ledger.Write(account_id=m.account_id,
                                              program_id=m.program_id, effect=effect, at=now))


class Snapshot(NamedTuple):
    points: int
    stored_value: int
    entries: int
    lots: int
    transactions: int


async def snapshot(conn: Conn, m: Member) -> Snapshot:
    """Cached balances and row counts of a wallet account, to show what changed."""
    row = await conn.fetchrow(
        """SELECT w.points_balance, w.stored_value_balance,
             (SELECT count(*) FROM ledger_entries e WHERE e.wallet_account_id = w.id) AS e,
             (SELECT count(*) FROM points_lots l WHERE l.wallet_account_id = w.id) AS l,
             (SELECT count(*) FROM transactions t WHERE t.wallet_account_id = w.id) AS t
           FROM wallet_accounts w WHERE w.id = $1""", m.account_id)
    assert row is not None
    return Snapshot(*row)


async def ledger_sums(conn: Conn, account_id: uuid.UUID) -> tuple[int, int, int]:
    """(sum of point deltas, sum of stored-value deltas, sum of open lots) of an account."""
    row = await conn.fetchrow(
        """SELECT coalesce(sum(points), 0), coalesce(sum(stored_value), 0),
             (SELECT coalesce(sum(remaining), 0) FROM points_lots WHERE wallet_account_id = $1)
           FROM ledger_entries WHERE wallet_account_id = $1""", account_id)
    assert row is not None
    return int(row[0]), int(row[1]), int(row[2])
