"""The zone registry's LISTEN connection comes back after it is lost (a database restart, a
proxy's idle timeout, an operator's pg_terminate_backend), and the worker catches up with the
changes it could not hear meanwhile. Without it every later zone change would reach the worker
only through the ping path, which then rebuilds the snapshot while a member waits.

A silent partition (the connection's path stops delivering, without a reset) is noticed by the
registry's heartbeat, which then goes through the same listen-again-and-refresh.

Each test waits on what it can observe (the listener's backend, the snapshot's version), never
on a timer."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
from litestar import Litestar
from support.faults import until
from support.helpers import INSIDE, Client, ago, create_program, create_store, ping, signup
from support.tcp_proxy import FreezableProxy

from api.auth.tokens import TokenService
from geo.registry import LISTENER_NAME, ZoneRegistry

LISTENERS = """
SELECT pid FROM pg_stat_activity
WHERE datname = current_database() AND application_name = $1
"""



async def listeners(conn: asyncpg.Connection) -> list[int]:
    return [r["pid"] for r in await conn.fetch(LISTENERS, LISTENER_NAME)]


async def cut(conn: asyncpg.Connection) -> int:
    """End the (only) listener's backend, as a database restart would; its pid."""
    [pid] = await listeners(conn)
    assert await conn.fetchval("SELECT pg_terminate_backend($1)", pid)
    return pid


async def test_a_zone_change_after_the_listener_lost_its_connection_reaches_the_worker(
        client: Client, tokens: TokenService, app: Litestar, conn: asyncpg.Connection) -> None:
    program_id = await create_program(client, tokens)
    _, member = await signup(client, program_id, consents=["location_offers"])
    r = await client.post("/v1/me/pings", json={"pings": [ping(*INSIDE, ago(5))]},
                          headers=member)
    assert r.status_code == 200, r.text
    registry: ZoneRegistry = app.state.zones
    held = registry.peek(uuid.UUID(program_id))
    assert held is not None, "the ping loaded the program's zones"

    old = await cut(conn)
    for _ in range(3000):  # bounded: until a new listener is connected
        if (now := await listeners(conn)) and now != [old]:
            break
        await asyncio.sleep(0.01)
    else:
        raise AssertionError("the registry never listened again")

    store_id = await create_store(client, tokens, program_id)
    # No ping: the notification alone brings the worker's snapshot up to date.
    await until(lambda: uuid.UUID(store_id) in _keys(registry, program_id))


def _keys(registry: ZoneRegistry, program_id: str) -> dict[uuid.UUID, int]:
    snap = registry.peek(uuid.UUID(program_id))
    return snap.keys if snap else {}


class Gate:
    """`asyncpg.connect` held until the test opens it: the listener stays away while the
    test changes zones, so only the catch-up after reconnecting can bring them."""

    def __init__(self) -> None:
        self.open, self.waiting = asyncio.Event(), asyncio.Event()
        self.made: list[asyncpg.Connection] = []

    async def connect(self, dsn: str, **kwargs: Any) -> asyncpg.Connection:
        if self.made:  # the first is the start's, not a reconnection
            self.waiting.set()
            await self.open.wait()
        self.made.append(await asyncpg.connect(dsn, **kwargs))
        return self.made[-1]


@pytest.fixture
async def gated(db_url: str) -> AsyncIterator[tuple[ZoneRegistry, Gate]]:
    pool = await asyncpg.create_pool(db_url, min_size=1, max_size=2)
    gate = Gate()
    registry = ZoneRegistry(pool, connect=gate.connect, retry_s=0.01)
    await registry.start(db_url)
    try:
        yield registry, gate
    finally:
        await registry.stop()
        await pool.close()


async def test_after_reconnecting_the_registry_catches_up_with_changes_it_missed(
        client: Client, tokens: TokenService, conn: asyncpg.Connection,
        gated: tuple[ZoneRegistry, Gate]) -> None:
    registry, gate = gated
    program_id = await create_program(client, tokens)
    first = await create_store(client, tokens, program_id, code="A")
    snap = await registry.current(uuid.UUID(program_id), 0)
    assert set(snap.keys) == {uuid.UUID(first)}

    [listener] = gate.made
    assert await conn.fetchval("SELECT pg_terminate_backend($1)", listener.get_server_pid())
    await gate.waiting.wait()  # the registry is trying to reconnect, held at the gate
    missed = await create_store(client, tokens, program_id, code="B")  # nobody hears it
    assert uuid.UUID(missed) not in _keys(registry, program_id)
    gate.open.set()
    await until(lambda: uuid.UUID(missed) in _keys(registry, program_id))

    heard = await create_store(client, tokens, program_id, code="C")  # the new LISTEN hears it
    await until(lambda: uuid.UUID(heard) in _keys(registry, program_id))
    assert set(_keys(registry, program_id)) == {uuid.UUID(s) for s in (first, missed, heard)}


@pytest.fixture
async def partitioned(db_url: str) -> AsyncIterator[tuple[ZoneRegistry, FreezableProxy]]:
    """A registry listening through a proxy the test can partition silently; heartbeats
    every 50 ms, a silence of 0.5 s is a lost connection."""
    proxy = FreezableProxy(db_url)
    await proxy.start()
    pool = await asyncpg.create_pool(db_url, min_size=1, max_size=2)
    registry = ZoneRegistry(pool, retry_s=0.01, heartbeat_s=0.05, heartbeat_timeout_s=0.5)
    await registry.start(proxy.dsn())
    try:
        yield registry, proxy
    finally:
        await registry.stop()
        await pool.close()
        await proxy.stop()


async def test_a_silent_partition_of_the_listener_is_caught_by_the_heartbeat(
        client: Client, tokens: TokenService,
        partitioned: tuple[ZoneRegistry, FreezableProxy]) -> None:
    registry, proxy = partitioned
    program_id = await create_program(client, tokens)
    first = await create_store(client, tokens, program_id, code="A")
    assert set((await registry.current(uuid.UUID(program_id), 0)).keys) == {uuid.UUID(first)}
    heard = await create_store(client, tokens, program_id, code="B")
    await until(lambda: uuid.UUID(heard) in _keys(registry, program_id))  # through the proxy
    listening = proxy.connections

    proxy.freeze()  # the listener's path goes silent: no reset, no close, nothing reported
    missed = await create_store(client, tokens, program_id, code="C")  # its NOTIFY is lost
    # No ping: only the heartbeat's silence, the new LISTEN and its catch-up can bring it.
    await until(lambda: uuid.UUID(missed) in _keys(registry, program_id))
    assert proxy.connections > listening  # it connected again

    after = await create_store(client, tokens, program_id, code="D")  # the new LISTEN hears it
    await until(lambda: uuid.UUID(after) in _keys(registry, program_id))
    assert set(_keys(registry, program_id)) == {
        uuid.UUID(s) for s in (first, heard, missed, after)}
