"""What a client gets wrong in the shape of a request is named: an unknown query parameter
(on any route), a missing Idempotency-Key header."""

from __future__ import annotations

import uuid

from litestar import Litestar
from litestar.routes import HTTPRoute
from support.helpers import Client, admin, create_program, create_store, signup, staff

from api.auth.tokens import TokenService


async def test_an_unknown_query_parameter_is_a_400_naming_it_on_every_kind_of_route(
        client: Client, tokens: TokenService) -> None:
    pid = await create_program(client, tokens)
    _, me = await signup(client, pid)
    for url, headers in (("/v1/me/access-log?q=alex&limit=5", me),  # a list route
                         ("/v1/me?fields=email", me),  # a plain read
                         (f"/v1/programs/{pid}?verbose=1", admin(tokens)),
                         ("/v1/admin/access-log?form=2026-01-01T00:00:00Z", admin(tokens))):
        r = await client.get(url, headers=headers)
        assert r.status_code == 400, (url, r.text)
        assert r.headers["content-type"].startswith("application/problem+json")
        problem = r.json()
        unknown = url.split("?")[1].split("=")[0]
        assert problem["type"] == "/problems/validation"
        assert [(e["field"], e["source"]) for e in problem["errors"]] == [(unknown, "query")]
        assert unknown in problem["detail"]


async def test_declared_query_parameters_and_their_aliases_are_accepted(
        client: Client, tokens: TokenService) -> None:
    pid = await create_program(client, tokens)
    _, me = await signup(client, pid)
    assert (await client.get("/v1/me/access-log?limit=5", headers=me)).status_code == 200
    r = await client.get("/v1/admin/access-log?from=2026-01-01T00:00:00Z&limit=2",
                         headers=admin(tokens))
    assert r.status_code == 200, r.text


async def test_every_unknown_name_is_listed_once_and_what_the_route_accepts_is_said(
        client: Client, tokens: TokenService) -> None:
    pid = await create_program(client, tokens)
    _, me = await signup(client, pid)
    r = await client.get("/v1/me/access-log?sort=at&order=desc&order=asc&limit=2", headers=me)
    assert r.status_code == 400
    errors = r.json()["errors"]
    assert [e["field"] for e in errors] == ["order", "sort"]
    assert "cursor" in errors[0]["message"] and "limit" in errors[0]["message"]


async def test_a_missing_idempotency_key_has_its_own_problem_naming_the_header(
        client: Client, tokens: TokenService) -> None:
    pid = await create_program(client, tokens)
    sid = await create_store(client, tokens, pid)
    r = await client.post("/v1/pos/scan", headers=staff(tokens, pid, sid),
                          json={"store_id": sid, "card_number": "4000000000000002"})
    assert r.status_code == 400
    problem = r.json()
    assert problem["type"] == "/problems/idempotency-key-missing"
    assert problem["field"] == "Idempotency-Key"
    assert "Idempotency-Key" in problem["detail"] and "JSON" not in problem["detail"]
    assert problem["errors"] == [{"field": "Idempotency-Key", "source": "header",
                                  "message": "required header is missing"}]
    # With the header, the same request goes on to the business answer (an unknown card).
    r = await client.post("/v1/pos/scan", json={"store_id": sid,
                                                "card_number": "4000000000000002"},
                          headers={**staff(tokens, pid, sid), "Idempotency-Key": uuid.uuid4().hex})
    assert r.status_code == 404 and r.json()["field"] == "card_number"


async def test_static_files_take_a_cache_busting_query(client: Client) -> None:
    r = await client.get("/static/app/icon.svg?v=20261129")
    assert r.status_code == 200, r.text


def test_every_api_route_has_its_accepted_query_names(app: Litestar) -> None:
    """The check covers every route by construction: each handler's declared names."""
    names = app.state.query_names
    for route in app.routes:
        if not isinstance(route, HTTPRoute) or route.path.startswith(("/schema", "/static")):
            continue
        for handler, _ in route.route_handler_map.values():
            assert id(handler) in names, route.path
    stores = next(r for r in app.routes if r.path == "/v1/programs/{program_id:uuid}/stores")
    assert isinstance(stores, HTTPRoute)
    (handler, _) = stores.route_handler_map["GET"]
    assert {"limit", "cursor"} <= names[id(handler)]
