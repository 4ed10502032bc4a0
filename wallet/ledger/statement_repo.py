"""The member's own ledger, as `GET /v1/me/ledger` pages through it (newest first)."""

from __future__ import annotations

import uuid

from wallet.kernel.db import Conn
from wallet.kernel.localtime import local
from wallet.kernel.model import LedgerEntry

MEMBER_ENTRIES = """
SELECT e.seq, e.id, e.at, e.kind, e.points, e.stored_value, e.store_id, e.transaction_id,
       e.lot_id, e.points_balance_after, e.stored_value_balance_after, s.name AS store_name,
       p.timezone
FROM ledger_entries e
JOIN programs p ON p.id = e.program_id
LEFT JOIN stores s ON s.id = e.store_id
WHERE e.wallet_account_id = (SELECT wallet_account_id FROM members
                              WHERE id = $1 AND program_id = $2)
  AND ($3::bigint IS NULL OR e.seq < $3)
ORDER BY e.seq DESC
LIMIT $4
"""


async def member_entries(conn: Conn, member_id: uuid.UUID,
                         program_id: uuid.UUID, *, before_seq: int | None,
                         limit: int) -> list[LedgerEntry]:
    """A member's entries, newest first, strictly before `before_seq` when given; `at` on
    the program's wall clock (with its offset), with the store's name."""
    rows = await conn.fetch(MEMBER_ENTRIES, member_id, program_id, before_seq, limit)
    out = []
    for r in rows:
        fields = dict(r)
        timezone = fields.pop("timezone")
        out.append(LedgerEntry(**{**fields, "at": local(r["at"], timezone)}))
    return out
