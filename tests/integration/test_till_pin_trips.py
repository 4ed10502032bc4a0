"""A purchase with a PIN in two round trips (`wallet/ledger/pin_claim_repo.py`,
`pin_check.py`): the read counts the PIN's attempt, argon2, the write, which also restarts the
count after a right PIN when the attempt took the count's first place; otherwise (an earlier
wrong PIN, another check in flight) the restart is its own statement before the write: three.
The attempt is still counted before argon2 runs (issue 14, bug 2), and only when the purchase
reaches its PIN check; a right PIN restarts the count whatever happens next.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import msgspec
import pytest
from support import ledger_fixtures as fx
from support.counting import Counting

from wallet.kernel import errors
from wallet.kernel.db import keep_session
from wallet.kernel.hashing import Hasher
from wallet.kernel.idempotency_repo import IdemKey
from wallet.ledger import account_repo, pin_check, pin_claim_repo, till
from wallet.ledger.pin_claim_repo import PinAttempt

NOW = datetime.now(UTC).replace(microsecond=0)
HASHER = Hasher(memory_kib=8, time_cost=1)
POLICY = till.PinPolicy(max_attempts=3, lock_s=60)
PIN = "13579"




@pytest.fixture
async def pool(db_url: str) -> AsyncIterator[asyncpg.Pool]:
    p = await asyncpg.create_pool(db_url, min_size=1, max_size=1, connection_class=Counting,
                                  reset=keep_session, server_settings={"timezone": "UTC"})
    try:
        yield p
    finally:
        await p.close()


async def _member(conn: asyncpg.Connection, *, status: str = "active",
                  max_purchase: int | None = None) -> tuple[fx.Member, uuid.UUID]:
    pid = await fx.program(conn)
    if max_purchase is not None:
        await conn.execute("UPDATE programs SET max_purchase_amount = $2 WHERE id = $1", pid,
                           max_purchase)
    m = await fx.member(conn, pid, pin_hash=HASHER.hash(PIN), card_status=status)
    await fx.credit(conn, m, points=500, stored_value=2_000)
    return m, await fx.store(conn, pid)


async def _buy(pool: asyncpg.Pool, m: fx.Member, sid: uuid.UUID, *, pin: str | None,
               key: str = "k", value: int = 300, points: int = 0,
               amount: int = 1_000, now: datetime = NOW,
               receipt: str | None = None) -> till.PurchaseResult:
    out = await till.purchase(
        pool, till.Caller(account_id=uuid.uuid4(), program_id=m.program_id), store_id=sid,
        card=m.card_number, receipt_id=receipt or key, amount=amount, currency="EUR",
        stored_value=value, redeem_points=points, pin=pin,
        idem=IdemKey(scope="staff", key=key, request_hash=b"h" * 32), hasher=HASHER,
        pin_policy=POLICY, now=now)
    return out.result


async def _failures(conn: asyncpg.Connection, m: fx.Member) -> tuple[int, Any]:
    row = await conn.fetchrow("SELECT pin_failures, pin_locked_until FROM members WHERE id = $1",
                              m.id)
    assert row is not None
    return row[0], row[1]


async def _books_hold(conn: asyncpg.Connection, m: fx.Member,
                      got: till.PurchaseResult) -> None:
    assert await fx.ledger_sums(conn, m.account_id) == (
        got.points_balance, got.stored_value_balance, got.points_balance)


@pytest.mark.parametrize(("value", "points"), [(300, 0), (0, 40)])
async def test_a_purchase_with_the_right_pin_is_two_round_trips_and_restarts_the_count(
        pool: asyncpg.Pool, conn: asyncpg.Connection, value: int, points: int) -> None:
    m, sid = await _member(conn)
    Counting.sent = 0
    got = await _buy(pool, m, sid, pin=PIN, value=value, points=points)
    assert Counting.sent == 2  # read + count, the write + the count's restart
    assert (got.stored_value_spent, got.points_redeemed) == (value, points)
    assert await _failures(conn, m) == (0, None)
    await _books_hold(conn, m, got)

    with pytest.raises(errors.WrongPin) as wrong:  # the next wrong PIN: as before
        await _buy(pool, m, sid, pin="00000", key="wrong", value=value, points=points)
    assert wrong.value.members["attempts_left"] == POLICY.max_attempts - 1
    assert await _failures(conn, m) == (1, None)
    Counting.sent = 0
    await _buy(pool, m, sid, pin=PIN, key="again", value=value, points=points)
    assert Counting.sent == 3  # not the count's first place: restarted on its own
    assert await _failures(conn, m) == (0, None)
    for i in range(POLICY.max_attempts - 1):
        with pytest.raises(errors.WrongPin):
            await _buy(pool, m, sid, pin="00000", key=f"w{i}", value=value, points=points)
    with pytest.raises(errors.PinLocked) as locked:  # the limit, counted from the restart
        await _buy(pool, m, sid, pin="00000", key="last", value=value, points=points)
    assert locked.value.new_lock is True


@pytest.mark.parametrize(("value", "points"), [(300, 0), (0, 40)])
async def test_a_right_pin_after_a_wrong_one_is_three_round_trips_and_restarts_the_count(
        pool: asyncpg.Pool, conn: asyncpg.Connection, value: int, points: int) -> None:
    m, sid = await _member(conn)
    with pytest.raises(errors.WrongPin):
        await _buy(pool, m, sid, pin="00000", key="wrong", value=value, points=points)
    assert await _failures(conn, m) == (1, None)  # counted, and kept although refused

    Counting.sent = 0
    got = await _buy(pool, m, sid, pin=PIN, value=value, points=points)
    assert Counting.sent == 3  # read + count, the count restarted, the write
    assert (got.stored_value_spent, got.points_redeemed) == (value, points)
    assert await _failures(conn, m) == (0, None)
    assert await fx.ledger_sums(conn, m.account_id) == (
        got.points_balance, got.stored_value_balance, got.points_balance)


@pytest.mark.parametrize("case", ["blocked", "over the limit", "replay", "no pin given"])
async def test_no_attempt_is_counted_when_the_purchase_does_not_reach_its_pin_check(
        pool: asyncpg.Pool, conn: asyncpg.Connection, case: str) -> None:
    m, sid = await _member(conn, status="blocked" if case == "blocked" else "active",
                           max_purchase=500 if case == "over the limit" else None)
    if case == "replay":
        await _buy(pool, m, sid, pin=PIN)
    expected: dict[str, type[Exception]] = {
        "blocked": errors.InvalidCardToken, "over the limit": errors.LimitExceeded,
        "no pin given": errors.PinRequired}
    if case in expected:
        with pytest.raises(expected[case]):
            await _buy(pool, m, sid, pin=None if case == "no pin given" else "00000")
    else:  # the same key again: the first answer, no PIN checked (a wrong one given)
        await _buy(pool, m, sid, pin="00000")
    assert await _failures(conn, m) == (0, None)


async def test_a_right_pin_restarts_the_count_even_when_the_purchase_is_refused_after_it(
        pool: asyncpg.Pool, conn: asyncpg.Connection) -> None:
    m, sid = await _member(conn)
    with pytest.raises(errors.WrongPin):
        await _buy(pool, m, sid, pin="00000", key="wrong")
    with pytest.raises(errors.InsufficientBalance):  # more than the purse holds
        await _buy(pool, m, sid, pin=PIN, value=5_000, amount=6_000)
    assert await _failures(conn, m) == (0, None)
    assert (await fx.snapshot(conn, m)).transactions == 0


async def test_a_right_pin_while_another_check_is_in_flight_restarts_the_count_at_once(
        pool: asyncpg.Pool, conn: asyncpg.Connection) -> None:
    """Another till's attempt on the card, counted and not yet verified: this right PIN
    takes the second place, so its restart does not wait for the write (three trips)."""
    m, sid = await _member(conn)
    await pin_claim_repo.claim_pin_attempt(
        conn, m.id, max_attempts=POLICY.max_attempts, lock_until=NOW + timedelta(minutes=1),
        pending_until=NOW + timedelta(seconds=POLICY.pending_s), now=NOW)
    Counting.sent = 0
    got = await _buy(pool, m, sid, pin=PIN)
    assert Counting.sent == 3
    assert await _failures(conn, m) == (0, None)
    await _books_hold(conn, m, got)


@pytest.mark.parametrize("case", ["stored value short", "points short", "receipt twice",
                                  "lost races"])
async def test_a_right_pin_whose_write_is_refused_or_lost_still_restarts_the_count(
        pool: asyncpg.Pool, conn: asyncpg.Connection, monkeypatch: pytest.MonkeyPatch,
        case: str) -> None:
    """The restart was to ride on the write: when no write commits after the right PIN
    (refused by the rules or by a constraint, or a race lost to a concurrent write), it is
    made at once, and a right PIN never counts as a wrong one."""
    m, sid = await _member(conn)
    if case == "receipt twice":
        await _buy(pool, m, sid, pin=PIN, key="first", receipt="r1")
    if case == "lost races":
        read = pin_claim_repo.read_and_claim

        async def always_stale(*args: Any, **kwargs: Any) -> Any:
            ctx, state, _, attempt = await read(*args, **kwargs)
            return ctx, state, "0", attempt  # a version the account never has

        lock = account_repo.lock_card_state
        at_lock: list[tuple[int, Any]] = []

        async def locking(*args: Any, **kwargs: Any) -> Any:
            at_lock.append(await _failures(conn, m))
            return await lock(*args, **kwargs)

        monkeypatch.setattr(pin_claim_repo, "read_and_claim", always_stale)
        monkeypatch.setattr(account_repo, "lock_card_state", locking)
        got = await _buy(pool, m, sid, pin=PIN)  # under the lock, in the end
        assert got.stored_value_spent == 300
        assert at_lock == [(0, None)]  # restarted when the first write missed, not held
        await _books_hold(conn, m, got)
    else:
        refused: dict[str, type[Exception]] = {
            "stored value short": errors.InsufficientBalance,
            "points short": errors.InsufficientBalance, "receipt twice": errors.Conflict}
        with pytest.raises(refused[case]):
            await _buy(pool, m, sid, pin=PIN, key="k2", receipt="r1",
                       value={"stored value short": 5_000, "receipt twice": 300}.get(case, 0),
                       points={"points short": 900}.get(case, 0), amount=6_000)
    assert await _failures(conn, m) == (0, None)
    for i in range(POLICY.max_attempts - 1):  # the whole count is there for wrong PINs
        with pytest.raises(errors.WrongPin):
            await _buy(pool, m, sid, pin="00000", key=f"w{i}")


async def test_a_lock_set_while_a_right_pins_write_is_due_stands(
        pool: asyncpg.Pool, conn: asyncpg.Connection, monkeypatch: pytest.MonkeyPatch) -> None:
    """Wrong PINs on the card counted and confirmed while this right PIN (the count's first
    place) was being verified: the lock they set is not lifted by this PIN's restart, and
    the purchase, whose PIN was right, goes through."""
    m, sid = await _member(conn)
    verify = HASHER.verify_async
    lock_until = NOW + timedelta(seconds=POLICY.lock_s)

    async def meanwhile(hashed: str, secret: str) -> bool:
        for _ in range(POLICY.max_attempts - 1):  # the other places, the last one locking
            last = await pin_claim_repo.claim_pin_attempt(
                conn, m.id, max_attempts=POLICY.max_attempts, lock_until=lock_until,
                pending_until=NOW + timedelta(seconds=POLICY.pending_s), now=NOW)
        assert last.locks
        await pin_claim_repo.pin_lock_confirmed(conn, m.id, last)  # it was wrong
        return await verify(hashed, secret)

    monkeypatch.setattr(HASHER, "verify_async", meanwhile)
    got = await _buy(pool, m, sid, pin=PIN)
    assert got.stored_value_spent == 300
    assert await _pin_row(conn, m) == (0, lock_until, None)
    monkeypatch.undo()
    with pytest.raises(errors.PinLocked):
        await _buy(pool, m, sid, pin=PIN, key="next")


async def test_the_last_wrong_attempt_locks_and_a_locked_pin_counts_nothing_more(
        pool: asyncpg.Pool, conn: asyncpg.Connection) -> None:
    m, sid = await _member(conn)
    for i in range(2):
        with pytest.raises(errors.WrongPin):
            await _buy(pool, m, sid, pin="00000", key=f"w{i}")
    with pytest.raises(errors.PinLocked) as locked:
        await _buy(pool, m, sid, pin="00000", key="w2")
    assert locked.value.new_lock is True
    count, until = await _failures(conn, m)
    assert count == 0 and until is not None
    with pytest.raises(errors.PinLocked):  # even the right PIN: refused, nothing counted
        await _buy(pool, m, sid, pin=PIN, key="w3")
    assert await _failures(conn, m) == (0, until)


async def test_a_pin_purchase_that_keeps_losing_the_race_counts_one_attempt_and_restarts_it(
        pool: asyncpg.Pool, conn: asyncpg.Connection, monkeypatch: pytest.MonkeyPatch) -> None:
    m, sid = await _member(conn)
    with pytest.raises(errors.WrongPin):
        await _buy(pool, m, sid, pin="00000", key="wrong")
    read = pin_claim_repo.read_and_claim
    reads = 0

    async def always_stale(*args: Any, **kwargs: Any) -> Any:
        nonlocal reads
        reads += 1
        ctx, state, _, attempt = await read(*args, **kwargs)
        return ctx, state, "0", attempt  # a version the account never has

    monkeypatch.setattr(pin_claim_repo, "read_and_claim", always_stale)
    got = await _buy(pool, m, sid, pin=PIN)
    assert reads == 2  # two optimistic attempts (the PIN checked once), then the lock
    assert got.stored_value_spent == 300
    assert await _failures(conn, m) == (0, None)
    assert await fx.ledger_sums(conn, m.account_id) == (
        got.points_balance, got.stored_value_balance, got.points_balance)


async def _pin_row(conn: asyncpg.Connection, m: fx.Member) -> tuple[int, Any, Any]:
    row = await conn.fetchrow("SELECT pin_failures, pin_locked_until, pin_lock_pending_until "
                              "FROM members WHERE id = $1", m.id)
    assert row is not None
    return row[0], row[1], row[2]


class _Stale(msgspec.Struct, frozen=True, kw_only=True):
    """A card read before the lock was set (a payout's, say): the check must count."""

    member_id: uuid.UUID
    pin_hash: str | None
    pin_locked_until: datetime | None = None
    pin_lock_pending_until: datetime | None = None


async def test_a_check_that_never_reports_leaves_the_card_in_progress_then_locked(
        pool: asyncpg.Pool, conn: asyncpg.Connection) -> None:
    """A worker that dies between the last place's claim and its verification: for
    `pending_s` the card answers "in progress, retry" (nothing counted), then it is locked
    until the claim's `locked_until`, then a right PIN goes through."""
    m, sid = await _member(conn)
    lock_until = NOW + timedelta(seconds=POLICY.lock_s)
    pending_until = NOW + timedelta(seconds=POLICY.pending_s)
    claims = [await pin_claim_repo.claim_pin_attempt(
        conn, m.id, max_attempts=POLICY.max_attempts, lock_until=lock_until,
        pending_until=pending_until, now=NOW) for _ in range(POLICY.max_attempts)]
    assert [c.locks for c in claims] == [False] * (POLICY.max_attempts - 1) + [True]
    assert await _pin_row(conn, m) == (0, lock_until, pending_until)  # and no verification

    during = NOW + timedelta(seconds=1)
    with pytest.raises(errors.PinCheckInProgress) as busy:  # the purchase's one statement
        await _buy(pool, m, sid, pin=PIN, key="during", now=during)
    assert (busy.value.field, busy.value.retry_after_s) == ("stored_value.pin", 1)
    with pytest.raises(errors.PinCheckInProgress):  # a check counting on its own (payouts)
        await till.check_pin(conn, _Stale(member_id=m.id, pin_hash=HASHER.hash(PIN)), PIN,
                             hasher=HASHER, policy=POLICY, now=during, field="pin")
    assert await _pin_row(conn, m) == (0, lock_until, pending_until)  # nothing counted

    after = pending_until + timedelta(seconds=1)  # the bound passed: the lock stands
    with pytest.raises(errors.PinLocked) as locked:
        await _buy(pool, m, sid, pin=PIN, key="after", now=after)
    assert locked.value.members["locked_until"] == lock_until
    with pytest.raises(errors.PinLocked):
        await till.check_pin(conn, _Stale(member_id=m.id, pin_hash=HASHER.hash(PIN)), PIN,
                             hasher=HASHER, policy=POLICY, now=after, field="pin")
    got = await _buy(pool, m, sid, pin=PIN, key="later", now=lock_until + timedelta(seconds=1))
    assert got.stored_value_spent == 300
    assert (await fx.snapshot(conn, m)).transactions == 1


@pytest.mark.parametrize("last", ["right", "wrong"])
async def test_the_last_places_verification_settles_its_provisional_lock(
        pool: asyncpg.Pool, conn: asyncpg.Connection, last: str) -> None:
    """A right PIN at the last place lifts the lock; a wrong one confirms it at once (the
    PIN sent next is told "locked", not "in progress")."""
    m, sid = await _member(conn)
    for i in range(POLICY.max_attempts - 1):
        with pytest.raises(errors.WrongPin):
            await _buy(pool, m, sid, pin="00000", key=f"w{i}")
    if last == "right":
        await _buy(pool, m, sid, pin=PIN, key="last")
        assert await _pin_row(conn, m) == (0, None, None)
        return
    with pytest.raises(errors.PinLocked) as locked:
        await _buy(pool, m, sid, pin="00000", key="last")
    until = locked.value.members["locked_until"]
    assert await _pin_row(conn, m) == (0, until, None)
    with pytest.raises(errors.PinLocked):
        await _buy(pool, m, sid, pin=PIN, key="next")


@pytest.mark.parametrize(("attempt", "folded"), [
    (PinAttempt(number=1, pin_hash="h"), True),
    (PinAttempt(number=2, pin_hash="h"), False),  # an earlier wrong PIN, or a check in flight
    (PinAttempt(number=1, locks=True, pin_hash="h"), False),  # a limit of one attempt
    (PinAttempt(locked_until=NOW), False),  # not counted: locked
    (None, False)])  # nothing counted by the read (the check counts on its own)
def test_only_an_attempt_at_the_counts_first_place_that_does_not_lock_folds_its_restart(
        attempt: PinAttempt | None, folded: bool) -> None:
    assert pin_check.folds(attempt) is folded
