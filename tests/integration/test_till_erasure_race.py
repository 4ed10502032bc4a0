"""A till purchase racing the member's erasure (issue 13: why the access log keeps its
foreign key to members). The erasure holds the wallet account's row; the purchase's write
queues behind it and, the row being unchanged when the erasure commits, goes ahead: only the
access log's foreign key then stands between it and an entry naming the erased member."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import asyncpg
import pytest
from support import ledger_fixtures as fx
from support.locks import wait_until_blocked

from wallet.kernel import errors
from wallet.kernel.hashing import Hasher
from wallet.kernel.idempotency_repo import IdemKey
from wallet.ledger import earn_fast, till
from wallet.privacy import erasure

NOW = datetime.now(UTC).replace(microsecond=0)


@pytest.fixture
async def pool(db_url: str) -> AsyncIterator[asyncpg.Pool]:
    p = await asyncpg.create_pool(db_url, min_size=1, max_size=1,
                                  server_settings={"timezone": "UTC"})
    try:
        yield p
    finally:
        await p.close()


@pytest.mark.parametrize("path", ["one statement", "two trips"])
async def test_a_purchase_racing_the_erasure_leaves_nothing_naming_the_member(
        db_url: str, conn: asyncpg.Connection, pool: asyncpg.Pool, path: str) -> None:
    pid = await fx.program(conn)
    sid = await fx.store(conn, pid)
    m = await fx.member(conn, pid)
    cache = earn_fast.RulesCache() if path == "one statement" else None
    async with pool.acquire() as c:
        buyer = c.get_server_pid()
    if cache is not None:
        await cache.get(conn, pid)  # the worker's rules, loaded before the race
    key = IdemKey(scope="staff-1", key="k", request_hash=b"h" * 32)
    holder = await asyncpg.connect(db_url)
    try:
        async with holder.transaction():
            await erasure.erase(holder, m.id)  # holds the account and member rows
            purchase = asyncio.create_task(till.purchase(
                pool, till.Caller(account_id=uuid.uuid4(), program_id=pid), store_id=sid,
                card=m.card_number, receipt_id="r1", amount=1_000, currency="EUR", idem=key,
                hasher=Hasher(memory_kib=8, time_cost=1),
                pin_policy=till.PinPolicy(max_attempts=5, lock_s=60), rules_cache=cache,
                now=NOW))
            await wait_until_blocked(holder, buyer, holder.get_server_pid())
    finally:
        await holder.close()
    with pytest.raises(errors.NotFound):  # the card went with the member
        await purchase
    assert await conn.fetchval("SELECT count(*) FROM access_log WHERE member_id = $1",
                               m.id) == 0
    assert await conn.fetchval("SELECT count(*) FROM transactions WHERE wallet_account_id = $1",
                               m.account_id) == 0
    assert await conn.fetchval("SELECT count(*) FROM idempotency_keys") == 0
