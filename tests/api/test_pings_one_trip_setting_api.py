"""`LOYALTY_PINGS_ONE_TRIP`: the ping batch's one-statement path through HTTP. On or off, a
member's batches get the same answers and leave the same visits; on, a batch away from any
store is one statement (the integration tests compare the paths row by row and count them)."""

from __future__ import annotations

from typing import Any

import asyncpg
import msgspec
import pytest
from support.helpers import FAR, INSIDE, Client, ago, create_program, create_store, ping, signup

from api.auth.tokens import TokenService
from api.config import Settings


@pytest.fixture(params=[False, True], ids=["two-trips", "one-trip"])
def settings(settings: Settings, request: pytest.FixtureRequest) -> Settings:
    return msgspec.structs.replace(settings, pings_one_trip=request.param)


async def test_a_members_batches_are_answered_alike_whichever_path_takes_them(
        client: Client, tokens: TokenService, conn: asyncpg.Connection) -> None:
    program = await create_program(client, tokens)
    store = await create_store(client, tokens, program)
    _, me = await signup(client, program, consents=["location_offers"])

    async def send(*pings: dict[str, Any]) -> dict[str, Any]:
        r = await client.post("/v1/me/pings", json={"pings": list(pings)}, headers=me)
        assert r.status_code == 200, r.text
        return dict(r.json())

    away = await send(ping(*FAR, ago(900)), ping(*FAR, ago(870)))  # no visit: the common case
    assert (away["accepted"], away["visits"]) == (2, [])
    entered = await send(ping(*INSIDE, ago(700)))
    assert [(v["store_id"], v["event"]) for v in entered["visits"]] == [(store, "enter")]
    left = await send(ping(*FAR, ago(400)), ping(*FAR, ago(100)))  # > exit_after_s outside
    assert [(v["store_id"], v["event"]) for v in left["visits"]] == [(store, "exit")]
    rows = await conn.fetch("SELECT store_id, exited_at IS NOT NULL AS closed FROM visits")
    assert [(str(r["store_id"]), r["closed"]) for r in rows] == [(store, True)]
    last = await conn.fetchval("SELECT last_ping_at FROM member_geo_state")
    assert last is not None and abs((last - ago(100)).total_seconds()) < 5
