"""`loyalty expire`: expires exactly the due lots, once, even when two runs race."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from support import ledger_fixtures as fx

from api.config import Settings
from api.jobs import UnknownJob, run_job


async def test_expire_takes_the_due_remainder_once_and_a_second_run_finds_nothing(
        conn: asyncpg.Connection, db_url: str, settings: Settings) -> None:
    pid = await fx.program(conn, expiry_days=30)
    m = await fx.member(conn, pid)
    await fx.credit(conn, m, points=70, now=datetime.now(UTC) - timedelta(days=31),
                    expiry_days=30)
    await fx.credit(conn, m, points=5, expiry_days=30)
    first, second = await asyncio.gather(run_job("expire", db_url, settings),
                                         run_job("expire", db_url, settings))
    assert "70 points expired from 1 lots" in first + second
    again = await run_job("expire", db_url, settings)
    assert again.startswith("expire: 0 points")
    assert (await fx.snapshot(conn, m)).points == 5
    assert await conn.fetchval("SELECT count(*) FROM ledger_entries WHERE kind = 'expire'") == 1
    assert await fx.ledger_sums(conn, m.account_id) == (5, 0, 5)


async def test_an_unknown_job_name_is_a_clear_error(db_url: str, settings: Settings) -> None:
    with pytest.raises(UnknownJob, match="known jobs are expire"):
        await run_job("vacuum-everything", db_url, settings)


async def test_the_ledger_refuses_updates_and_deletes(conn: asyncpg.Connection) -> None:
    pid = await fx.program(conn)
    m = await fx.member(conn, pid)
    await fx.credit(conn, m, points=10)
    with pytest.raises(asyncpg.RestrictViolationError):
        await conn.execute("UPDATE ledger_entries SET points = 1000")
    with pytest.raises(asyncpg.RestrictViolationError):
        await conn.execute("DELETE FROM ledger_entries")


async def test_a_balance_that_differs_from_the_ledger_cannot_commit(
        conn: asyncpg.Connection) -> None:
    pid = await fx.program(conn)
    m = await fx.member(conn, pid)
    await fx.credit(conn, m, stored_value=10)
    with pytest.raises(asyncpg.CheckViolationError):
        await conn.execute("UPDATE wallet_accounts SET stored_value_balance = 1000000 "
                           "WHERE id = $1", m.account_id)
