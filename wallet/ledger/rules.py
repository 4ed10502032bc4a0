"""The ledger rules, pure: amounts and lots in, entries and lot changes out.

No connection, no clock, no environment: `now`, the program's rules and pre-generated ids come
in as arguments, so every rule is a deterministic function that Hypothesis can hammer. The
service (`wallet/ledger/till.py`) locks the account, reads the state these functions need, calls one
of them and appends what it returns.

Invariants every function keeps (and `tests/unit/wallet/test_rules_properties.py` checks):
* each `Entry` carries the balances after it; they are the balances before plus the deltas of
  the entries so far, so a balance is always the sum of its entries;
* no balance and no lot's `remaining` goes below zero: a rule that would need more raises
  `InsufficientBalance` (or, for a refund's take-back, records a shortfall instead);
* the points balance equals the sum of the open lots' `remaining`.

Rounding (all integer arithmetic, never floats; every division floors):
* **earn** = floor(amount * earn_points * multiplier_milli / (earn_per_amount * 1000)), once
  per receipt on `amount - discount` (not per line, so splitting a basket cannot gain points).
  How the member paid (card, cash or stored value) does not matter; top-ups earn nothing, so
  money is never rewarded twice.
* **tiers**: the multiplier of a purchase is that of the tier reached *before* it, from the
  points earned over the trailing 12 months (365 UTC days including today, net of refunds); the
  account's tier is then recomputed with the purchase's points.
* **refunds** are in what was paid, and cumulative: `wallet/ledger/refund_rules.py`.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Literal

import msgspec

from wallet.kernel.errors import InsufficientBalance, RuleViolation
from wallet.kernel.model import Lot as Lot  # noqa: PLC0414 - the rules take lots: re-exported
from wallet.kernel.model import Tier

EntryKind = Literal[
    "earn", "redeem", "expire", "refund_earn", "refund_redeem", "stored_value_topup",
    "stored_value_spend", "stored_value_refund", "adjust", "offer_bonus",
    "reward_claim", "reward_return", "reward_credit",  # these three: wallet.rewards.rules
    "stored_value_payout"]
LotSource = Literal["earn", "refund_redeem", "adjust", "offer_bonus", "reward_return"]


class Balances(msgspec.Struct, frozen=True, kw_only=True):
    points: int
    stored_value: int


class Entry(msgspec.Struct, frozen=True, kw_only=True):
    """One ledger entry to append: deltas and the balances after it."""

    kind: EntryKind
    points: int
    stored_value: int
    lot_id: uuid.UUID | None
    points_after: int
    stored_value_after: int


class NewLot(msgspec.Struct, frozen=True, kw_only=True):
    id: uuid.UUID
    source: LotSource
    earned_at: datetime
    expires_at: datetime
    points: int
    remaining: int  # equal to points unless part of it was taken in the same operation


class LotUpdate(msgspec.Struct, frozen=True, kw_only=True):
    id: uuid.UUID
    remaining: int


class Effect(msgspec.Struct, frozen=True, kw_only=True):
    """What one operation appends: entries in order, lots created and lots changed."""

    entries: tuple[Entry, ...]
    new_lots: tuple[NewLot, ...]
    lot_updates: tuple[LotUpdate, ...]
    balances: Balances


class EarnRules(msgspec.Struct, frozen=True, kw_only=True):
    """A program's earning rules: `earn_points` points per `earn_per_amount` minor units."""

    earn_points: int
    earn_per_amount: int
    points_expiry_days: int
    tiers: tuple[Tier, ...] = ()  # ascending by min_points_12m


class PurchaseEffect(msgspec.Struct, frozen=True, kw_only=True):
    effect: Effect
    points_earned: int
    points_redeemed: int
    stored_value_spent: int
    discount: int
    tier: str | None
    points_bonus: int = 0  # offer bonus points (not counted towards tiers)


# --- building blocks --------------------------------------------------------------------------


