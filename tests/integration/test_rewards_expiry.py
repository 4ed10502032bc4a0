"""Unused vouchers expire with the `expire` job; whether their points come back is the
program's setting, and when they do it is exactly the points the claim debited, as a ledger
entry with its own lot. Services on a real PostgreSQL, with the clock passed in."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from support import ledger_fixtures as fx

from api.config import Settings
from api.jobs import run_job
from wallet.rewards import claims_service, rewards_service
from wallet.rewards.rules import RewardSpec

NOW = datetime.now(UTC).replace(microsecond=0)


@pytest.fixture
async def pool(db_url: str) -> AsyncIterator[asyncpg.Pool]:
    p = await asyncpg.create_pool(db_url, min_size=1, max_size=3)
    try:
        yield p
    finally:
        await p.close()


async def _scenario(conn: asyncpg.Connection, pool: asyncpg.Pool, *, returns: bool,
                    cost: int = 150) -> tuple[fx.Member, uuid.UUID, uuid.UUID]:
    pid = await fx.program(conn, expiry_days=30)
    await conn.execute("UPDATE programs SET voucher_expiry_returns_points = $2 WHERE id = $1",
                       pid, returns)
    m = await fx.member(conn, pid)
    await fx.credit(conn, m, points=100, now=NOW - timedelta(days=20), expiry_days=30)
    await fx.credit(conn, m, points=100, now=NOW, expiry_days=30)
    reward = await rewards_service.create(
        pool, pid, RewardSpec(name="Tote bag", points_cost=cost, kind="voucher",
                              voucher_valid_for_s=3600, stock=5), by=uuid.uuid4(), now=NOW)
    claimed = await claims_service.claim(pool, member_id=m.id, program_id=pid,
                                         reward_id=reward.id, idem=None, now=NOW)
    return m, reward.id, claimed.result.voucher.id


async def test_an_expired_voucher_returns_exactly_its_points_once_in_a_new_lot(
        conn: asyncpg.Connection, pool: asyncpg.Pool) -> None:
    m, reward_id, voucher_id = await _scenario(conn, pool, returns=True)
    assert (await fx.snapshot(conn, m)).points == 50
    early = await claims_service.expire_due(pool, now=NOW + timedelta(seconds=3599))
    assert early.vouchers == 0
    later = NOW + timedelta(hours=2)
    report = await claims_service.expire_due(pool, now=later)
    assert (report.accounts, report.vouchers, report.points_returned) == (1, 1, 150)
    again = await claims_service.expire_due(pool, now=later)
    assert again.vouchers == 0
    assert (await fx.snapshot(conn, m)).points == 200
    row = await conn.fetchrow("SELECT status, points_returned, ended_at FROM vouchers "
                              "WHERE id = $1", voucher_id)
    assert row is not None and tuple(row) == ("expired", 150, later)
    lot = await conn.fetchrow("SELECT source, points, remaining, expires_at FROM points_lots "
                              "WHERE source = 'reward_return'")
    assert lot is not None and tuple(lot) == ("reward_return", 150, 150,
                                              later + timedelta(days=30))
    kinds = [(r[0], r[1]) for r in await conn.fetch(
        "SELECT kind, points FROM ledger_entries WHERE wallet_account_id = $1 ORDER BY seq",
        m.account_id)]
    assert kinds == [("adjust", 100), ("adjust", 100), ("reward_claim", -100),
                     ("reward_claim", -50), ("reward_return", 150)]
    assert await fx.ledger_sums(conn, m.account_id) == (200, 0, 200)
    stats = await rewards_service.stats(pool, m.program_id, reward_id)
    assert (stats.claimed, stats.expired, stats.points_spent, stats.points_returned) == (
        1, 1, 150, 150)


async def test_a_program_that_keeps_the_points_expires_vouchers_without_an_entry(
        conn: asyncpg.Connection, pool: asyncpg.Pool) -> None:
    m, _, voucher_id = await _scenario(conn, pool, returns=False)
    report = await claims_service.expire_due(pool, now=NOW + timedelta(hours=2))
    assert (report.vouchers, report.points_returned) == (1, 0)
    assert (await fx.snapshot(conn, m)).points == 50
    assert await conn.fetchval("SELECT status FROM vouchers WHERE id = $1",
                               voucher_id) == "expired"
    assert await conn.fetchval(
        "SELECT count(*) FROM ledger_entries WHERE kind = 'reward_return'") == 0


async def test_a_used_voucher_never_expires(conn: asyncpg.Connection,
                                           pool: asyncpg.Pool) -> None:
    m, _, voucher_id = await _scenario(conn, pool, returns=True)
    await conn.execute("UPDATE vouchers SET status = 'used', used_at = $2 WHERE id = $1",
                       voucher_id, NOW)
    report = await claims_service.expire_due(pool, now=NOW + timedelta(days=1))
    assert report.vouchers == 0 and (await fx.snapshot(conn, m)).points == 50


async def test_the_expire_job_expires_due_vouchers_after_the_points_lots(
        conn: asyncpg.Connection, pool: asyncpg.Pool, db_url: str,
        settings: Settings) -> None:
    m, _, voucher_id = await _scenario(conn, pool, returns=True, cost=20)
    await conn.execute("UPDATE vouchers SET expires_at = claimed_at WHERE id = $1", voucher_id)
    report = await run_job("expire", db_url, settings)
    assert report.endswith("vouchers: 1 expired, 20 points returned"), report
    assert (await fx.snapshot(conn, m)).points == 200
    assert (await run_job("expire", db_url, settings)).endswith("vouchers: 0 expired, "
                                                                "0 points returned")
