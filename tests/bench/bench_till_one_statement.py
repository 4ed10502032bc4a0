"""What the one-statement earn-only purchase saves against the two-trip path (not a
pass/fail test).

    .venv/bin/python tests/bench/bench_till_one_statement.py [--purchases 1000] [--rounds 5]

On a throwaway embedded PostgreSQL with fsync on: a program with two tiers (the load test's)
and 200 members; earn-only purchases through the till service (`wallet.ledger.till.purchase`,
one pooled connection, sequential, no HTTP), in alternating blocks with the worker's rules
cache (one statement, `wallet/ledger/earn_fast.py`) and without it (the two-trip path: read,
then the self-committing write). Per purchase: wall time, this process's CPU (the service,
asyncpg) and the CPU of the PostgreSQL backend serving the connection (from /proc), medians
of the rounds, and the ratio one-statement / two-trip measured in the same run. Sequential
and without HTTP, so it shows what the path itself costs, not the server's throughput.
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

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import asyncpg
from support import ledger_fixtures as fx

from api.runtime.embedded_pg import EmbeddedPostgres
from migrations.runner import migrate
from wallet.kernel.hashing import Hasher
from wallet.kernel.idempotency_repo import IdemKey
from wallet.ledger import earn_fast, till

TIERS = [{"name": "blue", "min_points_12m": 0, "multiplier_milli": 1000},
         {"name": "gold", "min_points_12m": 20_000, "multiplier_milli": 1500}]
TICK = os.sysconf("SC_CLK_TCK")


def _cpu_s(pid: int) -> float:
    """utime + stime of a process, in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


async def _block(pool: asyncpg.Pool, backend: int, caller: till.Caller, store: uuid.UUID,
                 members: list[fx.Member], n: int, cache: earn_fast.RulesCache | None,
                 rng: random.Random) -> tuple[float, float, float]:
    """(wall µs, client CPU µs, backend CPU µs) per purchase of one block."""
    hasher = Hasher(memory_kib=8, time_cost=1)
    policy = till.PinPolicy(max_attempts=5, lock_s=900)
    wall, cpu, pg = time.perf_counter(), time.process_time(), _cpu_s(backend)
    for _ in range(n):
        receipt = uuid.uuid4().hex
        await till.purchase(
            pool, caller, store_id=store, card=rng.choice(members).card_number,
            receipt_id=receipt, amount=rng.randint(100, 20_000), currency="EUR",
            idem=IdemKey(scope=str(caller.account_id), key=receipt,
                         request_hash=receipt.encode()),
            hasher=hasher, pin_policy=policy, rules_cache=cache)
    return ((time.perf_counter() - wall) / n * 1e6, (time.process_time() - cpu) / n * 1e6,
            (_cpu_s(backend) - pg) / n * 1e6)


async def main(purchases: int, rounds: int) -> None:
    with EmbeddedPostgres(fsync=True) as pg:
        await migrate(pg.dsn)
        conn = await asyncpg.connect(pg.dsn)
        pid = await fx.program(conn, tiers=TIERS)
        store = await fx.store(conn, pid)
        members = [await fx.member(conn, pid) for _ in range(200)]
        pool = await asyncpg.create_pool(pg.dsn, min_size=1, max_size=1)
        async with pool.acquire() as c:
            backend = c.get_server_pid()
        caller = till.Caller(account_id=uuid.uuid4(), program_id=pid)
        rng = random.Random(1)
        paths = {"one statement": earn_fast.RulesCache(), "two trips": None}
        for cache in paths.values():  # warm up: prepared statements, the rules cache
            await _block(pool, backend, caller, store, members, 100, cache, rng)
        got: dict[str, list[tuple[float, float, float]]] = {name: [] for name in paths}
        for _ in range(rounds):
            for name, cache in paths.items():
                got[name].append(await _block(pool, backend, caller, store, members,
                                              purchases, cache, rng))
        medians = {name: [statistics.median(r[i] for r in rows) for i in range(3)]
                   for name, rows in got.items()}
        print(f"{purchases} earn-only purchases x {rounds} rounds per path, sequential, "
              f"fsync on; load average {os.getloadavg()[0]:.1f}")
        print(f"{'path':<14} {'wall µs':>9} {'client CPU µs':>14} {'PostgreSQL CPU µs':>18}")
        for name, (wall, cpu, pgcpu) in medians.items():
            print(f"{name:<14} {wall:>9.0f} {cpu:>14.0f} {pgcpu:>18.0f}")
        one, two = medians["one statement"], medians["two trips"]
        print("ratio one/two: " + ", ".join(
            f"{label} {a / b:.2f}" for label, a, b in zip(
                ("wall", "client CPU", "PostgreSQL CPU"), one, two, strict=True)))
        print(json.dumps({"rounds": {k: v for k, v in got.items()}, "medians": medians}))
        await pool.close()
        await conn.close()


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--purchases", type=int, default=1000)
    p.add_argument("--rounds", type=int, default=5)
    a = p.parse_args()
    asyncio.run(main(a.purchases, a.rounds))
