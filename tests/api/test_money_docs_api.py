"""The OpenAPI document describes the money and privacy routes of issue 10: each has a
summary, a description, and request and response examples that are valid bodies of the
route's own types."""

from __future__ import annotations

from typing import Any

import msgspec
from support.helpers import Client

from api.controllers.members import EraseIn, PinIn
from api.controllers.pos import PayoutRequest, RefundRequest
from api.controllers.privacy import NoticeVersion, OperatorPayout, OperatorRequest
from api.paging import Page
from wallet.ledger.payouts import PayoutResult
from wallet.ledger.refunds import RefundResult
from wallet.privacy.notice import Notice

ROUTES: list[tuple[str, str, type | None, int, Any]] = [
    ("/v1/pos/stored-value/payouts", "post", PayoutRequest, 201, PayoutResult),
    ("/v1/pos/refunds", "post", RefundRequest, 201, RefundResult),
    ("/v1/admin/members/{member_id}/stored-value/payouts", "post", OperatorPayout, 201,
     PayoutResult),
    ("/v1/admin/members/{member_id}/erasure", "post", OperatorRequest, 204, None),
    ("/v1/me", "delete", EraseIn, 204, None),
    ("/v1/me/pin", "put", PinIn, 204, None),
    ("/v1/privacy/notice/versions", "get", None, 200, Page[NoticeVersion]),
    ("/v1/privacy/notice/versions/{version}", "get", None, 200, Notice),
]


def _examples(media: dict[str, Any]) -> list[Any]:
    found = [media["example"]] if "example" in media else []
    found += [e["value"] for e in media.get("examples", {}).values()]
    return found + media.get("schema", {}).get("examples", [])


async def test_each_route_is_documented_with_examples_of_its_own_types(
        client: Client) -> None:
    doc = (await client.get("/schema/openapi.json")).json()
    for path, method, request_type, status, response_type in ROUTES:
        op = doc["paths"][path][method]
        assert op["summary"] and len(op["description"]) > 40, path
        if request_type is not None:
            (media,) = op["requestBody"]["content"].values()
            examples = _examples(media)
            assert examples, path
            for example in examples:
                msgspec.convert(example, request_type, strict=False)
        assert str(status) in op["responses"], path
        if response_type is not None:
            (media,) = op["responses"][str(status)]["content"].values()
            examples = _examples(media)
            assert examples, path
            for example in examples:
                # Litestar drops an example's null members (the published notice's `program`)
                whole = {"program": None, **example} if response_type is Notice else example
                msgspec.convert(whole, response_type, strict=False)
    text = str(doc["paths"])
    for named in ("/problems/stored-value-remaining", "/problems/wrong-password",
                  "/problems/unknown-policy-version", "/problems/pin-required",
                  "/problems/program-id-required", "attempts_left", "locked_until",
                  "cash_back", "stored_value_back"):
        assert named in text, named
