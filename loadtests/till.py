"""Till purchases under load (PERFORMANCE.md target 3), against a real server.

    python -m loadtests.till [--duration 20] [--concurrency 32] [--members 2000]

Starts a throwaway embedded PostgreSQL with fsync on (or uses DATABASE_URL), migrates it,
seeds a program (with tiers and stored value), a store and N members with cards, points and
stored value, then starts `uvicorn api.app:create_app --factory` with 1 and then 2 workers and
drives `POST /v1/pos/purchases` for a bounded time: earn-only purchases, 20% with a points
redemption, 10% paying part with stored value and the PIN; 10% of requests retry an earlier
request with the same Idempotency-Key and body; 10% of traffic goes to 5 hot cards. Printed
per worker count: purchases/s (new ones), requests/s, p50 and p99 latency, and, as the
baseline measured in the same run, `GET /health` requests/s with the same generator.
Afterwards it checks every wallet: balance = sum of its ledger entries = sum of its open lots,
one transaction per successful Idempotency-Key (none twice, none lost), every replay answered
with the first response's transaction id.

Also printed: the cores the server, PostgreSQL and the load generator used during the run.
Server start, the HTTP client and the figures come from `loadtests/common.py`.
Argon2 for PINs uses cheap parameters here (8 KiB, t=1) as the tests do: with production
parameters each stored-value payment costs an extra ~20-40 ms of one core by design.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg

from loadtests.common import (
    CpuMeter,
    Http,
    connect_migrated,
    database,
    header_lines,
    health_baseline,
    insert_members,
    insert_program,
    new_keys,
    pct_ms,
    print_row,
    run,
    server,
    token_service,
)
from wallet import ledger, rules
from wallet.hashing import Hasher

PIN = "13579"
HOT_CARDS = 5


class Card:
    def __init__(self, account_id: uuid.UUID, number: str) -> None:
        self.account_id, self.number = account_id, number


async def seed(dsn: str, members: int) -> tuple[uuid.UUID, uuid.UUID, list[Card]]:
    conn = await connect_migrated(dsn)
    try:
        tiers = [{"name": "blue", "min_points_12m": 0, "multiplier_milli": 1000},
                 {"name": "gold", "min_points_12m": 20_000, "multiplier_milli": 1500}]
        pid = await insert_program(conn, tiers_json=json.dumps(tiers), stored_value=True)
        sid = uuid.uuid4()
        await conn.execute(
            "INSERT INTO stores (id, program_id, code, name, zone) VALUES ($1, $2, 'L1',"
            " 'Load store', $3::jsonb)", sid, pid,
            json.dumps({"type": "Circle", "center": [2.35, 48.85], "radius_m": 100}))
        pin_hash = Hasher(memory_kib=8, time_cost=1).hash(PIN)
        pairs = await insert_members(conn, pid, members, pin_hash=pin_hash)
        cards = [Card(account, f"9{i:015d}") for i, (_, account) in enumerate(pairs)]
        await conn.copy_records_to_table(
            "cards", columns=["id", "member_id", "program_id", "number"],
            records=[(uuid.uuid4(), member, pid, card.number)
                     for (member, _), card in zip(pairs, cards, strict=True)])
        now = datetime.now(UTC)
        for card_ in cards:  # opening credits, through the ledger so the chain holds
            async with conn.transaction():
                locked = await ledger.lock_account(conn, card_.account_id)
                effect = rules.adjust(locked.balances, points=2_000, stored_value=10**9,
                                      now=now, lot_id=uuid.uuid4(), expiry_days=365)
                await ledger.apply(conn, ledger.Write(
                    account_id=card_.account_id, program_id=pid, effect=effect, at=now))
        return pid, sid, cards
    finally:
        await conn.close()


# --- the workload ------------------------------------------------------------------------------


class Stats:
    def __init__(self) -> None:
        self.latencies: list[float] = []
        self.statuses: dict[int, int] = {}
        self.new = 0
        self.replays = 0
        self.sent: dict[str, dict[str, Any]] = {}  # key -> body
        self.answers: dict[str, set[str]] = {}  # key -> transaction ids answered


async def drive(port: int, token: str, store_id: uuid.UUID, cards: list[Card], *,
                duration: float, concurrency: int, rng: random.Random, tag: str) -> Stats:
    stats = Stats()
    hot, cold = cards[:HOT_CARDS], cards[HOT_CARDS:]
    done_keys: list[str] = []
    counter = 0
    deadline = time.perf_counter() + duration
    auth = header_lines({"Authorization": f"Bearer {token}",
                         "Content-Type": "application/json"})

    def next_request() -> tuple[str, dict[str, Any]]:
        nonlocal counter
        if done_keys and rng.random() < 0.10:  # a till retrying with the same key and body
            key = rng.choice(done_keys)
            return key, stats.sent[key]
        counter += 1
        card = rng.choice(hot) if rng.random() < 0.10 else rng.choice(cold)
        amount = rng.randint(100, 20_000)
        body: dict[str, Any] = {"store_id": str(store_id), "card_number": card.number,
                                "receipt_id": f"{tag}-{counter}", "amount": amount,
                                "currency": "EUR"}
        roll = rng.random()
        if roll < 0.20:
            body["redeem"] = {"points": rng.randint(1, 50)}
        elif roll < 0.30:
            body["stored_value"] = {"amount": rng.randint(1, amount), "pin": PIN}
        key = f"{tag}-{counter}"
        stats.sent[key] = body
        return key, body

    async def user() -> None:
        http = Http(port)
        try:
            while time.perf_counter() < deadline:
                key, body = next_request()
                payload = json.dumps(body).encode()
                t0 = time.perf_counter()
                status, raw = await http.request(
                    "POST", "/v1/pos/purchases", auth + b"Idempotency-Key: %s\r\n" % key.encode(),
                    payload)
                stats.latencies.append(time.perf_counter() - t0)
                stats.statuses[status] = stats.statuses.get(status, 0) + 1
                if status == 201:
                    tx = json.loads(raw)["transaction_id"]
                    ids = stats.answers.setdefault(key, set())
                    if ids:
                        stats.replays += 1
                    else:
                        stats.new += 1
                        done_keys.append(key)
                    ids.add(tx)
        finally:
            http.close()

    await asyncio.gather(*(user() for _ in range(concurrency)))
    return stats


# --- checks ------------------------------------------------------------------------------------

CHECK = """
SELECT w.id, w.points_balance, w.stored_value_balance,
       coalesce((SELECT sum(points) FROM ledger_entries e WHERE e.wallet_account_id = w.id), 0),
       coalesce((SELECT sum(stored_value) FROM ledger_entries e
                  WHERE e.wallet_account_id = w.id), 0),
       coalesce((SELECT sum(remaining) FROM points_lots l WHERE l.wallet_account_id = w.id), 0)
