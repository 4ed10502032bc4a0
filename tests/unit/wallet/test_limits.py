"""A program's limits on money (pure rules): a purchase, a top-up and the purse each have a
ceiling; a refund's stored value never takes the purse above its ceiling, what it cannot
take goes back in cash, and the member gets every cent back either way."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wallet.kernel.errors import LimitExceeded
from wallet.kernel.model import Limits
from wallet.ledger import limits, refund_rules, rules

NOW = datetime(2026, 6, 1, tzinfo=UTC)
RATE = rules.EarnRules(earn_points=1, earn_per_amount=100, points_expiry_days=365)
LIMITS = Limits(max_purchase_amount=10_000, max_top_up_amount=5_000,
                max_stored_value_balance=15_000)


def test_a_purchase_above_the_ceiling_is_refused_naming_the_limit() -> None:
    limits.check_purchase(LIMITS, 10_000)
    with pytest.raises(LimitExceeded) as refused:
        limits.check_purchase(LIMITS, 10_001)
    assert refused.value.field == "amount"
    assert refused.value.members == {"limit": "max_purchase_amount", "maximum": 10_000,
                                     "allowed": 10_000}


@given(purse=st.integers(0, 20_000), amount=st.integers(1, 20_000))
def test_a_top_up_passes_exactly_when_it_fits_both_ceilings(purse: int, amount: int) -> None:
    fits = amount <= 5_000 and purse + amount <= 15_000
    if fits:
        limits.check_top_up(purse, LIMITS, amount)
        return
    with pytest.raises(LimitExceeded) as refused:
        limits.check_top_up(purse, LIMITS, amount)
    named = refused.value.members["limit"]
    assert named == ("max_top_up_amount" if amount > 5_000 else "max_stored_value_balance")
    assert refused.value.members["allowed"] == max(0, min(5_000, 15_000 - purse))


def test_a_purse_above_a_lowered_ceiling_keeps_its_money_and_can_take_nothing_more() -> None:
    assert limits.purse_room(20_000, LIMITS) == 0
    with pytest.raises(LimitExceeded) as refused:
        limits.check_credit(20_000, LIMITS, 1)
    assert refused.value.members["allowed"] == 0


@given(purse=st.integers(0, 20_000), paid=st.integers(1, 10_000), share=st.integers(0, 100))
def test_a_refund_never_takes_the_purse_above_its_ceiling_and_pays_the_rest_in_cash(
        purse: int, paid: int, share: int) -> None:
    spent = paid * share // 100
    original = refund_rules.Original(amount=paid, refunded_amount=0, points_earned=0,
                              points_redeemed=0, stored_value_spent=spent, earn_lot_id=None)
    done = refund_rules.refund(rules.Balances(points=0, stored_value=purse), [], original,
                        amount=paid, rules=RATE, now=NOW, return_lot_id=uuid.uuid4(),
                        limits=LIMITS)
    assert done.stored_value_returned == min(spent, max(0, 15_000 - purse))
    assert done.cash_back + done.stored_value_returned == paid  # nothing is forfeited
    assert done.effect.balances.stored_value == purse + done.stored_value_returned
