"""Vouchers at the till: used on their own or inside a purchase, once, only in their stores,
only while valid, only by their member; each misuse a 4xx problem; a refund of the purchase
that used one makes it usable again; the cashier's read is in the member's access log."""

from __future__ import annotations

import uuid
from typing import Any, NamedTuple

import asyncpg
from support.helpers import Client, bearer, create_program, create_store, signup, staff
from support.rewards_helpers import create_reward, give_points

from api.auth.tokens import TokenService


class Shop(NamedTuple):
    program: str
    store: str
    other_store: str
    till: dict[str, str]  # staff of `store`
    other_till: dict[str, str]  # staff of `other_store`


async def shop(client: Client, tokens: TokenService) -> Shop:
    program = await create_program(client, tokens)
    store = await create_store(client, tokens, program, code="S1")
    other = await create_store(client, tokens, program, code="S2")
    return Shop(program, store, other, staff(tokens, program, store),
                staff(tokens, program, other))


async def member_with_voucher(client: Client, conn: asyncpg.Connection, s: Shop,
                              reward: dict[str, Any]) -> tuple[dict[str, str], str, str]:
    """A member holding a voucher of `reward`: (headers, card number, code)."""
    member_id, me = await signup(client, s.program)
    await give_points(conn, member_id, 1000)
    r = await client.post(f"/v1/me/rewards/{reward['id']}/claims", headers=me)
    assert r.status_code == 201, r.text
    card = (await client.get("/v1/me/card", headers=me)).json()["card_number"]
    return me, card, r.json()["voucher"]["code"]


async def pos(client: Client, headers: dict[str, str], path: str, body: dict[str, Any], *,
              key: str | None = None) -> Any:
    return await client.post(f"/v1/pos/{path}", json=body,
                             headers={**headers, "Idempotency-Key": key or uuid.uuid4().hex})


async def voucher_status(client: Client, me: dict[str, str]) -> str:
    items = (await client.get("/v1/me/vouchers", headers=me)).json()["items"]
    return str(items[0]["status"])


async def test_a_voucher_used_on_its_own_cannot_be_used_again_and_a_retry_replays(
        client: Client, tokens: TokenService, conn: asyncpg.Connection) -> None:
    s = await shop(client, tokens)
    reward = await create_reward(client, tokens, s.program, name="Free coffee", value=350)
    me, _, code = await member_with_voucher(client, conn, s, reward)
    typed = f"{code[:4].lower()}-{code[4:]}"  # as a cashier might type it
    first = await pos(client, s.till, "vouchers/redeem", {"store_id": s.store, "code": typed},
                      key="k1")
    assert first.status_code == 200, first.text
    out = first.json()
    assert (out["code"], out["name"], out["value"], out["store_id"]) == (
        code, "Free coffee", 350, s.store)
    again = await pos(client, s.till, "vouchers/redeem", {"store_id": s.store, "code": typed},
                      key="k1")
    assert again.status_code == 200 and again.json() == out
    assert again.headers["Idempotent-Replayed"] == "true"
    twice = await pos(client, s.till, "vouchers/redeem",
                      {"store_id": s.store, "code": f"voucher:{code}"})
    assert twice.status_code == 422, twice.text
    assert twice.json()["type"] == "/problems/voucher-already-used"
    assert twice.json()["field"] == "code"
    assert await voucher_status(client, me) == "used"
    log = (await client.get("/v1/me/access-log", headers=me)).json()["items"]
    assert [(e["action"], e["actor_role"], e["store_id"]) for e in log] == [
        ("till.voucher", "staff", s.store)]


async def test_misuse_at_the_till_is_a_problem_naming_the_rule(
        client: Client, tokens: TokenService, conn: asyncpg.Connection) -> None:
    s = await shop(client, tokens)
    reward = await create_reward(client, tokens, s.program, store_ids=[s.store])
    me, card, code = await member_with_voucher(client, conn, s, reward)
    _, other_card, _ = await member_with_voucher(client, conn, s, reward)
    other_program = await shop(client, tokens)
    cases = [
        (s.other_till, {"store_id": s.other_store, "code": code}, 422,
         "/problems/voucher-not-valid-at-store"),
        (s.till, {"store_id": s.store, "code": code, "card_number": other_card}, 422,
         "/problems/voucher-of-another-member"),
        (s.till, {"store_id": s.other_store, "code": code}, 403, "/problems/forbidden"),
        (other_program.till, {"store_id": other_program.store, "code": code}, 404,
         "/problems/not-found"),
        (s.till, {"store_id": s.store, "code": "ZZZZZZZZZZ"}, 404, "/problems/not-found"),
        (s.till, {"store_id": s.store, "code": "not a code!"}, 404, "/problems/not-found"),
        (s.till, {"store_id": s.store, "code": code, "card_number": card,
                  "qr_payload": "x"}, 400, "/problems/validation"),
        (me, {"store_id": s.store, "code": code}, 403, "/problems/forbidden"),
    ]
    for headers, body, status, problem in cases:
        r = await pos(client, headers, "vouchers/redeem", body)
        assert (r.status_code, r.json()["type"]) == (status, problem), (body, r.text)
    r = await client.post("/v1/pos/vouchers/redeem", json={"store_id": s.store, "code": code},
                          headers=s.till)
    assert r.status_code == 400  # no Idempotency-Key
    assert await voucher_status(client, me) == "active"  # every refusal left it untouched
    await conn.execute("UPDATE vouchers SET expires_at = claimed_at WHERE code = $1", code)
    r = await pos(client, s.till, "vouchers/redeem",
                  {"store_id": s.store, "code": code, "card_number": card})
    assert (r.status_code, r.json()["type"]) == (422, "/problems/voucher-expired")