FROM wallet_accounts w WHERE w.program_id = $1
"""


async def verify(dsn: str, program_id: uuid.UUID, runs: list[Stats]) -> list[str]:
    problems: list[str] = []
    conn = await asyncpg.connect(dsn)
    try:
        for acct, points, value, e_points, e_value, lots in await conn.fetch(CHECK, program_id):
            if not (points == e_points == lots and value == e_value):
                problems.append(f"account {acct}: balances {points}/{value}, entries "
                                f"{e_points}/{e_value}, lots {lots}")
        recorded = {r["id"] for r in await conn.fetch(
            "SELECT id FROM transactions WHERE program_id = $1 AND kind = 'purchase'",
            program_id)}
        answered: set[uuid.UUID] = set()
        for stats in runs:
            for key, ids in stats.answers.items():
                if len(ids) != 1:
                    problems.append(f"key {key} answered with {len(ids)} transactions")
                answered |= {uuid.UUID(i) for i in ids}
        if answered != recorded:
            problems.append(f"{len(answered - recorded)} answered purchases missing, "
                            f"{len(recorded - answered)} recorded but never answered")
    finally:
        await conn.close()
    return problems


async def main_async(args: argparse.Namespace) -> int:
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory(prefix="till-load-") as tmp, database() as db:
        data_dir = Path(tmp)
        keys = new_keys(data_dir)
        t0 = time.perf_counter()
        program_id, store_id, cards = await seed(db.dsn, args.members)
        print(f"seeded {args.members} members in {time.perf_counter() - t0:.1f} s "
              f"(PostgreSQL: {db.where}); {args.concurrency} tills, {args.duration:.0f} s "
              "per worker count")
        token = token_service(keys).mint_access(
            sub=uuid.uuid4(), role="staff", program_id=program_id, store_ids=[store_id])
        runs: list[Stats] = []
        for i, workers in enumerate(args.workers):
            with server(db.dsn, keys, workers, data_dir) as srv:
                base = await health_baseline(srv.port, args.baseline_duration,
                                             args.concurrency)
                # a short warm-up (prepared statements, pools), not counted
                runs.append(await drive(srv.port, token, store_id, cards, duration=1.0,
                                        concurrency=args.concurrency, rng=rng,
                                        tag=f"warm{workers}"))
                cpu = CpuMeter(server=srv.pid, postgres=db.pid, client=os.getpid())
                cpu.start()
                t0 = time.perf_counter()
                stats = await drive(srv.port, token, store_id, cards, duration=args.duration,
                                    concurrency=args.concurrency, rng=rng, tag=f"w{workers}")
                elapsed = time.perf_counter() - t0
                cpu.stop()
            runs.append(stats)
            total = sum(stats.statuses.values())
            bad = total - stats.statuses.get(201, 0)
            print_row([
                ("workers", 7, f"{workers}"),
                ("purchases/s", 11, f"{stats.new / elapsed:.0f}"),
                ("requests/s", 10, f"{total / elapsed:.0f}"),
                ("p50 ms", 7, f"{pct_ms(stats.latencies, 0.50):.1f}"),
                ("p99 ms", 7, f"{pct_ms(stats.latencies, 0.99):.1f}"),
                ("replays", 7, f"{stats.replays}"),
                ("non-201", 7, f"{bad}"),
                ("/health req/s (baseline)", 24, f"{base:.0f}"),
                ("cores used (CPU ms per request)", 64, cpu.summary(total / elapsed)),
            ], header=i == 0)
        problems = await verify(db.dsn, program_id, runs)
        if problems:
            print("LEDGER CHECK FAILED:\n  " + "\n  ".join(problems[:20]))
            return 1
        print("ledger check: every balance = sum of its entries = sum of its open lots; "
              "one transaction per successful key, none lost, none twice")
    return 0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--duration", type=float, default=20.0, help="seconds per worker count")
    p.add_argument("--baseline-duration", type=float, default=3.0)
    p.add_argument("--concurrency", type=int, default=32, help="simultaneous tills")
    p.add_argument("--members", type=int, default=2000)
    p.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    p.add_argument("--seed", type=int, default=1)
    return run(main_async(p.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
