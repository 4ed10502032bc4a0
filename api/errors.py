"""Every error becomes an RFC 9457 `application/problem+json` response, in one place.

`PROBLEMS` is the single table from exception class to (status, problem type, title). Lookup
walks the exception's MRO, so a subclass without its own row inherits its parent's. Unknown
exceptions become a bare 500 problem with no stack trace (it is logged server-side instead).
"""

from __future__ import annotations

import logging
import re
from typing import Any

import asyncpg
import msgspec
from litestar import Request, Response
from litestar.exceptions import (
    HTTPException,
    NotAuthorizedException,
    NotFoundException,
    PermissionDeniedException,
    ValidationException,
)
from litestar.openapi import ResponseSpec
from litestar.openapi.spec import Example
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR

from api import metrics
from geo import errors as geo_errors
from wallet.kernel import errors as wallet_errors
from wallet.kernel.text import PATTERN_MESSAGES

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"

PROBLEMS: dict[type[Exception], tuple[int, str, str]] = {
    wallet_errors.NotFound: (404, "/problems/not-found", "Not found"),
    wallet_errors.Conflict: (409, "/problems/conflict", "Conflict"),
    wallet_errors.IdempotencyConflict: (
        409, "/problems/idempotency-key-reused",
        "Idempotency-Key reused for another request"),
    wallet_errors.PinCheckInProgress: (
        409, "/problems/pin-check-in-progress", "PIN check in progress: retry"),
    wallet_errors.StoredValueRemaining: (
        409, "/problems/stored-value-remaining", "Stored value must be paid out first"),
    wallet_errors.RuleViolation: (422, "/problems/rule-violation", "Refused by a business rule"),
    wallet_errors.UnknownPolicyVersion: (
        422, "/problems/unknown-policy-version", "No privacy notice has this version"),
    wallet_errors.InsufficientBalance: (
        422, "/problems/insufficient-balance", "Insufficient balance"),
    wallet_errors.LimitExceeded: (422, "/problems/limit-exceeded", "Over a program limit"),
    wallet_errors.InvalidCardToken: (422, "/problems/invalid-card-token", "Invalid card token"),
    wallet_errors.WrongPin: (422, "/problems/wrong-pin", "Wrong PIN"),
    wallet_errors.CrossStoreRefundDisabled: (
        422, "/problems/cross-store-refund-disabled",
        "Refunds only at the store of the purchase"),
    wallet_errors.PinLocked: (422, "/problems/pin-locked", "PIN locked"),
    wallet_errors.PinRequired: (422, "/problems/pin-required", "PIN required"),
    wallet_errors.CurrencyMismatch: (422, "/problems/currency-mismatch", "Currency mismatch"),
    wallet_errors.StoredValueDisabled: (
        422, "/problems/stored-value-disabled", "Stored value is not enabled"),
    wallet_errors.AccessDenied: (403, "/problems/forbidden", "Forbidden"),
    wallet_errors.ConsentRequired: (403, "/problems/consent-required", "Consent required"),
    wallet_errors.WrongPassword: (403, "/problems/wrong-password", "Wrong password"),
    wallet_errors.Unauthenticated: (401, "/problems/unauthorized", "Unauthorized"),
    wallet_errors.ProgramRequired: (
        400, "/problems/program-id-required", "program_id is required for this account"),
    geo_errors.InvalidZone: (422, "/problems/invalid-zone", "Invalid zone"),
    geo_errors.InvalidFeatures: (422, "/problems/invalid-features", "Invalid features"),
    geo_errors.LikelySwappedCoordinates: (
        422, "/problems/likely-swapped-coordinates", "Latitude and longitude look swapped"),
    wallet_errors.OfferAlreadyRedeemed: (
        422, "/problems/offer-already-redeemed", "Offer already redeemed"),
    wallet_errors.OfferExpired: (422, "/problems/offer-expired", "Offer expired"),
    wallet_errors.OfferNotValidHere: (
        422, "/problems/offer-not-valid-at-store", "Offer not valid at this store"),
    wallet_errors.OutOfStock: (422, "/problems/out-of-stock", "Out of stock"),
    wallet_errors.ClaimLimitReached: (
        422, "/problems/claim-limit-reached", "Per-member limit reached"),
    wallet_errors.RewardNotClaimable: (
        422, "/problems/reward-not-claimable", "Reward not claimable now"),
    wallet_errors.VoucherAlreadyUsed: (
        422, "/problems/voucher-already-used", "Voucher already used"),
    wallet_errors.VoucherExpired: (422, "/problems/voucher-expired", "Voucher expired"),
    wallet_errors.VoucherNotValidHere: (
        422, "/problems/voucher-not-valid-at-store", "Voucher not valid at this store"),
    wallet_errors.VoucherOfAnotherMember: (
        422, "/problems/voucher-of-another-member", "Voucher of another member"),
    wallet_errors.PassesNotConfigured: (
        404, "/problems/passes-not-configured", "Wallet passes are not configured"),
}

