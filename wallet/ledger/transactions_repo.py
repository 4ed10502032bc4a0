"""A store's till transactions, newest first (the till's "recent" list and its refunds).

No member identity is read: a transaction names only the pseudonymous wallet account, which
this list does not return, so reading it is not an access to a member's personal data.
"""

from __future__ import annotations

import uuid
from datetime import datetime

import asyncpg
import msgspec


class StoreTransaction(msgspec.Struct, frozen=True, kw_only=True):
    """One till operation as the store sees it. Amounts in minor units of `currency`."""

    id: uuid.UUID
    kind: str  # purchase, refund, topup (and any kind later migrations add)
    at: datetime
    receipt_id: str | None
    amount: int
    currency: str
    discount: int
    stored_value_spent: int
    stored_value_returned: int
    points_earned: int
    points_redeemed: int
    points_taken_back: int
    points_returned: int
    refunded_amount: int  # purchases: refunded so far, in what was paid
    refundable: bool  # purchases: a refund can still give something back (`wallet.ledger.refunds`)
    original_transaction_id: uuid.UUID | None  # refunds: the purchase refunded
    staff_id: uuid.UUID | None  # the account that rang it up


STORE_TRANSACTIONS = """
SELECT id, kind, at, receipt_id, amount, currency, discount, stored_value_spent,
       stored_value_returned, points_earned, points_redeemed, points_taken_back, points_returned,
       refunded_amount, original_transaction_id, staff_id,
       kind = 'purchase' AND (amount - discount > refunded_amount
                              OR (amount = discount AND NOT EXISTS (
                                  SELECT 1 FROM transactions r
                                   WHERE r.original_transaction_id = transactions.id)))
         AS refundable
FROM transactions
WHERE program_id = $1 AND store_id = $2
  AND ($3::timestamptz IS NULL OR (at, id) < ($3::timestamptz, $4::uuid))
ORDER BY at DESC, id DESC
LIMIT $5
"""


async def store_transactions(pool: asyncpg.Pool, program_id: uuid.UUID, store_id: uuid.UUID,
                             *, before: tuple[datetime, uuid.UUID] | None, limit: int
                             ) -> list[StoreTransaction]:
    """The store's transactions, newest first, strictly before `before` (a keyset cursor)."""
    at, id_ = before if before else (None, None)
    async with pool.acquire() as conn:
        rows = await conn.fetch(STORE_TRANSACTIONS, program_id, store_id, at, id_, limit)
    return [StoreTransaction(**{**dict(r), "currency": r["currency"].strip()}) for r in rows]
