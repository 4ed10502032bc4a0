"""The member's PIN at the till: each attempt counted before it is verified, a right PIN
restarting the count (issue 14, bug 2), and how a purchase carries that across its attempts.

`check_pin` is the one check (purchases, payouts, changing the PIN). A purchase does it with
`PurchasePin`: the attempt is counted by the purchase's first read (`pin_claim_repo`), then
the PIN is verified with no lock held, then the purchase's self-committing write. A PIN
purchase is two round trips, not one: the count must be committed before argon2 runs, and
argon2 runs in Python with no lock held.

Where a right PIN's restart of the count goes (`folds`): a right PIN's attempt stays counted
until its restart commits, and while it is counted, parallel checks on the card see one place
fewer. So the restart rides on the purchase's write (two round trips) only when the attempt
took the count's first place: no earlier wrong PIN, no other check on the card in flight, and
it did not lock. Otherwise (the card nearer its limit, or the provisional lock below) it is
its own statement right after argon2, as before: three round trips. The rule keeps a folded
restart from ever holding more than one place: places are counted from the last restart, and
only one attempt since then took the first place; so reaching the lock still needs
`max_attempts - 1` PINs checked at once, as against `max_attempts` with every restart
immediate (a rule folding up to `max_attempts - 2` places would let two checks in flight
lock a card while earlier right PINs' writes ran, e.g. queued on a hot card's row). And the
fold holds a place for one write at most: when that write does not commit (refused by the
rules or a constraint, a race lost to a concurrent write, a deadlock), the restart is made
at once (`PurchasePin.settle`), so a right PIN never counts as a wrong one and a retry or the
locked path never queues holding it. The restart is the same wherever it runs: the count
back to zero, a lock left alone unless this attempt set it (so it also forgives wrong PINs
counted while this one was checked: when folded, also while its write ran, a write's time
more). A worker dying between the count and the write leaves the attempt counted, as it did
between the count and the restart.

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
                    claimed: PinAttempt | None = None, restart: bool = True) -> None:
    """Verify the member's PIN (given as `field`, needed for `spending`): refuse while
    locked; count the attempt *before* verifying it, so parallel requests never check more
    than `max_attempts` PINs (the one taking the last place locks it for `lock_s` unless it
    is right, provisionally until its PIN is verified: `PinCheckInProgress` meanwhile); a
    right PIN restarts the count.

    Call it outside a transaction: the count is autocommitted by its own statement (it
    sticks although the request is refused), and no row lock is held while argon2 runs.
    `claimed`: the attempt already counted with the read (`pin_claim_repo`); `restart`
    False: a right PIN's restart is the caller's (`PurchasePin`: its write carries it),
    unless the attempt set the provisional lock."""
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
        if restart or attempt.locks:  # a provisional lock is lifted at once, always
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


def folds(attempt: PinAttempt | None) -> bool:
    """Whether a right PIN's restart may ride on the purchase's write: the attempt was counted
    and took the count's first place (no earlier wrong PIN, no other check on the card in
    flight) without locking (it locks with a limit of one attempt): see the module
    docstring."""
    return (attempt is not None and attempt.pin_hash is not None and attempt.number == 1
            and not attempt.locks)


class PurchasePin:
    """The PIN of one purchase across its read-and-write attempts (see the module docstring).
    `needed` False: the purchase needs no PIN and every method does nothing."""

    def __init__(self, needed: bool, pin: str | None, policy: PinPolicy) -> None:
        self.needed, self.pin, self.policy = needed, pin, policy
        self.member: uuid.UUID | None = None  # set once the PIN was checked
        self.claimed: PinAttempt | None = None  # counted by the read just made
        self.restart_due: PinAttempt | None = None  # right; its restart rides on the write

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
        counted if it did. A right PIN's restart is left to the write when the attempt
        `folds` (`restart_due`), else made at once."""
        if not self.needed or self.member is not None:
            return
        fold = folds(self.claimed)
        await check_pin(conn, ctx, self.pin, hasher=hasher, policy=self.policy, now=now,
                        field=field, spending=spending, claimed=self.claimed,
                        restart=not fold)
        self.member = ctx.member_id
        if fold:
            self.restart_due = self.claimed

    def carried(self) -> uuid.UUID | None:
        """The member whose count the next write restarts (None: no restart is due); call
        `written` once that write committed."""
        return self.member if self.restart_due is not None else None

    def written(self) -> None:
        self.restart_due = None

    async def settle(self, conn: Conn) -> None:
        """The restart still due, at once (the write meant to carry it did not commit)."""
        if self.restart_due is not None and self.member is not None:
            await pin_claim_repo.pin_verified(conn, self.member, self.restart_due)
            self.restart_due = None
