"""The answer to a till purchase (`POST /v1/pos/purchases`), whichever path wrote it: the
one-statement earn-only path (`earn_fast`) and the two-trip path (`till`) build it here."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

import msgspec

from wallet.ledger.rules import PurchaseEffect


class PurchaseResult(msgspec.Struct, frozen=True, kw_only=True):
    transaction_id: uuid.UUID
    points_earned: int
    points_redeemed: int
    discount: int
    stored_value_spent: int
    points_balance: int
    stored_value_balance: int
    amount_due: int = 0  # what is left to pay in cash or by card: amount - discount - stored value
    points_bonus: int = 0  # from bonus_points offers
    offers_redeemed: list[uuid.UUID] = []
    vouchers_used: list[uuid.UUID] = []  # reward vouchers this purchase used


def purchase_result(tx_id: uuid.UUID, amount: int, done: PurchaseEffect, points: int,
                    value: int, *, offer_ids: Sequence[uuid.UUID] = (),
                    vouchers_used: Sequence[uuid.UUID] = ()) -> PurchaseResult:
    """The answer to a purchase the rule decided, with the balances after it."""
    return PurchaseResult(
        transaction_id=tx_id, points_earned=done.points_earned,
        points_redeemed=done.points_redeemed, discount=done.discount,
        stored_value_spent=done.stored_value_spent, points_balance=points,
        stored_value_balance=value, amount_due=amount - done.discount - done.stored_value_spent,
        points_bonus=done.points_bonus, offers_redeemed=list(offer_ids),
        vouchers_used=list(vouchers_used))
