"""Database conventions shared by repositories and the pools that serve them: a connection
may come straight from `asyncpg.connect` or from a pool (`PoolConnectionProxy`); repositories
accept both. Pools release connections without a session reset (`keep_session`)."""

from __future__ import annotations

from typing import TypeAlias

import asyncpg
from asyncpg.pool import PoolConnectionProxy

Conn: TypeAlias = "asyncpg.Connection[asyncpg.Record] | PoolConnectionProxy[asyncpg.Record]"


async def keep_session(_conn: asyncpg.Connection[asyncpg.Record]) -> None:
    """The pool's reset on release: nothing to send.

    asyncpg's default sends `SELECT pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *;
    RESET ALL` on every release: one more round trip per request (a sixth of a till
    purchase's) for session state this app never leaves behind. asyncpg still rolls back a
    transaction left open (that part of the reset always runs) and drops the connection's
    listener callbacks. What would leak without the reset, and why nothing does:
    * settings (`SET`): none is issued; the time zone is a connection parameter. Use
      `SET LOCAL` (or `set_config(..., true)`) inside a transaction if ever needed;
    * advisory locks: only transaction-scoped ones (`try_job_lock`); the
      migration runner's session lock is on its own connection, not a pool's;
    * LISTEN: only on dedicated connections (`geo.registry`);
    * cursors: only inside transactions (WITH HOLD cursors are never declared);
    * prepared statements: asyncpg's own cache, meant to survive releases.
    A new session-level use must come with its own cleanup or a dedicated connection."""


TRY_LOCK = "SELECT pg_try_advisory_xact_lock($1)"


async def try_job_lock(conn: Conn, key: int) -> bool:
    """Take a job's advisory lock if free (a periodic job runs in one process at a time),
    until `conn`'s transaction ends.

    Transaction-scoped, never session-scoped: pools do not reset sessions on release (see
    `keep_session`), and a transaction always ends (even on cancellation the pool
    rolls it back), so the lock cannot outlive the job on a pooled connection. A job holds it
    with a transaction open on a connection of its own and works on a second one (its
    own short transactions). That idle transaction wrote nothing and holds no snapshot
    between statements (READ COMMITTED), so it holds back no vacuum."""
    return bool(await conn.fetchval(TRY_LOCK, key))
