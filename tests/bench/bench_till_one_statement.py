"""What the one-statement earn-only purchase saves against the two-trip path (not a
pass/fail test).

    .venv/bin/python tests/bench/bench_till_one_statement.py [--purchases 1000] [--rounds 5]
        [--members 200] [--history 0]

On a throwaway embedded PostgreSQL with fsync on: a program with two tiers (the load test's)
and 200 members; earn-only purchases through the till service (`wallet.ledger.till.purchase`,
one pooled connection released without a session reset as the server's are, sequential, no
HTTP), in alternating blocks with the worker's rules cache (one statement,
`wallet/ledger/earn_fast.py`) and without it (the two-trip path: read, then the
self-committing write). Per purchase: wall time, this process's CPU (the service, asyncpg),
the CPU of the PostgreSQL backend serving the connection (from /proc), and the WAL written
(bytes between `pg_current_wal_lsn()` before and after the block, and the part that is
full-page images, from `pg_walinspect`); medians of the rounds, and the ratio one-statement /
two-trip measured in the same run. Sequential and without HTTP, so it shows what the path
itself costs, not the server's throughput.

`--history N` first appends N earlier purchases on other accounts (their transaction, lot,
ledger entry, access-log entry and stored answer, with random ids as the code before
migration 0020 wrote them) and runs a CHECKPOINT before each block: each block then pays the
full-page images of the pages it is the first to change since the checkpoint, as a server
does after each of its checkpoints once its tables outgrow the cache.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import NamedTuple

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import asyncpg
from support import ledger_fixtures as fx

from api.runtime.embedded_pg import EmbeddedPostgres
from loadtests.common import cpu_seconds
from migrations.runner import migrate
from wallet.kernel.db import keep_session
from wallet.kernel.hashing import Hasher
from wallet.kernel.idempotency_repo import IdemKey
from wallet.ledger import earn_fast, till

TIERS = [{"name": "blue", "min_points_12m": 0, "multiplier_milli": 1000},
         {"name": "gold", "min_points_12m": 20_000, "multiplier_milli": 1500}]




# Earlier purchases on accounts of their own, one of each row per purchase (see the docstring).
HISTORY = """
WITH h AS MATERIALIZED (
  SELECT gen_random_uuid() AS tx, gen_random_uuid() AS lot, gen_random_uuid() AS account,
         1 + (random() * 200)::int AS points, now() - interval '300 days' * random() AS at
    FROM generate_series(1, $3::int)),
a AS (INSERT INTO wallet_accounts (id, program_id, points_balance)
      SELECT account, $1::uuid, points FROM h),
t AS (INSERT INTO transactions (id, program_id, wallet_account_id, store_id, kind, receipt_id,
                                amount, currency, points_earned, at)
      SELECT tx, $1::uuid, account, $2::uuid, 'purchase', md5(tx::text), points * 100, 'EUR',
             points, at FROM h),
l AS (INSERT INTO points_lots (id, wallet_account_id, source, transaction_id, earned_at,
                               expires_at, points, remaining)
      SELECT lot, account, 'earn', tx, at, at + interval '365 days', points, points FROM h),
e AS (INSERT INTO ledger_entries (id, wallet_account_id, program_id, at, kind, points,
                                  stored_value, store_id, transaction_id, lot_id,
                                  points_balance_after, stored_value_balance_after)
      SELECT gen_random_uuid(), account, $1::uuid, at, 'earn', points, 0, $2::uuid, tx, lot,
             points, 0 FROM h),
g AS (INSERT INTO access_log (id, program_id, actor_id, actor_role, action, purpose, store_id,
                              at)
      SELECT gen_random_uuid(), $1::uuid, gen_random_uuid(), 'staff', 'till.purchase', 'till',
             $2::uuid, at FROM h)
INSERT INTO idempotency_keys (scope, key, request_hash, status_code, response_body)
SELECT account::text, md5(tx::text), '\\x00', 201, '\\x00' FROM h
"""


async def _history(conn: asyncpg.Connection, program: uuid.UUID, store: uuid.UUID,
                   n: int) -> None:
    await conn.execute(HISTORY, program, store, n)
    await conn.execute("VACUUM ANALYZE")


async def _wal(conn: asyncpg.Connection, start: str, n: int) -> tuple[float, float]:
    """(WAL bytes, of which full-page images) per purchase since `start`."""
    row = await conn.fetchrow(
        "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), $1::text::pg_lsn)::float8 AS bytes, "
        "(SELECT coalesce(sum(fpi_length), 0)::float8 FROM pg_get_wal_records_info("
        "$1::text::pg_lsn, pg_current_wal_lsn())) AS fpi", start)
    assert row is not None
    return row["bytes"] / n, row["fpi"] / n


class Till(NamedTuple):
    """A seeded database and the till's connection to it (see `setup`)."""

    conn: asyncpg.Connection  # a side connection: checkpoints, WAL positions
    pool: asyncpg.Pool  # one connection, the till's
    backend: int  # the pid of the PostgreSQL backend serving the pool
    caller: till.Caller
    store: uuid.UUID
    members: list[fx.Member]


