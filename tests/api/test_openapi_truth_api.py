"""The OpenAPI document says what the API answers (issue 14, bug 9): bodies that refuse
unknown fields say `additionalProperties: false`, optional fields keep their constraints,
every number a client sends is bounded, 404 and 429 are documented where they happen, and a
405 names the allowed methods in `Allow`. The schema fuzzing suite (`test_schema_fuzz.py`)
keeps the rest of it true."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from litestar.testing import AsyncTestClient
from support.helpers import (
    PROGRAM,
    Client,
    admin,
    circle,
    create_program,
    create_store,
    manager,
    signup,
    staff,
)

from api.app import _CREDENTIAL_PATHS, create_app
from api.auth.tokens import TokenService
from api.config import Settings

METHODS = ("get", "put", "post", "delete", "patch")


@pytest.fixture
async def doc(client: Client) -> dict[str, Any]:
    r = await client.get("/schema/openapi.json")
    assert r.status_code == 200
    return dict(r.json())


def _resolve(doc: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = doc["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return schema


def _objects(doc: dict[str, Any], schema: dict[str, Any], path: str,
             seen: set[str]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every object schema a request body can hold, with where it is."""
    ref = schema.get("$ref")
    if ref is not None:
        if ref in seen:
            return
        seen.add(ref)
        yield from _objects(doc, _resolve(doc, schema), f"{path}<{ref.rsplit('/', 1)[1]}>",
                            seen)
        return
    for key in ("oneOf", "anyOf", "allOf"):
        for i, sub in enumerate(schema.get(key, [])):
            yield from _objects(doc, sub, f"{path}.{key}[{i}]", seen)
    if "items" in schema:
        yield from _objects(doc, schema["items"], f"{path}[]", seen)
    if "properties" in schema:
        yield path, schema
        for name, sub in schema["properties"].items():
            yield from _objects(doc, sub, f"{path}.{name}", seen)