class FieldError(msgspec.Struct, frozen=True, kw_only=True):
    field: str
    message: str
    source: str


class FeatureError(msgspec.Struct, frozen=True, kw_only=True):
    """One refused feature of a store import: by its index in the collection, or (coordinates
    that look swapped) by the `field` naming the feature's position."""

    field: str
    reason: str
    index: int | None = None


class Problem(msgspec.Struct, frozen=True, kw_only=True):
    """RFC 9457 problem details, as every error response of this API carries them."""

    type: str
    title: str
    status: int
    detail: str
    field: str | None = None
    errors: list[FieldError] | None = None


class ImportProblem(msgspec.Struct, frozen=True, kw_only=True):
    """A refused store import: `errors` lists every bad feature by index."""

    type: str
    title: str
    status: int
    detail: str
    field: str | None = None
    errors: list[FeatureError]


_DESCRIPTIONS = {
    400: "Malformed JSON, unknown or invalid fields or parameters (each named in `errors`)",
    401: "Missing, invalid or expired token",
    403: "Wrong role or scope, or missing consent",
    404: "Not found (or not yours)",
    409: "Conflict, e.g. an Idempotency-Key reused for another request (route or body)",
    413: "Request body too large",
    422: "Refused by a business rule",
    429: "Too many requests",
    503: "The database is unavailable: retry after `Retry-After` seconds",
}


_EXAMPLES: dict[int, dict[str, Any]] = {
    400: {"type": "/problems/validation", "title": "Invalid request", "status": 400,
          "detail": "amount: Expected `int >= 0`",
          "errors": [{"field": "amount", "message": "Expected `int >= 0`", "source": "body"}]},
    401: {"type": "/problems/unauthorized", "title": "Unauthorized", "status": 401,
          "detail": "token expired"},
    403: {"type": "/problems/forbidden", "title": "Forbidden", "status": 403,
          "detail": "this account does not act for store 3c4d5e6f-7a8b-4c9d-8e0f-1a2b3c4d5e6f"},
    404: {"type": "/problems/not-found", "title": "Not found", "status": 404,
          "detail": "no such store", "field": "store_id"},
    409: {"type": "/problems/idempotency-key-reused",
          "title": "Idempotency-Key reused for another request", "status": 409,
          "detail": "this Idempotency-Key was already used for another request (another "
                    "route or body): a key names one request of its sender"},
    413: {"type": "/problems/body-too-large", "title": "Request body too large", "status": 413,
          "detail": "Request Entity Too Large"},
    422: {"type": "/problems/rule-violation", "title": "Refused by a business rule",
          "status": 422, "detail": "the campaign ends before it starts",
          "field": "schedule.ends_at"},
    429: {"type": "/problems/rate-limited", "title": "Too many requests", "status": 429,
          "detail": "too many attempts; retry later"},
}


# A route that checks the member's PIN (`wallet.ledger.pin_check`) may also answer this 409.
_PIN_IN_PROGRESS = (
    "PIN checks on this card in flight, one of which may lock it: nothing was checked, "
    "retry after `Retry-After` (1 s) with the same Idempotency-Key",
    {"type": "/problems/pin-check-in-progress", "title": "PIN check in progress: retry",
     "status": 409, "field": "stored_value.pin",
     "detail": "other PIN checks on this card are in progress and one may lock it: nothing "
               "was checked; retry in a second with the same Idempotency-Key"})


def responses(*codes: int, pin: bool = False) -> dict[int, ResponseSpec]:
    """OpenAPI error responses for a route: each a problem+json `Problem`, with the realistic
    example written above (not one generated from the schema). `pin`: the route checks the
    member's PIN, its 409 may be `/problems/pin-check-in-progress` (added when absent from
    `codes`)."""
    specs = {c: ResponseSpec(data_container=Problem, description=_DESCRIPTIONS[c],
                             media_type=PROBLEM_JSON, generate_examples=False,
                             examples=[Example(summary=_DESCRIPTIONS[c], value=_EXAMPLES[c])])
             for c in (400, 401, *codes)}
    if pin:
        summary, value = _PIN_IN_PROGRESS
        before = specs[409].examples or [] if 409 in specs else []
        examples = [*before, Example(summary=summary, value=value)]
        specs[409] = ResponseSpec(
            data_container=Problem, media_type=PROBLEM_JSON, generate_examples=False,
            description=(f"{_DESCRIPTIONS[409]}; or {summary}" if 409 in codes else summary),
            examples=examples)
    return dict(sorted(specs.items()))


