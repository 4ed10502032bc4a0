"""Pings that cannot be true are refused (issue 14, bug 7): a latitude outside [-90, 90], a
longitude outside [-180, 180] or a time in an impossible year (before 2000, or more than a
day ahead) is a 400 naming the field, and nothing of the batch is kept. Pings that are
plausible but unusable (stale, a little early, too old) still answer 200 and are counted as
"ignored" with their reason."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import asyncpg
import pytest
from support.helpers import INSIDE, Client, create_program, create_store, now, ping, signup

from api.auth.tokens import TokenService


@pytest.fixture
async def member(client: Client, tokens: TokenService) -> dict[str, str]:
    program = await create_program(client, tokens)
    await create_store(client, tokens, program)
    _, me = await signup(client, program, consents=["location_offers"])
    return me


def fix(**over: Any) -> dict[str, Any]:
    return {**ping(*INSIDE, now() - timedelta(seconds=30)), **over}


@pytest.mark.parametrize(("bad", "field"), [
    ({"lat": 91}, "pings[1].lat"),
    ({"lat": -90.000001}, "pings[1].lat"),
    ({"lon": 181}, "pings[1].lon"),
    ({"lon": -180.5}, "pings[1].lon"),
    ({"lat": "INFINITY"}, "pings[1].lat"),  # sent as 1e400: a number too large for a float
    ({"at": "0001-01-01T00:00:00Z"}, "pings[1].at"),
    ({"at": "1999-12-31T23:59:59Z"}, "pings[1].at"),
    ({"at": "9999-12-31T23:59:59Z"}, "pings[1].at"),
    ({"at": (now() + timedelta(days=3)).isoformat()}, "pings[1].at"),
])
async def test_an_impossible_ping_is_a_400_naming_the_field_and_nothing_is_kept(
        client: Client, member: dict[str, str], conn: asyncpg.Connection,
        bad: dict[str, Any], field: str) -> None:
    body = json.dumps({"pings": [fix(), fix(**bad)]}).replace('"INFINITY"', "1e400")
    r = await client.post("/v1/me/pings", content=body,
                          headers={**member, "Content-Type": "application/json"})
    assert r.status_code == 400, r.text
    problem = r.json()
    assert problem["type"] == "/problems/validation"
    assert [e["field"] for e in problem["errors"]] == [field]
    for table in ("visits", "member_geo_state", "idempotency_keys"):
        assert await conn.fetchval(f"SELECT count(*) FROM {table}") == 0, table


async def test_the_edges_of_the_earth_are_valid_coordinates(
        client: Client, member: dict[str, str]) -> None:
    t = now()
    r = await client.post("/v1/me/pings", json={"pings": [
        ping(90, 180, t - timedelta(seconds=40)), ping(-90, -180, t - timedelta(seconds=30))]},
        headers=member)
    assert r.status_code == 200, r.text
    assert r.json()["ignored"] == {"impossible_speed": 1}  # pole to pole in ten seconds


async def test_plausible_but_unusable_pings_are_still_ignored_with_their_reason(
        client: Client, member: dict[str, str]) -> None:
    t = now()
    r = await client.post("/v1/me/pings", json={"pings": [
        ping(*INSIDE, t - timedelta(seconds=10)),
        ping(*INSIDE, t + timedelta(hours=2)),  # early: a phone clock a little ahead
        ping(*INSIDE, t - timedelta(days=400)),  # stale: sent far too late, but possible
    ]}, headers=member)
    assert r.status_code == 200, r.text
    assert r.json()["accepted"] == 1
    assert r.json()["ignored"] == {"future": 1, "too_old": 1}
