"""A PIN attempt counted before it is verified (`PIN_CLAIM`, `claim_pin_attempt`, and its
outcome: `pin_verified`, `pin_lock_confirmed`), and a purchase with a PIN: the card state read
and the PIN attempt counted, in ONE statement.

A purchase that spends stored value, or points or offers by card number, needs the member's
PIN. Its attempt must be counted, and committed, before the PIN is verified (issue 14, bug 2:
parallel requests never check more PINs than the limit), and argon2 needs the stored hash: so
the count and the hash come before the write, in a round trip of their own. This statement
folds the till's unlocked read (`account_repo.READ_STATE_BY_*`) into that count: it reads the
card, the account's state and version in one snapshot, and counts the attempt
(`PIN_CLAIM`'s update) only if the purchase would reach the PIN check: the card
is active, the store is the program's, the currency is the program's, stored value is on when
spent, the Idempotency-Key is not stored (a replay checks no PIN), the amount is within the
program's limit, a PIN was given, the member has one and it is not locked. Then the service
verifies the PIN with no lock held and the self-committing write follows, which restarts the
count after a right PIN when this attempt took the count's first place: two round trips
instead of four (read, count, restart, write); otherwise a right PIN restarts it on its own
first (`PIN_VERIFIED`): three (see `wallet/ledger/pin_check.py`).

Why not one: the write depends on the PIN being right, which only argon2 in Python can tell,
and only from the hash this statement returns after counting the attempt.

When no attempt was counted although the service's checks pass (a concurrent attempt locked
the PIN in between), the service counts it on its own (`till.check_pin`), as before.
"""

from __future__ import annotations

import uuid
from datetime import datetime

import msgspec

from wallet.kernel import errors
from wallet.kernel.db import Conn
from wallet.kernel.idempotency_repo import IdemKey
from wallet.ledger import account_repo
from wallet.ledger.account_repo import AccountState, CardContext

# One PIN attempt, counted before the PIN is verified, in one autocommitted statement: parallel
# requests each take their own place in the count (the row lock orders them), so at most
# `$2` PINs are ever checked before the lock; the attempt taking the last place sets the lock
# at once, provisional until `$5` (its verification confirms it, `PIN_LOCK_CONFIRMED`, or a
# right PIN lifts it, `PIN_VERIFIED`; past `$5` it stands). While locked (`$4` = now), no
# attempt is counted and nothing is verified. The count restarts after the lock.
PIN_CLAIM = """
UPDATE members SET
  pin_failures = CASE WHEN pin_failures + 1 >= $2 THEN 0 ELSE pin_failures + 1 END,
  pin_locked_until = CASE WHEN pin_failures + 1 >= $2 THEN $3::timestamptz ELSE NULL END,
  pin_lock_pending_until = CASE WHEN pin_failures + 1 >= $2 THEN $5::timestamptz ELSE NULL END
WHERE id = $1 AND pin_hash IS NOT NULL AND (pin_locked_until IS NULL OR pin_locked_until <= $4)
RETURNING pin_failures, pin_locked_until, pin_hash
"""

PIN_STATE = "SELECT pin_hash, pin_locked_until, pin_lock_pending_until FROM members WHERE id = $1"

# The PIN was right: the count starts again and the lock this attempt set (if it took the
# last place) is lifted; a lock a concurrent wrong attempt set stays.
PIN_VERIFIED = """
UPDATE members SET pin_failures = 0,
       pin_lock_pending_until = CASE WHEN pin_locked_until = $2 THEN NULL
                                     ELSE pin_lock_pending_until END,
       pin_locked_until = CASE WHEN pin_locked_until = $2 THEN NULL ELSE pin_locked_until END
WHERE id = $1 AND (pin_failures > 0 OR pin_locked_until = $2)
"""

# The PIN that took the last place was wrong: the lock it set ($2) stands from now on.
PIN_LOCK_CONFIRMED = """
UPDATE members SET pin_lock_pending_until = NULL WHERE id = $1 AND pin_locked_until = $2
"""


class PinAttempt(msgspec.Struct, frozen=True, kw_only=True):
    """The outcome of counting one PIN attempt before verifying it.

    Counted (`pin_hash` set): `number` is its place in the count (1..max_attempts) and
    `locks` says it took the last place (the lock until `lock_until` is already set). Not
    counted: `pin_hash` is None and `locked_until` is the running lock (None: no PIN set),
    `pending` True while that lock waits for its PIN's verification."""

    number: int = 0
    locks: bool = False
    pin_hash: str | None = None
    locked_until: datetime | None = None
    pending: bool = False


def pin_attempt(failures: int, locked_until: datetime | None, pin_hash: str,
                max_attempts: int) -> PinAttempt:
    """The counted attempt `PIN_CLAIM` returned (`pin_failures`, `pin_locked_until` and
    `pin_hash` after the count)."""
    locks = locked_until is not None
    return PinAttempt(number=max_attempts if locks else failures, locks=locks,
                      pin_hash=pin_hash, locked_until=locked_until)


