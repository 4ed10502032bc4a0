"""What a client gets wrong in the shape of a request is named: an unknown query parameter
(on any route), a missing Idempotency-Key header."""

from __future__ import annotations

import uuid

from support.helpers import Client, create_program, create_store, staff

from api.auth.tokens import TokenService


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
