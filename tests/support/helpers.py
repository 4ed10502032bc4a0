"""Scenario building blocks for API tests: each goes through the public HTTP API, as a client
would, so tests exercise the same paths users do."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from litestar import Litestar
from litestar.testing import AsyncTestClient

from api.auth.tokens import TokenService

Client = AsyncTestClient[Litestar]

PROGRAM: dict[str, Any] = {
    "name": "Gelato Uno", "currency": "EUR", "timezone": "Europe/Paris",
    "earn_rate": {"points": 1, "per_amount": 100}, "points_expiry_days": 365,
    "tiers": [{"name": "silver", "min_points_12m": 0, "earn_multiplier": 1},
              {"name": "gold", "min_points_12m": 1000, "earn_multiplier": 1.5}],
    "stored_value": True,
}

# A circle of 100 m in central Paris, and a point well inside / well outside it.
CENTER = (2.3522, 48.8566)  # lon, lat
INSIDE = (48.8566, 2.3522)  # lat, lon
FAR = (48.8666, 2.3722)  # about 1.8 km away


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def admin(tokens: TokenService) -> dict[str, str]:
    return bearer(tokens.mint_access(sub=uuid.uuid4(), role="admin"))


def manager(tokens: TokenService, program_id: str) -> dict[str, str]:
    return bearer(tokens.mint_access(sub=uuid.uuid4(), role="manager",
                                     program_id=uuid.UUID(program_id)))


def staff(tokens: TokenService, program_id: str, *store_ids: str) -> dict[str, str]:
    return bearer(tokens.mint_access(sub=uuid.uuid4(), role="staff",
                                     program_id=uuid.UUID(program_id),
                                     store_ids=[uuid.UUID(s) for s in store_ids]))


async def create_program(client: Client, tokens: TokenService, **over: Any) -> str:
    r = await client.post("/v1/programs", json={**PROGRAM, **over}, headers=admin(tokens))
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def circle(lon: float = CENTER[0], lat: float = CENTER[1], radius_m: float = 100
           ) -> dict[str, Any]:
    return {"type": "Circle", "center": [lon, lat], "radius_m": radius_m}


async def create_store(client: Client, tokens: TokenService, program_id: str,
                       code: str = "S1", zone: dict[str, Any] | None = None) -> str:
    r = await client.post(f"/v1/programs/{program_id}/stores",
                          json={"code": code, "name": f"Store {code}", "zone": zone or circle()},
                          headers=manager(tokens, program_id))
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


async def notice_version(client: Client) -> str:
    """The version of the privacy notice the app shows: a consent names it."""
    r = await client.get("/v1/privacy/notice")
    assert r.status_code == 200, r.text
    return str(r.json()["version"])


async def signup(client: Client, program_id: str, email: str | None = None,
                 consents: list[str] = ()) -> tuple[str, dict[str, str]]:
    """A new member; returns (member id, auth headers). Consents listed are granted."""
    version = await notice_version(client) if consents else ""
    body = {"email": email or f"m{uuid.uuid4().hex[:10]}@example.com",
            "password": "a long enough password", "first_name": "Alex",
            "consents": [{"purpose": p, "granted": True, "policy_version": version}
                         for p in consents]}
    r = await client.post(f"/v1/programs/{program_id}/members", json=body)
    assert r.status_code == 201, r.text
    data = r.json()
    return str(data["member"]["id"]), bearer(data["access_token"])


async def set_consent(client: Client, headers: dict[str, str], purpose: str, granted: bool
                      ) -> None:
    r = await client.put(f"/v1/me/consents/{purpose}", headers=headers, json={
        "granted": granted, "policy_version": await notice_version(client)})
    assert r.status_code == 200, r.text


def ping(lat: float, lon: float, at: datetime, accuracy_m: float = 10) -> dict[str, Any]:
    return {"lat": lat, "lon": lon, "accuracy_m": accuracy_m, "at": at.isoformat()}


def now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def ago(seconds: float) -> datetime:
    return now() - timedelta(seconds=seconds)