async def claim_pin_attempt(conn: Conn, member_id: uuid.UUID, *, max_attempts: int,
                            lock_until: datetime, pending_until: datetime,
                            now: datetime) -> PinAttempt:
    """Count one PIN attempt before its verification (autocommitted: call outside a
    transaction, so the count sticks whatever the request does next). NotFound for an
    unknown member."""
    for _ in range(3):  # bounded: a lock that ends or is lifted between the two statements
        row = await conn.fetchrow(PIN_CLAIM, member_id, max_attempts, lock_until, now,
                                  pending_until)
        if row is not None:
            return pin_attempt(row["pin_failures"], row["pin_locked_until"], row["pin_hash"],
                               max_attempts)
        state = await conn.fetchrow(PIN_STATE, member_id)
        if state is None:
            raise errors.NotFound("no such member")
        until: datetime | None = state["pin_locked_until"]
        if state["pin_hash"] is None or (until is not None and until > now):
            pending = state["pin_lock_pending_until"]
            return PinAttempt(locked_until=until if state["pin_hash"] is not None else None,
                              pending=pending is not None and pending > now)
    raise errors.Conflict("the PIN changed while it was checked; try again")  # pragma: no cover


async def pin_verified(conn: Conn, member_id: uuid.UUID, attempt: PinAttempt) -> None:
    """After a right PIN: restart the count, lift the lock `attempt` set (if it did)."""
    await conn.execute(PIN_VERIFIED, member_id, attempt.locked_until if attempt.locks else None)


async def pin_lock_confirmed(conn: Conn, member_id: uuid.UUID, attempt: PinAttempt) -> None:
    """After a wrong PIN that took the last place: its provisional lock stands."""
    await conn.execute(PIN_LOCK_CONFIRMED, member_id, attempt.locked_until)


class Claim(msgspec.Struct, frozen=True, kw_only=True):
    """What the purchase asks, for deciding whether its PIN attempt is counted."""

    max_attempts: int
    lock_until: datetime  # the lock an attempt taking the last place sets
    pending_until: datetime  # ... provisional until then (`PIN_CLAIM`)
    currency: str
    stored_value: bool  # it spends stored value: the program must have it
    amount: int


def _with_claim(read: str) -> str:
    # $1-$8 as `READ_STATE_BY_*`; $9 max attempts, $10 lock until, $11 currency, $12 spends
    # stored value, $13 amount, $14 the lock provisional until ($7 is now).
    return f"""
WITH st AS ({read}),
claim AS (
  UPDATE members m SET
    pin_failures = CASE WHEN m.pin_failures + 1 >= $9::int THEN 0 ELSE m.pin_failures + 1 END,
    pin_locked_until = CASE WHEN m.pin_failures + 1 >= $9::int THEN $10::timestamptz
                            ELSE NULL END,
    pin_lock_pending_until = CASE WHEN m.pin_failures + 1 >= $9::int THEN $14::timestamptz
                                  ELSE NULL END
    FROM st
   WHERE m.id = st.member_id AND st.card_status = 'active' AND st.store_ok
     AND st.currency = $11::text AND (NOT $12::boolean OR st.stored_value)
     AND st.status_code IS NULL AND $13::bigint <= st.max_purchase_amount
     AND m.pin_hash IS NOT NULL
     AND (m.pin_locked_until IS NULL OR m.pin_locked_until <= $7::timestamptz)
  RETURNING m.pin_failures AS claim_failures, m.pin_locked_until AS claim_locked_until,
            m.pin_hash AS claim_hash)
SELECT st.*, claim.* FROM st LEFT JOIN claim ON true
"""


CLAIM_BY_ID = _with_claim(account_repo.READ_STATE_BY_ID)
CLAIM_BY_NUMBER = _with_claim(account_repo.READ_STATE_BY_NUMBER)


async def read_and_claim(conn: Conn, card: uuid.UUID | str, claim: Claim | None, *,
                         program_id: uuid.UUID, store_id: uuid.UUID, idem: IdemKey,
                         now: datetime, fifo_limit: int
                         ) -> tuple[CardContext, AccountState, str, PinAttempt | None]:
    """`account_repo.read_card_state` and, with `claim`, when the purchase would reach its
    PIN check, its attempt counted (None: not counted); one autocommitted statement (call it
    outside a transaction: the count sticks). Errors as `read_card_state`."""
    if claim is None:
        return (*await account_repo.read_card_state(
            conn, card, program_id=program_id, store_id=store_id, idem=idem, now=now,
            fifo_limit=fifo_limit), None)
    row = await account_repo.card_row(
        conn, card, CLAIM_BY_ID, CLAIM_BY_NUMBER, store_id, program_id, idem.scope, idem.key,
        now.date(), now, fifo_limit, claim.max_attempts, claim.lock_until, claim.currency,
        claim.stored_value, claim.amount, claim.pending_until)
    ctx, state, version = account_repo.card_state(row)
    attempt = None
    if row["claim_hash"] is not None:
        attempt = pin_attempt(row["claim_failures"], row["claim_locked_until"],
                                           row["claim_hash"], claim.max_attempts)
    return ctx, state, version, attempt
