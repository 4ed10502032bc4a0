"""An earn-only purchase in ONE statement (`wallet/ledger/earn_fast.py`): it must write
exactly what the two-trip path writes, answer what it answers, and write nothing at all
(falling back to the two-trip path, which gives the exact answer or error) whenever a
precondition does not hold.

The differential property runs the one-statement path on one member and the two-trip path
on a twin in the same state (balances, 12-month points near the tier thresholds), for random
amounts, earn rates and tiers, and compares every row each wrote and the answers.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support import ledger_fixtures as fx

from wallet.kernel import errors
from wallet.kernel.hashing import Hasher
from wallet.kernel.idempotency import Outcome, encode
from wallet.kernel.idempotency_repo import IdemKey
from wallet.ledger import account_repo, earn_fast, earn_repo, rules, till

NOW = datetime.now(UTC).replace(microsecond=0)
HASHER = Hasher(memory_kib=8, time_cost=1)
POLICY = till.PinPolicy(max_attempts=5, lock_s=60)


@pytest.fixture
async def pool(db_url: str) -> AsyncIterator[asyncpg.Pool]:
    p = await asyncpg.create_pool(db_url, min_size=1, max_size=3,
                                  server_settings={"timezone": "UTC"})
    try:
        yield p
    finally:
        await p.close()


class Trips:
    """Counts the two-trip path's reads (`read_card_state`): 0 means one statement did it."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.reads = 0
        read = account_repo.read_card_state

        async def counting(*args: Any, **kwargs: Any) -> Any:
            self.reads += 1
            return await read(*args, **kwargs)

        monkeypatch.setattr(account_repo, "read_card_state", counting)


def _key(name: str, body: bytes = b"h") -> IdemKey:
    return IdemKey(scope="staff-1", key=name, request_hash=body.ljust(32, b"."))


async def _buy(pool: asyncpg.Pool, m: fx.Member, sid: uuid.UUID, *, amount: int,
               key: IdemKey, cache: earn_fast.RulesCache | None, card: till.CardRef | None = None,
               receipt: str | None = None, currency: str = "EUR",
               staff: uuid.UUID | None = None) -> Outcome[till.PurchaseResult]:
    return await till.purchase(
        pool, till.Caller(account_id=staff or uuid.uuid4(), program_id=m.program_id),
        store_id=sid, card=card if card is not None else m.card_number,
        receipt_id=receipt or key.key, amount=amount, currency=currency, idem=key,
        hasher=HASHER, pin_policy=POLICY, rules_cache=cache, now=NOW)


async def _rows(conn: asyncpg.Connection, m: fx.Member) -> dict[str, Any]:
    """Everything an account's purchases wrote, without ids that differ between two runs."""
    acct = m.account_id
    return {
        "account": dict(await conn.fetchrow(
            "SELECT points_balance, stored_value_balance, tier FROM wallet_accounts "
            "WHERE id = $1", acct) or {}),
        "entries": [dict(r) for r in await conn.fetch(
            "SELECT kind, points, stored_value, points_balance_after, "
            "stored_value_balance_after, at, (lot_id IS NULL) AS no_lot, "
            "(transaction_id IS NULL) AS no_tx FROM ledger_entries "
            "WHERE wallet_account_id = $1 ORDER BY seq", acct)],
        "lots": [dict(r) for r in await conn.fetch(
            "SELECT source, points, remaining, earned_at, expires_at, "
            "(transaction_id IS NULL) AS no_tx FROM points_lots "
            "WHERE wallet_account_id = $1 ORDER BY earned_at, points", acct)],
        "transactions": [dict(r) for r in await conn.fetch(
            "SELECT kind, receipt_id, amount, currency, points_earned, points_redeemed, "
            "stored_value_spent, discount, at FROM transactions "
            "WHERE wallet_account_id = $1", acct)],
        "tier_days": [dict(r) for r in await conn.fetch(
            "SELECT day, points FROM tier_points_daily WHERE wallet_account_id = $1 "
            "ORDER BY day", acct)],
        "access": [dict(r) for r in await conn.fetch(
            "SELECT actor_role, action, purpose, at FROM access_log WHERE member_id = $1",
            m.id)],
        "keys": await conn.fetchval(
            "SELECT count(*) FROM idempotency_keys i JOIN transactions t "
            "ON t.id = (convert_from(i.response_body, 'UTF8')::jsonb->>'transaction_id')::uuid"
            " WHERE t.wallet_account_id = $1", acct),
    }


async def _twin_state(conn: asyncpg.Connection, m: fx.Member, points: int,
                      points_12m: int) -> None:
    if points:
        await fx.credit(conn, m, points=points, stored_value=500, now=NOW - timedelta(days=3))
    if points_12m:  # earned over the trailing 12 months (net of refunds: may be negative)
        await conn.execute("INSERT INTO tier_points_daily VALUES ($1, $2, $3)",
                           m.account_id, (NOW - timedelta(days=40)).date(), points_12m)


