"""`POST .../stores/import/check`: the console's import preview asks it before anything is
written — the same validation as the import, and the features whose coordinates look swapped."""

from __future__ import annotations

from typing import Any

import asyncpg
from support.helpers import Client, circle, create_program, manager, staff

from api.auth.tokens import TokenService


def feature(code: str, zone: dict[str, Any]) -> dict[str, Any]:
    return {"type": "Feature", "geometry": zone,
            "properties": {"code": code, "name": f"Store {code}"}}


def collection(*features: dict[str, Any]) -> dict[str, Any]:
    return {"type": "FeatureCollection", "features": list(features)}


async def test_check_validates_like_the_import_flags_swaps_and_writes_nothing(
        client: Client, tokens: TokenService, conn: asyncpg.Connection) -> None:
    program = await create_program(client, tokens)  # Europe/Paris
    url = f"/v1/programs/{program}/stores/import/check"
    h = manager(tokens, program)
    good = collection(feature("OPERA", circle(2.3316, 48.8708)),
                      feature("BASTILLE", circle(2.3692, 48.8533)))
    r = await client.post(url, json=good, headers=h)
    assert r.status_code == 200, r.text
    assert r.json() == {"features": 2, "likely_swapped": []}

    swapped = collection(feature("OPERA", circle(2.3316, 48.8708)),
                         feature("GDN", circle(48.88, 2.35)))
    r = await client.post(url, json=swapped, headers=h)
    assert r.status_code == 200, r.text
    (swap,) = r.json()["likely_swapped"]
    assert (swap["index"], swap["field"]) == (1, "features[1].geometry.center")
    assert "swapped" in swap["reason"] and "Europe/Paris" in swap["reason"]

    bad = collection(feature("OPERA", circle(2.3316, 48.8708)),
                     feature("NEG", {"type": "Circle", "center": [2.3, 48.8], "radius_m": -5}))
    r = await client.post(url, json=bad, headers=h)
    assert r.status_code == 422, r.text
    assert r.json()["type"] == "/problems/invalid-features"
    assert [e["index"] for e in r.json()["errors"]] == [1]
    assert await conn.fetchval("SELECT count(*) FROM stores WHERE program_id = $1::uuid",
                               program) == 0


async def test_check_is_for_the_programs_managers(client: Client, tokens: TokenService) -> None:
    mine, theirs = await create_program(client, tokens), await create_program(client, tokens)
    body = collection(feature("A", circle()))
    for headers in (manager(tokens, theirs), staff(tokens, mine)):
        r = await client.post(f"/v1/programs/{mine}/stores/import/check", json=body,
                              headers=headers)
        assert r.status_code == 403, r.text