async def setup(dsn: str, members_n: int, history: int) -> Till:
    """Migrate, seed the program (with tiers), a store, `members_n` members and `history`
    earlier purchases; a one-connection pool released without a session reset, as the
    server's pools are."""
    await migrate(dsn)
    conn = await asyncpg.connect(dsn)
    await conn.execute("CREATE EXTENSION IF NOT EXISTS pg_walinspect")
    pid = await fx.program(conn, tiers=TIERS)
    store = await fx.store(conn, pid)
    members = [await fx.member(conn, pid) for _ in range(members_n)]
    if history:
        await _history(conn, pid, store, history)
    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=1, reset=keep_session)
    async with pool.acquire() as c:
        backend = c.get_server_pid()
    return Till(conn, pool, backend, till.Caller(account_id=uuid.uuid4(), program_id=pid),
                store, members)


async def _block(t: Till, n: int, cache: earn_fast.RulesCache | None, rng: random.Random,
                 checkpoint: bool, pool: asyncpg.Pool | None = None) -> list[float]:
    """[wall µs, client CPU µs, backend CPU µs, WAL bytes, of which full-page images] per
    purchase of one block (on `pool`, by default the till's)."""
    conn, pool = t.conn, pool or t.pool
    hasher = Hasher(memory_kib=8, time_cost=1)
    policy = till.PinPolicy(max_attempts=5, lock_s=900)
    if checkpoint:
        await conn.execute("CHECKPOINT")
    lsn = await conn.fetchval("SELECT pg_current_wal_lsn()::text")
    wall, cpu, pg = time.perf_counter(), time.process_time(), cpu_seconds([t.backend])
    for _ in range(n):
        receipt = uuid.uuid4().hex
        await till.purchase(
            pool, t.caller, store_id=t.store, card=rng.choice(t.members).card_number,
            receipt_id=receipt, amount=rng.randint(100, 20_000), currency="EUR",
            idem=IdemKey(scope=str(t.caller.account_id), key=receipt,
                         request_hash=receipt.encode()),
            hasher=hasher, pin_policy=policy, rules_cache=cache)
    times = [(time.perf_counter() - wall) / n * 1e6, (time.process_time() - cpu) / n * 1e6,
             (cpu_seconds([t.backend]) - pg) / n * 1e6]
    return times + list(await _wal(conn, lsn, n))


COLUMNS = ("wall µs", "client CPU µs", "PostgreSQL CPU µs", "WAL bytes", "of which FPI")


async def main(purchases: int, rounds: int, members_n: int, history: int) -> None:
    with EmbeddedPostgres(fsync=True) as pg:
        t = await setup(pg.dsn, members_n, history)
        rng = random.Random(1)
        paths = {"one statement": earn_fast.RulesCache(), "two trips": None}
        for cache in paths.values():  # warm up: prepared statements, the rules cache
            await _block(t, 100, cache, rng, False)
        got: dict[str, list[list[float]]] = {name: [] for name in paths}
        for _ in range(rounds):
            for name, cache in paths.items():
                got[name].append(await _block(t, purchases, cache, rng, history > 0))
        medians = {name: [statistics.median(r[i] for r in rows) for i in range(len(COLUMNS))]
                   for name, rows in got.items()}
        print(f"{purchases} earn-only purchases x {rounds} rounds per path, sequential, "
              f"fsync on, {members_n} members, history {history}"
              f"{' (a CHECKPOINT before each block)' if history else ''}; "
              f"load average {os.getloadavg()[0]:.1f}")
        print(f"{'path':<14}" + "".join(f"{c:>19}" for c in COLUMNS))
        for name, values in medians.items():
            print(f"{name:<14}" + "".join(f"{v:>19.0f}" for v in values))
        one, two = medians["one statement"], medians["two trips"]
        print("ratio one/two: " + ", ".join(
            f"{label} {a / b:.2f}" for label, a, b in zip(COLUMNS, one, two, strict=True)
            if b))
        print(json.dumps({"rounds": got, "medians": medians}))
        await t.pool.close()
        await t.conn.close()


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--purchases", type=int, default=1000)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--members", type=int, default=200)
    p.add_argument("--history", type=int, default=0)
    a = p.parse_args()
    asyncio.run(main(a.purchases, a.rounds, a.members, a.history))
