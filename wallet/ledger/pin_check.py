"""The member's PIN at the till: each attempt counted before it is verified, a right PIN
restarting the count (issue 14, bug 2), and how a purchase carries that across its attempts.

`check_pin` is the one check (purchases, payouts, changing the PIN). A purchase does it with
`PurchasePin`: the attempt is counted by the purchase's first read (`pin_claim_repo`), then
the PIN is verified with no lock held and a right one restarts the count at once.

Why the restart is not folded into the purchase's write (which would make a PIN purchase two
round trips instead of three): a right PIN's attempt would then stay counted until the write
commits instead of for argon2's milliseconds, and parallel purchases with the right PIN on
one card (the concurrency test: many at once on four cards) took the last place and locked
the card.

The lock the last place sets is provisional until that attempt's PIN is verified
(`pending_s`, a bound for a worker that dies mid-check): a right PIN lifts it, a wrong one
confirms it. A request meeting a provisional lock was refused only because other checks are
in flight, so it is told to retry (`PinCheckInProgress`, 409 with `Retry-After: 1`), not
that the card is locked: parallel purchases with the right PIN all go through once retried.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Protocol

import msgspec

from wallet.kernel import errors
from wallet.kernel.db import Conn
from wallet.kernel.hashing import Hasher
from wallet.ledger import pin_claim_repo
from wallet.ledger.pin_claim_repo import PinAttempt


class PinPolicy(msgspec.Struct, frozen=True, kw_only=True):
    max_attempts: int
    lock_s: int
    pending_s: int = 10  # the last place's lock is provisional at most this long



class PinHolder(Protocol):
    """Whose PIN is checked: a till's card context, or a member changing their PIN."""

    @property
    def member_id(self) -> uuid.UUID: ...
    @property
    def pin_hash(self) -> str | None: ...
    @property
    def pin_locked_until(self) -> datetime | None: ...
    @property
    def pin_lock_pending_until(self) -> datetime | None: ...


async def check_pin(conn: Conn, ctx: PinHolder, pin: str | None, *,
                    hasher: Hasher, policy: PinPolicy, now: datetime,
                    field: str = "stored_value.pin",
                    spending: str = "spending stored value",
                    claimed: PinAttempt | None = None) -> None:
    """Verify the member's PIN (given as `field`, needed for `spending`): refuse while
    locked; count the attempt *before* verifying it, so parallel requests never check more
    than `max_attempts` PINs (the one taking the last place locks it for `lock_s` unless it
    is right, provisionally until its PIN is verified: `PinCheckInProgress` meanwhile); a
    right PIN restarts the count.

    Call it outside a transaction: the count is autocommitted by its own statement (it
    sticks although the request is refused), and no row lock is held while argon2 runs.
    `claimed`: the attempt already counted with the read (`pin_claim_repo`)."""
    attempt = claimed
    until = now + timedelta(seconds=policy.lock_s)
    if attempt is None:
        if ctx.pin_locked_until is not None and ctx.pin_locked_until > now:
            pending = ctx.pin_lock_pending_until
            raise (_in_progress(field) if pending is not None and pending > now
                   else _pin_locked(ctx.pin_locked_until, now, field))
        if ctx.pin_hash is None:
            raise errors.PinRequired(f"the member has not set a PIN ({spending} needs one)",
                                     field=field)
        if pin is None:
            raise errors.PinRequired(f"{spending} needs the member's PIN", field=field)
        attempt = await pin_claim_repo.claim_pin_attempt(
            conn, ctx.member_id, max_attempts=policy.max_attempts, lock_until=until,
            pending_until=now + timedelta(seconds=policy.pending_s), now=now)
    if attempt.pin_hash is None:  # locked by a concurrent attempt, or the PIN was removed
        if attempt.locked_until is None:
            raise errors.PinRequired(f"the member has not set a PIN ({spending} needs one)",
                                     field=field)
        raise (_in_progress(field) if attempt.pending
               else _pin_locked(attempt.locked_until, now, field))
    if pin is not None and await hasher.verify_async(attempt.pin_hash, pin):
        await pin_claim_repo.pin_verified(conn, ctx.member_id, attempt)
        return
    if attempt.locks:
        await pin_claim_repo.pin_lock_confirmed(conn, ctx.member_id, attempt)
        raise errors.PinLocked(_locked(until), retry_after_s=policy.lock_s,
                               locked_until=until, new_lock=True, field=field)
    left = max(0, policy.max_attempts - attempt.number)
    raise errors.WrongPin(f"wrong PIN: {left} attempt{'s' if left != 1 else ''} left before "
                          "stored value is locked", attempts_left=left, field=field)


def _pin_locked(until: datetime, now: datetime, field: str) -> errors.PinLocked:
    retry = max(1, int((until - now).total_seconds() + 0.999))
    return errors.PinLocked(_locked(until), retry_after_s=retry, locked_until=until,
                            field=field)


def _in_progress(field: str) -> errors.PinCheckInProgress:
    return errors.PinCheckInProgress(
        "other PIN checks on this card are in progress and one may lock it: nothing was "
        "checked; retry in a second with the same Idempotency-Key", field=field)


def _locked(until: datetime) -> str:
    return (f"too many wrong PINs: stored value is locked until "
            f"{until.astimezone(UTC).isoformat(timespec='seconds')}")


class PurchasePin:
    """The PIN of one purchase across its read-and-write attempts (see the module docstring).
    `needed` False: the purchase needs no PIN and every method does nothing."""

    def __init__(self, needed: bool, pin: str | None, policy: PinPolicy) -> None:
        self.needed, self.pin, self.policy = needed, pin, policy
        self.member: uuid.UUID | None = None  # set once the PIN was checked
        self.claimed: PinAttempt | None = None  # counted by the read just made

    def claim(self, *, currency: str, stored_value: int, amount: int,
              now: datetime) -> pin_claim_repo.Claim | None:
        """What the next read counts the attempt with (None: that read counts nothing)."""
        self.claimed = None
        if not self.needed or self.member is not None or self.pin is None:
            return None
        return pin_claim_repo.Claim(
            max_attempts=self.policy.max_attempts, currency=currency, amount=amount,
            lock_until=now + timedelta(seconds=self.policy.lock_s),
            pending_until=now + timedelta(seconds=self.policy.pending_s),
            stored_value=bool(stored_value))

    async def check(self, conn: Conn, ctx: PinHolder, *, hasher: Hasher, now: datetime,
                    field: str, spending: str) -> None:
        """Verify the PIN once per purchase (`check_pin`), with the attempt the last read
        counted if it did."""
        if not self.needed or self.member is not None:
            return
        await check_pin(conn, ctx, self.pin, hasher=hasher, policy=self.policy, now=now,
                        field=field, spending=spending, claimed=self.claimed)
        self.member = ctx.member_id