class Book:
    """Accumulates entries and lot changes, carrying the running balances (the building block
    of every ledger rule, here and in `wallet.ledger.refund_rules`)."""

    def __init__(self, balances: Balances) -> None:
        self.points = balances.points
        self.value = balances.stored_value
        self.entries: list[Entry] = []
        self.new_lots: list[NewLot] = []
        self.updates: dict[uuid.UUID, int] = {}

    def add(self, kind: EntryKind, *, points: int = 0, value: int = 0,
            lot_id: uuid.UUID | None = None) -> None:
        if points == 0 and value == 0:
            return
        self.points += points
        self.value += value
        if self.points < 0 or self.value < 0:  # callers check first; this is the last net
            raise InsufficientBalance("the balance would go below zero")
        self.entries.append(Entry(kind=kind, points=points, stored_value=value, lot_id=lot_id,
                                  points_after=self.points, stored_value_after=self.value))

    def effect(self) -> Effect:
        return Effect(entries=tuple(self.entries), new_lots=tuple(self.new_lots),
                      lot_updates=tuple(LotUpdate(id=k, remaining=v)
                                        for k, v in self.updates.items()),
                      balances=Balances(points=self.points, stored_value=self.value))


def fifo(lots: Iterable[Lot]) -> list[Lot]:
    """Open lots oldest first: by expiry, then earning time, then id (a stable tie-break)."""
    return sorted((lot for lot in lots if lot.remaining > 0),
                  key=lambda lot: (lot.expires_at, lot.earned_at, lot.id.bytes))


def points_for(amount: int, rules: EarnRules, multiplier_milli: int = 1000) -> int:
    """Points earned on `amount` minor units: floor(amount * rate * multiplier)."""
    if amount <= 0:
        return 0
    return amount * rules.earn_points * multiplier_milli // (rules.earn_per_amount * 1000)


def tier_for(tiers: Sequence[Tier], points_12m: int) -> Tier | None:
    """The highest tier whose threshold `points_12m` reaches (None without tiers)."""
    best: Tier | None = None
    for tier in tiers:
        if points_12m >= tier.min_points_12m and (
                best is None or tier.min_points_12m >= best.min_points_12m):
            best = tier
    return best


def expire_due(book: Book, lots: Sequence[Lot], now: datetime) -> dict[uuid.UUID, int]:
    """Expire exactly the remainder of every lot due at `now`; returns the lots still open."""
    remaining: dict[uuid.UUID, int] = {}
    for lot in fifo(lots):
        if lot.expires_at <= now:
            book.add("expire", points=-lot.remaining, lot_id=lot.id)
            book.updates[lot.id] = 0
        else:
            remaining[lot.id] = lot.remaining
    return remaining


def take_points(book: Book, kind: EntryKind, order: Sequence[Lot], open_: dict[uuid.UUID, int],
          points: int) -> list[Lot]:
    """Take `points` from the lots in `order` (skipping closed ones); returns the lots used."""
    used: list[Lot] = []
    for lot in order:
        if points == 0:
            break
        have = open_.get(lot.id, 0)
        if have == 0:
            continue
        n = min(have, points)
        open_[lot.id] = have - n
        book.updates[lot.id] = have - n
        book.add(kind, points=-n, lot_id=lot.id)
        points -= n
        used.append(lot)
    if points:
        raise InsufficientBalance("not enough points in the lots given")
    return used


# --- operations -------------------------------------------------------------------------------


def expire(balances: Balances, lots: Sequence[Lot], now: datetime) -> Effect:
    """Expire the lots due at `now` (expires_at <= now): one `expire` entry per lot, taking
    exactly its remainder. Lots not due are untouched; no due lot gives an empty effect."""
    book = Book(balances)
    expire_due(book, lots, now)
    return book.effect()


def redeem(balances: Balances, lots: Sequence[Lot], points: int, now: datetime) -> Effect:
    """Redeem `points`, oldest lots first (after expiring due ones). Raises InsufficientBalance
    naming `redeem.points` if the balance (or the lots given) cannot cover it."""
    book = Book(balances)
    open_ = expire_due(book, lots, now)
    if points > book.points:
        raise InsufficientBalance(f"{points} points requested, {book.points} available",
                                  field="redeem.points")
    take_points(book, "redeem", fifo(lots), open_, points)
    return book.effect()


