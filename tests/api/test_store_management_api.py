"""What campaign managers met with stores (issue 10, items 14-17): import results per
feature, list filters, an RFC 7946 export that imports back unchanged, and coordinates typed
the wrong way round caught before a store lands off Somalia."""

from __future__ import annotations

import itertools
import uuid
from typing import Any

import asyncpg
from support.helpers import Client, circle, create_program, create_store, manager

from api.auth.tokens import TokenService

# Counterclockwise square, and the same square clockwise (as some GIS tools write it).
CCW = [[2.30, 48.85], [2.301, 48.85], [2.301, 48.851], [2.30, 48.851], [2.30, 48.85]]
CW = CCW[::-1]


def feature(code: str, zone: dict[str, Any], name: str | None = None,
            **props: Any) -> dict[str, Any]:
    return {"type": "Feature", "geometry": zone,
            "properties": {"code": code, "name": name or f"Store {code}", **props}}


def collection(*features: dict[str, Any]) -> dict[str, Any]:
    return {"type": "FeatureCollection", "features": list(features)}


async def _import(client: Client, tokens: TokenService, program: str, body: dict[str, Any],
                  **params: str) -> Any:
    return await client.post(f"/v1/programs/{program}/stores/import", json=body,
                             params=params, headers=manager(tokens, program))


def _area(ring: list[list[float]]) -> float:
    return sum(a[0] * b[1] - b[0] * a[1] for a, b in itertools.pairwise(ring))


# --- 14: what an import did, feature by feature -------------------------------------------------


async def test_import_answers_each_features_store_and_identical_ones_are_unchanged(
        client: Client, tokens: TokenService, conn: asyncpg.Connection) -> None:
    program = await create_program(client, tokens)
    first = collection(feature("B", circle()), feature("A", {"type": "Polygon",
                                                             "coordinates": [CCW]}))
    r = await _import(client, tokens, program, first)
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["created"], body["updated"], body["unchanged"]) == (2, 0, 0)
    ids = {s["code"]: s["id"] for s in body["stores"]}
    assert [s["code"] for s in body["stores"]] == ["B", "A"]  # the features' order
    again = (await _import(client, tokens, program, first)).json()
    assert (again["created"], again["updated"], again["unchanged"]) == (0, 0, 2)
    assert [(s["code"], s["id"], s["result"]) for s in again["stores"]] == [
        ("B", ids["B"], "unchanged"), ("A", ids["A"], "unchanged")]
    assert await conn.fetchval("SELECT max(zone_version) FROM stores") == 1
    renamed = (await _import(client, tokens, program, collection(
        feature("A", {"type": "Polygon", "coordinates": [CCW]}, "New name"),
        feature("B", circle()), feature("C", circle(2.35, 48.86))))).json()
    assert [(s["code"], s["result"]) for s in renamed["stores"]] == [
        ("A", "updated"), ("B", "unchanged"), ("C", "created")]
    assert await conn.fetchval("SELECT zone_version FROM stores WHERE code = 'A'") == 1


# --- 15: finding a store ------------------------------------------------------------------------


async def test_the_store_list_filters_by_code_and_by_text(
        client: Client, tokens: TokenService) -> None:
    program = await create_program(client, tokens)
    h = manager(tokens, program)
    for code, name in (("OPERA", "Café Lumière Opéra"), ("LOUVRE", "Café Lumière Louvre"),
                       ("GDL", "Gare de Lyon 100% arabica"), ("X_1", "Kiosk")):
        r = await client.post(f"/v1/programs/{program}/stores", headers=h, json={
            "code": code, "name": name, "zone": circle()}, params={"confirm_location": "true"})
        assert r.status_code == 201, r.text

    async def codes(**params: Any) -> list[str]:
        r = await client.get(f"/v1/programs/{program}/stores", params=params, headers=h)
        assert r.status_code == 200, r.text
        return [s["code"] for s in r.json()["items"]]

    assert await codes(code="LOUVRE") == ["LOUVRE"]
    assert await codes(code="louvre") == []  # a code is exact
    assert await codes(q="lumière") == ["OPERA", "LOUVRE"]  # any case, code or name
    assert await codes(q="gdl") == ["GDL"]
    assert await codes(q="100%") == ["GDL"]  # % and _ are plain text
    assert await codes(q="_") == ["X_1"]
    assert await codes(q="lumière", code="OPERA") == ["OPERA"]
    page = (await client.get(f"/v1/programs/{program}/stores",
                             params={"q": "lumière", "limit": 1}, headers=h)).json()
    rest = await codes(q="lumière", cursor=page["next_cursor"])
    assert [s["code"] for s in page["items"]] + rest == ["OPERA", "LOUVRE"]


# --- 16: an export GIS tools accept, that imports back the same -------------------------------


