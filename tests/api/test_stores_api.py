"""Stores: managers of a program define them with a zone; bad zones are named 422s."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import asyncpg
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from support.helpers import bearer

from api.auth.tokens import Role, TokenService

Client = AsyncTestClient[Litestar]

PROGRAM: dict[str, Any] = {
    "name": "Café Lumière", "currency": "EUR", "timezone": "Europe/Paris",
    "earn_rate": {"points": 1, "per_amount": 100}, "points_expiry_days": 365,
    "tiers": [], "stored_value": True,
}
OPERA = {"type": "Circle", "center": [2.3319, 48.8710], "radius_m": 80}
SQUARE = {"type": "Polygon", "coordinates": [[
    [2.3580, 48.8566], [2.3596, 48.8566], [2.3596, 48.8576], [2.3580, 48.8576],
    [2.3580, 48.8566]]]}


def _admin(tokens: TokenService) -> dict[str, str]:
    return bearer(tokens.mint_access(sub=uuid.uuid4(), role="admin"))


def _as(tokens: TokenService, role: Role, program_id: str,
        store_ids: tuple[str, ...] = ()) -> dict[str, str]:
    return bearer(tokens.mint_access(sub=uuid.uuid4(), role=role,
                                     program_id=uuid.UUID(program_id),
                                     store_ids=[uuid.UUID(s) for s in store_ids]))


async def _program(client: Client, tokens: TokenService) -> str:
    r = await client.post("/v1/programs", json=PROGRAM, headers=_admin(tokens))
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


@pytest.fixture
async def program_id(client: Client, tokens: TokenService) -> str:
    return await _program(client, tokens)


@pytest.fixture
def manager(tokens: TokenService, program_id: str) -> dict[str, str]:
    return _as(tokens, "manager", program_id)


async def _store(client: Client, program_id: str, headers: dict[str, str],
                 code: str = "OPERA", zone: dict[str, Any] | None = None) -> dict[str, Any]:
    r = await client.post(f"/v1/programs/{program_id}/stores", headers=headers,
                          json={"code": code, "name": f"Store {code}", "zone": zone or OPERA})
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


async def test_a_manager_creates_a_store_with_a_circle_zone(
        client: Client, program_id: str, manager: dict[str, str]) -> None:
    s = await _store(client, program_id, manager)
    uuid.UUID(s["id"])
    assert s["zone_version"] == 1
    assert s["zone"] == {"type": "Circle", "center": [2.3319, 48.8710], "radius_m": 80.0}
    assert s["program_id"] == program_id


async def test_a_polygon_zone_is_kept_as_geojson(
        client: Client, program_id: str, manager: dict[str, str]) -> None:
    s = await _store(client, program_id, manager, zone=SQUARE)
    assert s["zone"] == SQUARE


async def test_a_multipolygon_zone_is_accepted(
        client: Client, program_id: str, manager: dict[str, str]) -> None:
    far = [[[lon + 0.01, lat] for lon, lat in SQUARE["coordinates"][0]]]
    multi = {"type": "MultiPolygon", "coordinates": [SQUARE["coordinates"], far]}
    s = await _store(client, program_id, manager, zone=multi)
    assert s["zone"]["type"] == "MultiPolygon"
    assert len(s["zone"]["coordinates"]) == 2


BOWTIE = [[2.35, 48.85], [2.351, 48.851], [2.351, 48.85], [2.35, 48.851], [2.35, 48.85]]
INVALID_ZONES: list[tuple[str, dict[str, Any], str]] = [
    ("self-intersection", {"type": "Polygon", "coordinates": [BOWTIE]}, "zone.coordinates"),
    ("unclosed-ring", {"type": "Polygon", "coordinates": [
        [[2.35, 48.85], [2.351, 48.85], [2.351, 48.851], [2.35, 48.851]]]}, "zone.coordinates"),
    ("too-few-positions", {"type": "Polygon", "coordinates": [
        [[2.35, 48.85], [2.351, 48.85], [2.35, 48.85]]]}, "zone.coordinates"),
    ("longitude-out-of-range", {"type": "Circle", "center": [200.0, 48.85], "radius_m": 50},
     "zone.center"),
    ("latitude-out-of-range", {"type": "Polygon", "coordinates": [
        [[2.35, 95.0], [2.351, 95.0], [2.351, 95.1], [2.35, 95.0]]]}, "zone.coordinates"),
    ("wider-than-the-maximum", {"type": "Polygon", "coordinates": [
        [[2.0, 48.8], [2.5, 48.8], [2.5, 48.9], [2.0, 48.9], [2.0, 48.8]]]}, "zone.coordinates"),
    ("circle-wider-than-the-maximum", {"type": "Circle", "center": [2.35, 48.85],
                                       "radius_m": 15_000}, "zone.radius_m"),
    ("zero-radius", {"type": "Circle", "center": [2.35, 48.85], "radius_m": 0}, "zone.radius_m"),
    ("negative-radius", {"type": "Circle", "center": [2.35, 48.85], "radius_m": -5},
     "zone.radius_m"),
    ("hole-outside-shell", {"type": "Polygon", "coordinates": [
        SQUARE["coordinates"][0],
        [[2.40, 48.80], [2.401, 48.80], [2.401, 48.801], [2.40, 48.80]]]}, "zone.coordinates"),
]


@pytest.mark.parametrize(("zone", "field"), [c[1:] for c in INVALID_ZONES],
                         ids=[c[0] for c in INVALID_ZONES])
async def test_an_invalid_zone_is_422_invalid_zone_naming_the_problem(
        client: Client, program_id: str, manager: dict[str, str], zone: dict[str, Any],
        field: str) -> None:
    r = await client.post(f"/v1/programs/{program_id}/stores", headers=manager,
                          json={"code": "BAD", "name": "Bad", "zone": zone})
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    problem = r.json()
    assert problem["type"] == "/problems/invalid-zone"
    assert problem["field"].startswith(field)
    assert problem["detail"]


@pytest.mark.parametrize(("zone", "field"), [
    ({"type": "Point", "coordinates": [2.35, 48.85]}, "zone"),
    ({"type": "Circle", "center": [2.35, 48.85]}, "zone"),
    ({"type": "Circle", "center": [2.35], "radius_m": 5}, "zone.center"),
    ({"type": "Circle", "center": [2.35, 48.85], "radius_m": 5, "colour": "red"}, "zone.colour"),
], ids=["unknown-type", "missing-radius", "short-position", "unknown-field"])
async def test_a_malformed_zone_is_400(
        client: Client, program_id: str, manager: dict[str, str], zone: dict[str, Any],
        field: str) -> None:
    r = await client.post(f"/v1/programs/{program_id}/stores", headers=manager,
                          json={"code": "BAD", "name": "Bad", "zone": zone})
    assert r.status_code == 400, r.text
    assert any(e["field"].startswith(field) for e in r.json()["errors"])


async def test_an_unknown_store_field_is_400(
        client: Client, program_id: str, manager: dict[str, str]) -> None:
    r = await client.post(f"/v1/programs/{program_id}/stores", headers=manager,
                          json={"code": "X", "name": "X", "zone": OPERA, "phone": "01"})
    assert r.status_code == 400
    assert "phone" in r.json()["detail"]


async def test_a_duplicate_code_is_409(
        client: Client, program_id: str, manager: dict[str, str]) -> None:
    await _store(client, program_id, manager, code="OPERA")
    r = await client.post(f"/v1/programs/{program_id}/stores", headers=manager,
                          json={"code": "OPERA", "name": "Again", "zone": OPERA})
    assert r.status_code == 409
    assert r.json()["field"] == "code"


async def test_a_deleted_stores_code_can_be_used_again(
        client: Client, program_id: str, manager: dict[str, str]) -> None:
    s = await _store(client, program_id, manager, code="OPERA")
    r = await client.delete(f"/v1/programs/{program_id}/stores/{s['id']}", headers=manager)
    assert r.status_code == 204
    await _store(client, program_id, manager, code="OPERA")


async def test_patch_with_a_new_zone_bumps_the_zone_version(
        client: Client, program_id: str, manager: dict[str, str]) -> None:
    s = await _store(client, program_id, manager)
    url = f"/v1/programs/{program_id}/stores/{s['id']}"
    r = await client.patch(url, headers=manager, json={"zone": SQUARE})
    assert r.status_code == 200, r.text
    assert r.json()["zone_version"] == 2
    assert r.json()["zone"] == SQUARE
    r = await client.patch(url, headers=manager, json={"name": "Opéra"})
    assert r.json()["zone_version"] == 2
    assert r.json()["name"] == "Opéra"
    r = await client.patch(url, headers=manager, json={"zone": SQUARE})
    assert r.json()["zone_version"] == 2, "the same zone again is no change"


async def test_patch_refuses_an_invalid_zone_and_keeps_the_old_one(
        client: Client, program_id: str, manager: dict[str, str]) -> None:
    s = await _store(client, program_id, manager)
    url = f"/v1/programs/{program_id}/stores/{s['id']}"
    r = await client.patch(url, headers=manager, json={"zone": {
        "type": "Circle", "center": [2.35, 48.85], "radius_m": 0}})
    assert r.status_code == 422
    assert r.json()["field"] == "zone.radius_m"
    assert (await client.get(url, headers=manager)).json() == s


async def test_patch_to_a_code_in_use_is_409(
        client: Client, program_id: str, manager: dict[str, str]) -> None:
    await _store(client, program_id, manager, code="A")
    b = await _store(client, program_id, manager, code="B")
    r = await client.patch(f"/v1/programs/{program_id}/stores/{b['id']}", headers=manager,
                           json={"code": "A"})
    assert r.status_code == 409


async def test_a_deleted_store_is_404_and_leaves_the_list(
        client: Client, program_id: str, manager: dict[str, str]) -> None:
    s = await _store(client, program_id, manager)
    url = f"/v1/programs/{program_id}/stores/{s['id']}"
    assert (await client.delete(url, headers=manager)).status_code == 204
    assert (await client.get(url, headers=manager)).status_code == 404
    assert (await client.patch(url, headers=manager, json={"name": "x"})).status_code == 404
    assert (await client.delete(url, headers=manager)).status_code == 404
    listed = (await client.get(f"/v1/programs/{program_id}/stores", headers=manager)).json()
    assert listed["items"] == []


async def test_a_delete_is_soft(client: Client, program_id: str, manager: dict[str, str],
                                conn: asyncpg.Connection) -> None:
    s = await _store(client, program_id, manager)
    await client.delete(f"/v1/programs/{program_id}/stores/{s['id']}", headers=manager)
    deleted_at = await conn.fetchval("SELECT deleted_at FROM stores WHERE id = $1",
                                     uuid.UUID(s["id"]))
    assert deleted_at is not None


async def test_the_list_is_paginated_in_creation_order(
        client: Client, program_id: str, manager: dict[str, str]) -> None:
    codes = [f"S{i}" for i in range(5)]
    for code in codes:
        await _store(client, program_id, manager, code=code)
    seen: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        r = await client.get(f"/v1/programs/{program_id}/stores", headers=manager,
                             params=params)
        assert r.status_code == 200, r.text
        body = r.json()
        seen += [s["code"] for s in body["items"]]
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert seen == codes
    assert pages == 3


async def test_a_malformed_cursor_or_limit_is_refused(
        client: Client, program_id: str, manager: dict[str, str]) -> None:
    url = f"/v1/programs/{program_id}/stores"
    assert (await client.get(url, headers=manager, params={"cursor": "@@"})).status_code == 400
    assert (await client.get(url, headers=manager, params={"limit": 501})).status_code == 400


async def test_a_store_of_another_program_is_404_even_for_an_admin(
        client: Client, tokens: TokenService, program_id: str, manager: dict[str, str]) -> None:
    s = await _store(client, program_id, manager)
    other = await _program(client, tokens)
    r = await client.get(f"/v1/programs/{other}/stores/{s['id']}", headers=_admin(tokens))
    assert r.status_code == 404


async def test_a_manager_of_another_program_is_403(
        client: Client, tokens: TokenService, program_id: str, manager: dict[str, str]) -> None:
    s = await _store(client, program_id, manager)
    other = await _program(client, tokens)
    stranger = _as(tokens, "manager", other)
    base = f"/v1/programs/{program_id}/stores"
    assert (await client.get(base, headers=stranger)).status_code == 403
    assert (await client.get(f"{base}/{s['id']}", headers=stranger)).status_code == 403
    assert (await client.post(base, headers=stranger, json={
        "code": "X", "name": "X", "zone": OPERA})).status_code == 403
    assert (await client.patch(f"{base}/{s['id']}", headers=stranger,
                               json={"name": "Mine"})).status_code == 403
    assert (await client.delete(f"{base}/{s['id']}", headers=stranger)).status_code == 403


@pytest.mark.parametrize("role", ["staff", "member"])
async def test_staff_and_members_cannot_manage_stores(
        client: Client, tokens: TokenService, program_id: str, manager: dict[str, str],
        role: Role) -> None:
    s = await _store(client, program_id, manager)
    who = _as(tokens, role, program_id, (s["id"],) if role == "staff" else ())
    base = f"/v1/programs/{program_id}/stores"
    r = await client.post(base, headers=who, json={"code": "X", "name": "X", "zone": OPERA})
    assert r.status_code == 403
    assert r.json()["type"] == "/problems/forbidden"
    assert (await client.patch(f"{base}/{s['id']}", headers=who,
                               json={"name": "x"})).status_code == 403
    assert (await client.delete(f"{base}/{s['id']}", headers=who)).status_code == 403


async def test_every_store_write_notifies_zones_changed_on_commit(
        client: Client, program_id: str, manager: dict[str, str],
        conn: asyncpg.Connection) -> None:
    heard: asyncio.Queue[str] = asyncio.Queue()

    def listener(_c: object, _pid: int, _channel: str, payload: object) -> None:
        heard.put_nowait(str(payload))

    await conn.add_listener("zones_changed", listener)
    s = await _store(client, program_id, manager)
    url = f"/v1/programs/{program_id}/stores/{s['id']}"
    await client.patch(url, headers=manager, json={"zone": SQUARE})
    await client.delete(url, headers=manager)
    # notifications arrive in commit order: a marker sent after the last write closes the list
    await conn.execute("SELECT pg_notify('zones_changed', 'end')")
    received = []
    while (payload := await asyncio.wait_for(heard.get(), timeout=5)) != "end":
        received.append(payload)
    assert received == [program_id] * 3, "one notification per write"


async def test_the_openapi_document_shows_the_store_routes(client: Client) -> None:
    doc = (await client.get("/schema/openapi.json")).json()
    base = "/v1/programs/{program_id}/stores"
    assert {"get", "post"} <= set(doc["paths"][base])
    assert {"get", "patch", "delete"} <= set(doc["paths"][f"{base}/{{store_id}}"])
    assert "422" in doc["paths"][base]["post"]["responses"]
