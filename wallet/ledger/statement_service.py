"""The member's own statement (`GET /v1/me/ledger`): a page of entries, newest first."""

from __future__ import annotations

import uuid

import asyncpg

from wallet.kernel.model import LedgerEntry
from wallet.ledger import statement_repo
from wallet.members.members_repo import require_member


async def statement_page(pool: asyncpg.Pool, member_id: uuid.UUID, program_id: uuid.UUID, *,
                         before_seq: int | None, limit: int) -> list[LedgerEntry]:
    """Up to `limit` entries strictly before `before_seq` (None: the newest). An erased
    member is `gone()` (401), even when there is nothing to list."""
    async with pool.acquire() as conn:
        rows = await statement_repo.member_entries(conn, member_id, program_id,
                                                   before_seq=before_seq, limit=limit)
        if not rows:  # no entries yet, or no member any more (erased: 401)
            await require_member(conn, member_id, keep=False)
    return rows
