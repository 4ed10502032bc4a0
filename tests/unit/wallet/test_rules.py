"""Examples of the ledger rules (pure functions, no database)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from wallet.kernel.errors import InsufficientBalance, RuleViolation
from wallet.kernel.model import Tier
from wallet.ledger import refund_rules, rules

NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)
RATE = rules.EarnRules(earn_points=1, earn_per_amount=100, points_expiry_days=365)
EMPTY = rules.Balances(points=0, stored_value=0)


def lot(points: int, *, days_old: int = 0, remaining: int | None = None,
        valid_days: int = 365) -> rules.Lot:
    earned = NOW - timedelta(days=days_old)
    return rules.Lot(id=uuid.uuid4(), earned_at=earned,
                     expires_at=earned + timedelta(days=valid_days), points=points,
                     remaining=points if remaining is None else remaining)


def test_earning_floors_once_per_receipt() -> None:
    assert rules.points_for(1299, RATE) == 12
    assert rules.points_for(99, RATE) == 0
    assert rules.points_for(1000, RATE, 1500) == 15
    assert rules.points_for(1001, RATE, 1250) == 12  # 12.5125 -> 12


def test_tier_is_the_highest_threshold_reached() -> None:
    tiers = (Tier(name="base", min_points_12m=0, multiplier_milli=1000),
             Tier(name="gold", min_points_12m=1000, multiplier_milli=1500))
    assert rules.tier_for(tiers, 999) == tiers[0]
    assert rules.tier_for(tiers, 1000) == tiers[1]
    assert rules.tier_for((), 10**9) is None


def test_a_purchase_redeems_the_oldest_lots_first_then_earns_then_spends_stored_value() -> None:
    old, new = lot(30, days_old=100), lot(50, days_old=10)
    done = rules.purchase(rules.Balances(points=80, stored_value=500), [new, old], RATE,
                          amount=2000, redeem_points=40, stored_value=300, points_12m=0,
                          now=NOW, earn_lot_id=uuid.uuid4())
    kinds = [(e.kind, e.points, e.stored_value, e.lot_id) for e in done.effect.entries]
    assert kinds[:2] == [("redeem", -30, 0, old.id), ("redeem", -10, 0, new.id)]
    assert kinds[2][:3] == ("earn", 20, 0) and kinds[3][:3] == ("stored_value_spend", 0, -300)
    assert done.effect.balances == rules.Balances(points=60, stored_value=200)
    assert {u.id: u.remaining for u in done.effect.lot_updates} == {old.id: 0, new.id: 40}


def test_a_purchase_above_the_balances_is_refused() -> None:
    with pytest.raises(InsufficientBalance) as points:
        rules.purchase(rules.Balances(points=10, stored_value=0), [lot(10)], RATE, amount=100,
                       redeem_points=11, stored_value=0, points_12m=0, now=NOW,
                       earn_lot_id=uuid.uuid4())
    assert points.value.field == "redeem.points"
    with pytest.raises(InsufficientBalance):
        rules.purchase(EMPTY, [], RATE, amount=100, redeem_points=0, stored_value=1,
                       points_12m=0, now=NOW, earn_lot_id=uuid.uuid4())
    with pytest.raises(RuleViolation):  # stored value above the amount due
        rules.purchase(rules.Balances(points=0, stored_value=500), [], RATE, amount=100,
                       redeem_points=0, stored_value=101, points_12m=0, now=NOW,
                       earn_lot_id=uuid.uuid4())


def test_expiry_takes_exactly_the_remainder_of_due_lots() -> None:
    due = lot(100, days_old=400, remaining=30)
    fresh = lot(20)
    effect = rules.expire(rules.Balances(points=50, stored_value=0), [due, fresh], NOW)
    assert [(e.kind, e.points, e.lot_id) for e in effect.entries] == [("expire", -30, due.id)]
    assert effect.balances.points == 20


def test_a_refund_after_the_points_were_spent_takes_what_remains_and_records_the_rest() -> None:
    original = refund_rules.Original(amount=5000, refunded_amount=0, points_earned=50,
                              points_redeemed=0, stored_value_spent=0, earn_lot_id=uuid.uuid4())
    left = rules.Lot(id=original.earn_lot_id, earned_at=NOW, expires_at=NOW + timedelta(1),
                     points=50, remaining=5)
    done = refund_rules.refund(rules.Balances(points=5, stored_value=0), [left], original,
                        amount=5000, rules=RATE, now=NOW, return_lot_id=uuid.uuid4())
    assert (done.points_taken_back, done.points_shortfall) == (5, 45)
    assert done.effect.balances.points == 0
    assert done.tier_points_delta == -50


def test_refund_amounts_are_bounded_by_what_is_left() -> None:
    original = refund_rules.Original(amount=100, refunded_amount=60, points_earned=1,
                              points_redeemed=0, stored_value_spent=0, earn_lot_id=None)
    with pytest.raises(RuleViolation):
        refund_rules.refund(EMPTY, [], original, amount=41, rules=RATE, now=NOW,
                     return_lot_id=uuid.uuid4())


def test_a_refund_returns_redeemed_points_before_taking_back_earned_ones() -> None:
    """Returned first: a member with nothing left still nets redeemed - earned."""
    earn_lot = uuid.uuid4()
    original = refund_rules.Original(amount=1000, refunded_amount=0, points_earned=10,
                              points_redeemed=50, stored_value_spent=0, earn_lot_id=earn_lot)
    done = refund_rules.refund(EMPTY, [], original, amount=1000, rules=RATE, now=NOW,
                        return_lot_id=uuid.uuid4())
    assert (done.points_returned, done.points_taken_back, done.points_shortfall) == (50, 10, 0)
    assert done.effect.balances.points == 40
    assert done.effect.new_lots[0].remaining == 40 and not done.effect.lot_updates
