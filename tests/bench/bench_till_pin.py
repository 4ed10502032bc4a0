"""What a stored-value purchase with the PIN costs (not a pass/fail test).

    .venv/bin/python tests/bench/bench_till_pin.py [--purchases 600] [--rounds 5]

On a throwaway embedded PostgreSQL with fsync on: 100 members with a PIN and a full purse,
stored-value purchases with the right PIN through the till service
(`wallet.ledger.till.purchase`, one pooled connection, sequential, no HTTP, argon2 at the
tests' cheap parameters). Per purchase: the statements sent (BEGIN and COMMIT included),
wall time, this process's CPU and the PostgreSQL backend's CPU (from /proc), medians of the
rounds. It uses only what every version of the till has, so running it in a checkout of an
older commit (from that checkout's root) compares before and after.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path.cwd()))
sys.path.insert(0, str(Path.cwd() / "tests"))
import asyncpg
from support import ledger_fixtures as fx
from support.counting import Counting

from api.runtime.embedded_pg import EmbeddedPostgres
from loadtests.common import cpu_seconds
from migrations.runner import migrate
from wallet.kernel.db import keep_session
from wallet.kernel.hashing import Hasher
from wallet.kernel.idempotency_repo import IdemKey
from wallet.ledger import till

PIN = "13579"






async def main(purchases: int, rounds: int) -> None:
    with EmbeddedPostgres(fsync=True) as pg:
        await migrate(pg.dsn)
        conn = await asyncpg.connect(pg.dsn)
        pid = await fx.program(conn)
        await conn.execute("UPDATE programs SET max_stored_value_balance = 10000000000 "
                           "WHERE id = $1", pid)
        store = await fx.store(conn, pid)
        hasher = Hasher(memory_kib=8, time_cost=1)
        pin_hash = hasher.hash(PIN)
        members = [await fx.member(conn, pid, pin_hash=pin_hash) for _ in range(100)]
        for m in members:
            await fx.credit(conn, m, stored_value=10**7)
        pool = await asyncpg.create_pool(pg.dsn, min_size=1, max_size=1, reset=keep_session,
                                         connection_class=Counting)
        async with pool.acquire() as c:
            backend = c.get_server_pid()
        caller = till.Caller(account_id=uuid.uuid4(), program_id=pid)
        policy = till.PinPolicy(max_attempts=5, lock_s=900)
        rng = random.Random(1)

        async def block(n: int) -> tuple[float, float, float, float]:
            Counting.sent = 0
            wall, cpu, pgcpu = time.perf_counter(), time.process_time(), cpu_seconds([backend])
            for _ in range(n):
                receipt = uuid.uuid4().hex
                await till.purchase(
                    pool, caller, store_id=store, card=rng.choice(members).card_number,
                    receipt_id=receipt, amount=2_000, currency="EUR", stored_value=500,
                    pin=PIN, idem=IdemKey(scope="bench", key=receipt,
                                          request_hash=receipt.encode()),
                    hasher=hasher, pin_policy=policy)
            return (Counting.sent / n, (time.perf_counter() - wall) / n * 1e6,
                    (time.process_time() - cpu) / n * 1e6,
                    (cpu_seconds([backend]) - pgcpu) / n * 1e6)

        await block(100)  # warm up
        got = [await block(purchases) for _ in range(rounds)]
        med = [statistics.median(r[i] for r in got) for i in range(4)]
        await pool.close()
        await conn.close()
        print(f"{Path.cwd()}: {purchases} stored-value purchases with the PIN x {rounds} "
              f"rounds, sequential, fsync on; load average {os.getloadavg()[0]:.1f}")
        print(f"statements {med[0]:.2f}, wall {med[1]:.0f} µs, client CPU {med[2]:.0f} µs, "
              f"PostgreSQL CPU {med[3]:.0f} µs per purchase")


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--purchases", type=int, default=600)
    p.add_argument("--rounds", type=int, default=5)
    a = p.parse_args()
    asyncio.run(main(a.purchases, a.rounds))
