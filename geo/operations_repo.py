"""Figures an operator watches, read when `/metrics` is scraped: the offers waiting for
webhook delivery (and how long the oldest has waited) and the members whose stored-value PIN
is locked now: confirmed locks only, not the provisional lock of an attempt whose PIN is still
being verified (`pin_lock_pending_until` ahead, migration 0019: it lasts milliseconds and a
right PIN lifts it). One statement, on indexed rows only (pending outbox rows, members ever
locked), so a scrape stays cheap however large the tables grow."""

from __future__ import annotations

from datetime import datetime

import asyncpg
import msgspec

FIGURES = """
SELECT (SELECT count(*) FROM offer_outbox WHERE state = 'pending') AS backlog,
       (SELECT min(created_at) FROM offer_outbox WHERE state = 'pending') AS oldest,
       (SELECT count(*) FROM members WHERE pin_locked_until > $1
          AND (pin_lock_pending_until IS NULL OR pin_lock_pending_until <= $1)) AS pin_locked
"""


class Figures(msgspec.Struct, frozen=True, kw_only=True):
    outbox_backlog: int
    outbox_oldest_age_s: float  # 0 when nothing waits
    pin_locked: int


async def figures(pool: asyncpg.Pool, *, now: datetime, timeout_s: float = 2) -> Figures:
    """Read the figures (raises the pool's or asyncpg's error when the database is away)."""
    async with pool.acquire(timeout=timeout_s) as conn:
        row = await conn.fetchrow(FIGURES, now, timeout=timeout_s)
    assert row is not None
    oldest = row["oldest"]
    return Figures(outbox_backlog=row["backlog"], pin_locked=row["pin_locked"],
                   outbox_oldest_age_s=max(0.0, (now - oldest).total_seconds()) if oldest
                   else 0.0)
