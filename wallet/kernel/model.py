"""Domain value types shared across the wallet: programs, their tiers, and roles.

Amounts are integers in minor units; points are integers. A tier's earn multiplier is kept
as an integer in thousandths (`multiplier_milli`: 1500 = ×1.5) so every rule is integer
arithmetic and rounding is explicit (see `wallet/ledger/rules.py`).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

import msgspec

Role = Literal["member", "staff", "manager", "admin"]  # who a token speaks for


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


class LedgerEntry(msgspec.Struct, frozen=True, kw_only=True):
    """One ledger entry as it is read back (the member's statement, the export): signed
    deltas in points and minor units, and the balances after it. `seq` orders an account's
    entries; `lot_id` is the points lot it created or consumed, if any."""

    seq: int
    id: uuid.UUID
    at: datetime
    kind: str
    points: int
    stored_value: int
    store_id: uuid.UUID | None
    transaction_id: uuid.UUID | None
    lot_id: uuid.UUID | None
    points_balance_after: int
    stored_value_balance_after: int