_AT_PATH = re.compile(r" - at `\$\.?(?P<path>[^`]*)`")
_MISSING = re.compile(r"^Missing required (?P<source>\w+) parameter '(?P<name>[^']+)'")
IDEMPOTENCY_KEY = "idempotency-key"


def problem(
    status: int, type_: str, title: str, detail: str, **extra: Any
) -> Response[dict[str, Any]]:
    """Build one problem+json response. Extra members (`errors`, `field`) are added as is."""
    body: dict[str, Any] = {"type": type_, "title": title, "status": status, "detail": detail}
    body.update({k: v for k, v in extra.items() if v is not None})
    headers = {}
    if extra.get("retry_after") is not None:
        headers["Retry-After"] = str(extra["retry_after"])
    return Response(content=body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def _lookup(exc: Exception) -> tuple[int, str, str] | None:
    for cls in type(exc).__mro__:
        if cls in PROBLEMS:
            return PROBLEMS[cls]
    return None


def status_of(exc: Exception) -> int:
    """The HTTP status this module answers `exc` with (for the metrics of requests whose
    exception escaped the middleware stack)."""
    if isinstance(exc, HTTPException):
        return exc.status_code
    mapped = _lookup(exc)
    return mapped[0] if mapped else HTTP_500_INTERNAL_SERVER_ERROR


def domain_error_handler(_: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, Any]]:
    mapped = _lookup(exc)
    if mapped is None:
        return internal_error_handler(_, exc)
    if isinstance(exc, wallet_errors.PinLocked) and exc.new_lock:
        metrics.PIN_LOCKOUTS.inc()
    status, type_, title = mapped
    detail = getattr(exc, "detail", None) or str(exc) or title
    return problem(
        status, type_, title, detail,
        field=getattr(exc, "field", None),
        errors=getattr(exc, "errors", None),
        retry_after=getattr(exc, "retry_after_s", None),
        **exc.members if isinstance(exc, wallet_errors.DomainError) else {},
    )


def _readable(message: str) -> str:
    """msgspec names a failed pattern by its regex; say what the text types mean instead."""
    for pattern, wording in PATTERN_MESSAGES.items():
        if f"matching regex {pattern!r}" in message:
            return wording
    return message


def _field_errors(extra: Any) -> list[dict[str, str]]:
    """Turn Litestar/msgspec validation details into `[{"field", "message", "source"}]`."""
    out: list[dict[str, str]] = []
    if not isinstance(extra, list):
        return out
    for item in extra:
        if not isinstance(item, dict):
            continue
        message = str(item.get("message", "invalid value"))
        if message == "'data'":  # Litestar's KeyError on a required body that is absent
            message = "the request body is missing: this route expects a JSON object"
        match = _AT_PATH.search(message)
        # a parameter named after a Python keyword (`from_`) is shown by its wire name
        field = match.group("path") if match else str(item.get("key") or "").rstrip("_")
        if field == "data":  # Litestar's name for the whole body
            field = ""
        named = re.search(r"(?:unknown|missing required) field `([^`]+)`", message)
        if named:
            field = f"{field}.{named.group(1)}" if field else named.group(1)
        out.append({"field": field or "body", "message": _readable(_AT_PATH.sub("", message)),
                    "source": str(item.get("source") or "body")})
    return out