async def test_the_export_is_rfc_7946_and_imports_back_to_the_same_zones(
        client: Client, tokens: TokenService) -> None:
    program = await create_program(client, tokens)
    hole = [[2.3004, 48.8504], [2.3004, 48.8506], [2.3006, 48.8506], [2.3006, 48.8504],
            [2.3004, 48.8504]]  # clockwise already... or not: the export decides
    r = await _import(client, tokens, program, collection(
        feature("CIRCLE", circle(2.3522, 48.8566, 75)),
        feature("CW", {"type": "Polygon", "coordinates": [CW, hole[::-1]]}),
        feature("MULTI", {"type": "MultiPolygon", "coordinates": [
            [[[p[0] + 0.01, p[1]] for p in CW]], [[[p[0] + 0.02, p[1]] for p in CCW]]]})))
    assert r.status_code == 200, r.text
    h = manager(tokens, program)
    exported = (await client.get(f"/v1/programs/{program}/stores.geojson", headers=h)).json()
    assert "Circle" not in str(exported)
    geometry = {f["properties"]["code"]: f["geometry"] for f in exported["features"]}
    assert geometry["CIRCLE"] == {"type": "Point", "coordinates": [2.3522, 48.8566]}
    props = {f["properties"]["code"]: f["properties"] for f in exported["features"]}
    assert props["CIRCLE"]["radius_m"] == 75
    polygons = [geometry["CW"]["coordinates"], *geometry["MULTI"]["coordinates"]]
    for rings in polygons:  # right-hand rule: shells counterclockwise, holes clockwise
        assert _area(rings[0]) > 0 and all(_area(r) < 0 for r in rings[1:])
    # Back into the same program: nothing changes; into another: the same zones.
    back = (await _import(client, tokens, program, exported)).json()
    assert (back["unchanged"], back["updated"], back["created"]) == (3, 0, 0)
    other = await create_program(client, tokens)
    assert (await _import(client, tokens, other, exported)).json()["created"] == 3
    zones = {}
    for p in (program, other):
        r = await client.get(f"/v1/programs/{p}/stores", headers=manager(tokens, p))
        zones[p] = {s["code"]: s["zone"] for s in r.json()["items"]}
    assert zones[program] == zones[other]
    assert zones[other]["CIRCLE"] == {"type": "Circle", "center": [2.3522, 48.8566],
                                      "radius_m": 75.0}


async def test_a_point_without_a_radius_is_refused_naming_the_property(
        client: Client, tokens: TokenService) -> None:
    program = await create_program(client, tokens)
    r = await _import(client, tokens, program, collection(
        feature("P", {"type": "Point", "coordinates": [2.35, 48.85]})))
    assert r.status_code == 422, r.text
    (err,) = r.json()["errors"]
    assert (err["index"], err["field"]) == (0, "features[0].properties.radius_m")


# --- 17: latitude and longitude swapped ---------------------------------------------------------


async def test_a_swapped_circle_near_the_other_stores_is_refused_unless_confirmed(
        client: Client, tokens: TokenService, conn: asyncpg.Connection) -> None:
    program = await create_program(client, tokens)
    await create_store(client, tokens, program, code="OPERA", zone=circle(2.3316, 48.8708))
    h = manager(tokens, program)
    url = f"/v1/programs/{program}/stores"
    # A real new city far from the others is not a swap.
    r = await client.post(url, json={"code": "LYON", "name": "Lyon", "zone": circle(4.83, 45.76)},
                          headers=h)
    assert r.status_code == 201, r.text
    # Moving a store onto swapped coordinates is caught.
    r = await client.patch(f"{url}/{r.json()['id']}", headers=h,
                           json={"zone": {"type": "Polygon", "coordinates": [
                               [[p[1], p[0]] for p in CCW]]}})
    assert r.status_code == 422 and r.json()["field"] == "zone.coordinates", r.text
    swapped = {"code": "GDN", "name": "Gare du Nord", "zone": circle(48.88, 2.35)}
    r = await client.post(url, json=swapped, headers=h)
    assert r.status_code == 422, r.text
    p = r.json()
    assert p["type"] == "/problems/likely-swapped-coordinates" and p["field"] == "zone.center"
    assert "swapped" in p["detail"] and "OPERA" in p["detail"]
    assert await conn.fetchval("SELECT count(*) FROM stores") == 2
    r = await client.post(url, json=swapped, headers=h, params={"confirm_location": "true"})
    assert r.status_code == 201, r.text


async def test_the_first_store_of_a_program_is_checked_against_its_time_zone(
        client: Client, tokens: TokenService) -> None:
    program = await create_program(client, tokens)  # Europe/Paris
    h = manager(tokens, program)
    r = await client.post(f"/v1/programs/{program}/stores", headers=h,
                          json={"code": "S", "name": "S", "zone": circle(48.88, 2.35)})
    assert r.status_code == 422 and "Europe/Paris" in r.json()["detail"], r.text
    tokyo = await create_program(client, tokens, timezone="Asia/Tokyo", currency="JPY")
    r = await client.post(f"/v1/programs/{tokyo}/stores", headers=manager(tokens, tokyo),
                          json={"code": "T", "name": "Shibuya", "zone": circle(139.70, 35.66)})
    assert r.status_code == 201, r.text


async def test_an_import_with_swapped_features_lists_them_and_writes_nothing(
        client: Client, tokens: TokenService, conn: asyncpg.Connection) -> None:
    program = await create_program(client, tokens)
    body = collection(feature("OK", circle(2.3316, 48.8708)),
                      feature("BAD", {"type": "Point", "coordinates": [48.86, 2.34]},
                              radius_m=50))
    r = await _import(client, tokens, program, body)
    assert r.status_code == 422, r.text
    (err,) = r.json()["errors"]
    assert (err["index"], err["field"]) == (1, "features[1].geometry.center")
    assert await conn.fetchval("SELECT count(*) FROM stores") == 0
    r = await _import(client, tokens, program, body, confirm_location="true")
    assert r.status_code == 200 and r.json()["created"] == 2, r.text
    assert uuid.UUID(r.json()["stores"][1]["id"])
