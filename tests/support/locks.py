"""Synchronisation on PostgreSQL's lock manager: a test that holds a lock waits until another
backend is seen queued behind it, instead of sleeping and hoping it got there."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg

WAIT_TIMEOUT_S = 30.0

# pg_blocking_pids reads the lock manager itself: unlike pg_stat_activity, it is not frozen
# in the snapshot of the caller's transaction, so the lock's holder may ask it.
_BLOCKED_BY = "SELECT $2::int = ANY(pg_blocking_pids($1::int))"


async def wait_until_blocked(observer: asyncpg.Connection, waiter_pid: int,
                             holder_pid: int, *,
                             running: asyncio.Future[Any] | None = None) -> None:
    """Return once backend `waiter_pid` waits on a lock held by backend `holder_pid`.

    The waiter's statement has then started (its snapshot taken) and is queued on the lock.
    `observer` may be the holder's own connection, inside its transaction. Raises
    TimeoutError if the waiter never gets there (a test bug, not a slow machine: the bound
    is generous); with `running`, the waiter's statement, fails at once if that finished
    without waiting (a lock that no longer conflicts)."""
    try:
        async with asyncio.timeout(WAIT_TIMEOUT_S):
            while True:
                if await observer.fetchval(_BLOCKED_BY, waiter_pid, holder_pid):
                    return
                assert running is None or not running.done(), "it did not wait for the lock"
                await asyncio.sleep(0.005)  # the polling interval of a condition
    except TimeoutError:
        raise TimeoutError(f"backend {waiter_pid} never waited on {holder_pid}'s lock") from None
