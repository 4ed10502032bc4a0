"""Inputs that reached PostgreSQL or the decoder and answered 500 (issue 14, bug 1), and loose
types (bug 7): each is a 400 problem naming the field, refused at the one decoding boundary."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from support.campaign_helpers import campaign_body
from support.helpers import (
    Client,
    admin,
    circle,
    create_program,
    create_store,
    manager,
    signup,
    staff,
)

from api.auth.tokens import TokenService

NUL = "a\u0000b"


class World:
    def __init__(self, client: Client, tokens: TokenService) -> None:
        self.client, self.tokens = client, tokens
        self.program_id = self.store_id = ""
        self.member: dict[str, str] = {}

    async def build(self) -> World:
        self.program_id = await create_program(self.client, self.tokens)
        self.store_id = await create_store(self.client, self.tokens, self.program_id)
        _, self.member = await signup(self.client, self.program_id)
        return self

    def manager(self) -> dict[str, str]:
        return manager(self.tokens, self.program_id)


@pytest.fixture
async def world(client: Client, tokens: TokenService) -> World:
    return await World(client, tokens).build()


Send = Callable[[World, Any], Awaitable[Any]]


async def _program(w: World, name: Any) -> Any:
    body = {"name": name, "currency": "EUR", "timezone": "Europe/Paris",
            "earn_rate": {"points": 1, "per_amount": 100}, "points_expiry_days": 365,
            "tiers": [], "stored_value": True}
    return await w.client.post("/v1/programs", json=body, headers=admin(w.tokens))


async def _store(w: World, code: Any = "S9", name: Any = "Store") -> Any:
    return await w.client.post(f"/v1/programs/{w.program_id}/stores",
                               json={"code": code, "name": name, "zone": circle()},
                               headers=w.manager())


async def _signup(w: World, first_name: Any = "Alex", email: Any = None) -> Any:
    body = {"email": email or f"m{uuid.uuid4().hex[:8]}@example.com",
            "password": "a long enough password", "first_name": first_name}
    return await w.client.post(f"/v1/programs/{w.program_id}/members", json=body)


async def _purchase(w: World, receipt_id: Any = "R1", amount: Any = 1000) -> Any:
    card = await w.client.get("/v1/me/card", headers=w.member)
    body = {"store_id": w.store_id, "card_number": card.json()["card_number"],
            "receipt_id": receipt_id, "amount": amount, "currency": "EUR"}
    headers = {**staff(w.tokens, w.program_id, w.store_id), "Idempotency-Key": "k1"}
    return await w.client.post("/v1/pos/purchases", json=body, headers=headers)


async def _campaign(w: World, name: Any = "Gelato", title: Any = "Gelato") -> Any:
    body = campaign_body(name="x")
    body["name"] = name
    body["offer"]["title"] = title
    return await w.client.post(f"/v1/programs/{w.program_id}/campaigns", json=body,
                               headers=w.manager())


async def _reward(w: World, name: Any) -> Any:
    body = {"name": name, "points_cost": 100, "kind": "voucher", "voucher_valid_for_s": 86_400}
    return await w.client.post(f"/v1/programs/{w.program_id}/rewards", json=body,
                               headers=w.manager())


NUL_CASES: list[tuple[str, Send, str]] = [
    ("program name", _program, "name"),
    ("store name", lambda w, v: _store(w, name=v), "name"),
    ("store code", lambda w, v: _store(w, code=v), "code"),
    ("member first_name", lambda w, v: _signup(w, first_name=v), "first_name"),
    ("member email", lambda w, v: _signup(w, email=f"{v}@example.com"), "email"),
    ("PATCH /v1/me", lambda w, v: w.client.patch("/v1/me", json={"first_name": v},
                                                 headers=w.member), "first_name"),
    ("consent policy_version", lambda w, v: w.client.put(
        "/v1/me/consents/marketing", json={"granted": True, "policy_version": v},
        headers=w.member), "policy_version"),
    ("purchase receipt_id", lambda w, v: _purchase(w, receipt_id=v), "receipt_id"),
    ("campaign name", lambda w, v: _campaign(w, name=v), "name"),
    ("campaign offer.title", lambda w, v: _campaign(w, title=v), "offer.title"),
    ("reward name", _reward, "name"),
]


@pytest.mark.parametrize(("send", "field"), [c[1:] for c in NUL_CASES],
                         ids=[c[0] for c in NUL_CASES])
@pytest.mark.parametrize("value", [NUL, "tab\there", "del\u007f", "c1\u0085"])
async def test_a_control_character_in_a_text_field_is_a_400_naming_it(
        world: World, send: Send, field: str, value: str) -> None:
    r = await send(world, value)
    assert r.status_code == 400, r.text
    problem = r.json()
    assert problem["type"] == "/problems/validation"
    assert [e["field"] for e in problem["errors"]] == [field]
    assert "control characters" in problem["errors"][0]["message"], problem


async def test_an_offer_body_may_hold_line_breaks_but_no_nul(world: World) -> None:
    body = campaign_body()
    body["offer"]["body"] = "Two scoops\nfor one.\tToday only."
    r = await world.client.post(f"/v1/programs/{world.program_id}/campaigns", json=body,
                                headers=world.manager())
    assert r.status_code == 201, r.text
    body["offer"]["body"] = NUL
    r = await world.client.post(f"/v1/programs/{world.program_id}/campaigns", json=body,
                                headers=world.manager())
    assert r.status_code == 400
    assert r.json()["errors"][0]["field"] == "offer.body"


def _deep_zone(levels: int) -> bytes:
    return (b'{"code": "D1", "name": "Deep", "zone": {"type": "Polygon", "coordinates": '
            + b"[" * levels + b"]" * levels + b"}}")


DEEP_CASES: list[tuple[str, str, bytes]] = [
    ("pings 100,000 [", "/v1/me/pings", b"[" * 100_000),
    ("store {a: 50,000 deep", "/v1/programs/{p}/stores", b'{"a":' * 50_000 + b"1"
     + b"}" * 50_000),
    ("10,000 levels in zone.coordinates", "/v1/programs/{p}/stores", _deep_zone(10_000)),
]


@pytest.mark.parametrize(("path", "body"), [c[1:] for c in DEEP_CASES],
                         ids=[c[0] for c in DEEP_CASES])
async def test_deep_nesting_is_a_400_malformed_body(world: World, path: str, body: bytes
                                                    ) -> None:
    headers = world.member if "pings" in path else world.manager()
    r = await world.client.post(path.format(p=world.program_id), content=body,
                                headers={**headers, "Content-Type": "application/json"})
    assert r.status_code == 400, r.text
    problem = r.json()
    assert problem["type"] == "/problems/malformed-body"
    assert problem["field"] == "body"
    assert "deeper than" in problem["detail"]


async def test_brackets_inside_strings_do_not_count_as_nesting(world: World) -> None:
    r = await _store(world, code="B1", name="[" * 150 + "{" * 50)
    assert r.status_code == 201, r.text


async def test_an_access_log_window_ending_at_year_one_is_a_400(world: World) -> None:
    r = await world.client.get("/v1/admin/access-log?to=0001-01-01T00:00:00Z",
                               headers=admin(world.tokens))
    assert r.status_code == 400, r.text
    assert r.json()["errors"][0]["field"] == "to"


@pytest.mark.parametrize("query", ["from=6086315", "to=1700000000", "from=yesterday"])
async def test_a_time_in_a_query_is_rfc_3339_or_a_400(world: World, query: str) -> None:
    r = await world.client.get(f"/v1/admin/access-log?{query}", headers=admin(world.tokens))
    assert r.status_code == 400, r.text
    assert r.json()["errors"][0]["field"] == query.split("=", maxsplit=1)[0]


# --- strict types (bug 7) -----------------------------------------------------------------------


async def test_a_number_sent_as_a_string_is_a_400(world: World) -> None:
    r = await _purchase(world, amount="100")
    assert r.status_code == 400, r.text
    assert r.json()["errors"][0]["field"] == "amount"
    assert "Expected `int`, got `str`" in r.json()["errors"][0]["message"]


async def test_a_boolean_sent_as_a_string_is_a_400(world: World) -> None:
    r = await world.client.put("/v1/me/consents/marketing",
                               json={"granted": "true", "policy_version": "v1"},
                               headers=world.member)
    assert r.status_code == 400, r.text
    assert r.json()["errors"][0]["field"] == "granted"


@pytest.mark.parametrize("query", ["q=a%00b", "code=a%00b"])
async def test_a_control_character_in_a_store_filter_is_a_400(world: World, query: str) -> None:
    r = await world.client.get(f"/v1/programs/{world.program_id}/stores?{query}",
                               headers=world.manager())
    assert r.status_code == 400, r.text
    assert r.json()["errors"][0]["field"] == query.split("=", maxsplit=1)[0]


async def test_a_control_character_in_a_member_lookup_is_a_400(world: World) -> None:
    r = await world.client.get(
        f"/v1/programs/{world.program_id}/members/lookup?email=a%00b@example.com",
        headers=world.manager())
    assert r.status_code == 400, r.text
    assert r.json()["errors"][0]["field"] == "email"


async def test_a_control_character_in_a_reward_tier_is_a_400(world: World) -> None:
    body = {"name": "Coffee", "points_cost": 100, "kind": "voucher",
            "voucher_valid_for_s": 86_400, "tiers": [NUL]}
    r = await world.client.post(f"/v1/programs/{world.program_id}/rewards", json=body,
                                headers=world.manager())
    assert r.status_code == 400, r.text
    assert r.json()["errors"][0]["field"] == "tiers[0]"


STATS_ROUTES = ["/v1/programs/{p}/stats", "/v1/programs/{p}/stats.csv",
                "/v1/programs/{p}/campaigns/{c}/stats", "/v1/programs/{p}/campaigns/{c}/stats.csv"]


@pytest.mark.parametrize("route", STATS_ROUTES)
@pytest.mark.parametrize("query", ["to=0001-01-01", "from=0001-01-01", "to=9999-12-31",
                                   "from=9999-12-31", "from=1969-12-31"])
async def test_a_stats_date_out_of_range_is_a_400_naming_it(world: World, route: str,
                                                            query: str) -> None:
    """Found by the schema fuzzing with a larger budget: a period's bounds become instants
    in the program's time zone, and year 1 or 9999 overflowed (a 500)."""
    made = await _campaign(world)
    assert made.status_code == 201, made.text
    url = route.format(p=world.program_id, c=made.json()["id"])
    r = await world.client.get(f"{url}?{query}", headers=world.manager())
    assert r.status_code == 400, r.text
    assert r.json()["type"] == "/problems/validation"
    assert r.json()["errors"][0]["field"] == query.split("=", maxsplit=1)[0]
