"""The database going away answers 503 `/problems/unavailable` with Retry-After, never a 500,
and the service recovers by itself (issue 14, bug 4). A real stop of PostgreSQL under load is
in tests/faults; here the server ends the app's connection in the middle of a request."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
from support.helpers import Client, admin, create_program

from api.auth.tokens import TokenService

TERMINATE_WAITERS = """
SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
WHERE datname = current_database() AND pid <> pg_backend_pid() AND wait_event_type = 'Lock'
"""


async def _terminate_the_waiter(dsn: str) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        for _ in range(20_000):  # bounded: until the app's query waits on our lock
            if done := await conn.fetchval(TERMINATE_WAITERS):
                return int(done)
        return 0
    finally:
        await conn.close()


async def cut_off(conn: asyncpg.Connection, dsn: str, table: str,
                  send: Callable[[], Awaitable[Any]]) -> Any:
    """Send a request that reads `table` while we lock it, and terminate the app's backend
    once it waits on the lock: its connection dies mid-query, as in a database restart.

    The test client blocks this thread while the app works, so the terminating side runs in
    a thread of its own, with its own connection."""
    terminated: list[int] = []
    async with conn.transaction():
        await conn.execute(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")
        killer = threading.Thread(
            target=lambda: terminated.append(asyncio.run(_terminate_the_waiter(dsn))))
        killer.start()
        try:
            response = await send()
        finally:
            killer.join()
    assert terminated == [1], "the request never waited on the lock"
    return response


async def test_a_connection_lost_mid_request_is_a_503_with_retry_after_then_it_recovers(
        client: Client, tokens: TokenService, conn: asyncpg.Connection, db_url: str) -> None:
    program_id = await create_program(client, tokens)

    async def read() -> Any:
        return await client.get(f"/v1/programs/{program_id}", headers=admin(tokens))

    r = await cut_off(conn, db_url, "programs", read)
    assert r.status_code == 503, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.headers["retry-after"] == "1"
    assert r.json()["type"] == "/problems/unavailable"
    assert (await read()).status_code == 200


async def test_ready_says_unreachable_without_naming_an_exception(
        client: Client, conn: asyncpg.Connection, db_url: str) -> None:
    assert (await client.get("/ready")).status_code == 200
    r = await cut_off(conn, db_url, "schema_migrations", lambda: client.get("/ready"))
    assert r.status_code == 503
    assert r.json() == {"status": "unavailable", "database": "unreachable",
                        "pending_migrations": []}
    assert r.headers["retry-after"] == "1"
    assert (await client.get("/ready")).status_code == 200
