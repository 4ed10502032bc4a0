"""Where PostgreSQL's work and WAL go in an earn-only till purchase (a profile, not a test).

    .venv/bin/python tests/bench/profile_till_write.py [--purchases 2000] [--members 2000]
        [--history 0] [--explain]

On a throwaway embedded PostgreSQL with fsync on and `pg_stat_statements` preloaded with
`track = all` (the load test's server, `loadtests.common.database`): the bench's program,
store and members (`bench_till_one_statement.py`, `--history` as there, then a CHECKPOINT),
then N earn-only purchases through the till service on one connection. Printed per purchase:

* the WAL, by record type and by the relation of each record's first block (`pg_walinspect`
  between `pg_current_wal_lsn()` before and after), full-page images apart;
* every statement PostgreSQL ran, top level or nested (triggers, foreign-key checks, the
  deferred commit-time check), with calls and mean execution time (`pg_stat_statements`;
  PostgreSQL 18 counts the foreign-key checks of all tables under one entry, whose text is
  the first one seen);
* rows inserted, updated and HOT-updated per table, times its number of indexes.

`--explain` then runs one more purchase with `auto_explain` (ANALYZE, BUFFERS, WAL, nested
statements, triggers) and prints its plans, sent to this client as notices.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import asyncpg
from bench_till_one_statement import _block, setup

from loadtests.common import database
from wallet.kernel.db import keep_session
from wallet.ledger import earn_fast

WAL_BY_TYPE = """
SELECT "resource_manager/record_type" AS kind, count, record_size, fpi_size
FROM pg_get_wal_stats($1::text::pg_lsn, $2::text::pg_lsn, true)
WHERE count > 0 ORDER BY combined_size DESC
"""
WAL_BY_RELATION = """
SELECT coalesce(c.relname, '(other)') AS relation, count(*) AS records,
       sum(w.record_length) AS bytes, sum(w.fpi_length) AS fpi
FROM pg_get_wal_records_info($1::text::pg_lsn, $2::text::pg_lsn) w
LEFT JOIN pg_class c
  ON c.relfilenode = (regexp_match(w.block_ref, 'rel \\d+/\\d+/(\\d+)'))[1]::oid
GROUP BY 1 ORDER BY 3 DESC LIMIT 25
"""
STATEMENTS = """
SELECT calls, total_exec_time, toplevel, left(regexp_replace(query, '\\s+', ' ', 'g'), 90) AS q
FROM pg_stat_statements
WHERE query NOT LIKE '%pg_stat%' AND query NOT LIKE '%pg_wal%' AND calls >= $1
ORDER BY calls DESC, total_exec_time DESC
"""
TABLES = """
SELECT t.relname, t.n_tup_ins, t.n_tup_upd, t.n_tup_hot_upd,
       (SELECT count(*) FROM pg_index i WHERE i.indrelid = t.relid) AS indexes
FROM pg_stat_user_tables t WHERE t.n_tup_ins + t.n_tup_upd > 0 ORDER BY t.relname
"""
EXPLAIN = ("LOAD 'auto_explain'; SET auto_explain.log_min_duration = 0; "
           "SET auto_explain.log_analyze = on; SET auto_explain.log_buffers = on; "
           "SET auto_explain.log_wal = on; SET auto_explain.log_triggers = on; "
           "SET auto_explain.log_nested_statements = on; SET auto_explain.log_level = notice")


async def main(purchases: int, members_n: int, history: int, explain: bool) -> None:
    with database() as db:
        t = await setup(db.dsn, members_n, history)
        conn, pool = t.conn, t.pool
        await conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        rng, cache = random.Random(1), earn_fast.RulesCache()
        await _block(t, 200, cache, rng, False)
        if history:
            await conn.execute("CHECKPOINT")
        await conn.execute("SELECT pg_stat_statements_reset(), pg_stat_reset()")
        start = await conn.fetchval("SELECT pg_current_wal_lsn()::text")
        got = await _block(t, purchases, cache, rng, False)
        end = await conn.fetchval("SELECT pg_current_wal_lsn()::text")
        await asyncio.sleep(1.1)  # a backend sends its table counts at most once a second
        async with pool.acquire() as c:
            await c.execute("SELECT pg_stat_force_next_flush()")
        await asyncio.sleep(0.1)
        n = purchases
        print(f"{n} earn-only purchases (one statement), {members_n} members, history "
              f"{history}{' after a CHECKPOINT' if history else ''}: per purchase "
              f"{got[2]:.0f} µs PostgreSQL CPU, {got[3]:.0f} bytes of WAL ({got[4]:.0f} in "
              "full-page images)")
        print("\nWAL per purchase by record type: records, bytes, full-page image bytes")
        for r in await conn.fetch(WAL_BY_TYPE, start, end):
            print(f"  {r['kind']:<32}{r['count'] / n:>8.2f}{r['record_size'] / n:>9.0f}"
                  f"{r['fpi_size'] / n:>9.0f}")
        print("\nWAL per purchase by relation: records, bytes, of which full-page images")
        for r in await conn.fetch(WAL_BY_RELATION, start, end):
            print(f"  {r['relation']:<32}{r['records'] / n:>8.2f}{r['bytes'] / n:>9.0f}"
                  f"{r['fpi'] / n:>9.0f}")
        print("\nStatements per purchase: calls, mean execution µs, T = top level, n = nested")
        for r in await conn.fetch(STATEMENTS, n // 2):
            print(f"  {r['calls'] / n:>5.2f}{r['total_exec_time'] * 1000 / r['calls']:>8.1f} "
                  f"{'T' if r['toplevel'] else 'n'} {r['q']}")
        print("\nRows per purchase: inserted, updated, HOT-updated; times the table's indexes"
              " (partial ones skip some rows)")
        for r in await conn.fetch(TABLES):
            added = (r["n_tup_ins"] + r["n_tup_upd"] - r["n_tup_hot_upd"]) * r["indexes"]
            print(f"  {r['relname']:<24}{r['n_tup_ins'] / n:>6.2f}{r['n_tup_upd'] / n:>6.2f}"
                  f"{r['n_tup_hot_upd'] / n:>6.2f}{added / n:>7.2f}")
        if explain:
            plans: list[str] = []

            async def listen(c: asyncpg.Connection) -> None:  # on each acquire
                c.add_log_listener(lambda _c, msg: plans.append(msg.message))

            async def load(c: asyncpg.Connection) -> None:
                await c.execute(EXPLAIN)

            explained = await asyncpg.create_pool(db.dsn, min_size=1, max_size=1,
                                                  reset=keep_session, init=load, setup=listen)
            # warm: past the plan cache's first custom plans and PL/pgSQL's compilation
            await _block(t, 6, cache, rng, False, explained)
            plans.clear()
            await _block(t, 1, cache, rng, False, explained)
            await explained.close()
            print("\nOne purchase, auto_explain:\n" + "\n".join(plans))
        await pool.close()
        await conn.close()


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--purchases", type=int, default=2000)
    p.add_argument("--members", type=int, default=2000)
    p.add_argument("--history", type=int, default=0)
    p.add_argument("--explain", action="store_true")
    a = p.parse_args()
    asyncio.run(main(a.purchases, a.members, a.history, a.explain))
