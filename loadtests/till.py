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

The load generator is a minimal HTTP/1.1 keep-alive client over asyncio streams, not httpx or
aiohttp: it shares the machine's two cores with the server and PostgreSQL, and httpx spends
about half a millisecond of CPU per request, which would measure the client, not the server.
Argon2 for PINs uses cheap parameters here (8 KiB, t=1) as the tests do: with production
parameters each stored-value payment costs an extra ~20-40 ms of one core by design.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg

from api.auth import TokenService
from api.config import Settings
from api.embedded_pg import EmbeddedPostgres
from api.keys import load_or_create
from migrations.runner import migrate
from wallet import ledger, rules
from wallet.hashing import Hasher

PIN = "13579"
HOT_CARDS = 5
ROOT = Path(__file__).resolve().parents[1]


# --- database ----------------------------------------------------------------------------------


@contextlib.contextmanager
def database() -> Iterator[str]:
    if url := os.environ.get("DATABASE_URL"):
        yield url
        return
    with EmbeddedPostgres(fsync=True) as pg:
        yield pg.dsn


class Card:
    def __init__(self, account_id: uuid.UUID, number: str) -> None:
        self.account_id, self.number = account_id, number


async def seed(dsn: str, members: int) -> tuple[uuid.UUID, uuid.UUID, list[Card]]:
    await migrate(dsn)
    conn = await asyncpg.connect(dsn)
    try:
        pid, sid = uuid.uuid4(), uuid.uuid4()
        tiers = [{"name": "blue", "min_points_12m": 0, "multiplier_milli": 1000},
                 {"name": "gold", "min_points_12m": 20_000, "multiplier_milli": 1500}]
        await conn.execute(
            "INSERT INTO programs (id, name, currency, timezone, earn_points, earn_per_amount,"
            " points_expiry_days, tiers, stored_value) VALUES ($1, 'Load', 'EUR',"
            " 'Europe/Paris', 1, 100, 365, $2::jsonb, true)", pid, json.dumps(tiers))
        await conn.execute(
            "INSERT INTO stores (id, program_id, code, name, zone) VALUES ($1, $2, 'L1',"
            " 'Load store', $3::jsonb)", sid, pid,
            json.dumps({"type": "Circle", "center": [2.35, 48.85], "radius_m": 100}))
        pin_hash = Hasher(memory_kib=8, time_cost=1).hash(PIN)
        cards: list[Card] = []
        rows_w, rows_m, rows_c = [], [], []
        for i in range(members):
            account, member, card = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
            number = f"9{i:015d}"
            rows_w.append((account, pid))
            rows_m.append((member, pid, f"m{i}@load.test", account, pin_hash))
            rows_c.append((card, member, pid, number))
            cards.append(Card(account, number))
        await conn.executemany("INSERT INTO wallet_accounts (id, program_id) VALUES ($1, $2)",
                               rows_w)
        await conn.executemany(
            "INSERT INTO members (id, program_id, email, password_hash, first_name,"
            " wallet_account_id, pin_hash) VALUES ($1, $2, $3, 'x', 'Load', $4, $5)", rows_m)
        await conn.executemany(
            "INSERT INTO cards (id, member_id, program_id, number) VALUES ($1, $2, $3, $4)",
            rows_c)
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


# --- server ------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def server(dsn: str, keys: Path, workers: int, data_dir: Path) -> Iterator[int]:
    port = _free_port()
    env = {**os.environ, "DATABASE_URL": dsn, "LOYALTY_JWT_KEYS_FILE": str(keys),
           "LOYALTY_PASSWORD_MEMORY_KIB": "8", "LOYALTY_PASSWORD_TIME_COST": "1",
           "LOYALTY_JOBS_INTERVAL_S": "0", "LOYALTY_DATA_DIR": str(data_dir),
           "LOYALTY_DB_POOL_MAX": "16"}
    log = (data_dir / f"server-{workers}.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "api.app:create_app", "--factory", "--host",
         "127.0.0.1", "--port", str(port), "--workers", str(workers), "--log-level",
         "warning", "--no-access-log"], env=env, cwd=ROOT, stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 60
        while True:  # bounded readiness poll
            if proc.poll() is not None:
                raise RuntimeError(f"server exited, see {log.name}")
            with contextlib.suppress(OSError):
                url = f"http://127.0.0.1:{port}/ready"
                with urllib.request.urlopen(url, timeout=1) as r:
                    if r.status == 200:
                        break
            if time.monotonic() > deadline:
                raise RuntimeError("server not ready within 60 s")
            time.sleep(0.1)
        yield port
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


