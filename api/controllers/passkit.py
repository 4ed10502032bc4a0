"""Apple's PassKit web service, as Apple's reference ("Adding a Web Service to Update
Passes") defines it, under `/v1/passkit`.

Apple appends its own version segment to a pass's `webServiceURL`: with
`LOYALTY_PASS_WEB_SERVICE_URL=https://host/v1/passkit`, a phone calls
`https://host/v1/passkit/v1/devices/...`. Every route is therefore served both at
`/v1/passkit/<route>` (this API's documented paths) and `/v1/passkit/v1/<route>` (what phones
call; the same handlers, left out of the OpenAPI document so each operation appears once).
Field names (`pushToken`, `serialNumbers`, `lastUpdated`, `passesUpdatedSince`) are Apple's,
not this API's snake_case.

No bearer token here (the JWT middleware skips `/v1/passkit`): routes naming a pass are
authenticated by `Authorization: ApplePass <token>` (the token inside the pass); a wrong or
missing one, and an unknown serial, are 401. Listing a device's updated passes carries no
token, as in Apple's protocol (a device library identifier is a random, per-device secret).
"""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, Response, delete, get, post
from litestar.datastructures import State
from litestar.openapi import ResponseSpec
from litestar.params import FromPath, JSONBody, QueryParameter
from litestar.types import ControllerRouterHandler
from msgspec import Meta

from api import metrics
from api.config import PassesSetup
from api.controllers.passes import PKPASS_RESPONSE, pkpass_response
from api.errors import responses
from wallet.kernel.errors import RuleViolation
from wallet.passes import passes_service
from wallet.passes.pkpass import MEDIA_TYPE

DeviceId = Annotated[str, Meta(pattern=r"^[A-Za-z0-9._-]{1,128}$", max_length=128)]


class RegistrationIn(msgspec.Struct, frozen=True, kw_only=True):
    # Unknown fields are ignored here on purpose: the body is Apple's, which may add some.
    pushToken: Annotated[str, Meta(pattern=r"^[A-Za-z0-9]{1,200}$",
                                   examples=["a1b2c3d4e5f6"], description="the APNs token")]


class RegistrationOut(msgspec.Struct, frozen=True, kw_only=True):
    """What was registered (Apple's devices read only the status: 201 new, 200 again)."""

    device_library_identifier: str
    serial_number: str
    new: bool


class SerialsOut(msgspec.Struct, frozen=True, kw_only=True):
    serialNumbers: list[str]
    lastUpdated: Annotated[str, Meta(
        description="the tag to send as passesUpdatedSince next time", examples=["42"])]


class LogsIn(msgspec.Struct, frozen=True, kw_only=True):
    logs: Annotated[list[Annotated[str, Meta(max_length=2000)]], Meta(max_length=100)]


_REGISTRATION = "/devices/{device:str}/registrations/{pass_type:str}/{serial:str}"
_REGISTRATIONS = "/devices/{device:str}/registrations/{pass_type:str}"
_PASS = "/passes/{pass_type:str}/{serial:str}"  # noqa: S105 - a path, not a secret


def _token(request: Request[Any, Any, Any]) -> str | None:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return token.strip() or None if scheme == "ApplePass" else None


def _valid_device(device: str) -> str:
    try:
        return msgspec.convert(device, DeviceId)
    except msgspec.ValidationError as exc:
        raise RuleViolation("not a device library identifier (1-128 of A-Z a-z 0-9 . _ -)",
                            field="deviceLibraryIdentifier") from exc


