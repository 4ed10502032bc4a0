"""How many offers one campaign can issue per second when its budget is one row (not a
pass/fail test).

    .venv/bin/python tests/bench/bench_campaign_row.py [--seconds 5] [--clients 1 8 32]

Every offer of a budgeted campaign takes a unit of its budget with `UPDATE campaigns SET
issued = issued + 1` (`geo/issuance_repo.TAKE_BUDGET`) and holds that row lock until its
transaction commits, so all offers of one campaign take turns (a campaign without a budget
takes its row FOR SHARE and writes nothing, `TAKE_OPEN`). On a throwaway embedded
PostgreSQL (fsync on), `--clients` connections each run transactions of BEGIN, that
UPDATE, COMMIT for `--seconds`:
- one row: every client updates the same campaign (one campaign's offers);
- own rows: each client updates its own campaign (the same work, nothing shared).
Printed: transactions per second and their p50/p99 latency, per case, interleaved.
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

from loadtests.common import connect_migrated, database, insert_program

BUDGET = "UPDATE campaigns SET issued = issued + 1 WHERE id = $1 AND status = 'active'" \
         " AND (max_issued IS NULL OR issued < max_issued)"  # ISSUE's budget step


async def _campaigns(conn: asyncpg.Connection, count: int) -> list[uuid.UUID]:
    pid = await insert_program(conn)
    now = datetime.now(UTC)
    ids = [uuid.uuid4() for _ in range(count)]
    await conn.executemany(
        "INSERT INTO campaigns (id, program_id, name, status, rules, starts_at, ends_at,"
        " max_issued) VALUES ($1, $2, 'C', 'active', '{}', $3, $4, 2000000000)",
        [(c, pid, now - timedelta(days=1), now + timedelta(days=1)) for c in ids])
    return ids


async def _client(pool: asyncpg.Pool, campaign: uuid.UUID, until: float,
                  out: list[float]) -> None:
    async with pool.acquire() as conn:
        while time.perf_counter() < until:
            t = time.perf_counter()
            async with conn.transaction():
                await conn.execute(BUDGET, campaign)
            out.append(time.perf_counter() - t)


async def main_async(args: argparse.Namespace) -> None:
    with database() as db:
        conn = await connect_migrated(db.dsn)
        ids = await _campaigns(conn, max(args.clients))
        await conn.close()
        pool = await asyncpg.create_pool(db.dsn, min_size=max(args.clients),
                                         max_size=max(args.clients))
        print(f"PostgreSQL: {db.where}; {args.seconds:g} s per case")
        try:
            for clients in args.clients:
                for case in ("one row", "own rows"):
                    lat: list[float] = []
                    until = time.perf_counter() + args.seconds
                    await asyncio.gather(*(
                        _client(pool, ids[0] if case == "one row" else ids[i], until, lat)
                        for i in range(clients)))
                    qs = statistics.quantiles(lat, n=100)
                    print(f"{clients:3d} clients, {case:8s}: {len(lat) / args.seconds:8.0f} "
                          f"transactions/s, p50 {qs[49] * 1000:6.2f} ms, p99 "
                          f"{qs[98] * 1000:6.2f} ms", flush=True)
        finally:
            await pool.close()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=float, default=5.0)
    p.add_argument("--clients", type=int, nargs="+", default=[1, 8, 32])
    asyncio.run(main_async(p.parse_args()))


if __name__ == "__main__":
    main()