def _operations(doc: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in doc["paths"].items():
        for method, op in item.items():
            if method in METHODS:
                yield path, method, op


# Apple's PassKit web service posts Apple's bodies, which Apple may extend: they take unknown
# fields on purpose (and their schemas must not claim otherwise).
OPEN_BODIES = ("/v1/passkit/",)


async def test_every_request_body_refuses_unknown_fields_and_says_so(
        doc: dict[str, Any], client: Client, tokens: TokenService) -> None:
    said = {}
    for path, method, op in _operations(doc):
        for media, content in op.get("requestBody", {}).get("content", {}).items():
            if media != "application/json":
                continue
            for where, obj in _objects(doc, content["schema"], "body", set()):
                said[f"{method.upper()} {path} {where}"] = (
                    obj.get("additionalProperties") is False, path.startswith(OPEN_BODIES))
    assert [k for k, (closed, open_) in said.items() if closed == open_] == []
    assert len(said) > 40
    # and the server does refuse them, as documented
    r = await client.post("/v1/programs", json={**PROGRAM, "bonus": 1}, headers=admin(tokens))
    assert r.status_code == 400
    assert [e["field"] for e in r.json()["errors"]] == ["bonus"]


def _property(doc: dict[str, Any], component: str, name: str) -> dict[str, Any]:
    """A component's property as a value is checked: a union's non-null member."""
    prop = doc["components"]["schemas"][component]["properties"][name]
    members = [m for m in prop.get("oneOf", [prop]) if m.get("type") != "null"]
    assert len(members) == 1, prop
    return dict(members[0])


async def test_optional_fields_keep_their_constraints_in_the_document_and_in_fact(
        doc: dict[str, Any], client: Client, tokens: TokenService) -> None:
    expiry = _property(doc, "ProgramPatch", "points_expiry_days")
    assert expiry.get("exclusiveMinimum") == 0 or expiry.get("minimum") == 1
    assert expiry["maximum"] == 36_500
    for cap in ("per_member_per_day", "per_member_total", "member_cooldown_s", "max_issued"):
        assert _property(doc, "Caps", cap).get("exclusiveMinimum") == 0, cap
    pid = await create_program(client, tokens)
    r = await client.patch(f"/v1/programs/{pid}", json={"points_expiry_days": 0},
                           headers=admin(tokens))
    assert r.status_code == 400
    assert [e["field"] for e in r.json()["errors"]] == ["points_expiry_days"]


# A circle's radius is judged by the zone rules, as API.md says: a radius <= 0 or a zone wider
# than the configured maximum is a 422 naming the problem, not a decoding error.
JUDGED_BY_RULES = {"Circle.radius_m"}


async def test_every_integer_and_number_a_client_sends_is_bounded_on_both_sides(
        doc: dict[str, Any]) -> None:
    unbounded = []
    for path, method, op in _operations(doc):
        for content in op.get("requestBody", {}).get("content", {}).values():
            for where, obj in _objects(doc, content["schema"], "body", set()):
                for name, prop in obj["properties"].items():
                    for value in prop.get("oneOf", [prop]):
                        if value.get("type") not in ("integer", "number") or (
                                f"{obj.get('title')}.{name}" in JUDGED_BY_RULES):
                            continue
                        low = {"minimum", "exclusiveMinimum"} & value.keys()
                        high = {"maximum", "exclusiveMaximum"} & value.keys()
                        if not (low and high):
                            unbounded.append(f"{method.upper()} {path} {where}.{name}")
    assert unbounded == [], unbounded


async def test_an_unknown_id_in_any_path_answers_a_documented_status(
        doc: dict[str, Any], client: Client, tokens: TokenService) -> None:
    """Every read with ids in its path, with ids that do not exist, by the first role the
    route lets through: the answer (mostly 404) is one the document lists."""
    pid = await create_program(client, tokens)
    _, member = await signup(client, pid)
    roles = [admin(tokens), manager(tokens, pid), staff(tokens, pid, str(uuid.uuid4())), member]
    undocumented, not_found = [], 0
    for path, method, op in _operations(doc):
        if method != "get" or "{" not in path:
            continue
        url = re.sub(r"\{[a-z_]+\}", lambda m: pid if m[0] == "{program_id}" else str(
            uuid.uuid4()), path)
        for headers in roles:
            r = await client.get(url, headers=headers)
            if r.status_code != 403:
                break
        not_found += r.status_code == 404
        if str(r.status_code) not in op["responses"]:
            undocumented.append(f"GET {path} -> {r.status_code}")
    assert undocumented == []
    assert not_found >= 10


CREDENTIAL_ROUTES = [("post", "/v1/auth/token"), ("post", "/v1/programs/{program_id}/members"),
                     ("delete", "/v1/me"), ("put", "/v1/me/pin"),
                     ("post", "/console/session"), ("post", "/till/session")]


async def test_the_rate_limited_routes_document_their_429_which_does_happen(
        doc: dict[str, Any], settings: Settings) -> None:
    for method, path in CREDENTIAL_ROUTES:
        assert "429" in doc["paths"][path][method]["responses"], f"{method} {path}"
    # and every operation the rate limit can answer (the app's own rule) is in that list
    limited_ops = [(method, path) for path, method, _ in _operations(doc)
                   if (rule := _CREDENTIAL_PATHS.get(method.upper())) is not None
                   and rule.match(re.sub(r"\{[a-z_]+\}", "x", path))]
    assert sorted(limited_ops) == sorted(CREDENTIAL_ROUTES)
    limited = create_app(Settings(**{**{f: getattr(settings, f)
                                        for f in Settings.__struct_fields__},
                                     "credential_attempts_per_minute": 2}))
    login = {"grant_type": "password", "email": "nobody@example.com", "password": "wrong one!"}
    async with AsyncTestClient(app=limited) as c:
        answers = [(await c.post("/v1/auth/token", json=login)).status_code for _ in range(3)]
        assert answers == [401, 401, 429]
        last = await c.post("/v1/auth/token", json=login)
        assert last.json()["type"] == "/problems/rate-limited"
        assert int(last.headers["Retry-After"]) >= 1


def _wrong_method(item: dict[str, Any]) -> str | None:
    documented = {m for m in item if m in METHODS}
    return next((m for m in ("delete", "put", "patch", "post") if m not in documented), None)


async def test_a_405_names_the_allowed_methods_in_allow(
        doc: dict[str, Any], client: Client, tokens: TokenService) -> None:
    pid = await create_program(client, tokens)
    checked = 0
    for path, item in doc["paths"].items():
        method = _wrong_method(item)
        if method is None or not path.startswith("/v1/") or "{" in path.replace(
                "{program_id}", ""):
            continue
        r = await client.request(method.upper(), path.replace("{program_id}", pid),
                                 headers=admin(tokens))
        assert r.status_code == 405, f"{method} {path}: {r.status_code}"
        allowed = {m.strip().lower() for m in r.headers["Allow"].split(",")}
        documented = {m for m in item if m in METHODS}
        assert documented <= allowed <= documented | {"head", "options"}, path
        assert r.headers["content-type"].startswith("application/problem+json")
        assert r.json()["status"] == 405
        checked += 1
    assert checked >= 20


async def test_the_answers_the_red_team_found_undocumented_match_the_document(
        doc: dict[str, Any], client: Client, tokens: TokenService) -> None:
    """Validated with schemathesis' own response check (status, content type, body): the
    GeoJSON export (it was declared a string), the import's 422 and its `errors` items (they
    did not match their schema), and a 404 on an unknown id."""
    schema = schemathesis.openapi.from_dict(doc)
    pid = await create_program(client, tokens)
    mgr = manager(tokens, pid)
    await create_store(client, tokens, pid)
    unclosed = {"type": "Polygon", "coordinates": [[[2.3, 48.85], [2.31, 48.85], [2.31, 48.86],
                                                    [2.3, 48.86]]]}
    answers = [
        ("/v1/programs/{program_id}/stores.geojson", "GET",
         await client.get(f"/v1/programs/{pid}/stores.geojson", headers=mgr), 200),
        ("/v1/programs/{program_id}/stores/import", "POST",
         await client.post(f"/v1/programs/{pid}/stores/import", headers=mgr, json={
             "type": "FeatureCollection", "features": [
                 {"type": "Feature", "geometry": unclosed, "properties": {"code": "U"}},
                 {"type": "Feature", "geometry": circle(), "properties": {"name": "x"}}]}),
         422),
        ("/v1/programs/{program_id}/stores/{store_id}", "GET",
         await client.get(f"/v1/programs/{pid}/stores/{uuid.uuid4()}", headers=mgr), 404),
    ]
    for path, method, response, status in answers:
        assert response.status_code == status, (path, response.text)
        schema[path][method].validate_response(response)  # raises, naming what differs
    geojson = answers[0][2].json()
    assert geojson["type"] == "FeatureCollection" and len(geojson["features"]) == 1
    assert [e["index"] for e in answers[1][2].json()["errors"]] == [0, 1]


SIGN_UP = ("post", "/v1/programs/{program_id}/members")  # public: its body is checked first


async def test_an_unknown_program_is_a_documented_404_on_every_route_under_it(
        doc: dict[str, Any], client: Client, tokens: TokenService) -> None:
    """As an admin (the one role whose token names no program), every operation under
    `/v1/programs/{program_id}` with a program that does not exist answers 404, as reading
    the program does: never an empty list, a default pass design or another program's
    answer; and the document lists that 404."""
    unknown, h = str(uuid.uuid4()), admin(tokens)
    answers, checked = [], 0
    for path, method, op in _operations(doc):
        if not path.startswith("/v1/programs/{program_id}") or (method, path) == SIGN_UP:
            continue
        url = re.sub(r"\{[a-z_]+\}", lambda m: unknown if m[0] == "{program_id}" else str(
            uuid.uuid4()), path)
        body = {} if method in ("post", "put", "patch") else None
        r = await client.request(method.upper(), url, json=body, headers=h)
        checked += 1
        if r.status_code != 404 or "404" not in op["responses"]:
            answers.append(f"{method.upper()} {path} -> {r.status_code} "
                           f"(404 documented: {'404' in op['responses']})")
        elif r.json()["detail"] != "no such program":
            answers.append(f"{method.upper()} {path}: {r.json()['detail']}")
    assert answers == [], answers
    assert checked >= 20
    version = (await client.get("/v1/privacy/notice")).json()["version"]
    r = await client.post(f"/v1/programs/{unknown}/members", json={
        "email": "a@example.com", "password": "a long enough password", "first_name": "A",
        "consents": [{"purpose": "marketing", "granted": True, "policy_version": version}]})
    assert r.status_code == 404 and "404" in doc["paths"][SIGN_UP[1]]["post"]["responses"]


def _strings(doc: dict[str, Any], schema: dict[str, Any], path: str, seen: set[str]
             ) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every free-text string schema a request can hold (no enum, const or format)."""
    if (ref := schema.get("$ref")) is not None:
        if ref not in seen:
            seen.add(ref)
            yield from _strings(doc, _resolve(doc, schema), path, seen)
        return
    for key in ("oneOf", "anyOf", "allOf"):
        for sub in schema.get(key, []):
            yield from _strings(doc, sub, path, seen)
    if "items" in schema:
        yield from _strings(doc, schema["items"], f"{path}[]", seen)
    for name, sub in schema.get("properties", {}).items():
        yield from _strings(doc, sub, f"{path}.{name}", seen)
    if schema.get("type") == "string" and not {"enum", "const", "format"} & set(schema):
        yield path, schema


# A password is hashed, never stored, shown or logged: any character is the member's choice.
ANY_CHARACTER = (".password", ".current_password", ".new_password")


async def test_every_text_a_request_body_carries_refuses_control_characters(
        doc: dict[str, Any]) -> None:
    """Bug 1 fixed once at the boundary: every free-text string of every request body (a
    name, a code, an e-mail, a tier, a voucher code) is a type whose pattern refuses a NUL
    and the other control characters, so none can reach PostgreSQL (which refuses a NUL) or
    a log; and the document says so (it states what msgspec enforces). Query parameters are
    checked by their own tests (`test_boundary_api.py`)."""
    open_text, checked = [], 0
    for path, method, op in _operations(doc):
        if path.startswith(OPEN_BODIES):
            continue  # Apple's own bodies, which Apple may extend
        for media, content in op.get("requestBody", {}).get("content", {}).items():
            if media != "application/json":
                continue
            for where, schema in _strings(doc, content["schema"], "body", set()):
                if where.endswith(ANY_CHARACTER):
                    continue
                checked += 1
                pattern = schema.get("pattern")
                if pattern is None or any(re.search(pattern, f"a{c}b")
                                          for c in ("\x00", "\x1f", "\x7f", "\x85")):
                    open_text.append(f"{method.upper()} {path} {where} {pattern!r}")
    assert open_text == [], "\n".join(open_text)
    assert checked > 50
