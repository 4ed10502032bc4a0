"""Refunds in what was paid (pure rules): refunds that sum to what was paid give back exactly
the stored value spent and the rest by card or cash, in any split; a purchase nothing was
paid for is refunded whole, without an amount; payouts never take more than the purse."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wallet.kernel.errors import InsufficientBalance, RuleViolation
from wallet.ledger import refund_rules, rules

NOW = datetime(2026, 6, 1, tzinfo=UTC)
RATE = rules.EarnRules(earn_points=1, earn_per_amount=100, points_expiry_days=365)
RICH = rules.Balances(points=10**9, stored_value=0)


@given(paid=st.integers(1, 10**7), share=st.integers(0, 100),
       cuts=st.lists(st.integers(1, 10**7), max_size=8))
def test_refunds_summing_to_what_was_paid_give_back_the_stored_value_and_the_rest_in_cash(
        paid: int, share: int, cuts: list[int]) -> None:
    spent = paid * share // 100
    bounds = sorted({c % paid for c in cuts} - {0})
    parts = [b - a for a, b in zip([0, *bounds], [*bounds, paid], strict=True)]
    refunded, cash, value = 0, 0, 0
    for part in parts:
        original = refund_rules.Original(amount=paid, refunded_amount=refunded, points_earned=0,
                                  points_redeemed=0, stored_value_spent=spent, earn_lot_id=None)
        done = refund_rules.refund(RICH, [], original, amount=part, rules=RATE, now=NOW,
                            return_lot_id=uuid.uuid4())
        assert done.cash_back >= 0 and done.stored_value_returned >= 0
        assert done.cash_back + done.stored_value_returned == part
        refunded, cash, value = refunded + part, cash + done.cash_back, (
            value + done.stored_value_returned)
    assert (value, cash) == (spent, paid - spent)
    with pytest.raises(RuleViolation):
        refund_rules.refund(RICH, [], refund_rules.Original(
            amount=paid, refunded_amount=refunded, points_earned=0, points_redeemed=0,
            stored_value_spent=spent, earn_lot_id=None), amount=1, rules=RATE, now=NOW,
            return_lot_id=uuid.uuid4())


def test_a_purchase_nothing_was_paid_for_is_refunded_whole_with_no_money() -> None:
    free = refund_rules.Original(amount=0, refunded_amount=0, points_earned=0, points_redeemed=40,
                          stored_value_spent=0, earn_lot_id=None)
    done = refund_rules.refund(rules.Balances(points=0, stored_value=0), [], free, amount=0,
                        rules=RATE, now=NOW, return_lot_id=uuid.uuid4())
    assert (done.amount, done.cash_back, done.points_returned) == (0, 0, 40)
    with pytest.raises(RuleViolation):
        refund_rules.refund(RICH, [], free, amount=1, rules=RATE, now=NOW,
                            return_lot_id=uuid.uuid4())


@given(purse=st.integers(0, 10**6), amount=st.integers(-5, 10**6))
def test_a_payout_takes_exactly_its_amount_and_never_more_than_the_purse(
        purse: int, amount: int) -> None:
    before = rules.Balances(points=7, stored_value=purse)
    try:
        effect = rules.payout(before, amount)
    except (InsufficientBalance, RuleViolation):
        assert amount <= 0 or amount > purse
        return
    assert effect.balances == rules.Balances(points=7, stored_value=purse - amount)
    assert [(e.kind, e.stored_value, e.points) for e in effect.entries] == [
        ("stored_value_payout", -amount, 0)]