tiers_st = st.lists(st.tuples(st.integers(0, 5_000), st.integers(1_000, 3_000)),
                    max_size=3).map(sorted)


@given(amount=st.integers(0, 1_000_000),  # up to the default max_purchase_amount
       earn_points=st.integers(0, 20),
       per=st.integers(1, 1_000), tiers=tiers_st, near=st.integers(-2, 2),
       which=st.integers(0, 3), balance=st.integers(0, 3_000))
@settings(max_examples=40, suppress_health_check=[HealthCheck.function_scoped_fixture])
async def test_one_statement_and_two_trips_write_the_same_rows_and_answer_the_same(
        pool: asyncpg.Pool, conn: asyncpg.Connection, monkeypatch: pytest.MonkeyPatch,
        amount: int, earn_points: int, per: int, tiers: list[tuple[int, int]], near: int,
        which: int, balance: int) -> None:
    pid = await fx.program(conn, earn_points=earn_points, earn_per_amount=per, tiers=[
        {"name": f"t{i}", "min_points_12m": t, "multiplier_milli": mul}
        for i, (t, mul) in enumerate(tiers)])
    sid, sid2 = await fx.store(conn, pid), await fx.store(conn, pid)  # one receipt id each
    # 12-month points just around a threshold (or anywhere without tiers)
    points_12m = (tiers[which % len(tiers)][0] if tiers else 100 * which) + near
    one, two = await fx.member(conn, pid), await fx.member(conn, pid)
    for m in (one, two):
        await _twin_state(conn, m, balance, points_12m)
    trips = Trips(monkeypatch)
    cache = earn_fast.RulesCache()

    a = await _buy(pool, one, sid, amount=amount, key=_key(f"a{one.id}"), cache=cache,
                   receipt="r1")
    assert trips.reads == 0  # one statement wrote it
    b = await _buy(pool, two, sid2, amount=amount, key=_key(f"b{two.id}"), cache=None,
                   receipt="r1")
    assert trips.reads == 1

    ra, rb = msgspec.structs.asdict(a.result), msgspec.structs.asdict(b.result)
    assert ra.pop("transaction_id") != rb.pop("transaction_id")
    assert (a.status, ra) == (b.status, rb)
    assert await _rows(conn, one) == await _rows(conn, two)
    # and both are what the pure rule says of that state
    program = await earn_repo.program_rules(conn, pid)
    assert program is not None
    expected = rules.purchase(
        rules.Balances(points=balance, stored_value=500 if balance else 0),
        [], program.rules, amount=amount, redeem_points=0, stored_value=0,
        points_12m=points_12m, now=NOW, earn_lot_id=uuid.uuid4())
    assert a.result.points_earned == expected.points_earned
    assert a.result.points_balance == balance + expected.points_earned
    tier = await conn.fetchval("SELECT tier FROM wallet_accounts WHERE id = $1", one.account_id)
    assert tier == (expected.tier if tiers else None)
    assert await fx.ledger_sums(conn, one.account_id) == (
        a.result.points_balance, a.result.stored_value_balance, a.result.points_balance)


async def test_a_replay_is_byte_identical_and_a_changed_body_is_a_409(
        pool: asyncpg.Pool, conn: asyncpg.Connection, monkeypatch: pytest.MonkeyPatch) -> None:
    pid = await fx.program(conn)
    sid = await fx.store(conn, pid)
    m = await fx.member(conn, pid)
    trips = Trips(monkeypatch)
    cache = earn_fast.RulesCache()
    key = _key("same")
    first = await _buy(pool, m, sid, amount=2_499, key=key, cache=cache)
    before = await fx.snapshot(conn, m)
    again = await _buy(pool, m, sid, amount=2_499, key=key, cache=cache)
    assert trips.reads == 0  # the replay came back from the one statement too
    assert (first.replayed, again.replayed) == (False, True)
    assert msgspec.json.encode(again.result) == msgspec.json.encode(first.result)
    stored = await conn.fetchval("SELECT response_body FROM idempotency_keys WHERE key = $1",
                                 "same")
    assert bytes(stored) == encode(first.result)  # what was stored is what was sent
    assert await fx.snapshot(conn, m) == before  # and nothing more was written

    with pytest.raises(errors.IdempotencyConflict):
        await _buy(pool, m, sid, amount=2_500, key=_key("same", b"other"), cache=cache)
    assert await fx.snapshot(conn, m) == before