def _since(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        at = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None  # an unreadable date is ignored, as HTTP says
    return at if at.tzinfo else at.replace(tzinfo=UTC)


class PassKitController(Controller):
    path = "/v1/passkit"
    tags = ["passkit"]
    security = [{}]  # no bearer token: `Authorization: ApplePass <token>`

    @post(_REGISTRATION, status_code=201,
          summary="PassKit: register a device for a pass's updates",
          responses={200: ResponseSpec(data_container=RegistrationOut,
                                       description="Already registered (push token updated)"),
                     **responses(404, 422)})
    async def register(self, request: Request[Any, Any, Any], state: State, *,
                       device: FromPath[str], pass_type: FromPath[str],
                       serial: FromPath[str], data: JSONBody[RegistrationIn]
                       ) -> Response[RegistrationOut]:
        """The phone registers `device` (its device library identifier) to be pushed when the
        pass changes, with its APNs `pushToken`. 201 when new, 200 when it was registered
        already, 401 for a wrong `ApplePass` token."""
        apple = _setup(state).require_apple()
        created = await passes_service.register(
            state.pool, apple, device=_valid_device(device), pass_type_id=pass_type,
            serial=serial, token=_token(request), push_token=data.pushToken)
        if created:
            metrics.PASS_DEVICES.inc()
        return Response(content=RegistrationOut(device_library_identifier=device,
                                                serial_number=serial, new=created),
                        status_code=201 if created else 200)

    @delete(_REGISTRATION, status_code=200,
            summary="PassKit: unregister a device from a pass's updates",
            responses=responses(404, 422))
    async def unregister(self, request: Request[Any, Any, Any], state: State,
                         device: FromPath[str], pass_type: FromPath[str],
                         serial: FromPath[str]) -> None:
        """The phone stops updates of the pass on `device` (the pass was removed). 200 even
        when it was not registered; 401 for a wrong `ApplePass` token."""
        apple = _setup(state).require_apple()
        await passes_service.unregister(state.pool, apple, device=_valid_device(device),
                                        pass_type_id=pass_type, serial=serial,
                                        token=_token(request))

    @get(_REGISTRATIONS, summary="PassKit: the device's passes updated since a tag",
         responses={204: ResponseSpec(data_container=None,
                                      description="Nothing changed since the tag"),
                    **responses(404, 422)})
    async def updated(self, state: State, device: FromPath[str], pass_type: FromPath[str],
                      passes_updated_since: Annotated[str | None, QueryParameter(
                          name="passesUpdatedSince", max_length=19,
                          description="the lastUpdated tag of the previous answer")] = None
                      ) -> Response[SerialsOut | None]:
        """Serial numbers of the device's passes of this type changed after
        `passesUpdatedSince` (all of them without it), and the tag to send next time;
        204 when none changed."""
        apple = _setup(state).require_apple()
        found = await passes_service.updated_since(
            state.pool, apple, device=_valid_device(device), pass_type_id=pass_type,
            tag=passes_updated_since)
        if found is None:
            return Response(content=None, status_code=204)
        serials, tag = found
        return Response(content=SerialsOut(serialNumbers=serials, lastUpdated=tag))

    @get(_PASS, summary="PassKit: the latest version of a pass",
         media_type=MEDIA_TYPE,
         responses={**PKPASS_RESPONSE,
                    304: ResponseSpec(data_container=None,
                                      description="Not modified since If-Modified-Since"),
                    **responses(404)})
    async def latest(self, request: Request[Any, Any, Any], state: State,
                     pass_type: FromPath[str], serial: FromPath[str]) -> Response[bytes]:
        """The signed .pkpass as it is now, with `Last-Modified`; 304 when it has not changed
        since `If-Modified-Since`; 401 for a wrong `ApplePass` token. An erased member's pass
        comes back `voided`, without any member data."""
        apple = _setup(state).require_apple()
        issued = await passes_service.latest(
            state.pool, apple, pass_type_id=pass_type, serial=serial, token=_token(request),
            if_modified_since=_since(request.headers.get("if-modified-since")),
            now=datetime.now(UTC))
        if issued is None:
            return Response(content=b"", status_code=304)
        return pkpass_response(issued.data, issued.modified_at)

    @post("/log", status_code=200, summary="PassKit: messages logged by devices",
          responses=responses(404))
    async def log(self, state: State, data: JSONBody[LogsIn]) -> None:
        """Phones report problems with our passes here; they are written to the server log
        (at most 20 per request, 500 characters each)."""
        _setup(state).require_apple()
        passes_service.device_logs(data.logs)


def _setup(state: State) -> PassesSetup:
    setup: PassesSetup = state.passes
    return setup


class PassKitForPhonesController(PassKitController):
    """The same routes under Apple's version segment (see the module docstring)."""

    path = "/v1/passkit/v1"
    include_in_schema = False


ROUTES: list[ControllerRouterHandler] = [PassKitController, PassKitForPhonesController]
