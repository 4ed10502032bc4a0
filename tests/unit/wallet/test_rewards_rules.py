"""The rewards catalogue's pure rules: rewards, claims, voucher codes and vouchers at the
till; Hypothesis properties for the ledger side of claims and expiry."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from wallet.kernel.errors import (
    ClaimLimitReached,
    InsufficientBalance,
    NotFound,
    OutOfStock,
    RewardNotClaimable,
    RuleViolation,
    VoucherAlreadyUsed,
    VoucherExpired,
    VoucherNotValidHere,
    VoucherOfAnotherMember,
)
from wallet.ledger.rules import Balances, Lot, fifo
from wallet.rewards import rules
from wallet.rewards.rules import Reward, RewardChanges, RewardSpec
from wallet.vouchers import model as vouchers

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
STORE, OTHER = uuid.uuid4(), uuid.uuid4()


def spec(**over: object) -> RewardSpec:
    base: dict[str, object] = {"name": "Free coffee", "points_cost": 100, "kind": "voucher",
                               "voucher_valid_for_s": 3600}
    return RewardSpec(**{**base, **over})  # type: ignore[arg-type]


def reward(**over: object) -> Reward:
    status = over.pop("status", "active")
    claimed = over.pop("claimed", 0)
    return Reward(id=uuid.uuid4(), program_id=uuid.uuid4(), spec=spec(**over),
                  status=status, claimed=claimed, revision=1,  # type: ignore[arg-type]
                  created_at=NOW, updated_at=NOW)


def check(s: RewardSpec, **over: object) -> RewardSpec:
    args: dict[str, object] = {"tiers": ("silver", "gold"), "stores": {STORE},
                               "stored_value_enabled": True, **over}
    return rules.check_spec(s, **args)  # type: ignore[arg-type]


# --- the catalogue ------------------------------------------------------------------------------


def test_a_valid_reward_passes_the_checks_unchanged() -> None:
    s = spec(tiers=("gold",), store_ids=(STORE,), stock=10, per_member_limit=2)
    assert check(s) == s


@pytest.mark.parametrize(("over", "field"), [
    ({"kind": "amount_off"}, "value"),
    ({"kind": "stored_value"}, "value"),
    ({"kind": "stored_value", "value": 500, "store_ids": (STORE,)}, "store_ids"),
    ({"claimable_from": NOW, "claimable_until": NOW}, "claimable_until"),
    ({"tiers": ("platinum",)}, "tiers[0]"),
    ({"tiers": ("gold", "gold")}, "tiers[1]"),
    ({"store_ids": (OTHER,)}, "store_ids[0]"),
    ({"store_ids": (STORE, STORE)}, "store_ids[1]"),
])
def test_a_reward_the_program_cannot_hold_is_refused_naming_the_field(
        over: dict[str, object], field: str) -> None:
    with pytest.raises(RuleViolation) as err:
        check(spec(**over))
    assert err.value.field == field


def test_a_stored_value_reward_needs_the_programs_stored_value() -> None:
    with pytest.raises(RuleViolation) as err:
        check(spec(kind="stored_value", value=500), stored_value_enabled=False)
    assert err.value.field == "kind"


def test_the_stock_cannot_go_below_what_was_claimed() -> None:
    with pytest.raises(RuleViolation) as err:
        check(spec(stock=3), claimed=4)
    assert err.value.field == "stock"
    assert check(spec(stock=4), claimed=4).stock == 4


def test_a_change_replaces_only_the_fields_given_and_none_clears() -> None:
    s = spec(stock=10, per_member_limit=1)
    changed = rules.apply_changes(s, RewardChanges(points_cost=250, stock=None))
    assert (changed.points_cost, changed.stock, changed.per_member_limit) == (250, None, 1)
    assert changed.name == s.name


def test_tiers_make_a_reward_visible_only_to_their_members() -> None:
    assert rules.visible(spec(), None) and rules.visible(spec(), "silver")
    gold = spec(tiers=("gold",))
    assert rules.visible(gold, "gold")
    assert not rules.visible(gold, "silver") and not rules.visible(gold, None)


@pytest.mark.parametrize(("over", "held", "error"), [
    ({"tiers": ("gold",)}, 0, NotFound),
    ({"status": "retired"}, 0, RewardNotClaimable),
    ({"claimable_from": NOW + timedelta(seconds=1)}, 0, RewardNotClaimable),
    ({"claimable_until": NOW}, 0, RewardNotClaimable),
    ({"stock": 5, "claimed": 5}, 0, OutOfStock),
    ({"per_member_limit": 2}, 2, ClaimLimitReached),
])
def test_a_claim_is_refused_for_each_rule_it_breaks(over: dict[str, object], held: int,
                                                     error: type[Exception]) -> None:
    with pytest.raises(error):
        rules.check_claim(reward(**over), tier="silver", claims_so_far=held, now=NOW)


def test_a_claim_inside_the_window_with_stock_and_under_the_limit_passes() -> None:
    r = reward(claimable_from=NOW, claimable_until=NOW + timedelta(days=1), stock=5,
               claimed=4, per_member_limit=2, tiers=("silver",))
    rules.check_claim(r, tier="silver", claims_so_far=1, now=NOW)
    assert rules.stock_left(r) == 1 and rules.stock_left(reward()) is None


# --- the ledger side of a claim -----------------------------------------------------------------


def lot(points: int, *, days: int, remaining: int | None = None, earned: int = 0) -> Lot:
    return Lot(id=uuid.uuid4(), earned_at=NOW - timedelta(days=earned),
               expires_at=NOW + timedelta(days=days), points=points,
               remaining=points if remaining is None else remaining)


def test_a_claim_debits_the_oldest_lots_first_and_expires_due_ones_before() -> None:
    due, old, new = lot(30, days=-1), lot(50, days=10), lot(80, days=20)
    effect = rules.claim_effect(Balances(points=160, stored_value=0), [new, due, old],
                                points=70, stored_value=0, now=NOW)
    assert [(e.kind, e.points, e.lot_id) for e in effect.entries] == [
        ("expire", -30, due.id), ("reward_claim", -50, old.id), ("reward_claim", -20, new.id)]
    assert effect.balances == Balances(points=60, stored_value=0)
    assert {u.id: u.remaining for u in effect.lot_updates} == {due.id: 0, old.id: 0,
                                                               new.id: 60}


def test_a_stored_value_reward_credits_the_purse_after_the_debit() -> None:
    effect = rules.claim_effect(Balances(points=100, stored_value=5), [lot(100, days=5)],
                                points=100, stored_value=1000, now=NOW)
    assert [(e.kind, e.points, e.stored_value) for e in effect.entries] == [
        ("reward_claim", -100, 0), ("reward_credit", 0, 1000)]
    assert effect.balances == Balances(points=0, stored_value=1005)


def test_points_due_to_expire_cannot_pay_for_a_reward() -> None:
    with pytest.raises(InsufficientBalance):
        rules.claim_effect(Balances(points=100, stored_value=0),
                           [lot(60, days=-1), lot(40, days=3)], points=50, stored_value=0,
                           now=NOW)


def test_expired_vouchers_return_their_points_each_in_a_new_lot() -> None:
    a, b = uuid.uuid4(), uuid.uuid4()
    effect = rules.return_effect(Balances(points=5, stored_value=7), [(a, 100), (b, 20)],
                                 now=NOW, expiry_days=30)
    assert [(e.kind, e.points, e.lot_id, e.points_after) for e in effect.entries] == [
        ("reward_return", 100, a, 105), ("reward_return", 20, b, 125)]
    assert [(n.source, n.points, n.expires_at) for n in effect.new_lots] == [
        ("reward_return", 100, NOW + timedelta(days=30)),
        ("reward_return", 20, NOW + timedelta(days=30))]


lots_strategy = st.lists(
    st.builds(lambda p, r, d, e: lot(p, remaining=min(r, p), days=d, earned=e),
              st.integers(1, 500), st.integers(0, 500), st.integers(-5, 400),
              st.integers(0, 400)), max_size=12)


@given(lots=lots_strategy, cost=st.integers(1, 3000), credit=st.integers(0, 5000),
       value=st.integers(0, 10_000))
def test_property_a_claim_never_makes_a_balance_negative_and_takes_oldest_lots_first(
        lots: list[Lot], cost: int, credit: int, value: int) -> None:
    before = Balances(points=sum(x.remaining for x in lots), stored_value=value)
    due = sum(x.remaining for x in lots if x.expires_at <= NOW)
    try:
        effect = rules.claim_effect(before, lots, points=cost, stored_value=credit, now=NOW)
    except InsufficientBalance:
        assert cost > before.points - due  # refused only when the points available fall short
        return
    after = effect.balances
    assert after.points >= 0 and after.stored_value >= 0
    assert after.points == before.points - due - cost
    assert after.stored_value == value + credit
    for e in effect.entries:  # every entry's balances stay non-negative
        assert e.points_after >= 0 and e.stored_value_after >= 0
    taken = {e.lot_id: -e.points for e in effect.entries if e.kind == "reward_claim"}
    assert sum(taken.values()) == cost
    order = [x for x in fifo(lots) if x.expires_at > NOW]
    used = [x.id for x in order if x.id in taken]
    assert used == [x.id for x in order[:len(used)]]  # a prefix of the FIFO order ...
    for x in order[:len(used) - 1]:
        assert taken[x.id] == x.remaining  # ... all emptied but the last


@given(lots=lots_strategy, cost=st.integers(1, 3000))
def test_property_expiry_with_points_returned_restores_exactly_the_debited_points(
        lots: list[Lot], cost: int) -> None:
    before = Balances(points=sum(x.remaining for x in lots), stored_value=0)
    try:
        claimed = rules.claim_effect(before, lots, points=cost, stored_value=0, now=NOW)
    except InsufficientBalance:
        return
    debited = -sum(e.points for e in claimed.entries if e.kind == "reward_claim")
    back = rules.return_effect(claimed.balances, [(uuid.uuid4(), debited)], now=NOW,
                               expiry_days=365)
    expired = -sum(e.points for e in claimed.entries if e.kind == "expire")
    assert debited == cost
    assert back.balances.points == before.points - expired
    assert sum(e.points for e in back.entries) == debited


# --- voucher codes and vouchers at the till -----------------------------------------------------


def test_codes_are_crockford_base32_and_read_back_from_what_a_till_sends() -> None:
    code = vouchers.code_from(bytes(range(10)))
    assert code == "0123456789" and len(vouchers.code_from(b"\xff" * 16)) == 10
    assert vouchers.normalise_code(vouchers.qr_payload("ABCD-EFGH-JK")) == "ABCDEFGHJK"
    assert vouchers.normalise_code("ABCDEFGHJK1") is None  # 11 characters
    assert vouchers.normalise_code("voucher:abcdefghjk") == "ABCDEFGHJK"
    assert vouchers.normalise_code(" o1il-zz99 zz ") == "0111ZZ99ZZ"
    assert vouchers.normalise_code("ABCDEFGHJU") is None  # U is not in the alphabet
    assert vouchers.normalise_code("") is None
    with pytest.raises(ValueError, match="random bytes"):
        vouchers.code_from(b"short")


def till_voucher(**over: object) -> vouchers.VoucherAtTill:
    base: dict[str, object] = {
        "id": uuid.uuid4(), "code": "ABCDEFGHJK", "reward_id": uuid.uuid4(),
        "wallet_account_id": uuid.uuid4(), "name": "Coffee", "kind": "voucher", "value": None,
        "store_ids": (STORE,), "status": "active", "expires_at": NOW + timedelta(hours=1)}
    return msgspec.convert({**base, **over}, vouchers.VoucherAtTill)


@pytest.mark.parametrize(("over", "error"), [
    ({"status": "used"}, VoucherAlreadyUsed),
    ({"kind": "stored_value", "status": "used"}, VoucherAlreadyUsed),
    ({"expires_at": NOW}, VoucherExpired),
    ({"status": "expired"}, VoucherExpired),
    ({"store_ids": (OTHER,)}, VoucherNotValidHere),
    ({"wallet_account_id": uuid.uuid4(), "owner": False}, VoucherOfAnotherMember),
    ({"status": "cancelled"}, NotFound),
])
def test_a_voucher_is_refused_at_the_till_for_each_rule_it_breaks(
        over: dict[str, object], error: type[Exception]) -> None:
    owner = over.pop("owner", True)
    v = till_voucher(**over)
    account = v.wallet_account_id if owner else uuid.uuid4()
    with pytest.raises(error) as err:
        vouchers.check_usable(v, account_id=account, store_id=STORE, now=NOW,
                              field="vouchers[0]")
    assert err.value.field == "vouchers[0]"  # type: ignore[attr-defined]


def test_a_usable_voucher_passes_with_its_card_or_none_and_anywhere_without_stores() -> None:
    v = till_voucher()
    vouchers.check_usable(v, account_id=v.wallet_account_id, store_id=STORE, now=NOW,
                          field="code")
    vouchers.check_usable(v, account_id=None, store_id=STORE, now=NOW, field="code")
    vouchers.check_usable(till_voucher(store_ids=()), account_id=None, store_id=OTHER,
                          now=NOW, field="code")
    assert vouchers.vouchers_discount([till_voucher(value=250), v,
                                       till_voucher(kind="amount_off", value=100)]) == 350


def test_an_active_voucher_past_its_expiry_shows_as_expired() -> None:
    assert vouchers.shown_status("active", NOW, NOW) == "expired"
    assert vouchers.shown_status("active", NOW + timedelta(seconds=1), NOW) == "active"
    assert vouchers.shown_status("used", NOW, NOW) == "used"
