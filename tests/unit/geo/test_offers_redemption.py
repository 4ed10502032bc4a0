"""Offer redemption at the till, pure: what each reward gives, each refusal naming the field,
and the ledger's invariants kept when offers change a purchase."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wallet.kernel.errors import RuleViolation
from wallet.ledger import rules
from wallet.offers.redemption import (
    OfferAlreadyRedeemed,
    OfferExpired,
    OfferNotValidHere,
    RedeemableOffer,
    rewards,
)

NOW = datetime(2026, 7, 15, 12, tzinfo=UTC)
MEMBER, STORE = uuid.uuid4(), uuid.uuid4()
RULES = rules.EarnRules(earn_points=1, earn_per_amount=100, points_expiry_days=365)


def offer(kind: str, value: int, **over: object) -> RedeemableOffer:
    base: dict[str, object] = {
        "id": uuid.uuid4(), "member_id": MEMBER, "campaign_store_ids": (), "reward_kind": kind,
        "reward_value": value, "expires_at": NOW + timedelta(hours=1), "redeemed_at": None}
    return RedeemableOffer(**{**base, **over})  # type: ignore[arg-type]


def give(*offers: RedeemableOffer, amount: int = 10_000,
         ids: list[uuid.UUID] | None = None) -> rules.PurchaseEffect:
    got = rewards({o.id: o for o in offers}, ids or [o.id for o in offers], member_id=MEMBER,
                  store_id=STORE, amount=amount, now=NOW)
    return rules.purchase(
        rules.Balances(points=0, stored_value=0), [], RULES, amount=amount, redeem_points=0,
        stored_value=0, points_12m=0, now=NOW, earn_lot_id=uuid.uuid4(),
        discount=got.discount, points_multiplier=got.points_multiplier,
        bonus_lots=[(uuid.uuid4(), p) for p in got.bonus_points])


def test_each_reward_kind() -> None:
    assert (give(offer("bonus_points", 50)).points_earned,
            give(offer("bonus_points", 50)).points_bonus) == (100, 50)
    assert give(offer("points_multiplier", 3)).points_earned == 300
    p = give(offer("percent_off", 20))
    assert (p.discount, p.points_earned) == (2000, 80)
    a = give(offer("amount_off", 500))
    assert (a.discount, a.points_earned) == (500, 95)


def test_a_discount_never_exceeds_the_amount() -> None:
    assert give(offer("amount_off", 5000), offer("percent_off", 100), amount=3000).discount == 3000


@pytest.mark.parametrize(("bad", "error"), [
    ({"redeemed_at": NOW}, OfferAlreadyRedeemed),
    ({"expires_at": NOW}, OfferExpired),
    ({"campaign_store_ids": (uuid.uuid4(),)}, OfferNotValidHere),
    ({"member_id": uuid.uuid4()}, RuleViolation),
    ({"member_id": None}, RuleViolation),
])
def test_each_refusal_names_the_offer_by_its_index(bad: dict[str, object],
                                                   error: type[Exception]) -> None:
    good, wrong = offer("amount_off", 1), offer("amount_off", 1, **bad)
    with pytest.raises(error) as err:
        give(good, wrong)
    assert getattr(err.value, "field", None) == "redeem.offer_ids[1]"


def test_an_offer_listed_twice_or_two_percentages_are_refused() -> None:
    o = offer("amount_off", 1)
    with pytest.raises(RuleViolation, match="twice"):
        give(o, ids=[o.id, o.id])
    with pytest.raises(RuleViolation, match="percent_off"):
        give(offer("percent_off", 5), offer("percent_off", 10))
    with pytest.raises(RuleViolation, match="points_multiplier"):
        give(offer("points_multiplier", 2), offer("points_multiplier", 2))


def test_an_offer_at_one_of_its_campaigns_stores_is_valid() -> None:
    assert give(offer("amount_off", 100, campaign_store_ids=(STORE,))).discount == 100


kinds = st.sampled_from(["bonus_points", "points_multiplier", "percent_off", "amount_off"])


@settings(max_examples=200, deadline=None)
@given(amount=st.integers(0, 10**7), picks=st.lists(st.tuples(kinds, st.integers(1, 100)),
                                                    max_size=4))
def test_offers_keep_the_ledger_invariants(amount: int, picks: list[tuple[str, int]]) -> None:
    seen: set[str] = set()
    chosen = []
    for kind, value in picks:
        if kind in ("percent_off", "points_multiplier") and kind in seen:
            continue
        seen.add(kind)
        chosen.append(offer(kind, value if kind != "points_multiplier" else 2 + value % 9))
    done = give(*chosen, amount=amount)
    e = done.effect
    assert 0 <= done.discount <= amount
    assert e.balances.points == sum(x.points for x in e.entries)
    assert e.balances.points == sum(lot.remaining for lot in e.new_lots)
    running = 0
    for x in e.entries:
        running += x.points
        assert x.points_after == running >= 0
