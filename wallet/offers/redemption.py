"""Redeeming drive-to-store offers at the till: which offers a purchase may use, and what
they give. The checks and the arithmetic are pure; one query reads the offers.

An offer listed in `redeem.offer_ids[i]` is refused with a 422 naming that field when it is
unknown, of another program or of another member (the same answer for the three, so another
member's offer is never revealed to exist), listed twice,
already redeemed, expired (`expires_at <= now`), or when the till's store is not one of its
campaign's stores (a campaign without stores is valid in every store of the program).
At most one `percent_off` and one `points_multiplier` offer per purchase (they would not
combine in any way a member could predict); `amount_off` and `bonus_points` offers add up.

What a purchase gets (integers, floors):
* discount = min(amount, floor(amount × percent / 100) + Σ amount_off); points are earned on
  `amount - discount`, and stored value cannot pay more than that;
* the purchase's earned points (tier multiplier included) × the offer's multiplier;
* each bonus_points offer adds its points as their own `offer_bonus` lot and entry (they do
  not count towards tiers).

The offers are marked redeemed by the purchase's single ledger write, which also refuses one
that a concurrent purchase redeemed first (the account lock makes that impossible anyway).
A refund of the purchase takes back the earned points as usual (multiplied ones included, in
proportion) but leaves the offers redeemed and the bonus points with the member: an offer
rewards the visit, and one visit gives one offer.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

import msgspec

from wallet.kernel.db import Conn
from wallet.kernel.errors import (
    OfferAlreadyRedeemed,
    OfferExpired,
    OfferNotValidHere,
    RuleViolation,
)


class RedeemableOffer(msgspec.Struct, frozen=True, kw_only=True):
    id: uuid.UUID
    member_id: uuid.UUID | None
    campaign_store_ids: tuple[uuid.UUID, ...]  # empty: every store of the program
    reward_kind: str
    reward_value: int
    expires_at: datetime
    redeemed_at: datetime | None


class OfferRewards(msgspec.Struct, frozen=True, kw_only=True):
    discount: int = 0
    points_multiplier: int = 1
    bonus_points: tuple[int, ...] = ()  # one per bonus_points offer


NO_REWARDS = OfferRewards()


def rewards(offers: dict[uuid.UUID, RedeemableOffer], offer_ids: Sequence[uuid.UUID], *,
            member_id: uuid.UUID, store_id: uuid.UUID, amount: int,
            now: datetime) -> OfferRewards:
    """Check each listed offer (see the module docstring) and add up what they give."""
    percent = multiplier = 0
    amount_off = 0
    bonus: list[int] = []
    for i, offer_id in enumerate(offer_ids):
        field = f"redeem.offer_ids[{i}]"
        o = offers.get(offer_id)
        if o is None or o.member_id != member_id:
            raise RuleViolation("no such offer for this member", field=field)
        if offer_id in offer_ids[:i]:
            raise RuleViolation("this offer is listed twice", field=field)
        if o.redeemed_at is not None:
            raise OfferAlreadyRedeemed("this offer was already redeemed", field=field)
        if o.expires_at <= now:
            raise OfferExpired("this offer has expired", field=field)
        if o.campaign_store_ids and store_id not in o.campaign_store_ids:
            raise OfferNotValidHere("this offer is not valid in this store", field=field)
        match o.reward_kind:
            case "percent_off":
                if percent:
                    raise RuleViolation("one percent_off offer per purchase", field=field)
                percent = o.reward_value
            case "points_multiplier":
                if multiplier:
                    raise RuleViolation("one points_multiplier offer per purchase", field=field)
                multiplier = o.reward_value
            case "amount_off":
                amount_off += o.reward_value
            case _:
                bonus.append(o.reward_value)
    discount = min(amount, amount * percent // 100 + amount_off)
    return OfferRewards(discount=discount, points_multiplier=multiplier or 1,
                        bonus_points=tuple(bonus))


OFFERS = """
SELECT o.id, o.member_id, c.store_ids AS campaign_store_ids, o.reward_kind, o.reward_value,
       o.expires_at, o.redeemed_at
FROM offers o JOIN campaigns c ON c.id = o.campaign_id
WHERE o.id = ANY($1::uuid[]) AND o.program_id = $2
"""


async def load(conn: Conn, offer_ids: Sequence[uuid.UUID], *,
               program_id: uuid.UUID) -> dict[uuid.UUID, RedeemableOffer]:
    """The listed offers of `program_id` that exist (read after locking the account)."""
    rows = await conn.fetch(OFFERS, list(offer_ids), program_id)
    return {r["id"]: RedeemableOffer(**{**dict(r),
                                        "campaign_store_ids": tuple(r["campaign_store_ids"])})
            for r in rows}


class OfferAtTill(msgspec.Struct, frozen=True, kw_only=True):
    """What the cashier sees of an offer the member can use here, now."""

    id: uuid.UUID
    title: str
    reward_kind: str
    reward_value: int
    expires_at: datetime


USABLE_HERE = """
SELECT o.id, o.title, o.reward_kind, o.reward_value, o.expires_at
FROM offers o JOIN campaigns c ON c.id = o.campaign_id
WHERE o.member_id = $1 AND o.redeemed_at IS NULL AND o.expires_at > $2
  AND (cardinality(c.store_ids) = 0 OR $3 = ANY (c.store_ids))
ORDER BY o.expires_at, o.id
LIMIT $4
"""


async def usable_here(conn: Conn, member_id: uuid.UUID, *, store_id: uuid.UUID,
                      now: datetime, limit: int = 20) -> list[OfferAtTill]:
    """The member's offers redeemable at `store_id` at `now`, soonest to expire first."""
    rows = await conn.fetch(USABLE_HERE, member_id, now, store_id, limit)
    return [OfferAtTill(id=r["id"], title=r["title"], reward_kind=r["reward_kind"],
                        reward_value=r["reward_value"], expires_at=r["expires_at"])
            for r in rows]
