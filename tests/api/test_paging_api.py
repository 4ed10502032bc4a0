"""A paging `cursor` the server did not write is malformed input: API.md's 400
`/problems/validation` naming `cursor`, on every list route (it was a 422, the status of a
business rule, and a huge revision number reached PostgreSQL)."""

from __future__ import annotations

import base64
import re
import uuid
from typing import Any

from support.helpers import Client, admin, create_program, create_store, manager, signup, staff

from api.auth.tokens import TokenService


def _b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


MALFORMED = [
    "@@",  # not base64
    _b64("not json"),
    _b64(f'["2026-01-01T00:00:00","{uuid.uuid4()}"]'),  # a time without its offset
    _b64("9" * 30),  # a ledger sequence beyond bigint
    "9" * 30,  # a revision beyond bigint
    "-1",
    "1e3",
]


def _list_routes(doc: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [(path, item["get"]) for path, item in doc["paths"].items()
            if "get" in item and any(p["name"] == "cursor" and p["in"] == "query"
                                     for p in item["get"].get("parameters", []))]


async def test_a_malformed_cursor_is_a_400_naming_it_on_every_list_route(
        client: Client, tokens: TokenService) -> None:
    doc = (await client.get("/schema/openapi.json")).json()
    pid = await create_program(client, tokens)
    store = await create_store(client, tokens, pid)
    _, member = await signup(client, pid)
    roles = [admin(tokens), manager(tokens, pid), staff(tokens, pid, store), member]
    routes = _list_routes(doc)
    answers = []
    for path, op in routes:
        url = re.sub(r"\{[a-z_]+\}", lambda m: {"{program_id}": pid, "{store_id}": store}.get(
            m[0], str(uuid.uuid4())), path)
        for headers in roles:  # the first role the route lets through (an unknown campaign's
            # or reward's revisions are a 404: the cursor is checked before the lookup)
            if (await client.get(url, headers=headers)).status_code in (200, 404):
                break
        else:
            raise AssertionError(f"no role lists {path}")
        for cursor in MALFORMED:
            r = await client.get(url, headers=headers, params={"cursor": cursor})
            problem = r.json()
            answers.append((path, cursor, r.status_code, r.headers["content-type"],
                            problem.get("type"),
                            [(e["field"], e["source"]) for e in problem.get("errors", [])]))
        assert "400" in op["responses"] and "422" not in op["responses"], path
    assert [a for a in answers if a[2:] != (400, "application/problem+json",
                                            "/problems/validation", [("cursor", "query")])] == []
    assert len(routes) >= 14

