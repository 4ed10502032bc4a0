"""An earn-only till purchase in one round trip (issue 13): Python decides, one statement
checks, picks and writes.

An earn-only purchase (no points redeemed, no stored value, no offers, no vouchers: most of
a till's traffic) depends on the account's state in two ways only: the tier the member is in
before it (from their points of the trailing 12 months) and the balances after it. So the
service computes, with the unchanged pure rule (`rules.purchase`), the outcome for EACH
band of 12-month points (below every tier, at tier 1, at tier 2…) from zero balances, and
encodes the answer around the two balances; `earn_repo.earn` then checks the preconditions,
picks the band by threshold, offsets the balances by the account's, writes and commits, all
in one statement. The program's rules come from a per-worker cache (`RulesCache`) keyed by
the program's `rules_version` (migration 0018), which the statement checks.

When the statement writes nothing (unknown or blocked card, another program's store, rules
changed since the cache loaded them, a lot due for expiry, a concurrent write on the
account twice in a row: a hot card's purchase that lost the race runs the statement once
more first), `try_earn` returns None and `till.purchase` runs its two-trip path, which gives
the exact answer or error; a stored Idempotency-Key comes back from the same statement and
is replayed (or is a 409 for another request), as the two-trip path does.

The answer the client gets is decoded from the bytes the statement stored under the key, as
a replay decodes them: a retry gets the same body, byte for byte.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import TypeVar

import msgspec

from wallet.kernel import ids
from wallet.kernel.db import Conn
from wallet.kernel.errors import DomainError
from wallet.kernel.idempotency import IdemKey, Outcome, encode, replay
from wallet.ledger import earn_repo, rules
from wallet.ledger.earn_repo import Bands, Fast, ProgramRules
from wallet.ledger.purchase_answer import purchase_result
from wallet.privacy.access_log import Access

T = TypeVar("T")

# Stand-ins for the balances in the encoded answer: 16 digits, which no other field can hold
# (a UUID's longest run of digits is 12), then cut out and filled in by the statement.
_POINTS = -7_777_777_777_777_771
_VALUE = -7_777_777_777_777_772

class RulesCache:
    """The earning rules of each program this worker served, with their version: reloaded
    when the purchase statement finds the version moved (`forget`)."""

    def __init__(self) -> None:
        self._held: dict[uuid.UUID, ProgramRules] = {}

    async def get(self, conn: Conn, program_id: uuid.UUID) -> ProgramRules | None:
        held = self._held.get(program_id)
        if held is None:
            held = await earn_repo.program_rules(conn, program_id)
            if held is not None:
                self._held[program_id] = held
        return held

    def forget(self, program_id: uuid.UUID) -> None:
        self._held.pop(program_id, None)


def bands(program: ProgramRules, *, amount: int, now: datetime, tx_id: uuid.UUID,
          lot_id: uuid.UUID) -> tuple[Bands, datetime] | None:
    """The outcome of an earn-only purchase of `amount` in each band of 12-month points (see
    `earn_repo.Bands`), computed by `rules.purchase` from zero balances, and the earn lot's
    expiry. None when the rule refuses or its outcome is not one earn entry and its lot (the
    two-trip path then decides)."""
    tiers = program.rules.tiers
    probes = [tiers[0].min_points_12m - 1 if tiers else 0, *(t.min_points_12m for t in tiers)]
    earned: list[int] = []
    names: list[str | None] = []
    pieces: list[tuple[str, str, str]] = []
    expires_at = now
    zero = rules.Balances(points=0, stored_value=0)
    for points_12m in probes:
        try:
            done = rules.purchase(zero, [], program.rules, amount=amount, redeem_points=0,
                                  stored_value=0, points_12m=points_12m, now=now,
                                  earn_lot_id=lot_id)
        except DomainError:
            return None
        e = done.effect
        if e.lot_updates or len(e.entries) != len(e.new_lots) or len(e.entries) > 1 or any(
                x.kind != "earn" or x.points != done.points_earned for x in e.entries) or any(
                n.id != lot_id or n.points != n.remaining for n in e.new_lots):
            return None
        if e.new_lots:
            expires_at = e.new_lots[0].expires_at
        tier = rules.tier_for(tiers, points_12m)
        earned.append(done.points_earned)
        names.append(tier.name if tier else None)
        body = encode(purchase_result(tx_id, amount, done, _POINTS, _VALUE)).decode()
        pre, rest = body.split(str(_POINTS))
        mid, post = rest.split(str(_VALUE))
        pieces.append((pre, mid, post))
    return Bands(thresholds=[t.min_points_12m for t in tiers], earned=earned, tier_names=names,
                 body_pre=[p[0] for p in pieces], body_mid=[p[1] for p in pieces],
                 body_post=[p[2] for p in pieces]), expires_at


async def try_earn(conn: Conn, cache: RulesCache, card: uuid.UUID | str, *,
                   program_id: uuid.UUID, store_id: uuid.UUID, receipt_id: str, amount: int,
                   currency: str, idem: IdemKey, now: datetime, access: Access,
                   type_: type[T]) -> Outcome[T] | None:
    """The earn-only purchase in one statement, or None: nothing was written and the
    two-trip path must run (see the module docstring). Call it outside a transaction."""
    program = await cache.get(conn, program_id)
    if program is None or currency != program.currency or (
            amount > program.max_purchase_amount):  # the two-trip path refuses it exactly
        return None
    tx_id, lot_id = ids.time_ordered(), ids.time_ordered()
    made = bands(program, amount=amount, now=now, tx_id=tx_id, lot_id=lot_id)
    if made is None:
        return None
    fast = Fast(
        program_id=program_id, rules_version=program.version, store_id=store_id, now=now,
        idem=idem, bands=made[0], set_tier=bool(program.rules.tiers), tx_id=tx_id,
        receipt_id=receipt_id, amount=amount, currency=currency, lot_id=lot_id,
        entry_id=ids.time_ordered(), expires_at=made[1], access=access)
    answer = await earn_repo.earn(conn, card, fast)
    if answer.reason == "account changed":  # a concurrent writer (a hot card) committed
        answer = await earn_repo.earn(conn, card, fast)  # while we waited: once more
    if answer.body is not None:
        return Outcome(status=201, result=msgspec.json.decode(answer.body, type=type_))
    if answer.stored is not None:
        return replay(answer.stored, idem, type_)
    if answer.reason == "rules changed":
        cache.forget(program_id)
    return None