async def test_a_voucher_inside_a_purchase_takes_its_value_off_once(
        client: Client, tokens: TokenService, conn: asyncpg.Connection) -> None:
    s = await shop(client, tokens)
    reward = await create_reward(client, tokens, s.program, kind="amount_off", value=500)
    me, card, code = await member_with_voucher(client, conn, s, reward)
    _, other_card, _ = await member_with_voucher(client, conn, s, reward)
    before = (await client.get("/v1/me", headers=me)).json()["points_balance"]
    body = {"store_id": s.store, "card_number": card, "receipt_id": "R-1", "amount": 2000,
            "currency": "EUR", "vouchers": [code]}
    r = await pos(client, s.till, "purchases", body, key="p1")
    assert r.status_code == 201, r.text
    out = r.json()
    assert (out["discount"], out["points_earned"]) == (500, 15)  # earned on 1500
    assert out["vouchers_used"] == [(await client.get("/v1/me/vouchers", headers=me)).json()[
        "items"][0]["id"]]
    assert out["points_balance"] == before + 15
    replay = await pos(client, s.till, "purchases", body, key="p1")
    assert replay.status_code == 201 and replay.json() == out
    assert await voucher_status(client, me) == "used"
    for extra, problem in (({"receipt_id": "R-2"}, "/problems/voucher-already-used"),
                           ({"receipt_id": "R-3", "card_number": other_card},
                            "/problems/voucher-of-another-member")):
        r = await pos(client, s.till, "purchases", {**body, **extra})
        assert (r.status_code, r.json()["type"], r.json()["field"]) == (
            422, problem, "vouchers[0]"), r.text
    r = await pos(client, s.till, "purchases", {**body, "receipt_id": "R-4",
                                                "vouchers": ["ZZZZZZZZZZ"]})
    assert (r.status_code, r.json()["field"]) == (422, "vouchers[0]")


async def test_a_refund_of_the_purchase_makes_its_voucher_usable_again(
        client: Client, tokens: TokenService, conn: asyncpg.Connection) -> None:
    s = await shop(client, tokens)
    reward = await create_reward(client, tokens, s.program, kind="amount_off", value=300)
    me, card, code = await member_with_voucher(client, conn, s, reward)
    body = {"store_id": s.store, "card_number": card, "receipt_id": "R-1", "amount": 1000,
            "currency": "EUR", "vouchers": [code]}
    bought = (await pos(client, s.till, "purchases", body)).json()
    part = await pos(client, s.till, "refunds", {"store_id": s.store, "amount": 200,
                                                 "transaction_id": bought["transaction_id"]})
    assert part.status_code == 201 and part.json()["vouchers_restored"] == []
    assert await voucher_status(client, me) == "used"  # a partial refund keeps it used
    rest = await pos(client, s.till, "refunds", {"store_id": s.store,
                                                 "transaction_id": bought["transaction_id"]})
    assert rest.status_code == 201, rest.text
    assert rest.json()["vouchers_restored"] == bought["vouchers_used"]
    assert await voucher_status(client, me) == "active"
    again = await pos(client, s.till, "purchases", {**body, "receipt_id": "R-2"})
    assert again.status_code == 201 and again.json()["discount"] == 300


async def test_a_staff_token_of_the_store_and_a_manager_may_redeem_others_may_not(
        client: Client, tokens: TokenService, conn: asyncpg.Connection) -> None:
    s = await shop(client, tokens)
    reward = await create_reward(client, tokens, s.program)
    _, _, code = await member_with_voucher(client, conn, s, reward)
    mgr = bearer(tokens.mint_access(sub=uuid.uuid4(), role="manager",
                                    program_id=uuid.UUID(s.program)))
    admin = bearer(tokens.mint_access(sub=uuid.uuid4(), role="admin"))
    r = await pos(client, admin, "vouchers/redeem", {"store_id": s.store, "code": code})
    assert r.status_code == 403
    r = await pos(client, mgr, "vouchers/redeem", {"store_id": s.other_store, "code": code})
    assert r.status_code == 200, r.text
