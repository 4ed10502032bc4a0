"""The rewards catalogue's rules, pure: rewards, who may claim them, and what a claim and a
voucher's expiry append to the ledger (the till's side of vouchers is `vouchers.py`).

No connection, no clock, no randomness: `now`, the program's facts and pre-generated ids and
codes come in as arguments (the services read and write; see `claims_service.py`).

* **Visibility**: a reward with `tiers` is seen (listed, claimed) only by members of one of
  those tiers; without, by everyone. A reward the member cannot see is "not found".
* **Claiming** needs the reward `active`, `claimable_from <= now < claimable_until` (each
  bound optional), stock left (`claimed < stock`, or no stock), fewer vouchers of it than
  `per_member_limit`, and `points_cost` points available now (due lots expire first).
* **The debit** is a ledger operation like any other: due lots expire, then `points_cost` is
  taken from the oldest lots first (`reward_claim` entries, one per lot touched); a
  stored-value reward then credits `value` to the purse (`reward_credit`). No balance goes
  below zero: short of points, nothing is appended (`InsufficientBalance`).
* **Expiry**: an unused voucher past `expires_at` expires; if the program says so
  (`voucher_expiry_returns_points`) exactly its `points_spent` come back, as one
  `reward_return` entry per voucher, each in a new lot valid for the program's points
  lifetime from the expiry.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Literal

import msgspec

from wallet.kernel.errors import (
    ClaimLimitReached,
    InsufficientBalance,
    NotFound,
    OutOfStock,
    RewardNotClaimable,
    RuleViolation,
)
from wallet.ledger import rules as ledger_rules
from wallet.ledger.rules import Balances, Effect, Lot
from wallet.vouchers.model import RewardKind

RewardStatus = Literal["active", "retired"]


class RewardSpec(msgspec.Struct, frozen=True, kw_only=True):
    """What a manager defines (already shape-checked at the boundary). Money in minor units,
    durations in seconds; empty `tiers` / `store_ids` mean every tier / every store."""

    name: str
    description: str = ""
    image_url: str | None = None
    points_cost: int
    kind: RewardKind
    value: int | None = None
    stock: int | None = None
    per_member_limit: int | None = None
    claimable_from: datetime | None = None
    claimable_until: datetime | None = None
    voucher_valid_for_s: int
    tiers: tuple[str, ...] = ()
    store_ids: tuple[uuid.UUID, ...] = ()


class RewardChanges(msgspec.Struct, frozen=True, kw_only=True):
    """A PATCH: each field given replaces the stored one; UNSET fields are kept. `None` clears
    an optional field (no stock limit, no window bound, ...)."""

    name: str | msgspec.UnsetType = msgspec.UNSET
    description: str | msgspec.UnsetType = msgspec.UNSET
    image_url: str | msgspec.UnsetType | None = msgspec.UNSET
    points_cost: int | msgspec.UnsetType = msgspec.UNSET
    kind: RewardKind | msgspec.UnsetType = msgspec.UNSET
    value: int | msgspec.UnsetType | None = msgspec.UNSET
    stock: int | msgspec.UnsetType | None = msgspec.UNSET
    per_member_limit: int | msgspec.UnsetType | None = msgspec.UNSET
    claimable_from: datetime | msgspec.UnsetType | None = msgspec.UNSET
    claimable_until: datetime | msgspec.UnsetType | None = msgspec.UNSET
    voucher_valid_for_s: int | msgspec.UnsetType = msgspec.UNSET
    tiers: tuple[str, ...] | msgspec.UnsetType = msgspec.UNSET
    store_ids: tuple[uuid.UUID, ...] | msgspec.UnsetType = msgspec.UNSET


class Reward(msgspec.Struct, frozen=True, kw_only=True):
    id: uuid.UUID
    program_id: uuid.UUID
    spec: RewardSpec
    status: RewardStatus
    claimed: int  # vouchers claimed so far (what the stock counts)
    revision: int
    created_at: datetime
    updated_at: datetime
    retired_at: datetime | None = None


# --- the catalogue ------------------------------------------------------------------------------


def _unique(items: Sequence[object], field: str) -> None:
    for i, item in enumerate(items):
        if item in items[:i]:
            raise RuleViolation("listed twice", field=f"{field}[{i}]")


def check_spec(spec: RewardSpec, *, tiers: Sequence[str], stores: set[uuid.UUID],
               stored_value_enabled: bool, claimed: int = 0) -> RewardSpec:
    """`spec` if the program can hold it, else a RuleViolation naming the field: `value`
    required for `amount_off` and `stored_value`; a stored-value reward needs the program's
    stored value and has no stores; the window's `claimable_from` before `claimable_until`;
    tiers of the program and live stores of the program, each once; `stock` not below the
    vouchers already `claimed`."""
    if spec.kind != "voucher" and spec.value is None:
        raise RuleViolation(f"a reward of kind {spec.kind} needs a value (minor units)",
                            field="value")
    if spec.kind == "stored_value":
        if not stored_value_enabled:
            raise RuleViolation("this program has no stored value", field="kind")
        if spec.store_ids:
            raise RuleViolation("a stored-value reward is credited at once: it has no stores",
                                field="store_ids")
    if (spec.claimable_from is not None and spec.claimable_until is not None
            and spec.claimable_from >= spec.claimable_until):
        raise RuleViolation("the claiming window must end after it starts",
                            field="claimable_until")
    _unique(spec.tiers, "tiers")
    _unique(spec.store_ids, "store_ids")
    for i, tier in enumerate(spec.tiers):
        if tier not in tiers:
            raise RuleViolation(f"no tier {tier!r} in this program", field=f"tiers[{i}]")
    for i, store in enumerate(spec.store_ids):
        if store not in stores:
            raise RuleViolation("no such store in this program", field=f"store_ids[{i}]")
    if spec.stock is not None and spec.stock < claimed:
        raise RuleViolation(f"{claimed} vouchers were already claimed: the stock cannot be "
                            "lower", field="stock")
    return spec


def apply_changes(spec: RewardSpec, changes: RewardChanges) -> RewardSpec:
    """The spec with every given field of `changes` replacing its own (not yet checked)."""
    given = {f: v for f in RewardChanges.__struct_fields__
             if (v := getattr(changes, f)) is not msgspec.UNSET}
    return msgspec.structs.replace(spec, **given)


def visible(spec: RewardSpec, tier: str | None) -> bool:
    """Whether a member in `tier` (None: no tier) sees the reward."""
    return not spec.tiers or tier in spec.tiers


def stock_left(reward: Reward) -> int | None:
    """Units that can still be claimed (None: unlimited)."""
    return None if reward.spec.stock is None else max(0, reward.spec.stock - reward.claimed)


def claimable_now(reward: Reward, now: datetime) -> bool:
    s = reward.spec
    return (reward.status == "active"
            and (s.claimable_from is None or s.claimable_from <= now)
            and (s.claimable_until is None or now < s.claimable_until))


def check_claim(reward: Reward, *, tier: str | None, claims_so_far: int,
                now: datetime) -> None:
    """Raise why the member (in `tier`, holding `claims_so_far` vouchers of it) cannot
    claim `reward` now, if they cannot (points aside: see `claim_effect`)."""
    if not visible(reward.spec, tier):
        raise NotFound("no such reward", field="reward_id")
    if reward.status != "active":
        raise RewardNotClaimable("this reward is retired", field="reward_id")
    if not claimable_now(reward, now):
        raise RewardNotClaimable("this reward cannot be claimed at this time",
                                 field="reward_id")
    if stock_left(reward) == 0:
        raise OutOfStock("this reward is out of stock", field="reward_id")
    limit = reward.spec.per_member_limit
    if limit is not None and claims_so_far >= limit:
        raise ClaimLimitReached(f"at most {limit} per member, and you hold {claims_so_far}",
                                field="reward_id")


def available_points(balances: Balances, lots: Sequence[Lot], now: datetime) -> int:
    """The points a debit at `now` can use: the balance less the lots due to expire."""
    return balances.points - sum(lot.remaining for lot in lots if lot.expires_at <= now)


def claim_effect(balances: Balances, lots: Sequence[Lot], *, points: int, stored_value: int,
                 now: datetime) -> Effect:
    """The ledger operation of a claim (see the module docstring). `lots` must hold every
    due lot and enough open lots, oldest first, to cover `points`. Raises
    InsufficientBalance when the points available now do not cover `points`."""
    have = available_points(balances, lots, now)
    if points > have:
        raise InsufficientBalance(f"this reward costs {points} points, {have} available",
                                  field="points_cost")
    spent = ledger_rules.redeem(balances, lots, points, now)
    entries = [msgspec.structs.replace(e, kind="reward_claim") if e.kind == "redeem" else e
               for e in spent.entries]
    after = spent.balances
    if stored_value:
        credit = ledger_rules.top_up(after, stored_value)
        entries += [msgspec.structs.replace(e, kind="reward_credit") for e in credit.entries]
        after = credit.balances
    return Effect(entries=tuple(entries), new_lots=spent.new_lots,
                  lot_updates=spent.lot_updates, balances=after)


def return_effect(balances: Balances, returns: Sequence[tuple[uuid.UUID, int]], *,
                  now: datetime, expiry_days: int) -> Effect:
    """Points of expired vouchers coming back: for each (lot id, points > 0) one
    `reward_return` entry and its lot, valid `expiry_days` from `now`."""
    entries: list[ledger_rules.Entry] = []
    lots: list[ledger_rules.NewLot] = []
    after = balances
    for lot_id, points in returns:
        if points <= 0:
            raise RuleViolation("only a positive number of points can be returned")
        back = ledger_rules.adjust(after, points=points, stored_value=0, now=now,
                                   lot_id=lot_id, expiry_days=expiry_days)
        entries += [msgspec.structs.replace(e, kind="reward_return") for e in back.entries]
        lots += [msgspec.structs.replace(n, source="reward_return") for n in back.new_lots]
        after = back.balances
    return Effect(entries=tuple(entries), new_lots=tuple(lots), lot_updates=(),
                  balances=after)


def voucher_expiry(claimed_at: datetime, valid_for_s: int) -> datetime:
    return claimed_at + timedelta(seconds=valid_for_s)