async def test_stale_rules_write_nothing_then_the_two_trip_path_uses_the_new_rules(
        pool: asyncpg.Pool, conn: asyncpg.Connection, monkeypatch: pytest.MonkeyPatch) -> None:
    pid = await fx.program(conn)  # 1 point per 1.00
    sid = await fx.store(conn, pid)
    m = await fx.member(conn, pid)
    cache = earn_fast.RulesCache()
    await _buy(pool, m, sid, amount=1_000, key=_key("k1"), cache=cache)  # loads the rules
    await conn.execute("UPDATE programs SET earn_points = 3 WHERE id = $1", pid)
    trips = Trips(monkeypatch)

    out = await _buy(pool, m, sid, amount=1_000, key=_key("k2"), cache=cache)
    assert trips.reads == 1  # the statement refused the old version: two trips
    assert out.result.points_earned == 30  # the new rate, not the cached one
    out = await _buy(pool, m, sid, amount=1_000, key=_key("k3"), cache=cache)
    assert (trips.reads, out.result.points_earned) == (1, 30)  # reloaded: one statement again
    assert await fx.ledger_sums(conn, m.account_id) == (70, 0, 70)


async def test_tier_changes_bump_the_version_and_other_settings_do_not(
        conn: asyncpg.Connection) -> None:
    pid = await fx.program(conn)
    version = "SELECT rules_version FROM programs WHERE id = $1"
    await conn.execute("UPDATE programs SET name = 'Renamed', stored_value = false "
                       "WHERE id = $1", pid)
    assert await conn.fetchval(version, pid) == 0
    await conn.execute("UPDATE programs SET tiers = $2::jsonb WHERE id = $1", pid, json.dumps(
        [{"name": "gold", "min_points_12m": 10, "multiplier_milli": 2000}]))
    assert await conn.fetchval(version, pid) == 1
    await conn.execute("UPDATE programs SET points_expiry_days = 30 WHERE id = $1", pid)
    assert await conn.fetchval(version, pid) == 2


@pytest.mark.parametrize("case", ["blocked", "unknown number", "unknown qr", "other store",
                                  "currency", "over the limit", "due lot",
                                  "receipt twice"])
async def test_each_refused_precondition_writes_nothing_and_the_exact_error_comes_back(
        pool: asyncpg.Pool, conn: asyncpg.Connection, monkeypatch: pytest.MonkeyPatch,
        case: str) -> None:
    pid = await fx.program(conn)
    sid = await fx.store(conn, pid)
    other_program_store = await fx.store(conn, await fx.program(conn))
    m = await fx.member(conn, pid, card_status="blocked" if case == "blocked" else "active")
    if case == "due lot":
        await fx.credit(conn, m, points=40, now=NOW - timedelta(days=10), expiry_days=5)
    if case == "over the limit":
        await conn.execute("UPDATE programs SET max_purchase_amount = 999 WHERE id = $1", pid)
    if case == "receipt twice":
        await _buy(pool, m, sid, amount=100, key=_key("first"), cache=None, receipt="R")
    cache = earn_fast.RulesCache()
    trips = Trips(monkeypatch)
    before = await fx.snapshot(conn, m)
    keys = await conn.fetchval("SELECT count(*) FROM idempotency_keys")
    card: till.CardRef = {"unknown number": "9" * 16, "unknown qr": uuid.uuid4()}.get(
        case, m.card_number)
    store = other_program_store if case == "other store" else sid
    expected: dict[str, tuple[type[Exception], str]] = {
        "blocked": (errors.InvalidCardToken, "card_number"),
        "unknown number": (errors.NotFound, "card_number"),
        "unknown qr": (errors.InvalidCardToken, "qr_payload"),
        "other store": (errors.NotFound, "store_id"),
        "currency": (errors.CurrencyMismatch, "currency"),
        "over the limit": (errors.LimitExceeded, "amount"),
        "receipt twice": (errors.Conflict, "receipt_id")}
    if case == "due lot":  # not an error: the two-trip path expires the lot, then earns
        out = await _buy(pool, m, sid, amount=1_000, key=_key("k"), cache=cache, card=card)
        assert trips.reads == 1
        assert [e["kind"] for e in (await _rows(conn, m))["entries"]] == [
            "adjust", "expire", "earn"]
        assert out.result.points_balance == 10
        return
    error, field = expected[case]
    with pytest.raises(error) as got:
        await _buy(pool, m, store, amount=1_000, key=_key("k"), cache=cache, card=card,
                   receipt="R", currency="USD" if case == "currency" else "EUR")
    assert got.value.field == field
    # the statement wrote nothing; the two-trip path ran where the card was known
    assert await fx.snapshot(conn, m) == before
    assert await conn.fetchval("SELECT count(*) FROM idempotency_keys") == keys
    # a receipt recorded twice is refused by the statement itself (its unique index)
    assert trips.reads == (0 if case == "receipt twice" else 1)


