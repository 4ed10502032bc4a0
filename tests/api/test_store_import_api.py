"""Store import/export: validate everything first, upsert by code, round-trip."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
from support.helpers import Client, circle, create_program, create_store, manager, staff

from api.auth.tokens import TokenService

SQUARE = {"type": "Polygon", "coordinates": [[[2.30, 48.85], [2.301, 48.85], [2.301, 48.851],
                                              [2.30, 48.851], [2.30, 48.85]]]}


def feature(code: str, zone: dict[str, Any], name: str | None = None) -> dict[str, Any]:
    return {"type": "Feature", "geometry": zone,
            "properties": {"code": code, "name": name or f"Store {code}"}}


def collection(*features: dict[str, Any]) -> dict[str, Any]:
    return {"type": "FeatureCollection", "features": list(features)}


async def test_import_creates_and_updates_by_code(
    client: Client, tokens: TokenService, conn: asyncpg.Connection
) -> None:
    program = await create_program(client, tokens)
    existing = await create_store(client, tokens, program, code="A")
    r = await client.post(f"/v1/programs/{program}/stores/import", headers=manager(
        tokens, program), json=collection(feature("A", SQUARE, "Renamed"), feature("B", circle())))
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["created"], body["updated"], body["unchanged"]) == (1, 1, 0)
    assert [(s["code"], s["result"]) for s in body["stores"]] == [("A", "updated"),
                                                                  ("B", "created")]
    assert body["stores"][0]["id"] == existing
    row = await conn.fetchrow("SELECT name, zone_version FROM stores WHERE id = $1",
                              uuid.UUID(existing))
    assert row["name"] == "Renamed" and row["zone_version"] == 2


async def test_one_bad_feature_refuses_the_whole_import_listing_every_bad_one(
    client: Client, tokens: TokenService, conn: asyncpg.Connection
) -> None:
    program = await create_program(client, tokens)
    unclosed = {"type": "Polygon", "coordinates": [[[2.3, 48.85], [2.31, 48.85], [2.31, 48.86],
                                                    [2.3, 48.86]]]}
    r = await client.post(
        f"/v1/programs/{program}/stores/import", headers=manager(tokens, program),
        json=collection(feature("OK", circle()),
                        feature("BAD1", unclosed),
                        {"type": "Feature", "geometry": circle(), "properties": {"name": "x"}},
                        feature("BAD3", {"type": "Circle", "center": [2.3, 48.8],
                                         "radius_m": -5}),
                        feature("OK", SQUARE)))
    assert r.status_code == 422, r.text
    problem = r.json()
    assert problem["type"] == "/problems/invalid-features"
    assert [e["index"] for e in problem["errors"]] == [1, 2, 3, 4]
    assert "features[3].geometry.radius_m" in {e["field"] for e in problem["errors"]}
    assert await conn.fetchval("SELECT count(*) FROM stores") == 0


async def test_export_round_trips_through_import(client: Client, tokens: TokenService) -> None:
    program = await create_program(client, tokens)
    mgr = manager(tokens, program)
    await client.post(f"/v1/programs/{program}/stores/import", headers=mgr,
                      json=collection(feature("A", SQUARE), feature("B", circle())))
    r = await client.get(f"/v1/programs/{program}/stores.geojson", headers=mgr)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/geo+json")
    exported = r.json()
    assert [f["properties"]["code"] for f in exported["features"]] == ["A", "B"]
    assert exported["features"][1]["geometry"] == {"type": "Point",
                                                   "coordinates": circle()["center"]}
    assert exported["features"][1]["properties"]["radius_m"] == circle()["radius_m"]
    other = await create_program(client, tokens)
    r = await client.post(f"/v1/programs/{other}/stores/import",
                          headers=manager(tokens, other), json=exported)
    assert (r.json()["created"], r.json()["updated"]) == (2, 0)
    again = (await client.get(f"/v1/programs/{other}/stores.geojson",
                              headers=manager(tokens, other))).json()
    strip = [(f["properties"], f["geometry"]) for f in exported["features"]]
    assert [(f["properties"], f["geometry"]) for f in again["features"]] == strip
    # Re-importing the same export changes nothing, and says so.
    r = await client.post(f"/v1/programs/{program}/stores/import", headers=mgr, json=exported)
    assert (r.json()["created"], r.json()["updated"], r.json()["unchanged"]) == (0, 0, 2)


async def test_staff_cannot_import_or_export(client: Client, tokens: TokenService) -> None:
    program = await create_program(client, tokens)
    store = await create_store(client, tokens, program)
    headers = staff(tokens, program, store)
    r = await client.post(f"/v1/programs/{program}/stores/import", headers=headers,
                          json=collection(feature("A", circle())))
    assert r.status_code == 403
    assert (await client.get(f"/v1/programs/{program}/stores.geojson",
                             headers=headers)).status_code == 403
