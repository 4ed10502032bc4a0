"""Wallet passes for members (`/v1/me/card/apple-pass`, `/v1/me/card/google-wallet`) and the
program's pass design for managers (`/v1/programs/{program_id}/pass-design`).

A kind of pass the operator has not configured answers 404 `/problems/passes-not-configured`.
Handlers are thin: check the configuration, call one service function, count what was issued.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Annotated

import msgspec
from litestar import Controller, Response, get, put
from litestar.datastructures import State
from litestar.openapi import ResponseSpec
from litestar.params import FromPath, JSONBody, QueryParameter
from litestar.types import ControllerRouterHandler
from msgspec import Meta

from api import metrics
from api.auth.tokens import Caller, live_member, roles
from api.config import PassesSetup
from api.controllers.admin import in_path_program
from api.errors import responses
from wallet.passes import passes_service
from wallet.passes.model import Design
from wallet.passes.pkpass import MEDIA_TYPE

ShowName = Annotated[bool | None, QueryParameter(
    description="show the first name on the pass (true), remove it (false); "
                "omitted: as chosen before (not shown by default)")]
Color = Annotated[str, Meta(pattern=r"^#[0-9a-fA-F]{6}$", examples=["#1f2937"],
                            description="an sRGB colour, #rrggbb")]


def http_date(at: datetime) -> str:
    """An RFC 9110 HTTP-date (always GMT)."""
    return format_datetime(at.astimezone(UTC), usegmt=True)


def pkpass_response(data: bytes, modified_at: datetime) -> Response[bytes]:
    return Response(content=data, media_type=MEDIA_TYPE, headers={
        "Content-Disposition": 'attachment; filename="card.pkpass"',
        "Last-Modified": http_date(modified_at), "Cache-Control": "no-store"})


PKPASS_RESPONSE = {200: ResponseSpec(data_container=bytes, media_type=MEDIA_TYPE,
                                     description="The signed pass (a zip archive)")}


class GoogleWalletOut(msgspec.Struct, frozen=True, kw_only=True):
    save_url: Annotated[str, Meta(
        description="Open it (or put it behind Google's \"Add to Google Wallet\" button) to "
                    "save the card; it carries a signed JWT",
        examples=["https://pay.google.com/gp/v/save/eyJhbGciOiJSUzI1NiIs..."])]


class MyPassesController(Controller):
    path = "/v1/me/card"
    tags = ["members", "passes"]
    guards = [roles("member"), live_member]

    @get("/apple-pass", summary="My card as an Apple Wallet pass (.pkpass)",
         media_type=MEDIA_TYPE, responses={**PKPASS_RESPONSE, **responses(403, 404)})
    async def apple_pass(self, state: State, principal: Caller,
                         show_name: ShowName = None) -> Response[bytes]:
        """A signed `storeCard` pass with the program's name and colours, the member's tier,
        points and stored-value balance, offers, the card number as a barcode and up to ten
        store locations (recent purchases; recent visits only with location consent; the
        program's flagship stores). No e-mail; the first name only with `show_name=true`
        (remembered for later updates; `false` removes it). The pass updates itself: after a
        purchase, refund, top-up, tier change or a new offer, the phone is notified. The
        barcode only identifies the member to earn points: spending needs the PIN or the
        app's QR code. 404 `/problems/passes-not-configured` when the operator has not
        configured Apple Wallet passes."""
        apple = _setup(state).require_apple()
        issued = await passes_service.apple_pass(state.pool, principal.sub, apple,
                                                 show_name=show_name, now=datetime.now(UTC))
        if issued.created:
            metrics.PASSES_ISSUED.labels("apple").inc()
        return pkpass_response(issued.data, issued.modified_at)

    @get("/google-wallet", summary="A \"save to Google Wallet\" link for my card",
         responses=responses(403, 404))
    async def google_wallet(self, state: State, principal: Caller,
                            show_name: ShowName = None) -> GoogleWalletOut:
        """A link carrying an RS256 JWT signed with the operator's service-account key
        (`typ: savetowallet`), whose loyalty object holds the card number (account id and
        barcode), points and stored-value balances and tier; the first name only with
        `show_name=true`. Later balance and tier changes reach the saved object through the
        Google Wallet API. 404 `/problems/passes-not-configured` when not configured."""
        google = _setup(state).require_google()
        issued = await passes_service.google_pass(state.pool, principal.sub, google,
                                                  show_name=show_name, now=datetime.now(UTC))
        if issued.created:
            metrics.PASSES_ISSUED.labels("google").inc()
        return GoogleWalletOut(save_url=issued.save_url)


class DesignIO(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    background_color: Color
    foreground_color: Color
    label_color: Color
    featured_store_ids: Annotated[list[uuid.UUID], Meta(
        max_length=10, description="flagship stores shown on every member's pass (≤ 10)")] = []

    def design(self) -> Design:
        return Design(background_color=self.background_color.lower(),
                      foreground_color=self.foreground_color.lower(),
                      label_color=self.label_color.lower(),
                      featured_store_ids=list(dict.fromkeys(self.featured_store_ids)))

    @classmethod
    def of(cls, d: Design) -> DesignIO:
        return cls(background_color=d.background_color, foreground_color=d.foreground_color,
                   label_color=d.label_color, featured_store_ids=d.featured_store_ids)


class PassDesignController(Controller):
    path = "/v1/programs/{program_id:uuid}/pass-design"
    tags = ["passes"]
    guards = [roles("manager", "admin"), in_path_program]

    @get("/", summary="The program's look on wallet passes", responses=responses(403, 404))
    async def get_design(self, state: State, program_id: FromPath[uuid.UUID]) -> DesignIO:
        """Colours and flagship stores of the program's passes (defaults until set)."""
        return DesignIO.of(await passes_service.design(state.pool, program_id))

    @put("/", summary="Set the program's look on wallet passes",
         responses=responses(403, 404))
    async def put_design(self, state: State, program_id: FromPath[uuid.UUID],
                         data: JSONBody[DesignIO]) -> DesignIO:
        """Background, foreground and label colours, and up to ten flagship stores that every
        member's pass lists as relevant locations. Every pass of the program is updated (its
        devices are notified). An unknown store → 404 naming `featured_store_ids`."""
        return DesignIO.of(await passes_service.put_design(state.pool, program_id,
                                                           data.design()))


def _setup(state: State) -> PassesSetup:
    setup: PassesSetup = state.passes
    return setup


ROUTES: list[ControllerRouterHandler] = [MyPassesController, PassDesignController]