async def test_concurrent_purchases_on_one_card_over_two_connections_keep_the_books(
        pool: asyncpg.Pool, conn: asyncpg.Connection) -> None:
    """Many earn-only purchases at once on one card (some losing the race on the account
    row, then taking the two-trip path), one sent twice with the same key: each purchase
    counted once and the balance = its entries = its open lots."""
    pid = await fx.program(conn, tiers=[
        {"name": "silver", "min_points_12m": 0, "multiplier_milli": 1000},
        {"name": "gold", "min_points_12m": 150, "multiplier_milli": 2000}])
    sid = await fx.store(conn, pid)
    m = await fx.member(conn, pid)
    cache = earn_fast.RulesCache()
    keys = [_key(f"c{i}") for i in range(24)] + [_key("c3")]  # c3 twice at once
    outs = await asyncio.gather(*(
        _buy(pool, m, sid, amount=1_000 + (int(k.key[1:]) % 5) * 100, key=k, cache=cache)
        for k in keys))
    assert len({o.result.transaction_id for o in outs}) == 24
    assert sum(o.replayed for o in outs) == 1
    balance = await conn.fetchval("SELECT points_balance FROM wallet_accounts WHERE id = $1",
                                  m.account_id)
    assert await fx.ledger_sums(conn, m.account_id) == (balance, 0, balance)
    assert (await fx.snapshot(conn, m)).transactions == 24
    earned = await conn.fetchval("SELECT sum(points_earned) FROM transactions "
                                 "WHERE wallet_account_id = $1", m.account_id)
    assert balance == earned
    assert await conn.fetchval("SELECT tier FROM wallet_accounts WHERE id = $1",
                               m.account_id) == "gold"


async def test_a_purchase_that_lost_the_race_runs_the_statement_once_more_then_two_trips(
        pool: asyncpg.Pool, conn: asyncpg.Connection, monkeypatch: pytest.MonkeyPatch) -> None:
    pid = await fx.program(conn)
    sid = await fx.store(conn, pid)
    m = await fx.member(conn, pid)
    earn = earn_repo.earn
    lost = 0

    async def losing(conn_: Any, card: Any, fast: earn_repo.Fast) -> earn_repo.Answer:
        nonlocal lost
        if lost < losses:  # a concurrent writer moved the account: nothing written
            lost += 1
            return earn_repo.Answer(reason="account changed")
        return await earn(conn_, card, fast)

    monkeypatch.setattr(earn_repo, "earn", losing)
    trips = Trips(monkeypatch)
    cache = earn_fast.RulesCache()
    losses = 1
    out = await _buy(pool, m, sid, amount=1_000, key=_key("once"), cache=cache)
    assert (lost, trips.reads, out.result.points_earned) == (1, 0, 10)  # the 2nd statement
    lost, losses = 0, 2
    out = await _buy(pool, m, sid, amount=1_000, key=_key("twice"), cache=cache)
    assert (lost, trips.reads, out.result.points_balance) == (2, 1, 20)  # then two trips
    assert await fx.ledger_sums(conn, m.account_id) == (20, 0, 20)


@pytest.mark.parametrize("path", ["one statement", "two trips"])
async def test_the_rows_a_purchase_appends_get_time_ordered_ids(
        pool: asyncpg.Pool, conn: asyncpg.Connection, path: str) -> None:
    # Issue 13: version-7 ids go to the rightmost leaf of each primary key (no random page
    # read, no full-page image in the WAL per insert after a checkpoint), on both paths.
    pid = await fx.program(conn)
    sid = await fx.store(conn, pid)
    m = await fx.member(conn, pid)
    cache = earn_fast.RulesCache() if path == "one statement" else None
    for n in range(3):
        await _buy(pool, m, sid, amount=1_000 + n, key=_key(f"{path}-{n}"), cache=cache)
    rows = {
        "transactions": "SELECT id FROM transactions WHERE wallet_account_id = $1 ORDER BY at, "
                        "amount",
        "points_lots": "SELECT l.id FROM points_lots l JOIN transactions t "
                       "ON t.id = l.transaction_id WHERE t.wallet_account_id = $1 ORDER BY "
                       "t.amount",
        "ledger_entries": "SELECT id FROM ledger_entries WHERE wallet_account_id = $1 "
                          "ORDER BY seq",
        "access_log": "SELECT a.id FROM access_log a JOIN members m ON m.id = a.member_id "
                      "WHERE m.wallet_account_id = $1 ORDER BY a.at, a.id",
    }
    for table, query in rows.items():
        got = [r["id"] for r in await conn.fetch(query, m.account_id)]
        assert len(got) == 3, table
        assert {u.version for u in got} == {7}, table
        if table != "access_log":  # appended in order (the access log's `at` is `now` here)
            assert got == sorted(got), table
