"""Zones are bounded (issue 14, bug 3): a manager cannot stall every tenant on a worker with
polygons of 100,000 vertices or a 64 MB import. The limits are settings."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from support.helpers import Client, create_program, manager

from api.app import create_app
from api.auth.tokens import TokenService
from api.config import Settings


def ring(n: int, lon: float = 2.35, lat: float = 48.85, r: float = 0.001) -> list[list[float]]:
    """A closed, valid ring of `n` positions (n - 1 distinct) around (lon, lat)."""
    pts = [[lon + r * math.cos(2 * math.pi * i / (n - 1)),
            lat + r * math.sin(2 * math.pi * i / (n - 1))] for i in range(n - 1)]
    return [*pts, pts[0]]


def store(code: str, positions: int) -> dict[str, Any]:
    return {"code": code, "name": code,
            "zone": {"type": "Polygon", "coordinates": [ring(positions)]}}


async def test_a_zone_of_more_than_2000_positions_is_a_422_naming_the_limit(
        client: Client, tokens: TokenService) -> None:
    program_id = await create_program(client, tokens)
    headers = manager(tokens, program_id)
    ok = await client.post(f"/v1/programs/{program_id}/stores", json=store("OK", 2_000),
                           headers=headers)
    assert ok.status_code == 201, ok.text
    r = await client.post(f"/v1/programs/{program_id}/stores", json=store("BIG", 2_001),
                          headers=headers)
    assert r.status_code == 422, r.text
    assert r.json()["field"] == "zone.coordinates"
    assert "at most 2000" in r.json()["detail"]
    r = await client.patch(f"/v1/programs/{program_id}/stores/{ok.json()['id']}",
                           json={"zone": store("x", 2_001)["zone"]}, headers=headers)
    assert r.status_code == 422, r.text


async def test_an_import_lists_each_zone_over_the_limit(client: Client,
                                                        tokens: TokenService) -> None:
    program_id = await create_program(client, tokens)
    features = [{"type": "Feature", "geometry": s["zone"],
                 "properties": {"code": s["code"], "name": s["name"]}}
                for s in (store("A", 10), store("B", 2_001))]
    r = await client.post(f"/v1/programs/{program_id}/stores/import",
                          json={"type": "FeatureCollection", "features": features},
                          headers=manager(tokens, program_id))
    assert r.status_code == 422, r.text
    assert [e["index"] for e in r.json()["errors"]] == [1]


@pytest.fixture
async def small_imports(settings: Settings) -> Any:
    limited = create_app(Settings(**{**{f: getattr(settings, f)
                                        for f in settings.__struct_fields__},
                                     "max_import_bytes": 20_000}))
    async with AsyncTestClient(app=limited) as c:
        yield c, limited


async def test_an_import_larger_than_the_setting_is_a_413(
        small_imports: tuple[AsyncTestClient[Litestar], Litestar], keys_file: Path) -> None:
    client, app = small_imports
    tokens: TokenService = app.state.tokens
    program_id = await create_program(client, tokens)
    features = [{"type": "Feature", "geometry": store(f"S{i}", 40)["zone"],
                 "properties": {"code": f"S{i}", "name": "x"}} for i in range(20)]
    r = await client.post(f"/v1/programs/{program_id}/stores/import",
                          json={"type": "FeatureCollection", "features": features},
                          headers=manager(tokens, program_id))
    assert r.status_code == 413, r.text
    assert r.json()["type"] == "/problems/body-too-large"
    assert "max_import_bytes" in r.json()["detail"]
