"""`ledger.lock_card_state` reads what a till needs in the statement that locks the account.

That statement's snapshot is taken before the lock is granted; a till that waited for the lock
must still see everything the holder committed (lots, balances, the Idempotency-Key), or it
would spend points already spent. These tests hold the lock on one connection, commit a write,
and check what a second connection that waited on the lock read."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

import asyncpg
from support import ledger_fixtures as fx
from support.locks import wait_until_blocked

from wallet.kernel.idempotency_repo import IdemKey
from wallet.ledger import account_repo as ledger
from wallet.ledger import ledger_repo, rules

NOW = datetime(2025, 6, 1, 12, tzinfo=UTC)


def _key(name: str) -> IdemKey:
    return IdemKey(scope="staff:POST /v1/pos/purchases", key=name, request_hash=b"h" * 32)


async def _lock_state(other: asyncpg.Connection, m: fx.Member, store_id: uuid.UUID,
                      key: IdemKey) -> tuple[ledger.CardContext, ledger.AccountState]:
    async with other.transaction():
        return await ledger.lock_card_state(
            other, m.card_number, program_id=m.program_id, store_id=store_id, idem=key,
            now=NOW, fifo_limit=64)


async def test_a_till_that_waited_for_the_lock_sees_what_the_holder_committed(
        db_url: str, conn: asyncpg.Connection) -> None:
    pid = await fx.program(conn)
    sid = await fx.store(conn, pid)
    m = await fx.member(conn, pid)
    await fx.credit(conn, m, points=100, now=NOW)
    key = _key("k1")
    other = await asyncpg.connect(db_url)
    try:
        async with conn.transaction():  # the holder: redeems every point, stores the key
            locked = await ledger.lock_account(conn, m.account_id)
            state = await ledger.account_state(conn, m.account_id, idem=None, now=NOW,
                                               fifo_limit=64)
            waiter = asyncio.create_task(_lock_state(other, m, sid, key))
            # the waiter's statement has taken its snapshot and is queued on the row
            await wait_until_blocked(conn, other.get_server_pid(), conn.get_server_pid())
            assert not waiter.done()
            effect = rules.redeem(locked.balances, state.lots, 100, NOW)
            await ledger_repo.apply(conn, ledger_repo.Write(
                account_id=m.account_id, program_id=pid, effect=effect, at=NOW, idem=key,
                status_code=201, response=b"{}"))

        ctx, seen = await waiter
    finally:
        await other.close()
    assert ctx.balances.points == 0
    assert [lot.remaining for lot in seen.lots] == []  # the spent lot is no longer open
    assert seen.stored is not None and seen.stored.status_code == 201


async def test_an_uncontended_lock_reads_the_state_in_the_same_statement(
        db_url: str, conn: asyncpg.Connection) -> None:
    pid = await fx.program(conn)
    sid = await fx.store(conn, pid)
    m = await fx.member(conn, pid)
    await fx.credit(conn, m, points=70, now=NOW)

    other = await asyncpg.connect(db_url)
    try:
        ctx, seen = await _lock_state(other, m, sid, _key("k2"))
    finally:
        await other.close()
    assert ctx.balances.points == 70
    assert [lot.remaining for lot in seen.lots] == [70]
    assert seen.stored is None
