"""Claims racing for a scarce reward against a real server (uvicorn, two workers): 200 members
claim a reward with a stock of 10 at once, and a third of the requests are sent twice at
once with the same Idempotency-Key. Exactly 10 vouchers, exactly 10 debits, every balance
equal to the sum of its ledger entries, each key counted once. Then one member fires 8
claims with 8 keys at once at a reward limited to 2 per member: exactly 2 succeed.

The in-thread test client cannot show this (one event loop, one pool); here requests race
across processes and connections, as members' phones do."""

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
from support.realserver import running_server

from api.auth.keys import load_or_create
from api.auth.tokens import TokenService
from api.config import Settings

pytestmark = pytest.mark.slow
MEMBERS, STOCK, COST = 200, 10, 300


@pytest.fixture
def server(db_url: str, keys_file: Path, tmp_path: Path) -> Iterator[str]:
    with running_server(db_url, keys_file, tmp_path, workers=2) as base:
        yield base


async def test_parallel_claims_never_oversell_the_stock_nor_pass_a_members_limit(
        server: str, conn: asyncpg.Connection, keys_file: Path) -> None:
    settings = Settings()
    tokens = TokenService(load_or_create(keys_file), issuer=settings.jwt_issuer,
                          access_ttl_s=600, refresh_ttl_s=600, card_ttl_s=600)
    pid = await fx.program(conn)
    members = [await fx.member(conn, pid) for _ in range(MEMBERS)]
    for m in members:  # two lots each, so a claim touches one or two of them
        await fx.credit(conn, m, points=200, expiry_days=30)
        await fx.credit(conn, m, points=200, expiry_days=60)
    manager = tokens.mint_access(sub=uuid.uuid4(), role="manager", program_id=pid)
    rng = random.Random(15)

    async with httpx.AsyncClient(base_url=server, timeout=60.0,
                                 limits=httpx.Limits(max_connections=100)) as client:
        r = await client.post(f"/v1/programs/{pid}/rewards", headers={
            "Authorization": f"Bearer {manager}"}, json={
            "name": "Signed ball", "points_cost": COST, "kind": "voucher", "stock": STOCK,
            "voucher_valid_for_s": 3600})
        assert r.status_code == 201, r.text
        reward_id = r.json()["id"]
        requests = [(m, f"claim-{i}", tokens.mint_access(sub=m.id, role="member",
                                                         program_id=pid))
                    for i, m in enumerate(members)]
        sent = [*requests, *rng.sample(requests, MEMBERS // 3)]  # retried with the same key
        rng.shuffle(sent)

        async def claim(key: str, token: str) -> tuple[str, int, dict[str, Any]]:
            resp = await client.post(f"/v1/me/rewards/{reward_id}/claims", headers={
                "Authorization": f"Bearer {token}", "Idempotency-Key": key})
            return key, resp.status_code, resp.json()

        results = await asyncio.gather(*(claim(k, t) for _, k, t in sent))

    won = [(k, body) for k, status, body in results if status == 201]
    lost = [body for _, status, body in results if status != 201]
    assert all(b["type"] == "/problems/out-of-stock" for b in lost), lost[:3]
    vouchers_by_key: dict[str, set[str]] = {}
    for key, body in won:
        vouchers_by_key.setdefault(key, set()).add(body["voucher"]["id"])
    assert len(vouchers_by_key) == STOCK  # ten members won, ...
    assert all(len(ids) == 1 for ids in vouchers_by_key.values())  # ... a retry replayed
    assert await conn.fetchval("SELECT count(*) FROM vouchers WHERE reward_id = $1",
                               uuid.UUID(reward_id)) == STOCK
    assert await conn.fetchval("SELECT claimed FROM rewards WHERE id = $1",
                               uuid.UUID(reward_id)) == STOCK
    debits = await conn.fetch(
        "SELECT wallet_account_id, sum(points) AS points FROM ledger_entries "
        "WHERE kind = 'reward_claim' GROUP BY wallet_account_id")
    assert len(debits) == STOCK and all(d["points"] == -COST for d in debits)
    assert await conn.fetchval("SELECT count(*) FROM idempotency_keys") == STOCK
    winners = {d["wallet_account_id"] for d in debits}
    for m in members:
        snap = await fx.snapshot(conn, m)
        assert snap.points == (400 - COST if m.account_id in winners else 400)
        assert await fx.ledger_sums(conn, m.account_id) == (snap.points, 0, snap.points)

    # One member, eight claims with eight keys at once, a limit of two per member.
    eager = members[-1]
    async with httpx.AsyncClient(base_url=server, timeout=60.0) as client:
        r = await client.post(f"/v1/programs/{pid}/rewards", headers={
            "Authorization": f"Bearer {manager}"}, json={
            "name": "Poster", "points_cost": 10, "kind": "voucher", "per_member_limit": 2,
            "voucher_valid_for_s": 3600})
        assert r.status_code == 201, r.text
        poster = r.json()["id"]
        token = tokens.mint_access(sub=eager.id, role="member", program_id=pid)
        limited = await asyncio.gather(*(client.post(
            f"/v1/me/rewards/{poster}/claims", headers={
                "Authorization": f"Bearer {token}", "Idempotency-Key": f"poster-{i}"})
            for i in range(8)))
    assert sorted(r.status_code for r in limited) == [201, 201] + [422] * 6, [
        r.text for r in limited]
    assert {r.json()["type"] for r in limited if r.status_code == 422} == {
        "/problems/claim-limit-reached"}
    assert await conn.fetchval("SELECT count(*) FROM vouchers WHERE reward_id = $1",
                               uuid.UUID(poster)) == 2
    snap = await fx.snapshot(conn, eager)
    assert await fx.ledger_sums(conn, eager.account_id) == (snap.points, 0, snap.points)
