"""A pooled connection the server ends while a request is between two statements (the till
checks a PIN with argon2 between its read and its write) is handed back to the pool by
asyncpg at once; the request's next statement then fails with an InterfaceError saying so.
That is the database going away, so the API answers it with a 503 and Retry-After, never a
500: this pins both asyncpg's behaviour and the API's reading of it."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from api.errors import _unavailable


async def test_a_statement_after_the_server_ended_the_connection_reads_as_unavailable(
        db_url: str, conn: asyncpg.Connection) -> None:
    pool = await asyncpg.create_pool(db_url, min_size=1, max_size=1)
    try:
        async with pool.acquire() as held:
            pid = await held.fetchval("SELECT pg_backend_pid()")
            assert await conn.fetchval("SELECT pg_terminate_backend($1)", pid)
            for _ in range(500):  # bounded: until asyncpg has seen the connection go
                try:
                    if held.is_closed():
                        break
                except asyncpg.InterfaceError:  # already handed back to the pool
                    break
                await asyncio.sleep(0.01)
            with pytest.raises(asyncpg.InterfaceError) as lost:
                await held.fetchval("SELECT 1")
        assert _unavailable(lost.value)
    finally:
        await pool.close()
