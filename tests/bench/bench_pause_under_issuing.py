"""How long a pause waits while a campaign without a budget is issuing (not a pass/fail test).

    .venv/bin/python tests/bench/bench_pause_under_issuing.py [--clients 4 16 64] [--pauses 5]

Issuers take such a campaign's row FOR SHARE until they commit (`geo/issuance_repo.TAKE_OPEN`),
and PostgreSQL grants a new FOR SHARE while an UPDATE waits, so a pause (an UPDATE) waits
until a moment when no offer of the campaign is in flight. On a throwaway embedded
PostgreSQL (fsync on), `--clients` connections each issue offers of one campaign in a tight
loop (BEGIN, `ISSUE` without a budget, COMMIT); meanwhile a manager's connection pauses and
re-activates it `--pauses` times. Printed per client count: offers per second and the
pause's wait, median and worst.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import asyncpg

from geo import issuance_repo
from loadtests.common import connect_migrated, database, insert_members, insert_program

NOW = datetime.now(UTC)


async def _issuer(pool: asyncpg.Pool, campaign: uuid.UUID, program: uuid.UUID,
                  member: uuid.UUID, stop: asyncio.Event, count: list[int]) -> None:
    async with pool.acquire() as conn:
        while not stop.is_set():
            async with conn.transaction():
                await conn.fetchrow(
                    issuance_repo.ISSUE_OPEN, uuid.uuid4(), campaign, program, member,
                    uuid.uuid4(), uuid.uuid4(), "t", "b", "bonus_points", 1, NOW,
                    NOW + timedelta(hours=1), None, "{}")
            count[0] += 1


async def _case(dsn: str, program: uuid.UUID, member: uuid.UUID, clients: int,
                pauses: int) -> None:
    manager = await asyncpg.connect(dsn)
    campaign = uuid.uuid4()
    await manager.execute(
        "INSERT INTO campaigns (id, program_id, name, status, rules, starts_at, ends_at)"
        " VALUES ($1, $2, 'C', 'active', '{}', $3, $4)", campaign, program,
        NOW - timedelta(days=1), NOW + timedelta(days=1))
    stop, count = asyncio.Event(), [0]
    async with asyncpg.create_pool(dsn, min_size=clients, max_size=clients) as pool:
        tasks = [asyncio.create_task(_issuer(pool, campaign, program, member, stop, count))
                 for _ in range(clients)]
        await asyncio.sleep(0.5)  # warm-up: every issuer under way
        start, issued = time.perf_counter(), count[0]
        waits = []
        for _ in range(pauses):
            t = time.perf_counter()
            await manager.execute("UPDATE campaigns SET status = 'paused' WHERE id = $1",
                                  campaign)
            waits.append(time.perf_counter() - t)
            await manager.execute("UPDATE campaigns SET status = 'active' WHERE id = $1",
                                  campaign)
            await asyncio.sleep(0.2)
        rate = (count[0] - issued) / (time.perf_counter() - start)
        stop.set()
        await asyncio.gather(*tasks)
    await manager.close()
    print(f"{clients:>3} issuers: {rate:7.0f} offers/s; a pause waited median "
          f"{statistics.median(waits) * 1000:7.1f} ms, worst {max(waits) * 1000:7.1f} ms")


async def main_async(args: argparse.Namespace) -> None:
    with database() as db:
        conn = await connect_migrated(db.dsn)
        program = await insert_program(conn)
        ((member, _),) = await insert_members(conn, program, 1)
        await conn.close()
        for clients in args.clients:
            await _case(db.dsn, program, member, clients, args.pauses)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--clients", type=int, nargs="+", default=[4, 16, 64])
    p.add_argument("--pauses", type=int, default=5)
    asyncio.run(main_async(p.parse_args()))


if __name__ == "__main__":
    main()
