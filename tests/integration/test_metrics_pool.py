"""The pool figures of /metrics against a real asyncpg pool: callers waiting for a connection
are counted (asyncpg has no public figure for it; see `api.metrics.pool_waiting`)."""

from __future__ import annotations

import asyncio

import asyncpg
from prometheus_client import REGISTRY

from api import metrics


async def test_callers_waiting_for_a_connection_are_counted(db_url: str) -> None:
    pool = await asyncpg.create_pool(db_url, min_size=1, max_size=1)
    try:
        assert metrics.pool_waiting(pool) == 0
        async with pool.acquire():
            waiters = [asyncio.create_task(pool.fetchval("SELECT 1")) for _ in range(3)]
            for _ in range(1000):  # let each task reach acquire() and block there
                if metrics.pool_waiting(pool) >= 3:
                    break
                await asyncio.sleep(0)
            assert metrics.pool_waiting(pool) == 3
            metrics.sample_pool(pool)
            assert REGISTRY.get_sample_value("db_pool_waiting") == 3
            assert REGISTRY.get_sample_value("db_pool_connections", {"state": "in_use"}) == 1
        assert await asyncio.gather(*waiters) == [1, 1, 1]
        assert metrics.pool_waiting(pool) == 0
    finally:
        await pool.close()
