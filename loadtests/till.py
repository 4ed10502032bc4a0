"""Till purchases under load (PERFORMANCE.md target 3), open loop, against a real server.

    python -m loadtests.till [--start 200] [--duration 6] [--workers 1 2] [--members 2000]
                             [--mix till|earn]

Starts a throwaway embedded PostgreSQL with fsync on and pg_stat_statements (or uses
DATABASE_URL), migrates it, seeds a program (with tiers and stored value), a store and N
members with cards, points and stored value, then starts `uvicorn api.app:create_app
--factory` with 1 and then 2 workers and offers `POST /v1/pos/purchases` at fixed arrival
rates (`loadtests/openloop.py`: Poisson arrivals, latency from the intended send time),
stepping the rate up until p99 exceeds 50 ms or a request fails: earn-only purchases, 20%
with a points redemption (with the PIN: the card is given by number), 10% paying part with
stored value and the PIN; 10% of requests
retry an earlier request with the same Idempotency-Key and body; 10% of traffic goes to
5 hot cards. A 409 pin-check-in-progress (another PIN check on the card in flight) is retried
with the same key after its Retry-After, as a till does; its latency includes the wait.
`--mix earn` sends earn-only purchases only (and the retries): the statements per request of
the one-statement path, apart from the others'.

Printed per step: offered and answered requests/s, purchases/s, p50/p99/max latency, CPU ms
per request of the server, PostgreSQL and the generator, PostgreSQL statements per request;
per worker count the highest rate that held the target, with the most frequent statements;
the `GET /health` baseline of the same run goes to the results file. After each worker count
it checks every wallet: balance = sum of its ledger entries = sum of its open lots, one
transaction per successful Idempotency-Key (none twice, none lost), every replay answered
with the first response's transaction id. Results and plot: `loadtests/report.py`.

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
    LockWaits,
    Statements,
    connect_migrated,
    database,
    header_lines,
    insert_members,
    insert_program,
    new_keys,
    run,
    server,
    token_service,
)
from loadtests.openloop import MakeRequest, Plan, Run, Send, Step, Target, series
from loadtests.report import save
from wallet.kernel.hashing import Hasher
from wallet.ledger import account_repo, rules
from wallet.ledger import ledger_repo as ledger

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
        # Every card opens with a purse far above the default ceiling (1,500.00), so a long
        # run never runs dry: the program's ceiling is raised to match.
        await conn.execute("UPDATE programs SET max_stored_value_balance = $2 WHERE id = $1",
                           pid, 10**12)
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
                locked = await account_repo.lock_account(conn, card_.account_id)
                effect = rules.adjust(locked.balances, points=2_000, stored_value=10**9,
                                      now=now, lot_id=uuid.uuid4(), expiry_days=365)
                await ledger.apply(conn, ledger.Write(
                    account_id=card_.account_id, program_id=pid, effect=effect, at=now))
        return pid, sid, cards
    finally:
        await conn.close()


# --- the workload ------------------------------------------------------------------------------


class Stats:
    """Every request sent and every answer, across warm-up and steps (for the checks)."""

    def __init__(self) -> None:
        self.statuses: dict[int, int] = {}
        self.new = 0
        self.replays = 0
        self.sent: dict[str, dict[str, Any]] = {}  # key -> body
        self.answers: dict[str, set[str]] = {}  # key -> transaction ids answered
        self.done_keys: list[str] = []  # keys answered 201, which a till may retry
        self.pin_busy = 0  # 409 pin-check-in-progress answers, each retried


PIN_BUSY = b"/problems/pin-check-in-progress"
PIN_BUSY_RETRY_S = 1.0  # the problem's Retry-After
PIN_BUSY_TRIES = 30


def purchases(token: str, store_id: uuid.UUID, cards: list[Card], stats: Stats,
              rng: random.Random, *, earn_only: bool = False) -> MakeRequest:
    """The till workload: builds each request (a new purchase or a retry) when it is due;
    `earn_only`: no redemptions and no stored value (what one statement serves)."""
    hot, cold = cards[:HOT_CARDS], cards[HOT_CARDS:]
    counter = 0
    auth = header_lines({"Authorization": f"Bearer {token}",
                         "Content-Type": "application/json"})

    def next_request() -> tuple[str, dict[str, Any]]:
        nonlocal counter
        if stats.done_keys and rng.random() < 0.10:  # a till retrying with the same key, body
            key = rng.choice(stats.done_keys)
            return key, stats.sent[key]
        counter += 1
        card = rng.choice(hot) if rng.random() < 0.10 else rng.choice(cold)
        amount = rng.randint(100, 20_000)
        key = f"p{counter}"
        body: dict[str, Any] = {"store_id": str(store_id), "card_number": card.number,
                                "receipt_id": key, "amount": amount, "currency": "EUR"}
        roll = 1.0 if earn_only else rng.random()
        if roll < 0.20:
            body["redeem"] = {"points": rng.randint(1, 50), "pin": PIN}  # by card number
        elif roll < 0.30:
            body["stored_value"] = {"amount": rng.randint(1, amount), "pin": PIN}
        stats.sent[key] = body
        return key, body

    def make() -> Send:
        key, body = next_request()
        headers = auth + b"Idempotency-Key: %s\r\n" % key.encode()
        payload = json.dumps(body).encode()

        async def send(http: Http) -> str | None:
            for _ in range(PIN_BUSY_TRIES):
                status, raw = await http.request("POST", "/v1/pos/purchases", headers, payload)
                stats.statuses[status] = stats.statuses.get(status, 0) + 1
                if status != 409 or PIN_BUSY not in raw:
                    break
                # another till's PIN check on this card is in flight (a hot card): retry
                # with the same key after the answer's Retry-After (1 s), as a till does; the
                # latency, from the intended send time, includes the wait
                stats.pin_busy += 1
                await asyncio.sleep(PIN_BUSY_RETRY_S)
            if status != 201:
                return f"HTTP {status}"
            ids = stats.answers.setdefault(key, set())
            if ids:
                stats.replays += 1
            else:
                stats.new += 1
                stats.done_keys.append(key)
            ids.add(json.loads(raw)["transaction_id"])
            return None

        return send

    return make


# --- which way the purchases went --------------------------------------------------------------

ONE_STATEMENT = "WITH stored AS ("  # wallet/ledger/earn_repo.EARN_BY_*: an earn-only purchase
READ = "SELECT c.id AS card_id"  # account_repo.READ_STATE_BY_*: the two-trip path's read
PIN_READ = "WITH st AS ("  # pin_claim_repo.CLAIM_BY_*: a PIN purchase's read, its count
# pin_claim_repo.PIN_VERIFIED: a right PIN's restart on its own, not carried by the write (an
# earlier wrong PIN or another check on the card in flight). Its 0 is normalised to a
# parameter only when pg_stat_statements first sees it parsed, not when a statement prepared
# before the step's reset runs again.
PIN_RESTART = ("UPDATE members SET pin_failures = 0,", "UPDATE members SET pin_failures = $")


def paths(s: Step) -> None:
    """Per request, from pg_stat_statements: the share answered by the one statement (an
    earn-only purchase or its replay), the two-trip reads (an earn-only purchase that fell
    back; in the till mix also a PIN purchase's second attempt after a lost race), and the
    PIN purchases' read-and-count statements and the restarts of the count made on their
    own (the write carries the rest)."""
    def per_request(prefix: str | tuple[str, ...]) -> float:
        return float(sum(t["calls_per_request"] for t in s.top_statements
                         if t["query"].startswith(prefix)))

    if s.statements is None:  # the warm-up, or no pg_stat_statements
        return
    reads = per_request(READ)
    s.extra["one_statement_pct"] = 100 * max(0.0, per_request(ONE_STATEMENT) - reads)
    s.extra["two_trip_reads_pct"] = 100 * reads
    s.extra["pin_reads_pct"] = 100 * per_request(PIN_READ)
    s.extra["pin_restarts_pct"] = 100 * per_request(PIN_RESTART)
    print(f"  purchases: {s.extra['one_statement_pct']:.1f}% in one statement, "
          f"{s.extra['two_trip_reads_pct']:.1f}% read by the two-trip path, "
          f"{s.extra['pin_reads_pct']:.1f}% with a PIN (read and count, write), "
          f"{s.extra['pin_restarts_pct']:.1f}% with the PIN's restart on its own", flush=True)


# --- checks ------------------------------------------------------------------------------------

CHECK = """
SELECT w.id, w.points_balance, w.stored_value_balance,
       coalesce((SELECT sum(points) FROM ledger_entries e WHERE e.wallet_account_id = w.id), 0),
       coalesce((SELECT sum(stored_value) FROM ledger_entries e
                  WHERE e.wallet_account_id = w.id), 0),
       coalesce((SELECT sum(remaining) FROM points_lots l WHERE l.wallet_account_id = w.id), 0)
FROM wallet_accounts w WHERE w.program_id = $1
"""


async def verify(dsn: str, program_id: uuid.UUID, stats: Stats) -> list[str]:
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
    target = Target(p99_ms=args.p99_ms, rate=1000, unit="purchases/s")
    plan = Plan(start=args.start, duration=args.duration, max_steps=args.max_steps)
    with tempfile.TemporaryDirectory(prefix="till-load-") as tmp, database() as db:
        data_dir = Path(tmp)
        keys = new_keys(data_dir)
        t0 = time.perf_counter()
        program_id, store_id, cards = await seed(db.dsn, args.members)
        print(f"seeded {args.members} members in {time.perf_counter() - t0:.1f} s "
              f"(PostgreSQL: {db.where}); open loop, Poisson arrivals from {plan.start:g}/s, "
              f"{plan.duration:g} s per step, p99 target {target.p99_ms:g} ms")
        token = token_service(keys).mint_access(
            sub=uuid.uuid4(), role="staff", program_id=program_id, store_ids=[store_id])
        stats = Stats()
        make = purchases(token, store_id, cards, stats, rng, earn_only=args.mix == "earn")
        statements = await Statements.connect(db.dsn)
        locks = await LockWaits.connect(db.dsn)
        runs: list[Run] = []
        problems: list[str] = []
        try:
            for i, workers in enumerate(args.workers):
                with server(db.dsn, keys, workers, data_dir) as srv:
                    new_before = stats.new

                    def on_step(s: Step) -> None:
                        nonlocal new_before
                        s.extra["purchases_per_s"] = (stats.new - new_before) / s.seconds
                        new_before = stats.new
                        paths(s)

                    runs.append(await series(
                        srv.port, make, workers=workers, plan=plan, target=target, rng=rng,
                        cpu=CpuMeter(server=srv.pid, postgres=db.pid, client=os.getpid()),
                        statements=statements, locks=locks, on_step=on_step, header=i == 0))
                    if any(code >= 500 for code in stats.statuses):
                        print(f"server errors ({workers} workers):\n{srv.errors()}")
                problems = await verify(db.dsn, program_id, stats)  # after each worker count
                if problems:
                    break
        finally:
            await statements.close()
            await locks.close()
        print(f"answers: {dict(sorted(stats.statuses.items()))}, {stats.new} purchases, "
              f"{stats.replays} replays, {stats.pin_busy} PIN checks in progress retried")
        save("till", target, runs, settings=vars(args), database=db.where, problems=problems)
        if problems:
            print("LEDGER CHECK FAILED:\n  " + "\n  ".join(problems[:20]))
            return 1
        print("ledger check: every balance = sum of its entries = sum of its open lots; "
              "one transaction per successful key, none lost, none twice")
    return 0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--start", type=float, default=200.0, help="first offered rate, requests/s")
    p.add_argument("--duration", type=float, default=6.0, help="seconds per step")
    p.add_argument("--max-steps", type=int, default=8, help="steps per worker count")
    p.add_argument("--p99-ms", type=float, default=50.0, help="the p99 target")
    p.add_argument("--members", type=int, default=2000)
    p.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--mix", choices=["till", "earn"], default="till",
                   help="till: the mix above; earn: earn-only purchases (and 10%% retries)")
    return run(main_async(p.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
