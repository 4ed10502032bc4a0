"""The refund rule, pure: what a refund of part of a purchase moves (the ledger's other rules
and their invariants: `wallet/ledger/rules.py`; the service: `wallet/ledger/refunds.py`).

* **refunds are in what was paid, and cumulative**: A is what the member paid for the
  purchase (its amount less the discount of offers and vouchers; stored value is part of it,
  the rest went by card or cash), so a refund gives back at most A. After refunds totalling R,
  the points taken back and the points and stored value returned are floor(X * R / A) for
  each X the purchase earned, redeemed or spent. A refund moves the difference between that
  figure after and before it, so partial refunds that sum to the whole move exactly X, never
  more, and the same refunds give the same figures in any split; what is not stored value is
  cash or card back, and so is stored value the purse cannot take under its ceiling
  (`Limits.max_stored_value_balance`, see `wallet/ledger/limits.py`). A purchase nothing
  was paid for (A = 0: a free product voucher, a 100% offer) is refunded whole, once, with
  an amount of 0 (the caller knows whether it was).

Refund after the earned points were spent: the refund first returns the redeemed points (a new
lot with the program's full expiry period) and stored value, then takes back the earned
points: from the purchase's own lot first, then from the other lots oldest first, but never
more than the balance holds. What could not be taken back is recorded on the refund as
`points_shortfall` and never collected later: no balance goes below zero.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta

import msgspec

from wallet.kernel.errors import RuleViolation
from wallet.kernel.model import Limits
from wallet.ledger.limits import purse_room
from wallet.ledger.rules import (
    Balances,
    Book,
    EarnRules,
    Effect,
    Lot,
    NewLot,
    expire_due,
    fifo,
    take_points,
)


class Original(msgspec.Struct, frozen=True, kw_only=True):
    """The purchase a refund refers to, with what its refunds have moved so far."""

    amount: int  # what was paid: the purchase's amount less its discount
    refunded_amount: int
    points_earned: int
    points_redeemed: int
    stored_value_spent: int
    earn_lot_id: uuid.UUID | None


class RefundEffect(msgspec.Struct, frozen=True, kw_only=True):
    effect: Effect
    amount: int
    points_taken_back: int
    points_shortfall: int
    points_returned: int
    stored_value_returned: int
    cash_back: int  # what of `amount` goes back by card or in cash (the rest: stored value)
    tier_points_delta: int  # to subtract from the trailing-12-month earned points


def share(total: int, amount: int, before: int, after: int) -> int:
    """The part of `total` a refund moves when refunds of a purchase of `amount` go from
    `before` to `after`: floor(total * after / amount) - floor(total * before / amount)."""
    return total * after // amount - total * before // amount


def refund(balances: Balances, lots: Sequence[Lot], original: Original, *, amount: int,
           rules: EarnRules, now: datetime, return_lot_id: uuid.UUID,
           limits: Limits | None = None) -> RefundEffect:
    """Refund `amount` of what was paid for `original` (see the module docstring).

    With `limits`, the stored value going back never takes the purse above
    `max_stored_value_balance`: what the purse cannot take goes back by card or in cash
    (`cash_back`), so the member gets all of it and the ceiling holds.

    `original.amount` is what was paid (amount - discount). `lots` must hold every due lot,
    the purchase's own earn lot if still open, and enough open lots oldest first to cover the
    take-back. Entries: expire…, refund_redeem, refund_earn…, stored_value_refund. Raises
    RuleViolation (field `amount`) when `amount` exceeds what is left to refund, or is not 0
    for a purchase nothing was paid for (refunded whole).
    """
    if original.amount == 0:  # nothing paid: the whole purchase goes back, with no money
        if amount != 0:
            raise RuleViolation("nothing was paid for this purchase: it is refunded whole, "
                                "without an amount", field="amount")
        base, before, after = 1, 0, 1
    else:
        left = original.amount - original.refunded_amount
        if amount <= 0 or amount > left:
            raise RuleViolation(f"at most {max(left, 0)} of what was paid for this purchase "
                                "can still be refunded", field="amount")
        base = original.amount
        before, after = original.refunded_amount, original.refunded_amount + amount
    owed = share(original.points_earned, base, before, after)
    returned = share(original.points_redeemed, base, before, after)
    value_back = share(original.stored_value_spent, base, before, after)
    if limits is not None:
        value_back = min(value_back, purse_room(balances.stored_value, limits))
    book = Book(balances)
    open_ = expire_due(book, lots, now)
    if returned:
        book.new_lots.append(NewLot(
            id=return_lot_id, source="refund_redeem", earned_at=now, points=returned,
            remaining=returned, expires_at=now + timedelta(days=rules.points_expiry_days)))
        open_[return_lot_id] = returned
        book.add("refund_redeem", points=returned, lot_id=return_lot_id)
    take = min(owed, book.points)
    own = [lot for lot in lots if lot.id == original.earn_lot_id]
    fresh = Lot(id=return_lot_id, earned_at=now, points=returned, remaining=returned,
                expires_at=now + timedelta(days=rules.points_expiry_days))
    others = fifo([*(lot for lot in lots if lot.id != original.earn_lot_id),
                   *([fresh] if returned else [])])
    take_points(book, "refund_earn", [*own, *others], open_, take)
    if return_lot_id in book.updates:
        # The new lot was partly taken back at once: it is created with what is left (a row
        # cannot be inserted and updated by one statement).
        book.new_lots[-1] = msgspec.structs.replace(
            book.new_lots[-1], remaining=book.updates.pop(return_lot_id))
    book.add("stored_value_refund", value=value_back)
    return RefundEffect(effect=book.effect(), amount=amount, points_taken_back=take,
                        points_shortfall=owed - take, points_returned=returned,
                        stored_value_returned=value_back, cash_back=amount - value_back,
                        tier_points_delta=-owed)
