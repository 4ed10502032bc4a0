"""Domain value types shared across the wallet: programs and their tiers.

Amounts are integers in minor units; points are integers. A tier's earn multiplier is kept
as an integer in thousandths (`multiplier_milli`: 1500 = ×1.5) so every rule is integer
arithmetic and rounding is explicit (see `wallet/ledger/rules.py`).
"""

from __future__ import annotations

import uuid
from datetime import datetime

import msgspec


class Tier(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    min_points_12m: int  # points earned in the trailing 12 months to reach this tier
    multiplier_milli: int  # 1000 = ×1


class Program(msgspec.Struct, frozen=True, kw_only=True):
    id: uuid.UUID
    name: str
    currency: str  # ISO 4217
    timezone: str  # IANA name, e.g. "Europe/Paris"
    earn_points: int  # `earn_points` points ...
    earn_per_amount: int  # ... per this many minor units spent
    points_expiry_days: int
    tiers: tuple[Tier, ...]  # sorted by min_points_12m ascending
    stored_value: bool
    created_at: datetime
    updated_at: datetime

    def tier_for(self, points_12m: int) -> Tier | None:
        """The highest tier whose threshold `points_12m` reaches (None without tiers)."""
        best: Tier | None = None
        for tier in self.tiers:
            if points_12m >= tier.min_points_12m:
                best = tier
        return best
