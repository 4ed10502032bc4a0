"""The `Idempotency-Key` header, as API.md says: a retried write with the same key and body
returns the first response and changes nothing; the same key with another body is a 409, and
so is the same key sent by the same caller to another route (keys are scoped per caller).

HTTP plumbing only: the header's declaration and the key of a request. What the key does is
the one implementation in `wallet.kernel.idempotency` (the response is stored in the same
transaction as the writes, by the service that owns that transaction).
"""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Request, Response
from litestar.params import HeaderParameter

from wallet.kernel.idempotency import IdemKey, Outcome, key_for

IdempotencyKey = Annotated[str, HeaderParameter(
    name="Idempotency-Key", min_length=1, max_length=200,
    description="Required: a retried request with the same key and body returns the first "
                "response and changes nothing; the same key with another body, or on "
                "another route, is a 409 (a key names one request of its sender).")]

OptionalIdempotencyKey = Annotated[str | None, HeaderParameter(
    name="Idempotency-Key", min_length=1, max_length=200, required=False,
    description="Optional: a retried request with the same key and body is not processed "
                "twice; the same key with another body, or on another route, is a 409.")]


def request_key(request: Request[Any, Any, Any], sub: Any, key: str, body: Any) -> IdemKey:
    """The key of this request for caller `sub` (see `wallet.kernel.idempotency.key_for`)."""
    return key_for(sub, key, method=request.method, path=request.url.path, body=body)


def respond(outcome: Outcome[Any]) -> Response[Any]:
    """The response of a retried write: a replay says so in `Idempotent-Replayed`."""
    headers = {"Idempotent-Replayed": "true"} if outcome.replayed else {}
    return Response(outcome.result, status_code=outcome.status, headers=headers)
