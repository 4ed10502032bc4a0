"""Hypothesis properties of the ledger rules: whatever the sequence of operations, a balance
is the sum of its entries, nothing goes below zero, lots go oldest first, expiry takes exactly
the expired remainder, and refunds are exact and stable."""

from __future__ import annotations

import itertools
import uuid
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from wallet.kernel.errors import InsufficientBalance, RuleViolation
from wallet.kernel.model import Tier
from wallet.ledger import refund_rules, rules

T0 = datetime(2026, 1, 1, tzinfo=UTC)
TIERS = (Tier(name="base", min_points_12m=0, multiplier_milli=1000),
         Tier(name="gold", min_points_12m=500, multiplier_milli=1750))
rates = st.builds(rules.EarnRules, earn_points=st.integers(0, 5),
                  earn_per_amount=st.integers(1, 1000), points_expiry_days=st.integers(1, 400),
                  tiers=st.sampled_from([(), TIERS]))


class Wallet:
    """A model account: applies effects the way the repository does."""

    def __init__(self) -> None:
        self.balances = rules.Balances(points=0, stored_value=0)
        self.lots: dict[uuid.UUID, rules.Lot] = {}
        self.entries: list[rules.Entry] = []
        self.purchases: list[tuple[refund_rules.Original, datetime]] = []

    def apply(self, effect: rules.Effect) -> None:
        points, value = self.balances.points, self.balances.stored_value
        for e in effect.entries:  # the chain the database trigger checks
            points, value = points + e.points, value + e.stored_value
            assert (e.points_after, e.stored_value_after) == (points, value)
        assert (points, value) == (effect.balances.points, effect.balances.stored_value)
        for n in effect.new_lots:
            self.lots[n.id] = rules.Lot(id=n.id, earned_at=n.earned_at,
                                        expires_at=n.expires_at, points=n.points,
                                        remaining=n.remaining)
        for u in effect.lot_updates:
            old = self.lots[u.id]
            assert 0 <= u.remaining <= old.remaining
            self.lots[u.id] = rules.Lot(id=old.id, earned_at=old.earned_at,
                                        expires_at=old.expires_at, points=old.points,
                                        remaining=u.remaining)
        self.entries.extend(effect.entries)
        self.balances = effect.balances

    def check(self) -> None:
        assert self.balances.points == sum(e.points for e in self.entries)
        assert self.balances.stored_value == sum(e.stored_value for e in self.entries)
        assert self.balances.points >= 0 and self.balances.stored_value >= 0
        assert all(e.points_after >= 0 and e.stored_value_after >= 0 for e in self.entries)
        assert self.balances.points == sum(lot.remaining for lot in self.lots.values())
        assert all(0 <= lot.remaining <= lot.points for lot in self.lots.values())


operation = st.one_of(
    st.tuples(st.just("purchase"), st.integers(0, 50_000), st.integers(0, 300),
              st.integers(0, 5_000)),
    st.tuples(st.just("top_up"), st.integers(1, 10_000), st.just(0), st.just(0)),
    st.tuples(st.just("refund"), st.integers(0, 20), st.integers(1, 100), st.just(0)),
    st.tuples(st.just("time"), st.integers(0, 200), st.just(0), st.just(0)),
    st.tuples(st.just("expire"), st.just(0), st.just(0), st.just(0)),
)


