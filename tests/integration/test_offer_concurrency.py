"""Offer issuance under concurrency, against a real server (uvicorn, two workers): batches
race across processes and connections, as phones do.

* One member's enter sent in 50 concurrent batches → exactly one offer.
* A campaign with a budget of 100 and 500 members entering at once → exactly 100 offers.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from support import ledger_fixtures as fx
from support.campaign_helpers import campaign_body
from support.realserver import running_server

from api.auth.keys import load_or_create
from api.auth.tokens import TokenService
from geo import campaigns_repo

pytestmark = pytest.mark.slow
LAT, LON = 48.85, 2.35  # the centre of ledger_fixtures' store zone


@pytest.fixture
def server(db_url: str, keys_file: Path, tmp_path: Path) -> Iterator[str]:
    with running_server(db_url, keys_file, tmp_path, workers=2) as base:
        yield base


@pytest.fixture
def tokens(keys_file: Path) -> TokenService:
    return TokenService(load_or_create(keys_file), issuer="loyalty-geo", access_ttl_s=900,
                        refresh_ttl_s=3600, card_ttl_s=60)


async def _members(conn: asyncpg.Connection, program: uuid.UUID, n: int) -> list[uuid.UUID]:
    """`n` members who consented to location offers (plain SQL, fast)."""
    ids = [(await fx.member(conn, program)).id for _ in range(n)]
    await conn.execute(
        "INSERT INTO member_consents (member_id, purpose, granted, policy_version, source) "
        "SELECT unnest($1::uuid[]), 'location_offers', true, 'v1', 'test'", ids)
    return ids


async def _campaign(client: httpx.AsyncClient, tokens: TokenService, program: uuid.UUID,
                    **over: Any) -> str:
    h = {"Authorization": "Bearer " + tokens.mint_access(sub=uuid.uuid4(), role="manager",
                                                         program_id=program)}
    r = await client.post(f"/v1/programs/{program}/campaigns", json=campaign_body(**over),
                          headers=h)
    assert r.status_code == 201, r.text
    cid = r.json()["id"]
    r = await client.post(f"/v1/programs/{program}/campaigns/{cid}/activate", headers=h)
    assert r.status_code == 200, r.text
    return str(cid)


def _batch() -> dict[str, Any]:
    at = (datetime.now(UTC) - timedelta(seconds=10)).isoformat()
    return {"pings": [{"lat": LAT, "lon": LON, "accuracy_m": 10, "at": at}]}


async def test_one_members_enter_in_50_concurrent_batches_gives_exactly_one_offer(
        server: str, conn: asyncpg.Connection, tokens: TokenService) -> None:
    program = await fx.program(conn)
    await fx.store(conn, program)
    (member,) = await _members(conn, program, 1)
    token = tokens.mint_access(sub=member, role="member", program_id=program)
    batch = _batch()
    async with httpx.AsyncClient(base_url=server, timeout=60.0,
                                 limits=httpx.Limits(max_connections=50)) as client:
        cid = await _campaign(client, tokens, program)
        results = await asyncio.gather(*(
            client.post("/v1/me/pings", json=batch, headers={"Authorization": f"Bearer {token}"})
            for _ in range(50)))
    assert all(r.status_code == 200 for r in results), [r.text for r in results][:3]
    offers = [o for r in results for o in r.json()["offers"]]
    assert len(offers) == 1 and offers[0]["campaign_id"] == cid
    assert await conn.fetchval("SELECT count(*) FROM offers") == 1
    assert await conn.fetchval("SELECT count(*) FROM visits") == 1
    # no budget: no counter on the row, `issued` counts the offers
    assert (await campaigns_repo.get(conn, program, uuid.UUID(cid))).issued == 1


async def test_a_budget_of_100_with_500_members_entering_at_once_gives_exactly_100_offers(
        server: str, conn: asyncpg.Connection, tokens: TokenService) -> None:
    program = await fx.program(conn)
    await fx.store(conn, program)
    members = await _members(conn, program, 500)
    batch = _batch()
    async with httpx.AsyncClient(base_url=server, timeout=120.0,
                                 limits=httpx.Limits(max_connections=100)) as client:
        cid = await _campaign(client, tokens, program, caps={"max_issued": 100})

        async def enter(member: uuid.UUID) -> httpx.Response:
            token = tokens.mint_access(sub=member, role="member", program_id=program)
            return await client.post("/v1/me/pings", json=batch,
                                     headers={"Authorization": f"Bearer {token}"})

        results = await asyncio.gather(*(enter(m) for m in members))
        stats = await client.get(
            f"/v1/programs/{program}/campaigns/{cid}/stats",
            headers={"Authorization": "Bearer " + tokens.mint_access(
                sub=uuid.uuid4(), role="manager", program_id=program)})
    assert all(r.status_code == 200 for r in results), [r.text for r in results][:3]
    assert sum(len(r.json()["offers"]) for r in results) == 100
    assert sum(len(r.json()["visits"]) for r in results) == 500
    assert await conn.fetchval("SELECT count(*) FROM offers") == 100
    assert await conn.fetchval("SELECT count(DISTINCT member_id) FROM offers") == 100
    assert await conn.fetchval("SELECT issued FROM campaigns WHERE id = $1",
                               uuid.UUID(cid)) == 100
    s = stats.json()
    assert (s["issued"], s["by_store"][0]["visits"]) == (100, 500), json.dumps(s)