def http_error_handler(_: Request[Any, Any, Any], exc: HTTPException) -> Response[dict[str, Any]]:
    status = exc.status_code
    if isinstance(exc, ValidationException) or status == 400:
        errors = _field_errors(exc.extra)
        if not errors and (missing := _MISSING.match(exc.detail or "")):
            return _missing_parameter(missing["source"], missing["name"])
        if not errors:  # the body could not even be decoded
            return problem(400, "/problems/malformed-body", "Malformed request body",
                           f"The body is not valid JSON: {exc.detail}", field="body")
        detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
        return problem(400, "/problems/validation", "Invalid request", detail, errors=errors)
    if isinstance(exc, NotAuthorizedException):
        return problem(401, "/problems/unauthorized", "Unauthorized", exc.detail)
    if isinstance(exc, PermissionDeniedException):
        return problem(403, "/problems/forbidden", "Forbidden", exc.detail)
    if isinstance(exc, NotFoundException):
        return problem(404, "/problems/not-found", "Not found", exc.detail)
    if status == 413:
        return problem(413, "/problems/body-too-large", "Request body too large", exc.detail)
    if status == 405:  # RFC 9110: a 405 says which methods the resource has
        allow = {k.lower(): v for k, v in (exc.headers or {}).items()}.get("allow", "")
        answer = problem(405, "/problems/method-not-allowed", "Method not allowed",
                         f"{_.method} is not a method of this resource; it has {allow}")
        if allow:
            answer.headers["Allow"] = allow
        return answer
    if status == 429:
        limits = exc.headers or {}
        retry = limits.get("Retry-After") or limits.get("RateLimit-Reset") or "60"
        return problem(429, "/problems/rate-limited", "Too many requests",
                       "too many attempts; retry later", retry_after=max(1, int(retry)))
    if status >= 500:
        return internal_error_handler(_, exc)
    return problem(status, f"/problems/http-{status}", exc.detail or "Error", exc.detail)


def _missing_parameter(source: str, name: str) -> Response[dict[str, Any]]:
    """A required header, query or path parameter is absent: a missing `Idempotency-Key` has
    its own problem type (a client forgot the header, its body is fine)."""
    if source == "header" and name.lower() == IDEMPOTENCY_KEY:
        return problem(
            400, "/problems/idempotency-key-missing", "Idempotency-Key header missing",
            "this route changes money or state and needs an `Idempotency-Key` header (a "
            "unique value per operation, the same on retries)", field="Idempotency-Key",
            errors=[{"field": "Idempotency-Key", "message": "required header is missing",
                     "source": "header"}])
    return problem(400, "/problems/validation", "Invalid request",
                   f"{name}: required {source} parameter is missing", field=name,
                   errors=[{"field": name, "message": f"required {source} parameter is missing",
                            "source": source}])
# The database is down, restarting, refusing connections or dropped ours: the request may
# succeed in a moment, so it is a 503 with Retry-After, never a 500. Till writes are safe to
# retry with the same Idempotency-Key: a transaction cut off this way did not commit.
UNAVAILABLE: tuple[type[Exception], ...] = (
    asyncpg.PostgresConnectionError,  # 08xxx: refused, lost, closed by the server
    asyncpg.exceptions.OperatorInterventionError,  # 57Pxx: shutdown, crash, starting up
    asyncpg.exceptions.InsufficientResourcesError,  # 53xxx: too many connections, disk full
    ConnectionError,  # refused or reset before PostgreSQL said anything
    # the server vanished in the middle of a protocol exchange (seen on a COMMIT when
    # PostgreSQL was killed): whether it committed is unknown, so retry with the same key
    asyncpg.exceptions.InternalClientError,
    TimeoutError,  # no pool connection or no answer in time
)
RETRY_AFTER_S = 1


def _unavailable(exc: BaseException) -> bool:
    if isinstance(exc, UNAVAILABLE):
        return True
    # asyncpg signals "used a connection the server already closed" as an InterfaceError; a
    # pooled one that the server closed while a request awaited something else (argon2 between
    # a till's read and its write) is handed back to its pool at once, and the next statement
    # says "released back to the pool" (tests/integration/test_lost_pool_connection.py)
    return isinstance(exc, asyncpg.InterfaceError) and (
        "connection is closed" in str(exc) or "released back to the pool" in str(exc))


def unavailable_handler(request: Request[Any, Any, Any], exc: Exception
                        ) -> Response[dict[str, Any]]:
    log.warning("database unavailable on %s %s: %s", request.method, request.url.path,
                type(exc).__name__)
    return problem(503, "/problems/unavailable", "Service unavailable",
                   "The database cannot be reached right now; retry shortly.",
                   retry_after=RETRY_AFTER_S)


def internal_error_handler(
    request: Request[Any, Any, Any], exc: Exception
) -> Response[dict[str, Any]]:
    if _unavailable(exc) or _unavailable(exc.__cause__ or exc):
        return unavailable_handler(request, exc)
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return problem(HTTP_500_INTERNAL_SERVER_ERROR, "/problems/internal", "Internal error",
                   "The server could not complete the request; it has been logged.")


EXCEPTION_HANDLERS: dict[type[Exception] | int, Any] = {
    HTTPException: http_error_handler,
    wallet_errors.DomainError: domain_error_handler,
    Exception: internal_error_handler,
    **{cls: unavailable_handler for cls in UNAVAILABLE},
}