@settings(max_examples=200, deadline=None)
@given(rate=rates, ops=st.lists(operation, max_size=40))
def test_any_sequence_keeps_balances_equal_to_the_sum_of_entries_and_never_negative(
        rate: rules.EarnRules, ops: list[tuple[str, int, int, int]]) -> None:
    w, now = Wallet(), T0
    for name, a, b, c in ops:
        try:
            if name == "purchase":
                lot_id = uuid.uuid4()
                done = rules.purchase(w.balances, list(w.lots.values()), rate, amount=a,
                                      redeem_points=b, stored_value=c, points_12m=0, now=now,
                                      earn_lot_id=lot_id)
                w.apply(done.effect)
                w.purchases.append((refund_rules.Original(
                    amount=a, refunded_amount=0, points_earned=done.points_earned,
                    points_redeemed=b, stored_value_spent=c,
                    earn_lot_id=lot_id if done.points_earned else None), now))
            elif name == "top_up":
                w.apply(rules.top_up(w.balances, a))
            elif name == "refund" and w.purchases:
                i = a % len(w.purchases)
                original, at = w.purchases[i]
                left = original.amount - original.refunded_amount
                amount = max(1, left * b // 100)
                done_r = refund_rules.refund(w.balances, list(w.lots.values()), original,
                                      amount=amount, rules=rate, now=now,
                                      return_lot_id=uuid.uuid4())
                w.apply(done_r.effect)
                assert done_r.points_taken_back + done_r.points_shortfall == -(
                    done_r.tier_points_delta)
                w.purchases[i] = (refund_rules.Original(
                    amount=original.amount, refunded_amount=original.refunded_amount + amount,
                    points_earned=original.points_earned,
                    points_redeemed=original.points_redeemed,
                    stored_value_spent=original.stored_value_spent,
                    earn_lot_id=original.earn_lot_id), at)
            elif name == "time":
                now += timedelta(days=a)
            elif name == "expire":
                w.apply(rules.expire(w.balances, list(w.lots.values()), now))
        except (InsufficientBalance, RuleViolation):
            pass  # refused: nothing appended
        w.check()


lots_strategy = st.lists(
    st.builds(lambda p, used, age, valid: rules.Lot(
        id=uuid.uuid4(), earned_at=T0 - timedelta(days=age),
        expires_at=T0 - timedelta(days=age) + timedelta(days=valid), points=p,
        remaining=p - min(used, p)),
        st.integers(1, 500), st.integers(0, 500), st.integers(0, 500), st.integers(1, 500)),
    max_size=12)


@given(lots=lots_strategy, want=st.integers(0, 3000))
def test_redemption_takes_the_oldest_lots_first(lots: list[rules.Lot], want: int) -> None:
    balance = rules.Balances(points=sum(lot.remaining for lot in lots), stored_value=0)
    try:
        effect = rules.redeem(balance, lots, want, T0)
    except InsufficientBalance:
        live = sum(lot.remaining for lot in lots if lot.expires_at > T0)
        assert want > live
        return
    order = [lot for lot in rules.fifo(lots) if lot.expires_at > T0]
    taken = {e.lot_id: -e.points for e in effect.entries if e.kind == "redeem"}
    assert sum(taken.values()) == want
    touched = [i for i, lot in enumerate(order) if lot.id in taken]
    if touched:
        last = max(touched)
        for lot in order[:last]:  # every older lot is emptied before a newer one is touched
            assert taken.get(lot.id) == lot.remaining
        assert touched == list(range(last + 1)) or all(
            order[i].remaining == 0 for i in range(last + 1) if i not in touched)


@given(lots=lots_strategy, days=st.integers(0, 1000))
def test_expiry_removes_exactly_the_expired_remainder(lots: list[rules.Lot], days: int) -> None:
    now = T0 + timedelta(days=days)
    balance = rules.Balances(points=sum(lot.remaining for lot in lots), stored_value=0)
    effect = rules.expire(balance, lots, now)
    due = {lot.id: lot.remaining for lot in lots if lot.expires_at <= now and lot.remaining}
    assert {e.lot_id: -e.points for e in effect.entries} == due
    assert all(e.kind == "expire" for e in effect.entries)
    assert effect.balances.points == balance.points - sum(due.values())
    assert {u.id for u in effect.lot_updates} == set(due)
    again = rules.expire(effect.balances, [
        rules.Lot(id=lot.id, earned_at=lot.earned_at, expires_at=lot.expires_at,
                  points=lot.points, remaining=0 if lot.id in due else lot.remaining)
        for lot in lots], now)
    assert again.entries == ()  # idempotent


@given(rate=rates, lots=lots_strategy, amount=st.integers(0, 100_000),
       redeem_share=st.integers(0, 100), value=st.integers(0, 100_000),
       points_12m=st.integers(0, 2000))
def test_a_full_refund_with_nothing_spent_in_between_restores_the_balances(
        rate: rules.EarnRules, lots: list[rules.Lot], amount: int, redeem_share: int,
        value: int, points_12m: int) -> None:
    live = [lot for lot in lots if lot.expires_at > T0]
    w = Wallet()
    w.apply(rules.adjust(w.balances, points=0, stored_value=value, now=T0,
                         lot_id=uuid.uuid4(), expiry_days=1))
    for lot in live:
        w.lots[lot.id] = lot
    w.balances = rules.Balances(points=sum(lot.remaining for lot in live),
                                stored_value=value)
    before = w.balances
    redeem = before.points * redeem_share // 100
    spend = min(value, amount)
    earn_lot = uuid.uuid4()
    done = rules.purchase(before, live, rate, amount=amount, redeem_points=redeem,
                          stored_value=spend, points_12m=points_12m, now=T0,
                          earn_lot_id=earn_lot)
    w.apply(done.effect)
    if amount == 0:
        assert done.points_earned == 0
        return
    original = refund_rules.Original(amount=amount, refunded_amount=0,
                              points_earned=done.points_earned, points_redeemed=redeem,
                              stored_value_spent=spend, earn_lot_id=earn_lot)
    back = refund_rules.refund(w.balances, list(w.lots.values()), original, amount=amount,
                        rules=rate, now=T0, return_lot_id=uuid.uuid4())
    w.apply(back.effect)
    assert w.balances == before
    assert back.points_shortfall == 0


@given(total=st.integers(0, 10**6), amount=st.integers(1, 10**6), cuts=st.lists(
    st.integers(1, 10**6), max_size=10))
def test_partial_refunds_summing_to_the_whole_move_exactly_the_total(
        total: int, amount: int, cuts: list[int]) -> None:
    points = sorted({c % amount for c in cuts} - {0})
    bounds = [0, *points, amount]
    moved = [refund_rules.share(total, amount, a, b) for a, b in itertools.pairwise(bounds)]
    assert sum(moved) == total
    assert all(m >= 0 for m in moved)
    # Stable: the share of a refund depends only on where it starts and ends.
    assert refund_rules.share(total, amount, 0, amount) == total


@given(rate=rates, a=st.integers(0, 10**6), b=st.integers(0, 10**6),
       milli=st.integers(1000, 3000))
def test_splitting_a_receipt_never_earns_more(rate: rules.EarnRules, a: int, b: int,
                                              milli: int) -> None:
    assert rules.points_for(a + b, rate, milli) >= (
        rules.points_for(a, rate, milli) + rules.points_for(b, rate, milli))
