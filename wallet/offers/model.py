"""The offer read model: one member's drive-to-store offer as the app, the till, the export
and the push webhook see it. Pure values; `geo` issues offers, the wallet holds and spends
them (the till never imports `geo`)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

import msgspec
from msgspec import Meta

RewardKind = Literal["bonus_points", "points_multiplier", "percent_off", "amount_off"]
OfferStatus = Literal["active", "redeemed", "expired"]


class Reward(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """What an offer gives at the till: points (`bonus_points`), a multiplier of the earned
    points (`points_multiplier`, ×value), a percentage (`percent_off`, 1–100) or an amount in
    minor units (`amount_off`) off the purchase."""

    kind: RewardKind
    value: Annotated[int, Meta(ge=1, le=10**12)]


class Offer(msgspec.Struct, frozen=True, kw_only=True):
    """One member's offer; `status` as of when it was read. Times shown to the member carry
    the program's UTC offset (see `wallet.kernel.localtime`)."""

    id: uuid.UUID
    campaign_id: uuid.UUID
    store_id: uuid.UUID
    store_name: str | None = None  # the store's name now (None if it was never known)
    title: str
    body: str
    reward: Reward
    issued_at: datetime
    expires_at: datetime
    opened_at: datetime | None = None  # first opened in the app (POST .../opened)
    status: OfferStatus = "active"


def offer_status(redeemed_at: datetime | None, expires_at: datetime,
                 now: datetime) -> OfferStatus:
    """redeemed if redeemed, else expired once `expires_at <= now`, else active."""
    if redeemed_at is not None:
        return "redeemed"
    return "expired" if expires_at <= now else "active"