def purchase(balances: Balances, lots: Sequence[Lot], rules: EarnRules, *, amount: int,
             redeem_points: int, stored_value: int, points_12m: int, now: datetime,
             earn_lot_id: uuid.UUID, discount: int = 0, points_multiplier: int = 1,
             bonus_lots: Sequence[tuple[uuid.UUID, int]] = ()) -> PurchaseEffect:
    """A purchase: expire due lots, redeem points (FIFO), earn, offer bonuses, spend stored
    value.

    `lots` must hold every due lot and enough open lots, oldest first, to cover
    `redeem_points`. Entries come in that order: expire…, redeem…, earn, offer_bonus…,
    stored_value_spend. Offers (see `wallet/offers/redemption.py`) give the `discount` (points
    are earned on `amount - discount`), a whole `points_multiplier` of the earned points, and
    `bonus_lots` (lot id, points): each its own lot and `offer_bonus` entry.
    Refusals (nothing is appended): more points or stored value than the balance →
    InsufficientBalance; stored value above what is left to pay → RuleViolation.
    """
    if stored_value > amount - discount:
        raise RuleViolation("stored value cannot pay more than the amount due",
                            field="stored_value.amount")
    if stored_value > balances.stored_value:
        raise InsufficientBalance(
            f"{stored_value} of stored value requested, {balances.stored_value} available",
            field="stored_value.amount")
    book = Book(balances)
    open_ = expire_due(book, lots, now)
    if redeem_points > book.points:
        raise InsufficientBalance(f"{redeem_points} points requested, {book.points} available",
                                  field="redeem.points")
    take_points(book, "redeem", fifo(lots), open_, redeem_points)
    before = tier_for(rules.tiers, points_12m)
    earned = points_for(amount - discount, rules,
                        before.multiplier_milli if before else 1000) * points_multiplier
    if earned:
        book.new_lots.append(NewLot(
            id=earn_lot_id, source="earn", earned_at=now, points=earned, remaining=earned,
            expires_at=now + timedelta(days=rules.points_expiry_days)))
        book.add("earn", points=earned, lot_id=earn_lot_id)
    for lot_id, points in bonus_lots:
        book.new_lots.append(NewLot(
            id=lot_id, source="offer_bonus", earned_at=now, points=points, remaining=points,
            expires_at=now + timedelta(days=rules.points_expiry_days)))
        book.add("offer_bonus", points=points, lot_id=lot_id)
    book.add("stored_value_spend", value=-stored_value)
    after = tier_for(rules.tiers, points_12m + earned)
    return PurchaseEffect(effect=book.effect(), points_earned=earned,
                          points_redeemed=redeem_points, stored_value_spent=stored_value,
                          discount=discount, tier=after.name if after else None,
                          points_bonus=sum(p for _, p in bonus_lots))


def top_up(balances: Balances, amount: int) -> Effect:
    """Add `amount` (> 0) of stored value: one `stored_value_topup` entry (the program's
    limits are checked first: `wallet.ledger.limits.check_top_up`)."""
    if amount <= 0:
        raise RuleViolation("a top-up amount must be positive", field="amount")
    book = Book(balances)
    book.add("stored_value_topup", value=amount)
    return book.effect()


def payout(balances: Balances, amount: int) -> Effect:
    """Hand `amount` (> 0) of stored value back to the member (cash at a till, or by the
    operator): one `stored_value_payout` entry. More than the balance → InsufficientBalance
    naming `amount`; nothing is ever paid out that the purse does not hold."""
    if amount <= 0:
        raise RuleViolation("a payout amount must be positive", field="amount")
    if amount > balances.stored_value:
        raise InsufficientBalance(
            f"{amount} of stored value requested, {balances.stored_value} available",
            field="amount")
    book = Book(balances)
    book.add("stored_value_payout", value=-amount)
    return book.effect()


def adjust(balances: Balances, *, points: int, stored_value: int, now: datetime,
           lot_id: uuid.UUID, expiry_days: int, lots: Sequence[Lot] = ()) -> Effect:
    """An operator's correction: credits open a lot, debits take FIFO from `lots`."""
    book = Book(balances)
    open_ = {lot.id: lot.remaining for lot in lots if lot.remaining > 0}
    if points > 0:
        book.new_lots.append(NewLot(id=lot_id, source="adjust", earned_at=now, points=points,
                                    remaining=points, expires_at=now + timedelta(days=expiry_days)))
        book.add("adjust", points=points, lot_id=lot_id)
    elif points < 0:
        if -points > book.points:
            raise InsufficientBalance("cannot debit more points than the balance holds")
        for lot in fifo(lots):
            if points == 0:
                break
            n = min(open_[lot.id], -points)
            open_[lot.id] -= n
            book.updates[lot.id] = open_[lot.id]
            book.add("adjust", points=-n, lot_id=lot.id)
            points += n
        if points:
            raise InsufficientBalance("not enough points in the lots given")
    if stored_value:
        book.add("adjust", value=stored_value)
    return book.effect()
