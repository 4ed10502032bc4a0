"""Concurrent tills against a real server process (uvicorn, two workers): hundreds of
purchases, redemptions and stored-value spends on a few cards, some sent twice at once with
the same Idempotency-Key. Balances must come out exact and every purchase counted once.

The in-thread test client cannot show this (one event loop, one pool); here requests race
across processes and connections, as tills do."""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from support import ledger_fixtures as fx
from support import till_retry
from support.realserver import running_server

from api.auth.keys import load_or_create
from api.auth.tokens import TokenService
from api.config import Settings
from wallet.kernel.hashing import Hasher

pytestmark = pytest.mark.slow
PIN = "24680"


@pytest.fixture
def server(db_url: str, keys_file: Path, tmp_path: Path) -> Iterator[str]:
    """A uvicorn process with two workers serving the app on the test database."""
    with running_server(db_url, keys_file, tmp_path, workers=2) as base:
        yield base


async def test_concurrent_tills_count_each_purchase_once_and_balances_come_out_exact(
        server: str, conn: asyncpg.Connection, keys_file: Path) -> None:
    settings = Settings()
    tokens = TokenService(load_or_create(keys_file), issuer=settings.jwt_issuer,
                          access_ttl_s=600, refresh_ttl_s=600, card_ttl_s=600)
    pid = await fx.program(conn)  # 1 point per 1.00, no tiers: order does not matter
    sid = await fx.store(conn, pid)
    pin_hash = Hasher(memory_kib=8, time_cost=1).hash(PIN)
    members = [await fx.member(conn, pid, pin_hash=pin_hash) for _ in range(4)]
    for m in members:
        await fx.credit(conn, m, points=5_000, stored_value=100_000)
    staff = tokens.mint_access(sub=uuid.uuid4(), role="staff", program_id=pid, store_ids=[sid])
    rng = random.Random(7)

    requests: list[tuple[str, dict[str, Any], fx.Member]] = []
    for i in range(300):
        m = rng.choice(members)
        body: dict[str, Any] = {"store_id": str(sid), "card_number": m.card_number,
                                "receipt_id": f"r{i}", "amount": rng.randint(100, 5000),
                                "currency": "EUR"}
        kind = i % 3
        if kind == 1:
            body["redeem"] = {"points": rng.randint(1, 20), "pin": PIN}
        elif kind == 2:
            body["stored_value"] = {"amount": rng.randint(1, body["amount"]), "pin": PIN}
        requests.append((f"key-{i}", body, m))
    sent = [*requests, *rng.sample(requests, 60)]  # 60 retried with the same key
    rng.shuffle(sent)

    headers = {"Authorization": f"Bearer {staff}"}
    limits = httpx.Limits(max_connections=64)
    async with httpx.AsyncClient(base_url=server, headers=headers, limits=limits,
                                 timeout=30.0) as client:
        async def one(key: str, body: dict[str, Any]) -> tuple[str, int, Any]:
            # Right PINs racing on a card may meet the provisional lock of the one taking
            # the last place: 409 "in progress", retried with the same key as a till does.
            r, _ = await till_retry.post_retrying(client, "/v1/pos/purchases", body, key)
            return key, r.status_code, r.json()

        results = await asyncio.gather(*(one(k, b) for k, b, _ in sent))
        reused = await client.post("/v1/pos/purchases", json={**requests[0][1], "amount": 1},
                                   headers={"Idempotency-Key": requests[0][0]})

    assert reused.status_code == 409
    assert reused.json()["type"] == "/problems/idempotency-key-reused"
    assert all(status == 201 for _, status, _ in results), [
        r for r in results if r[1] != 201][:3]
    by_key: dict[str, set[str]] = {}
    for key, _, body in results:
        by_key.setdefault(key, set()).add(body["transaction_id"])
    assert all(len(ids) == 1 for ids in by_key.values())  # a retry replays, never re-counts
    assert await conn.fetchval("SELECT count(*) FROM transactions WHERE store_id = $1",
                               sid) == len(requests)

    for m in members:
        mine = [b for _, b, owner in requests if owner is m]
        earned = sum(b["amount"] // 100 for b in mine)
        redeemed = sum(b.get("redeem", {}).get("points", 0) for b in mine)
        spent = sum(b.get("stored_value", {}).get("amount", 0) for b in mine)
        snap = await fx.snapshot(conn, m)
        assert (snap.points, snap.stored_value) == (5_000 + earned - redeemed, 100_000 - spent)
        assert await fx.ledger_sums(conn, m.account_id) == (snap.points, snap.stored_value,
                                                            snap.points)


async def test_one_key_sent_to_two_routes_at_once_runs_one_of_them(
        server: str, conn: asyncpg.Connection, keys_file: Path) -> None:
    """Keys are scoped per caller across routes (issue 14, bug 6): a purchase and a top-up
    sent at the same moment with one key, on two workers, run exactly one; the other is a
    409, whichever wins."""
    settings = Settings()
    tokens = TokenService(load_or_create(keys_file), issuer=settings.jwt_issuer,
                          access_ttl_s=600, refresh_ttl_s=600, card_ttl_s=600)
    pid = await fx.program(conn)
    sid = await fx.store(conn, pid)
    members = [await fx.member(conn, pid) for _ in range(20)]
    staff = tokens.mint_access(sub=uuid.uuid4(), role="staff", program_id=pid, store_ids=[sid])
    async with httpx.AsyncClient(base_url=server, timeout=30.0,
                                 headers={"Authorization": f"Bearer {staff}"}) as client:
        async def pair(n: int, m: fx.Member) -> list[int]:
            key = {"Idempotency-Key": f"both-{n}"}
            card = {"store_id": str(sid), "card_number": m.card_number, "currency": "EUR"}
            answers = await asyncio.gather(
                client.post("/v1/pos/purchases", headers=key,
                            json={**card, "receipt_id": f"r{n}", "amount": 1000}),
                client.post("/v1/pos/stored-value/top-ups", headers=key,
                            json={**card, "amount": 5000}))
            return sorted(r.status_code for r in answers)

        statuses = await asyncio.gather(*(pair(n, m) for n, m in enumerate(members)))
    assert all(s == [201, 409] for s in statuses), statuses
    for m in members:
        snap = await fx.snapshot(conn, m)
        assert snap.transactions == 1
        assert (snap.points, snap.stored_value) in ((10, 0), (0, 5000))
