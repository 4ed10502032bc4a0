"""The purse's ceiling under parallel top-ups, against a real server process (two workers):
forty tills top up one card at once, each by 10,000 against a ceiling of 150,000. Exactly
fifteen are accepted, the others refused naming the limit, and the purse ends at the
ceiling, never above it (issue 14, bug 7: limits hold under parallel requests)."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest
from support import ledger_fixtures as fx
from support.realserver import running_server

from api.auth.keys import load_or_create
from api.auth.tokens import TokenService
from api.config import Settings

pytestmark = pytest.mark.slow
TILLS = 40


@pytest.fixture
def server(db_url: str, keys_file: Path, tmp_path: Path) -> Iterator[str]:
    with running_server(db_url, keys_file, tmp_path, workers=2) as base:
        yield base


async def test_parallel_top_ups_never_take_the_purse_above_its_ceiling(
        server: str, conn: asyncpg.Connection, keys_file: Path) -> None:
    settings = Settings()
    tokens = TokenService(load_or_create(keys_file), issuer=settings.jwt_issuer,
                          access_ttl_s=600, refresh_ttl_s=600, card_ttl_s=600)
    pid = await fx.program(conn)
    await conn.execute("UPDATE programs SET max_top_up_amount = 10000, "
                       "max_stored_value_balance = 150000 WHERE id = $1", pid)
    sid = await fx.store(conn, pid)
    m = await fx.member(conn, pid)
    staff = tokens.mint_access(sub=uuid.uuid4(), role="staff", program_id=pid, store_ids=[sid])
    body = {"store_id": str(sid), "card_number": m.card_number, "amount": 10_000,
            "currency": "EUR"}
    async with httpx.AsyncClient(base_url=server, timeout=30.0,
                                 headers={"Authorization": f"Bearer {staff}"},
                                 limits=httpx.Limits(max_connections=TILLS)) as client:
        async def one(i: int) -> httpx.Response:
            return await client.post("/v1/pos/stored-value/top-ups", json=body,
                                     headers={"Idempotency-Key": f"top-up-{i}"})

        answers = await asyncio.gather(*(one(i) for i in range(TILLS)))
    statuses = Counter(r.status_code for r in answers)
    assert statuses == {201: 15, 422: TILLS - 15}, statuses
    for r in answers:
        if r.status_code == 422:
            assert r.json()["limit"] == "max_stored_value_balance"
    assert max(r.json()["stored_value_balance"] for r in answers if r.status_code == 201) == (
        150_000)
    after = await fx.snapshot(conn, m)
    assert (after.stored_value, after.transactions) == (150_000, 15)
    assert (await fx.ledger_sums(conn, m.account_id))[1] == 150_000
