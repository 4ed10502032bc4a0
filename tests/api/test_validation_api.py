"""Bad input gets a clear 4xx problem+json naming the problem, never a 500."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from support.helpers import bearer

from api.auth.tokens import TokenService

Client = AsyncTestClient[Litestar]

GOOD_PROGRAM: dict[str, Any] = {
    "name": "Café Test", "currency": "EUR", "timezone": "Europe/Paris",
    "earn_rate": {"points": 1, "per_amount": 100}, "points_expiry_days": 365,
    "tiers": [{"name": "Bronze", "min_points_12m": 0, "earn_multiplier": 1}],
    "stored_value": True,
}


def _program(**over: Any) -> dict[str, Any]:
    return {**GOOD_PROGRAM, **over}


CASES: list[tuple[str, str, bytes | dict[str, Any], int, str]] = [
    # (id, path, body, status, text the problem must mention)
    ("malformed-json", "/v1/programs", b'{"name": "x",', 400, "JSON"),
    ("not-an-object", "/v1/programs", b"[1, 2, 3]", 400, "object"),
    ("deep-nesting", "/v1/programs", b"[" * 100_000, 400, "deeper than"),
    ("unknown-field", "/v1/programs", _program(colour="red"), 400, "colour"),
    ("wrong-type", "/v1/programs", _program(points_expiry_days="soon"), 400,
     "points_expiry_days"),
    ("missing-field", "/v1/programs", {k: v for k, v in GOOD_PROGRAM.items() if k != "name"},
     400, "name"),
    ("out-of-range", "/v1/programs", _program(points_expiry_days=0), 400,
     "points_expiry_days"),
    ("nested-out-of-range", "/v1/programs",
     _program(earn_rate={"points": 1, "per_amount": -5}), 400, "earn_rate.per_amount"),
    ("bad-currency", "/v1/programs", _program(currency="euro"), 400, "currency"),
    ("token-unknown-grant", "/v1/auth/token", {"grant_type": "magic", "email": "a@b.c"}, 400,
     "grant_type"),
    ("token-unknown-field", "/v1/auth/token",
     {"grant_type": "password", "email": "a@b.c", "password": "x", "admin": True}, 400,
     "admin"),
]


@pytest.mark.parametrize(("path", "body", "status", "mentions"),
                         [c[1:] for c in CASES], ids=[c[0] for c in CASES])
async def test_bad_input_gets_a_problem_naming_it(
    client: Client, tokens: TokenService, path: str, body: bytes | dict[str, Any], status: int,
    mentions: str,
) -> None:
    headers = {**bearer(tokens.mint_access(sub=uuid.uuid4(), role="admin")),
               "Content-Type": "application/json"}
    if isinstance(body, bytes):
        r = await client.post(path, content=body, headers=headers)
    else:
        r = await client.post(path, json=body, headers=headers)
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    problem = r.json()
    assert problem["status"] == status
    assert problem["type"].startswith("/problems/")
    assert mentions.lower() in (problem["detail"] + str(problem.get("errors"))).lower()


async def test_an_oversized_body_is_413_problem(client: Client, tokens: TokenService) -> None:
    headers = bearer(tokens.mint_access(sub=uuid.uuid4(), role="admin"))
    huge = _program(name="x" * 2_000_000)
    r = await client.post("/v1/programs", json=huge, headers=headers)
    assert r.status_code == 413
    assert r.json()["type"] == "/problems/body-too-large"


async def test_an_unknown_route_is_a_404_problem(client: Client, tokens: TokenService) -> None:
    r = await client.get("/v1/nothing-here",
                         headers=bearer(tokens.mint_access(sub=uuid.uuid4(), role="admin")))
    assert r.status_code == 404
    assert r.headers["content-type"].startswith("application/problem+json")
