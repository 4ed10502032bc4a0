"""What the pass-update outbox costs a till purchase (not a pass/fail test).

    .venv/bin/python tests/bench/bench_pass_outbox.py [--purchases 2000] [--rounds 5]

On a throwaway embedded PostgreSQL: two members of one program buy in alternating blocks
through the till service (`wallet.ledger.till.purchase`, one connection, sequential); one of
them has an Apple and a Google pass with two registered devices, so each of its purchases
also appends a `pass_changes` row (the trigger on `wallet_accounts`), the other has none. The
baseline is the member without passes, measured in the same run; the figure is the ratio
(medians of the rounds). Then one delivery round publishes the queued changes without
senders, and its duration is printed.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import asyncpg
from support import ledger_fixtures as fx

from api.runtime.embedded_pg import EmbeddedPostgres
from migrations.runner import migrate
from wallet.kernel.hashing import Hasher
from wallet.kernel.idempotency_repo import IdemKey
from wallet.ledger import till
from wallet.passes import delivery, passes_repo


async def _buy(pool: asyncpg.Pool, caller: till.Caller, store: uuid.UUID, m: fx.Member,
               n: int, hasher: Hasher) -> float:
    start = time.perf_counter()
    for _ in range(n):
        receipt = uuid.uuid4().hex
        await till.purchase(
            pool, caller, store_id=store, card=m.card_number, receipt_id=receipt, amount=1234,
            currency="EUR", idem=IdemKey(scope=f"{caller.account_id}:bench", key=receipt,
                                         request_hash=receipt.encode()),
            hasher=hasher, pin_policy=till.PinPolicy(max_attempts=5, lock_s=900))
    return (time.perf_counter() - start) / n * 1e6


async def main(purchases: int, rounds: int) -> None:
    with EmbeddedPostgres(fsync=False) as pg:
        await migrate(pg.dsn)
        conn = await asyncpg.connect(pg.dsn)
        pid = await fx.program(conn)
        store = await fx.store(conn, pid)
        plain, with_passes = await fx.member(conn, pid), await fx.member(conn, pid)
        for kind in ("apple", "google"):
            await passes_repo.create(conn, with_passes.id, kind, serial=uuid.uuid4().hex,
                                     auth_token="t" * 43, show_name=False)
        pass_id = await conn.fetchval("SELECT id FROM passes WHERE kind = 'apple'")
        for device in ("phone", "watch"):
            await passes_repo.register(conn, device, pass_id, "ab" * 32)
        pool = await asyncpg.create_pool(pg.dsn, min_size=2, max_size=2)
        caller = till.Caller(account_id=uuid.uuid4(), program_id=pid)
        hasher = Hasher(memory_kib=8, time_cost=1)
        block = purchases // rounds
        await _buy(pool, caller, store, plain, 50, hasher)  # warm-up
        await _buy(pool, caller, store, with_passes, 50, hasher)
        base, passes = [], []
        for _ in range(rounds):
            base.append(await _buy(pool, caller, store, plain, block, hasher))
            passes.append(await _buy(pool, caller, store, with_passes, block, hasher))
        queued = await conn.fetchval("SELECT count(*) FROM pass_changes")
        start = time.perf_counter()
        report = await delivery.run_round(pool, apns=None, google=None,
                                          cfg=delivery.DeliveryConfig(batch=100_000),
                                          now=datetime.now(UTC))
        publish_ms = (time.perf_counter() - start) * 1e3
        await pool.close()
        await conn.close()
    b, p = statistics.median(base), statistics.median(passes)
    print(f"till purchase, member without passes (baseline): {b:8.0f} µs  (median of {rounds})")
    print(f"till purchase, member with 2 passes, 2 devices:  {p:8.0f} µs  ratio {p / b:.3f}")
    print(f"one delivery round published {queued} queued changes into {report.published} "
          f"update tags in {publish_ms:.0f} ms")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--purchases", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    asyncio.run(main(args.purchases, args.rounds))