# --- a minimal keep-alive HTTP/1.1 client ------------------------------------------------------


class Http:
    def __init__(self, port: int) -> None:
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(self, method: str, path: str, headers: dict[str, str],
                      body: bytes = b"") -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        assert self.reader is not None
        head = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1",
                f"Content-Length: {len(body)}"]
        head += [f"{k}: {v}" for k, v in headers.items()]
        self.writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + body)
        status_line = await self.reader.readline()
        status = int(status_line.split()[1])
        length = 0
        while (line := await self.reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.partition(b":")
            if name.lower() == b"content-length":
                length = int(value)
        return status, await self.reader.readexactly(length)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


# --- the workload ------------------------------------------------------------------------------


class Stats:
    def __init__(self) -> None:
        self.latencies: list[float] = []
        self.statuses: dict[int, int] = {}
        self.new = 0
        self.replays = 0
        self.sent: dict[str, dict[str, Any]] = {}  # key -> body
        self.answers: dict[str, set[str]] = {}  # key -> transaction ids answered


def _pct(xs: list[float], p: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, int(p * len(s)))] * 1000 if s else float("nan")


async def drive(port: int, token: str, store_id: uuid.UUID, cards: list[Card], *,
                duration: float, concurrency: int, rng: random.Random, tag: str) -> Stats:
    stats = Stats()
    hot, cold = cards[:HOT_CARDS], cards[HOT_CARDS:]
    done_keys: list[str] = []
    counter = 0
    deadline = time.perf_counter() + duration
    auth = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}

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
                    "POST", "/v1/pos/purchases", {**auth, "Idempotency-Key": key}, payload)
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


async def baseline(port: int, duration: float, concurrency: int) -> float:
    count = 0
    deadline = time.perf_counter() + duration

    async def user() -> None:
        nonlocal count
        http = Http(port)
        try:
            while time.perf_counter() < deadline:
                await http.request("GET", "/health", {})
                count += 1
        finally:
            http.close()

    await asyncio.gather(*(user() for _ in range(concurrency)))
    return count / duration


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
    with tempfile.TemporaryDirectory(prefix="till-load-") as tmp, database() as dsn:
        data_dir = Path(tmp)
        keys = data_dir / "jwt-keys.json"
        load_or_create(keys)
        t0 = time.perf_counter()
        program_id, store_id, cards = await seed(dsn, args.members)
        where = "DATABASE_URL" if "DATABASE_URL" in os.environ else "embedded, fsync on"
        print(f"seeded {args.members} members in {time.perf_counter() - t0:.1f} s "
              f"(PostgreSQL: {where})")
        s = Settings()
        tokens = TokenService(load_or_create(keys), issuer=s.jwt_issuer, access_ttl_s=3600,
                              refresh_ttl_s=3600, card_ttl_s=60)
        token = tokens.mint_access(sub=uuid.uuid4(), role="staff", program_id=program_id,
                                   store_ids=[store_id])
        runs: list[Stats] = []
        print(f"{'workers':>7} {'purchases/s':>12} {'requests/s':>11} {'p50 ms':>7} "
              f"{'p99 ms':>7} {'replays':>8} {'non-201':>8} {'/health req/s (baseline)':>25}")
        for workers in args.workers:
            with server(dsn, keys, workers, data_dir) as port:
                base = await baseline(port, args.baseline_duration, args.concurrency)
                # a short warm-up (prepared statements, pools), not counted
                runs.append(await drive(port, token, store_id, cards, duration=1.0,
                                        concurrency=args.concurrency, rng=rng,
                                        tag=f"warm{workers}"))
                stats = await drive(port, token, store_id, cards, duration=args.duration,
                                    concurrency=args.concurrency, rng=rng, tag=f"w{workers}")
            runs.append(stats)
            total = sum(stats.statuses.values())
            bad = total - stats.statuses.get(201, 0)
            print(f"{workers:>7} {stats.new / args.duration:>12.0f} "
                  f"{total / args.duration:>11.0f} {_pct(stats.latencies, 0.50):>7.1f} "
                  f"{_pct(stats.latencies, 0.99):>7.1f} {stats.replays:>8} {bad:>8} "
                  f"{base:>25.0f}", flush=True)
        problems = await verify(dsn, program_id, runs)
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
    return asyncio.run(main_async(p.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
