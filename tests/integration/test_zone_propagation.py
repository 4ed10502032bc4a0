"""With two workers serving, a zone created, moved or deleted through the API changes the
answer of the very next pings on both workers, without a restart."""

from __future__ import annotations

import ssl
import uuid
from pathlib import Path
from typing import Any

import httpx
from support.helpers import FAR, INSIDE, PROGRAM, admin, ago, circle, manager, ping
from support.realserver import running_server

from api.auth.keys import load_or_create
from api.auth.tokens import TokenService
from api.config import Settings

ROUNDS = 16  # fresh members and connections per step, spread over both workers
TLS = ssl.create_default_context()  # (the server is plain http on loopback)


def _tokens(keys_file: Path) -> TokenService:
    s = Settings()
    return TokenService(load_or_create(keys_file), issuer=s.jwt_issuer, access_ttl_s=600,
                        refresh_ttl_s=600, card_ttl_s=60)


async def _entered(base: str, program: str, lat: float, lon: float) -> list[set[str]]:
    """`ROUNDS` fresh members each ping once from (lat, lon), each over a new connection;
    for each, the set of store ids entered."""
    results = []
    for _ in range(ROUNDS):
        # a new connection each time (one TLS context for all: building one costs ~35 ms)
        async with httpx.AsyncClient(base_url=base, verify=TLS) as c:
            version = (await c.get("/v1/privacy/notice")).json()["version"]
            r = await c.post(f"/v1/programs/{program}/members", json={
                "email": f"{uuid.uuid4().hex[:8]}@example.com", "password": "a long password",
                "first_name": "Sam", "consents": [
                    {"purpose": "location_offers", "granted": True,
                     "policy_version": version}]})
            assert r.status_code == 201, r.text
            me = {"Authorization": f"Bearer {r.json()['access_token']}"}
        async with httpx.AsyncClient(base_url=base, verify=TLS) as c:
            r = await c.post("/v1/me/pings", headers=me,
                             json={"pings": [ping(lat, lon, ago(5))]})
            assert r.status_code == 200, r.text
            results.append({v["store_id"] for v in r.json()["visits"] if v["event"] == "enter"})
    return results


async def test_zone_changes_reach_every_worker_at_once(
    db_url: str, keys_file: Path, tmp_path: Path
) -> None:
    tokens = _tokens(keys_file)
    with running_server(db_url, keys_file, tmp_path, workers=2) as base:
        async with httpx.AsyncClient(base_url=base) as c:
            r = await c.post("/v1/programs", json=PROGRAM, headers=admin(tokens))
            program = r.json()["id"]
            mgr = manager(tokens, program)
            # Warm both workers' snapshots while the program has no store.
            assert await _entered(base, program, *INSIDE) == [set()] * ROUNDS

            r = await c.post(f"/v1/programs/{program}/stores", headers=mgr,
                             json={"code": "A", "name": "A", "zone": circle()})
            store: Any = r.json()["id"]
            assert await _entered(base, program, *INSIDE) == [{store}] * ROUNDS

            r = await c.patch(f"/v1/programs/{program}/stores/{store}", headers=mgr,
                              json={"zone": circle(lon=FAR[1], lat=FAR[0])})
            assert r.status_code == 200
            assert await _entered(base, program, *INSIDE) == [set()] * ROUNDS
            assert await _entered(base, program, *FAR) == [{store}] * ROUNDS

            r = await c.delete(f"/v1/programs/{program}/stores/{store}", headers=mgr)
            assert r.status_code == 204
            assert await _entered(base, program, *FAR) == [set()] * ROUNDS
