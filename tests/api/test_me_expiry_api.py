"""GET /v1/me shows the next points expiry (issue 10, item 20), on the program's wall clock:
the points that expire on the first local date any does, and when the first of them goes."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import asyncpg
from support.helpers import (
    Client,
    create_program,
    create_store,
    manager,
    notice_version,
    signup,
    staff,
)

from api.auth.tokens import TokenService


async def test_me_shows_the_next_expiry_with_the_programs_offset(
        client: Client, tokens: TokenService, conn: asyncpg.Connection) -> None:
    program = await create_program(client, tokens, timezone="America/New_York",
                                   currency="USD")
    store = await create_store(client, tokens, program, zone={
        "type": "Circle", "center": [-73.9857, 40.7484], "radius_m": 80})
    _, me = await signup(client, program)
    assert (await client.get("/v1/me", headers=me)).json()["next_expiry"] is None
    card = (await client.get("/v1/me/card", headers=me)).json()["card_number"]
    for receipt, amount in (("r1", 1200), ("r2", 3400), ("r3", 500)):
        r = await client.post("/v1/pos/purchases", json={
            "store_id": store, "card_number": card, "receipt_id": receipt, "amount": amount,
            "currency": "USD"}, headers={**staff(tokens, program, store),
                                         "Idempotency-Key": receipt})
        assert r.status_code == 201, r.text
    ny = ZoneInfo("America/New_York")
    soon = (datetime.now(UTC) + timedelta(days=3)).astimezone(ny).replace(
        hour=9, minute=0, second=0, microsecond=0)
    # r1 and r2 expire on the same local day (09:00 and 23:30 New York), r3 a year on.
    # 23:30 in New York is already the next day in UTC: the day is the program's.
    for points, at in ((12, soon), (34, soon.replace(hour=23, minute=30))):
        await conn.execute("UPDATE points_lots SET expires_at = $2 WHERE points = $1",
                           points, at)
    await conn.execute("UPDATE points_lots SET expires_at = now() - interval '1 hour', "
                       "earned_at = now() - interval '2 hours' WHERE points = 5")
    body = (await client.get("/v1/me", headers=me)).json()
    assert body["next_expiry"] == {"at": soon.isoformat(), "date": str(soon.date()),
                                   "points": 46}
    assert body["next_expiry"]["at"].endswith(("-05:00", "-04:00"))
    assert uuid.UUID(body["id"])


async def test_times_shown_to_the_member_carry_the_programs_offset(
        client: Client, tokens: TokenService) -> None:
    program = await create_program(client, tokens, timezone="Asia/Tokyo", currency="JPY")
    member_id, me = await signup(client, program)
    r = await client.put("/v1/me/consents/marketing", headers=me, json={
        "granted": True, "policy_version": await notice_version(client)})
    assert r.status_code == 200 and r.json()["at"].endswith("+09:00"), r.text
    consents = (await client.get("/v1/me/consents", headers=me)).json()
    assert [h["at"][-6:] for h in consents["history"]] == ["+09:00"]
    r = await client.get(f"/v1/programs/{program}/members/{member_id}",
                         headers=manager(tokens, program))
    assert r.status_code == 200, r.text  # a logged support read
    (entry,) = (await client.get("/v1/me/access-log", headers=me)).json()["items"]
    assert entry["at"].endswith("+09:00")
