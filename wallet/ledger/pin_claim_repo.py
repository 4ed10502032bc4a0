"""A purchase with a PIN: the card state read and the PIN attempt counted, in ONE statement.

A purchase that spends stored value, or points or offers by card number, needs the member's
PIN. Its attempt must be counted, and committed, before the PIN is verified (issue 14, bug 2:
parallel requests never check more PINs than the limit), and argon2 needs the stored hash: so
the count and the hash come before the write, in a round trip of their own. This statement
folds the till's unlocked read (`account_repo.READ_STATE_BY_*`) into that count: it reads the
card, the account's state and version in one snapshot, and counts the attempt
(`account_repo.PIN_CLAIM`'s update) only if the purchase would reach the PIN check: the card
is active, the store is the program's, the currency is the program's, stored value is on when
spent, the Idempotency-Key is not stored (a replay checks no PIN), the amount is within the
program's limit, a PIN was given, the member has one and it is not locked. Then the service
verifies the PIN with no lock held, a right one restarts the count (`pin_check`), and the
self-committing write follows: three round trips instead of four (read, count, restart,
write).

Why not one: the write depends on the PIN being right, which only argon2 in Python can tell,
and only from the hash this statement returns after counting the attempt. Why not two (the
restart folded into the write): see `wallet/ledger/pin_check.py`.

When no attempt was counted although the service's checks pass (a concurrent attempt locked
the PIN in between), the service counts it on its own (`till.check_pin`), as before.
"""

from __future__ import annotations

import uuid
from datetime import datetime

import msgspec

from wallet.kernel.db import Conn
from wallet.kernel.idempotency_repo import IdemKey
from wallet.ledger import account_repo
from wallet.ledger.account_repo import AccountState, CardContext, PinAttempt


class Claim(msgspec.Struct, frozen=True, kw_only=True):
    """What the purchase asks, for deciding whether its PIN attempt is counted."""

    max_attempts: int
    lock_until: datetime  # the lock an attempt taking the last place sets
    currency: str
    stored_value: bool  # it spends stored value: the program must have it
    amount: int


def _with_claim(read: str) -> str:
    # $1-$8 as `READ_STATE_BY_*`; $9 max attempts, $10 lock until, $11 currency, $12 spends
    # stored value, $13 amount ($7 is now).
    return f"""
WITH st AS ({read}),
claim AS (
  UPDATE members m SET
    pin_failures = CASE WHEN m.pin_failures + 1 >= $9::int THEN 0 ELSE m.pin_failures + 1 END,
    pin_locked_until = CASE WHEN m.pin_failures + 1 >= $9::int THEN $10::timestamptz
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
        claim.stored_value, claim.amount)
    ctx, state, version = account_repo.card_state(row)
    attempt = None
    if row["claim_hash"] is not None:
        attempt = account_repo.pin_attempt(row["claim_failures"], row["claim_locked_until"],
                                           row["claim_hash"], claim.max_attempts)
    return ctx, state, version, attempt
