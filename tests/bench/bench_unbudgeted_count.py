"""What reading `issued` costs for a campaign without a budget (not a pass/fail test).

    .venv/bin/python tests/bench/bench_unbudgeted_count.py [--offers 10000 100000 1000000]

Such a campaign keeps no counter (its offers take no lock on its row), so `issued` is the
count of its offers (`geo/campaigns_repo.ISSUED`, an index-only scan on `offers`). On a
throwaway embedded PostgreSQL, one campaign per `--offers` figure with that many offers
(vacuumed, as autovacuum leaves an insert-only table): printed, the best of 5 reads of one
campaign (`SELECT_ONE`) and of the list of them all (`SELECT_PAGE`).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from geo import campaigns_repo
from loadtests.common import connect_migrated, database, insert_program

OFFERS = """
INSERT INTO offers (id, program_id, campaign_id, campaign_revision, member_id, visit_id,
                    store_id, title, body, reward_kind, reward_value, issued_at, expires_at)
SELECT gen_random_uuid(), $1, $2, 1, gen_random_uuid(), gen_random_uuid(), gen_random_uuid(),
       't', 'b', 'bonus_points', 1, $3::timestamptz - g * interval '1 second',
       $3::timestamptz + interval '1 day'
FROM generate_series(1, $4) g
"""


async def _best_ms(read: Callable[[], Awaitable[object]]) -> float:
    times = []
    for _ in range(5):
        t = time.perf_counter()
        await read()
        times.append(time.perf_counter() - t)
    return min(times) * 1000


async def main_async(args: argparse.Namespace) -> None:
    with database() as db:
        conn = await connect_migrated(db.dsn)
        program = await insert_program(conn)
        now = datetime.now(UTC)
        made = []
        for n in args.offers:
            cid = uuid.uuid4()
            await conn.execute(
                "INSERT INTO campaigns (id, program_id, name, status, rules, starts_at, ends_at)"
                " VALUES ($1, $2, 'C', 'active', '{}', $3, $4)", cid, program,
                now - timedelta(days=1), now + timedelta(days=1))
            # offers of members and stores that don't exist: no foreign key checks here
            await conn.execute("SET session_replication_role = replica")
            await conn.execute(OFFERS, program, cid, now, n)
            await conn.execute("SET session_replication_role = origin")
            made.append((cid, n))
        await conn.execute("VACUUM ANALYZE offers")
        for cid, n in made:
            row = await conn.fetchrow(campaigns_repo.SELECT_ONE, cid, program)
            assert row is not None and row["issued"] == n
            ms = await _best_ms(partial(conn.fetchrow, campaigns_repo.SELECT_ONE, cid, program))
            print(f"one campaign, {n:>10,} offers: {ms:7.1f} ms")
        ms = await _best_ms(partial(conn.fetch, campaigns_repo.SELECT_PAGE, program, None, None,
                                    None, 50))
        print(f"the list of {len(made)} ({sum(n for _, n in made):,} offers): {ms:7.1f} ms")
        await conn.close()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--offers", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    asyncio.run(main_async(p.parse_args()))


if __name__ == "__main__":
    main()
