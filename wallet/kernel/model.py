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


class Limits(msgspec.Struct, frozen=True, kw_only=True):
    """A program's ceilings on money at the till, in minor units of its currency. The
    defaults suit a retailer in euros: a purchase of at most 10,000.00 (the EU's ceiling on
    cash payments), a top-up of at most 500.00, and a purse (stored value, e-money in EU
    law, which caps purses) holding at most 1,500.00. A lower ceiling never takes money
    away: a purse above it keeps its balance, it only cannot grow."""

    max_purchase_amount: int = 1_000_000
    max_top_up_amount: int = 50_000
    max_stored_value_balance: int = 150_000


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
    voucher_expiry_returns_points: bool = True  # an unused reward voucher's points come back
    locale: str = "en"  # BCP 47: how amounts and numbers are written for people ("fr-FR")
    cross_store_refunds: bool = True  # a purchase may be refunded at another of its stores
    limits: Limits = Limits()


class EntryFields(msgspec.Struct, frozen=True, kw_only=True):
    """A ledger entry's own columns: signed deltas in points and minor units, and the
    balances after it. `lot_id` is the points lot it created or consumed, if any."""

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


class LedgerEntry(EntryFields, frozen=True, kw_only=True):
    """One ledger entry as it is read back (the member's statement, the export); `seq`
    orders an account's entries. `store_name`: the store's name as it is now (None without a
    store), for the member's statement."""

    seq: int
    store_name: str | None = None


class Lot(msgspec.Struct, frozen=True, kw_only=True):
    """Points earned together; `remaining` of `points` are still available."""

    id: uuid.UUID
    earned_at: datetime
    expires_at: datetime
    points: int
    remaining: int


class PointsLot(Lot, frozen=True, kw_only=True):
    """A lot as stored: where it came from (`source`: earn, adjustment, offer bonus, refund
    return…) and the transaction that made it."""

    source: str
    transaction_id: uuid.UUID | None
