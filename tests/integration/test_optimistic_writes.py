"""Optimistic writes on the hot paths: a till purchase and a ping batch read without a lock,
decide, then write with one statement that commits on its own only if what they read is
unchanged (migration 0013's `write_guard`). These tests put a concurrent write between the
read and the write and check that the stale write refuses as a whole (nothing of it kept),
that it meets a concurrent writer on the account row first (a refusal, not a broken balance
chain), and that a purchase which keeps losing the race still goes through, under the lock.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from support import ledger_fixtures as fx
from support.locks import wait_until_blocked

from geo import pings_repo, pings_service
from geo import visits as core
from geo.pings import PingRules, Track
from geo.registry import ProgramZones, ZoneRegistry
from wallet.kernel.db import Conn
from wallet.kernel.hashing import Hasher
from wallet.kernel.idempotency_repo import IdemKey, IdempotencyRace
from wallet.ledger import account_repo, rules, till
from wallet.ledger import ledger_repo as ledger

NOW = datetime.now(UTC).replace(microsecond=0)


def _key(name: str) -> IdemKey:
    return IdemKey(scope="staff:POST /v1/pos/purchases", key=name, request_hash=b"h" * 32)


async def _redeem_write(conn: asyncpg.Connection, m: fx.Member, points: int,
                        key: IdemKey) -> tuple[ledger.Write, str]:
    """A redemption decided from an unlocked read, and the account version that read saw."""
    ctx, state, version = await account_repo.read_card_state(
        conn, m.card_number, program_id=m.program_id, store_id=uuid.uuid4(), idem=key,
        now=NOW, fifo_limit=64)
    effect = rules.redeem(ctx.balances, state.lots, points, NOW)
    return ledger.Write(account_id=m.account_id, program_id=m.program_id, effect=effect,
                        at=NOW, idem=key, status_code=201, response=b"{}"), version


async def test_a_ledger_write_whose_account_changed_since_its_read_writes_nothing(
        db_url: str, conn: asyncpg.Connection) -> None:
    pid = await fx.program(conn)
    m = await fx.member(conn, pid)
    await fx.credit(conn, m, points=100, now=NOW)
    stale, version = await _redeem_write(conn, m, 60, _key("k1"))

    other = await asyncpg.connect(db_url)  # another till credits the account in between
    try:
        await fx.credit(other, m, points=10, now=NOW)
    finally:
        await other.close()
    before = await fx.snapshot(conn, m)
    with pytest.raises(asyncpg.SerializationError):  # the account row is checked first:
        await ledger.apply(conn, stale, version=version)  # not a broken balance chain

    assert await fx.snapshot(conn, m) == before  # no entry, lot change or balance kept
    assert await conn.fetchval("SELECT count(*) FROM idempotency_keys") == 0
    fresh, version = await _redeem_write(conn, m, 60, _key("k1"))  # read again: it goes in
    await ledger.apply(conn, fresh, version=version)
    assert (await fx.snapshot(conn, m)).points == 50
    assert await fx.ledger_sums(conn, m.account_id) == (50, 0, 50)


async def test_a_stale_ledger_write_waits_on_the_account_row_then_refuses(
        db_url: str, conn: asyncpg.Connection) -> None:
    """Behind a writer that holds the account row (and spends the same lot), the stale write
    waits, then refuses whole once that writer commits; the books stay exact."""
    pid = await fx.program(conn)
    m = await fx.member(conn, pid)
    await fx.credit(conn, m, points=100, now=NOW)
    stale, version = await _redeem_write(conn, m, 70, _key("late"))

    holder = await asyncpg.connect(db_url)
    try:
        async with holder.transaction():  # redeems 80 of the same lot, holds the row lock
            locked = await account_repo.lock_account(holder, m.account_id)
            state = await account_repo.account_state(holder, m.account_id, idem=None,
                                                     now=NOW, fifo_limit=64)
            await ledger.apply(holder, ledger.Write(
                account_id=m.account_id, program_id=pid,
                effect=rules.redeem(locked.balances, state.lots, 80, NOW), at=NOW))
            late = asyncio.create_task(ledger.apply(conn, stale, version=version))
            await wait_until_blocked(holder, conn.get_server_pid(), holder.get_server_pid())
            assert not late.done()  # queued on the account row
    finally:
        await holder.close()
    with pytest.raises(asyncpg.SerializationError):
        await late
    assert (await fx.snapshot(conn, m)).points == 20
    assert await fx.ledger_sums(conn, m.account_id) == (20, 0, 20)


@pytest.fixture
async def pool(db_url: str) -> AsyncIterator[asyncpg.Pool]:
    p = await asyncpg.create_pool(db_url, min_size=1, max_size=2,
                                  server_settings={"timezone": "UTC"})
    try:
        yield p
    finally:
        await p.close()


async def test_a_purchase_that_keeps_losing_the_race_goes_through_under_the_lock(
        pool: asyncpg.Pool, conn: asyncpg.Connection, monkeypatch: pytest.MonkeyPatch) -> None:
    pid = await fx.program(conn)
    sid = await fx.store(conn, pid)
    m = await fx.member(conn, pid)
    await fx.credit(conn, m, points=100, now=NOW)
    reads = 0
    read = account_repo.read_card_state

    async def always_stale(*args: object, **kwargs: object
                           ) -> tuple[account_repo.CardContext, account_repo.AccountState, str]:
        nonlocal reads
        reads += 1
        ctx, state, _ = await read(*args, **kwargs)  # type: ignore[arg-type]
        return ctx, state, "0"  # a version the account never has: every write conflicts

    monkeypatch.setattr(account_repo, "read_card_state", always_stale)
    out = await till.purchase(
        pool, till.Caller(account_id=uuid.uuid4(), program_id=pid), store_id=sid,
        card=m.card_id, receipt_id="r1", amount=2_500, currency="EUR", redeem_points=30,
        idem=_key("r1"), hasher=Hasher(memory_kib=8, time_cost=1),
        pin_policy=till.PinPolicy(max_attempts=5, lock_s=60), now=NOW)

    assert reads == 2  # two optimistic attempts, then the locked transaction
    assert out.status == 201
    assert (out.result.points_redeemed, out.result.points_earned) == (30, 25)
    snap = await fx.snapshot(conn, m)
    assert (snap.points, snap.transactions) == (95, 1)
    assert await fx.ledger_sums(conn, m.account_id) == (95, 0, 95)


# --- ping batches ----------------------------------------------------------------------------


async def _consenting_member(conn: asyncpg.Connection) -> tuple[fx.Member, uuid.UUID]:
    pid = await fx.program(conn)
    sid = await fx.store(conn, pid)
    m = await fx.member(conn, pid)
    await conn.execute(
        "INSERT INTO member_consents (member_id, purpose, granted, policy_version, source)"
        " VALUES ($1, 'location_offers', true, 'v1', 'app')", m.id)
    return m, sid


def _visit(store_id: uuid.UUID, at: datetime) -> Track:
    return Track(id=uuid.uuid4(), store_id=store_id, new=True, state=core.VisitState(
        inside=True, entered_at=at, last_seen_at=at))


def _ping(at: datetime) -> core.Ping:
    return core.Ping(lon=2.35, lat=48.85, accuracy_m=10.0, at=at)


async def test_a_ping_write_after_another_batch_of_the_member_writes_nothing(
        db_url: str, conn: asyncpg.Connection) -> None:
    m, sid = await _consenting_member(conn)
    ctx = await pings_repo.read_context(conn, m.id)
    assert ctx is not None and ctx["geo_version"] == ""  # no last position yet

    other = await asyncpg.connect(db_url)  # the member's previous batch lands in between
    try:
        await pings_repo.write(other, m.id, m.program_id, [], [_ping(NOW - timedelta(seconds=60))],
                               version="")
    finally:
        await other.close()
    with pytest.raises(asyncpg.SerializationError):
        await pings_repo.write(conn, m.id, m.program_id, [_visit(sid, NOW)], [_ping(NOW)],
                               version=ctx["geo_version"])

    assert await conn.fetchval("SELECT count(*) FROM visits") == 0
    assert await conn.fetchval("SELECT last_ping_at FROM member_geo_state") == (
        NOW - timedelta(seconds=60))
    fresh = await pings_repo.read_context(conn, m.id)
    assert fresh is not None
    await pings_repo.write(conn, m.id, m.program_id, [_visit(sid, NOW)], [_ping(NOW)],
                           version=fresh["geo_version"])
    assert await conn.fetchval("SELECT count(*) FROM visits") == 1


async def test_a_ping_write_after_the_consent_was_withdrawn_writes_nothing(
        conn: asyncpg.Connection) -> None:
    m, sid = await _consenting_member(conn)
    ctx = await pings_repo.read_context(conn, m.id)
    assert ctx is not None and ctx["consent"]
    await conn.execute(
        "INSERT INTO member_consents (member_id, purpose, granted, policy_version, source)"
        " VALUES ($1, 'location_offers', false, 'v1', 'app')", m.id)
    with pytest.raises(asyncpg.SerializationError):
        await pings_repo.write(conn, m.id, m.program_id, [_visit(sid, NOW)], [_ping(NOW)],
                               version=ctx["geo_version"])
    assert await conn.fetchval("SELECT count(*) FROM visits") == 0
    assert await conn.fetchval("SELECT count(*) FROM member_geo_state") == 0


async def test_a_ping_write_whose_key_another_request_stored_first_writes_nothing(
        conn: asyncpg.Connection) -> None:
    m, sid = await _consenting_member(conn)
    key = IdemKey(scope=f"{m.id}:POST /v1/me/pings", key="b1", request_hash=b"h" * 32)
    ctx = await pings_repo.read_context(conn, m.id, key)
    assert ctx is not None and pings_repo.stored(ctx) is None
    await conn.execute(  # the same batch, sent again at once, committed first
        "INSERT INTO idempotency_keys (scope, key, request_hash, status_code, response_body)"
        " VALUES ($1, $2, $3, 200, '{}')", key.scope, key.key, key.request_hash)
    with pytest.raises(IdempotencyRace):
        await pings_repo.write(conn, m.id, m.program_id, [_visit(sid, NOW)], [_ping(NOW)],
                               version=ctx["geo_version"], idem=key, response=b"{}")
    assert await conn.fetchval("SELECT count(*) FROM visits") == 0
    assert await conn.fetchval("SELECT count(*) FROM member_geo_state") == 0
    again = await pings_repo.read_context(conn, m.id, key)
    assert again is not None and pings_repo.stored(again) is not None


async def test_a_stale_ping_write_refuses_rather_than_open_a_second_visit_at_a_store(
        db_url: str, conn: asyncpg.Connection) -> None:
    m, sid = await _consenting_member(conn)
    ctx = await pings_repo.read_context(conn, m.id)
    assert ctx is not None
    earlier = NOW - timedelta(seconds=30)
    other = await asyncpg.connect(db_url)  # another batch of the member enters the store first
    try:
        await pings_repo.write(other, m.id, m.program_id, [_visit(sid, earlier)],
                               [_ping(earlier)], version="")
    finally:
        await other.close()
    # the stale batch would open the same store's visit again: it reads again (retried), it
    # does not meet `visits_one_open` (a 500)
    with pytest.raises(asyncpg.SerializationError):
        await pings_repo.write(conn, m.id, m.program_id, [_visit(sid, NOW)], [_ping(NOW)],
                               version=ctx["geo_version"])
    assert await conn.fetchval("SELECT count(*) FROM visits") == 1
    assert await conn.fetchval("SELECT last_ping_at FROM member_geo_state") == earlier


class _Interleaved(ZoneRegistry):
    """The real registry, which first runs `between` once when a batch asks for its zones:
    after the batch read its context, before it writes."""

    def __init__(self, pool: asyncpg.Pool, between: Callable[[], Awaitable[None]]) -> None:
        super().__init__(pool)
        self._between: Callable[[], Awaitable[None]] | None = between

    async def current(self, program_id: uuid.UUID, version: int,
                      conn: Conn | None = None) -> ProgramZones:
        if self._between is not None:
            between, self._between = self._between, None
            await asyncio.wait_for(between(), 30)  # it must not wait for the member lock
        return await super().current(program_id, version, conn)


async def test_a_locked_batch_refuses_to_write_over_a_batch_committed_since_its_read(
        db_url: str, conn: asyncpg.Connection) -> None:
    """The optimistic and one-trip writes don't take the member lock: a batch of the member
    can commit while a locked batch steps. The locked one must then refuse as a whole (its
    transaction runs again), not write its older view over the other's."""
    m, _ = await _consenting_member(conn)
    await pings_repo.write(conn, m.id, m.program_id, [], [_ping(NOW - timedelta(seconds=90))],
                           version="")
    between_at = NOW - timedelta(seconds=20)

    async def another_batch() -> None:
        other = await asyncpg.connect(db_url)
        try:
            ctx = await pings_repo.read_context(other, m.id)
            assert ctx is not None
            await pings_repo.write(other, m.id, m.program_id, [], [_ping(between_at)],
                                   version=ctx["geo_version"])
        finally:
            await other.close()

    pool = await asyncpg.create_pool(db_url, min_size=1, max_size=2)
    try:
        registry = _Interleaved(pool, another_batch)
        async with pool.acquire() as locked:
            with pytest.raises(asyncpg.SerializationError):
                async with locked.transaction():
                    await pings_service.ingest(locked, registry, m.id, [_ping(NOW)], now=NOW,
                                               rules=_PING_RULES)
    finally:
        await pool.close()
    assert await conn.fetchval("SELECT last_ping_at FROM member_geo_state") == between_at


_PING_RULES = PingRules(max_age_s=3600, max_future_s=60, max_accuracy_m=100, max_speed_mps=50,
                        exit_after_s=120, dwell_s=300, lost_after_s=3600, raw_retention_s=0)
