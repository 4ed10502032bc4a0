"""Dangerous member actions re-authenticate: erasing myself needs my password, changing my PIN
my password and the current PIN; wrong PINs count with the till's; attempts are
rate-limited per client address like logins."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import msgspec
import pytest
from litestar.testing import AsyncTestClient
from support.helpers import Client, bearer, create_program, create_store, signup

from api.app import create_app
from api.auth.tokens import TokenService
from api.config import Settings

PASSWORD = "a long enough password"  # the one `signup` uses


async def put_pin(client: Client, me: dict[str, str], **body: Any) -> Any:
    return await client.put("/v1/me/pin", headers=me, json=body)


async def test_erasing_myself_needs_my_password(client: Client, tokens: TokenService) -> None:
    pid = await create_program(client, tokens)
    _, me = await signup(client, pid)
    r = await client.request("DELETE", "/v1/me", headers=me)
    assert r.status_code == 400 and "body is missing" in r.json()["detail"]
    r = await client.request("DELETE", "/v1/me", headers=me, json={})
    assert r.status_code == 400 and r.json()["errors"][0]["field"] == "password"
    r = await client.request("DELETE", "/v1/me", headers=me, json={"password": "guess"})
    assert r.status_code == 403, r.text
    assert (r.json()["type"], r.json()["field"]) == ("/problems/wrong-password", "password")
    assert (await client.get("/v1/me", headers=me)).status_code == 200  # still there
    r = await client.request("DELETE", "/v1/me", headers=me, json={"password": PASSWORD})
    assert r.status_code == 204
    assert (await client.get("/v1/me", headers=me)).status_code == 401


async def test_a_first_pin_needs_the_password_and_a_change_the_current_pin_too(
        client: Client, tokens: TokenService) -> None:
    pid = await create_program(client, tokens)
    _, me = await signup(client, pid)
    r = await put_pin(client, me, pin="11111")
    assert r.status_code == 400 and "password" in r.text
    r = await put_pin(client, me, pin="11111", password="guess")
    assert r.status_code == 403 and r.json()["type"] == "/problems/wrong-password"
    assert (await put_pin(client, me, pin="11111", password=PASSWORD)).status_code == 204

    r = await put_pin(client, me, pin="22222", password=PASSWORD)
    assert r.status_code == 422
    assert (r.json()["type"], r.json()["field"]) == ("/problems/pin-required", "current_pin")
    r = await put_pin(client, me, pin="22222", password="guess", current_pin="11111")
    assert r.status_code == 403
    r = await put_pin(client, me, pin="22222", password=PASSWORD, current_pin="99999")
    assert r.status_code == 422
    problem = r.json()
    assert (problem["type"], problem["field"]) == ("/problems/wrong-pin", "current_pin")
    assert problem["attempts_left"] == 4
    r = await put_pin(client, me, pin="22222", password=PASSWORD, current_pin="11111")
    assert r.status_code == 204
    # The new PIN is the one the till now takes.
    r = await put_pin(client, me, pin="33333", password=PASSWORD, current_pin="11111")
    assert r.status_code == 422 and r.json()["type"] == "/problems/wrong-pin"


async def test_wrong_current_pins_count_with_the_tills_and_a_lock_stops_both(
        client: Client, tokens: TokenService) -> None:
    pid = await create_program(client, tokens)
    sid = await create_store(client, tokens, pid)
    _, me = await signup(client, pid)
    assert (await put_pin(client, me, pin="11111", password=PASSWORD)).status_code == 204
    card = (await client.get("/v1/me/card", headers=me)).json()["card_number"]
    till = {**bearer(tokens.mint_access(sub=uuid.uuid4(), role="staff",
                                        program_id=uuid.UUID(pid), store_ids=[uuid.UUID(sid)]))}

    async def buy_with(pin: str) -> Any:
        return await client.post("/v1/pos/purchases", headers={
            **till, "Idempotency-Key": uuid.uuid4().hex}, json={
            "store_id": sid, "card_number": card, "receipt_id": uuid.uuid4().hex,
            "amount": 100, "currency": "EUR", "stored_value": {"amount": 1, "pin": pin}})

    for _ in range(2):
        assert (await buy_with("00000")).json()["attempts_left"] in (4, 3)
    for left in (2, 1):
        r = await put_pin(client, me, pin="22222", password=PASSWORD, current_pin="00000")
        assert r.json()["attempts_left"] == left
    r = await put_pin(client, me, pin="22222", password=PASSWORD, current_pin="00000")
    assert r.status_code == 422 and r.json()["type"] == "/problems/pin-locked"
    until = r.json()["locked_until"]
    # Locked: neither the right PIN at the till nor a change with the right PIN goes through.
    r = await put_pin(client, me, pin="22222", password=PASSWORD, current_pin="11111")
    assert r.json()["type"] == "/problems/pin-locked" and r.json()["locked_until"] == until
    assert r.json()["field"] == "current_pin"
    r = await buy_with("11111")
    assert r.json()["type"] == "/problems/pin-locked"
    assert datetime.fromisoformat(r.json()["locked_until"]) == datetime.fromisoformat(until)


@pytest.fixture
async def strict_client(settings: Settings) -> AsyncIterator[tuple[Client, TokenService]]:
    app = create_app(msgspec.structs.replace(settings, credential_attempts_per_minute=3))
    async with AsyncTestClient(app=app) as c:
        yield c, app.state.tokens


async def test_password_and_pin_checks_are_rate_limited_like_logins(
        strict_client: tuple[Client, TokenService]) -> None:
    client, tokens = strict_client
    pid = await create_program(client, tokens)
    _, me = await signup(client, pid)  # 1 of 3 (a sign-up counts)
    r = await client.request("DELETE", "/v1/me", headers=me, json={"password": "guess 1"})
    assert r.status_code == 403  # 2 of 3
    r = await put_pin(client, me, pin="11111", password="guess 2")
    assert r.status_code == 403  # 3 of 3
    for attempt in (
            client.request("DELETE", "/v1/me", headers=me, json={"password": PASSWORD}),
            put_pin(client, me, pin="11111", password=PASSWORD)):
        r = await attempt
        assert r.status_code == 429, r.text
        assert int(r.headers["retry-after"]) > 0
    # Reads are not counted.
    assert (await client.get("/v1/me", headers=me)).status_code == 200
