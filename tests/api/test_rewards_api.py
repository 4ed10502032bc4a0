"""The rewards catalogue over HTTP: managers create, read, list, change (recorded) and retire
rewards; members list what their tier sees, each affordable or not, claim (points debited
through the ledger, a voucher created, idempotent), and list their vouchers; roles, programs
and tiers are enforced; refusals are problems naming the rule."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
from support.campaign_helpers import set_tier
from support.helpers import (
    Client,
    admin,
    bearer,
    create_program,
    create_store,
    manager,
    signup,
    staff,
)
from support.rewards_helpers import create_reward, give_points, reward_body, rewards_url

from api.auth.tokens import TokenService


async def test_a_manager_creates_a_reward_and_reads_it_back(
        client: Client, tokens: TokenService) -> None:
    program = await create_program(client, tokens)
    store = await create_store(client, tokens, program)
    body = reward_body(store_ids=[store], tiers=["gold"], stock=10, per_member_limit=2,
                       image_url="https://cdn.example.com/coffee.png", value=350)
    r = await client.post(rewards_url(program), json=body, headers=manager(tokens, program))
    assert r.status_code == 201, r.text
    out = r.json()
    assert out["status"] == "active" and out["revision"] == 1 and out["claimed"] == 0
    assert (out["stock"], out["stock_left"], out["per_member_limit"]) == (10, 10, 2)
    assert out["store_ids"] == [store] and out["tiers"] == ["gold"] and out["value"] == 350
    r = await client.get(rewards_url(program, out["id"]), headers=manager(tokens, program))
    assert r.status_code == 200 and r.json() == out


async def test_rewards_are_listed_oldest_first_in_pages_with_a_status_filter(
        client: Client, tokens: TokenService) -> None:
    program = await create_program(client, tokens)
    ids = [(await create_reward(client, tokens, program, name=f"r{i}"))["id"]
           for i in range(3)]
    h = manager(tokens, program)
    r = await client.post(rewards_url(program, ids[1], "retire"), headers=h)
    assert r.status_code == 200 and r.json()["status"] == "retired"
    first = (await client.get(rewards_url(program), params={"limit": 2}, headers=h)).json()
    assert [x["id"] for x in first["items"]] == ids[:2] and first["next_cursor"]
    rest = (await client.get(rewards_url(program), params={"cursor": first["next_cursor"]},
                             headers=h)).json()
    assert [x["id"] for x in rest["items"]] == ids[2:] and rest["next_cursor"] is None
    retired = (await client.get(rewards_url(program), params={"status": "retired"},
                                headers=h)).json()
    assert [x["id"] for x in retired["items"]] == [ids[1]]


async def test_changes_and_retirement_are_recorded_with_who_when_before_and_after(
        client: Client, tokens: TokenService) -> None:
    program = await create_program(client, tokens)
    reward = await create_reward(client, tokens, program, points_cost=100, stock=5)
    who = uuid.uuid4()
    h = bearer(tokens.mint_access(sub=who, role="manager", program_id=uuid.UUID(program)))
    r = await client.patch(rewards_url(program, reward["id"]),
                           json={"points_cost": 150, "stock": None}, headers=h)
    assert r.status_code == 200, r.text
    changed = r.json()
    assert (changed["points_cost"], changed["stock"], changed["revision"]) == (150, None, 2)
    assert changed["name"] == reward["name"]
    same = await client.patch(rewards_url(program, reward["id"]), json={"points_cost": 150},
                              headers=h)
    assert same.json()["revision"] == 2  # nothing changed: no revision
    await client.post(rewards_url(program, reward["id"], "retire"), headers=h)
    again = await client.post(rewards_url(program, reward["id"], "retire"), headers=h)
    assert again.status_code == 200 and again.json()["revision"] == 3
    revs = (await client.get(rewards_url(program, reward["id"], "revisions"),
                             headers=h)).json()["items"]
    assert [v["action"] for v in revs] == ["retire", "update", "create"]
    assert revs[1]["changed_by"] == str(who)
    assert revs[1]["before"]["spec"]["points_cost"] == 100
    assert revs[1]["after"]["spec"]["points_cost"] == 150
    assert revs[0]["after"]["status"] == "retired" and revs[2]["before"] is None
    page = (await client.get(rewards_url(program, reward["id"], "revisions"),
                             params={"limit": 1}, headers=h)).json()
    older = (await client.get(rewards_url(program, reward["id"], "revisions"),
                              params={"cursor": page["next_cursor"]}, headers=h)).json()
    assert [v["revision"] for v in older["items"]] == [2, 1]


async def test_bad_shapes_are_400_and_broken_rules_422_each_naming_the_field(
        client: Client, tokens: TokenService) -> None:
    program = await create_program(client, tokens)
    other = await create_program(client, tokens)
    foreign_store = await create_store(client, tokens, other)
    h = manager(tokens, program)
    for body, field in (({**reward_body(), "colour": "red"}, "colour"),
                        ({**reward_body(), "kind": "cash"}, "kind"),
                        ({**reward_body(), "points_cost": 0}, "points_cost"),
                        ({**reward_body(), "name": "a\u0000b"}, "name"),
                        ({**reward_body(), "image_url": "javascript:alert(1)"}, "image_url"),
                        ({**reward_body(), "claimable_from": "2026-01-01T00:00:00"},
                         "claimable_from")):
        r = await client.post(rewards_url(program), json=body, headers=h)
        assert r.status_code == 400, (body, r.text)
        assert r.json()["errors"][0]["field"] == field
    for body, field in ((reward_body(kind="amount_off"), "value"),
                        (reward_body(tiers=["platinum"]), "tiers[0]"),
                        (reward_body(store_ids=[foreign_store]), "store_ids[0]"),
                        (reward_body(claimable_from="2026-02-01T00:00:00Z",
                                     claimable_until="2026-01-01T00:00:00Z"),
                         "claimable_until")):
        r = await client.post(rewards_url(program), json=body, headers=h)
        assert r.status_code == 422, (body, r.text)
        assert r.json()["field"] == field
    no_purse = await create_program(client, tokens, stored_value=False)
    r = await client.post(rewards_url(no_purse),
                          json=reward_body(kind="stored_value", value=500),
                          headers=manager(tokens, no_purse))
    assert r.status_code == 422 and r.json()["field"] == "kind"


async def test_only_managers_of_the_program_and_admins_manage_rewards(
        client: Client, tokens: TokenService) -> None:
    program = await create_program(client, tokens)
    other = await create_program(client, tokens)
    store = await create_store(client, tokens, program)
    reward = await create_reward(client, tokens, program)
    foreign = await create_reward(client, tokens, other)
    _, member = await signup(client, program)
    url = rewards_url(program, reward["id"])
    for headers in (member, staff(tokens, program, store), manager(tokens, other)):
        for method, path, body in (("POST", rewards_url(program), reward_body()),
                                   ("GET", rewards_url(program), None), ("GET", url, None),
                                   ("PATCH", url, {"name": "x"}),
                                   ("POST", f"{url}/retire", None),
                                   ("GET", f"{url}/revisions", None),
                                   ("GET", f"{url}/stats", None)):
            r = await client.request(method, path, json=body, headers=headers)
            assert r.status_code == 403, (method, path, r.text)
    r = await client.get(url)
    assert r.status_code == 401
    r = await client.get(url, headers=admin(tokens))
    assert r.status_code == 200
    for method, path in (("GET", ""), ("PATCH", ""), ("POST", "/retire"),
                         ("GET", "/revisions"), ("GET", "/stats")):
        r = await client.request(method, rewards_url(program, foreign["id"]) + path,
                                 json={"name": "x"} if method == "PATCH" else None,
                                 headers=manager(tokens, program))
        assert r.status_code == 404, (method, path, r.text)
        assert r.json()["type"] == "/problems/not-found"


async def test_a_stock_below_what_was_claimed_is_refused(
        client: Client, tokens: TokenService, conn: asyncpg.Connection) -> None:
    program = await create_program(client, tokens)
    reward = await create_reward(client, tokens, program, stock=5, points_cost=10)
    for _ in range(2):
        member_id, me = await signup(client, program)
        await give_points(conn, member_id, 10)
        r = await client.post(f"/v1/me/rewards/{reward['id']}/claims", headers=me)
        assert r.status_code == 201, r.text
    h = manager(tokens, program)
    r = await client.patch(rewards_url(program, reward["id"]), json={"stock": 1}, headers=h)
    assert r.status_code == 422 and r.json()["field"] == "stock"
    r = await client.patch(rewards_url(program, reward["id"]), json={"stock": 2}, headers=h)
    assert r.status_code == 200 and r.json()["stock_left"] == 0


# --- members ------------------------------------------------------------------------------------


async def test_members_see_the_rewards_of_their_tier_each_marked_affordable_or_not(
        client: Client, tokens: TokenService, conn: asyncpg.Connection) -> None:
    program = await create_program(client, tokens)
    other = await create_program(client, tokens)
    cheap = await create_reward(client, tokens, program, name="cheap", points_cost=50)
    dear = await create_reward(client, tokens, program, name="dear", points_cost=500)
    gold = await create_reward(client, tokens, program, name="gold", tiers=["gold"])
    retired = await create_reward(client, tokens, program, name="old")
    await client.post(rewards_url(program, retired["id"], "retire"),
                      headers=manager(tokens, program))
    past = datetime.now(UTC) - timedelta(days=1)
    await create_reward(client, tokens, program, name="closed",
                        claimable_from=(past - timedelta(days=1)).isoformat(),
                        claimable_until=past.isoformat())
    soon = await create_reward(client, tokens, program, name="soon",
                               claimable_from=(datetime.now(UTC) + timedelta(days=1)
                                               ).isoformat())
    await create_reward(client, tokens, other, name="elsewhere")
    member_id, me = await signup(client, program)
    await give_points(conn, member_id, 120)

    r = await client.get("/v1/me/rewards", headers=me)
    assert r.status_code == 200, r.text
    page = r.json()
    seen = {x["name"]: x for x in page["items"]}
    assert list(seen) == ["cheap", "dear", "soon"] and page["points_available"] == 120
    assert seen["cheap"]["affordable"] and seen["cheap"]["claimable"]
    assert not seen["dear"]["affordable"] and not seen["dear"]["claimable"]
    assert seen["soon"]["affordable"] and not seen["soon"]["claimable"]
    assert seen["cheap"]["id"] == cheap["id"] and seen["dear"]["id"] == dear["id"]
    assert seen["soon"]["id"] == soon["id"]
    await set_tier(conn, member_id, "gold")
    names = [x["name"] for x in (await client.get("/v1/me/rewards", headers=me)).json()["items"]]
    assert names == ["cheap", "dear", "gold", "soon"]
    first = (await client.get("/v1/me/rewards", params={"limit": 3}, headers=me)).json()
    rest = (await client.get("/v1/me/rewards", params={"cursor": first["next_cursor"]},
                             headers=me)).json()
    assert [x["id"] for x in first["items"] + rest["items"]] == [
        cheap["id"], dear["id"], gold["id"], soon["id"]]


async def test_a_claim_debits_the_points_through_the_ledger_and_gives_a_voucher(
        client: Client, tokens: TokenService, conn: asyncpg.Connection) -> None:
    program = await create_program(client, tokens)
    store = await create_store(client, tokens, program)
    reward = await create_reward(client, tokens, program, points_cost=120, store_ids=[store],
                                 voucher_valid_for_s=3600)
    member_id, me = await signup(client, program)
    now = datetime.now(UTC)
    await give_points(conn, member_id, 100, now=now - timedelta(days=10))  # older lot
    await give_points(conn, member_id, 100, now=now)
    r = await client.post(f"/v1/me/rewards/{reward['id']}/claims", headers=me)
    assert r.status_code == 201, r.text
    out = r.json()
    v = out["voucher"]
    assert out["points_balance"] == 80 and v["status"] == "active"
    assert len(v["code"]) == 10 and v["qr_payload"] == f"voucher:{v['code']}"
    assert v["store_ids"] == [store] and v["points_spent"] == 120
    expires = datetime.fromisoformat(v["expires_at"])
    assert timedelta(minutes=59) < expires - now < timedelta(minutes=61)
    ledger = (await client.get("/v1/me/ledger", headers=me)).json()["items"]
    assert [(e["kind"], e["points"]) for e in ledger[:2]] == [("reward_claim", -20),
                                                               ("reward_claim", -100)]
    assert ledger[0]["balance_after"]["points"] == 80
    remaining = [r[0] for r in await conn.fetch(
        "SELECT remaining FROM points_lots WHERE wallet_account_id = (SELECT wallet_account_id "
        "FROM members WHERE id = $1) ORDER BY earned_at", uuid.UUID(member_id))]
    assert remaining == [0, 80]  # the older lot went first
    mine = (await client.get("/v1/me/vouchers", headers=me)).json()
    assert [x["id"] for x in mine["items"]] == [v["id"]] and mine["items"][0] == v
    h = manager(tokens, program)
    assert (await client.get(rewards_url(program, reward["id"]), headers=h)).json()[
        "claimed"] == 1


async def test_a_retried_claim_with_the_same_key_replays_and_debits_once(
        client: Client, tokens: TokenService, conn: asyncpg.Connection) -> None:
    program = await create_program(client, tokens)
    reward = await create_reward(client, tokens, program, points_cost=30)
    member_id, me = await signup(client, program)
    await give_points(conn, member_id, 100)
    url = f"/v1/me/rewards/{reward['id']}/claims"
    first = await client.post(url, headers={**me, "Idempotency-Key": "k1"})
    again = await client.post(url, headers={**me, "Idempotency-Key": "k1"})
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json() and again.headers["Idempotent-Replayed"] == "true"
    other = await client.post(url, headers={**me, "Idempotency-Key": "k2"})
    assert other.status_code == 201 and other.json()["points_balance"] == 40
    assert await conn.fetchval("SELECT count(*) FROM vouchers") == 2
    assert await conn.fetchval(
        "SELECT count(*) FROM ledger_entries WHERE kind = 'reward_claim'") == 2


async def test_claims_are_refused_with_a_problem_for_each_rule(
        client: Client, tokens: TokenService, conn: asyncpg.Connection) -> None:
    program = await create_program(client, tokens)
    other = await create_program(client, tokens)
    store = await create_store(client, tokens, program)
    member_id, me = await signup(client, program)
    await give_points(conn, member_id, 1000)
    stock = await create_reward(client, tokens, program, stock=1, points_cost=10)
    limited = await create_reward(client, tokens, program, per_member_limit=1, points_cost=10)
    dear = await create_reward(client, tokens, program, points_cost=5000)
    gold = await create_reward(client, tokens, program, tiers=["gold"])
    retired = await create_reward(client, tokens, program)
    await client.post(rewards_url(program, retired["id"], "retire"),
                      headers=manager(tokens, program))
    soon = await create_reward(client, tokens, program, claimable_from=(
        datetime.now(UTC) + timedelta(hours=1)).isoformat())
    foreign = await create_reward(client, tokens, other)
    other_id, other_me = await signup(client, program)
    await give_points(conn, other_id, 100)

    def claim(reward: dict[str, Any], headers: dict[str, str] = me) -> Any:
        return client.post(f"/v1/me/rewards/{reward['id']}/claims", headers=headers)

    assert (await claim(stock, other_me)).status_code == 201
    assert (await claim(limited)).status_code == 201
    before = (await client.get("/v1/me", headers=me)).json()["points_balance"]
    for reward, status, problem in (
            (stock, 422, "/problems/out-of-stock"),
            (limited, 422, "/problems/claim-limit-reached"),
            (dear, 422, "/problems/insufficient-balance"),
            (retired, 422, "/problems/reward-not-claimable"),
            (soon, 422, "/problems/reward-not-claimable"),
            (gold, 404, "/problems/not-found"),
            (foreign, 404, "/problems/not-found"),
            ({"id": str(uuid.uuid4())}, 404, "/problems/not-found")):
        r = await claim(reward)
        assert (r.status_code, r.json()["type"]) == (status, problem), r.text
    assert (await client.get("/v1/me", headers=me)).json()["points_balance"] == before
    for headers in (staff(tokens, program, store), manager(tokens, program)):
        assert (await claim(stock, headers)).status_code == 403
        assert (await client.get("/v1/me/rewards", headers=headers)).status_code == 403
        assert (await client.get("/v1/me/vouchers", headers=headers)).status_code == 403


async def test_a_stored_value_reward_credits_the_purse_at_once(
        client: Client, tokens: TokenService, conn: asyncpg.Connection) -> None:
    program = await create_program(client, tokens)
    reward = await create_reward(client, tokens, program, kind="stored_value", value=500,
                                 points_cost=200)
    member_id, me = await signup(client, program)
    await give_points(conn, member_id, 250)
    r = await client.post(f"/v1/me/rewards/{reward['id']}/claims", headers=me)
    assert r.status_code == 201, r.text
    out = r.json()
    assert (out["points_balance"], out["stored_value_balance"]) == (50, 500)
    assert out["voucher"]["status"] == "used"
    me_now = (await client.get("/v1/me", headers=me)).json()
    assert (me_now["points_balance"], me_now["stored_value_balance"]) == (50, 500)
    kinds = [e["kind"] for e in (await client.get("/v1/me/ledger", headers=me)).json()["items"]]
    assert kinds[:2] == ["reward_credit", "reward_claim"]
    r = await client.patch(f"/v1/programs/{program}", json={"stored_value": False},
                           headers=admin(tokens))
    assert r.status_code == 200, r.text
    await give_points(conn, member_id, 200)
    r = await client.post(f"/v1/me/rewards/{reward['id']}/claims", headers=me)
    assert (r.status_code, r.json()["type"]) == (422, "/problems/stored-value-disabled")


async def test_my_vouchers_filter_by_status_as_of_now(
        client: Client, tokens: TokenService, conn: asyncpg.Connection) -> None:
    program = await create_program(client, tokens)
    reward = await create_reward(client, tokens, program, points_cost=10)
    member_id, me = await signup(client, program)
    await give_points(conn, member_id, 100)
    ids = [(await client.post(f"/v1/me/rewards/{reward['id']}/claims", headers=me)).json()[
        "voucher"]["id"] for _ in range(3)]
    await conn.execute("UPDATE vouchers SET expires_at = claimed_at WHERE id = $1",
                       uuid.UUID(ids[0]))  # its lifetime is over; the job has not run yet
    active = (await client.get("/v1/me/vouchers", params={"status": "active"},
                               headers=me)).json()["items"]
    expired = (await client.get("/v1/me/vouchers", params={"status": "expired"},
                                headers=me)).json()["items"]
    assert [x["id"] for x in active] == ids[:0:-1]
    assert [(x["id"], x["status"]) for x in expired] == [(ids[0], "expired")]
    page = (await client.get("/v1/me/vouchers", params={"limit": 2}, headers=me)).json()
    rest = (await client.get("/v1/me/vouchers", params={"cursor": page["next_cursor"]},
                             headers=me)).json()
    assert [x["id"] for x in page["items"] + rest["items"]] == ids[::-1]
    r = await client.get("/v1/me/vouchers", params={"status": "lost"}, headers=me)
    assert r.status_code == 400


async def test_stats_count_vouchers_by_status_and_the_points_spent(
        client: Client, tokens: TokenService, conn: asyncpg.Connection) -> None:
    program = await create_program(client, tokens)
    reward = await create_reward(client, tokens, program, points_cost=25, stock=10)
    member_id, me = await signup(client, program)
    await give_points(conn, member_id, 100)
    for _ in range(3):
        await client.post(f"/v1/me/rewards/{reward['id']}/claims", headers=me)
    r = await client.get(rewards_url(program, reward["id"], "stats"),
                         headers=manager(tokens, program))
    assert r.status_code == 200, r.text
    assert r.json() == {"reward_id": reward["id"], "claimed": 3, "active": 3, "used": 0,
                        "expired": 0, "cancelled": 0, "points_spent": 75,
                        "points_returned": 0, "stock": 10, "stock_left": 7}


async def test_the_export_lists_my_vouchers_and_erasure_keeps_them_without_identity(
        client: Client, tokens: TokenService, conn: asyncpg.Connection) -> None:
    program = await create_program(client, tokens)
    store = await create_store(client, tokens, program)
    reward = await create_reward(client, tokens, program, points_cost=10)
    member_id, me = await signup(client, program)
    await give_points(conn, member_id, 100)
    codes = [(await client.post(f"/v1/me/rewards/{reward['id']}/claims", headers=me)).json()[
        "voucher"]["code"] for _ in range(2)]
    till = {**staff(tokens, program, store), "Idempotency-Key": "use-1"}
    r = await client.post("/v1/pos/vouchers/redeem", json={"store_id": store, "code": codes[0]},
                          headers=till)
    assert r.status_code == 200, r.text
    export = (await client.get("/v1/me/export", headers=me)).json()
    assert sorted((v["code"], v["status"]) for v in export["vouchers"]) == sorted(
        [(codes[0], "used"), (codes[1], "active")])
    password = {"password": "a long enough password"}
    r = await client.request("DELETE", "/v1/me", json=password, headers=me)
    assert r.status_code in (202, 204), r.text
    rows = await conn.fetch("SELECT code, status, wallet_account_id FROM vouchers ORDER BY code")
    assert sorted((x["code"], x["status"]) for x in rows) == sorted(
        [(codes[0], "used"), (codes[1], "cancelled")])
    assert await conn.fetchval("SELECT count(*) FROM members WHERE wallet_account_id = $1",
                               rows[0]["wallet_account_id"]) == 0  # nobody behind them
    r = await client.post("/v1/pos/vouchers/redeem", json={"store_id": store, "code": codes[1]},
                          headers={**till, "Idempotency-Key": "use-2"})
    assert (r.status_code, r.json()["type"]) == (404, "/problems/not-found")
    stats = (await client.get(rewards_url(program, reward["id"], "stats"),
                              headers=manager(tokens, program))).json()
    assert (stats["claimed"], stats["used"], stats["cancelled"]) == (2, 1, 1)


async def test_whether_expired_vouchers_return_points_is_a_program_setting(
        client: Client, tokens: TokenService) -> None:
    program = await create_program(client, tokens, voucher_expiry_returns_points=False)
    url = f"/v1/programs/{program}"
    assert (await client.get(url, headers=admin(tokens))).json()[
        "voucher_expiry_returns_points"] is False
    r = await client.patch(url, json={"voucher_expiry_returns_points": True},
                           headers=admin(tokens))
    assert r.status_code == 200 and r.json()["voucher_expiry_returns_points"] is True
    default = await create_program(client, tokens)
    assert (await client.get(f"/v1/programs/{default}", headers=admin(tokens))).json()[
        "voucher_expiry_returns_points"] is True
    r = await client.patch(url, json={"voucher_expiry_returns_points": "yes"},
                           headers=admin(tokens))
    assert r.status_code == 400
