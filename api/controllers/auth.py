"""`POST /v1/auth/token`: password and refresh-token grants."""

from __future__ import annotations

import uuid
from typing import Annotated

import msgspec
from litestar import Controller, post
from litestar.datastructures import State
from litestar.params import JSONBody
from msgspec import Meta

from api.auth import sessions
from api.auth.sessions import TokenPair
from api.errors import responses
from wallet.kernel.text import CONTROL, Text, patterned

Email = Annotated[str, Meta(min_length=3, max_length=254, pattern=patterned(
    rf"^[^@\s{CONTROL}]+@[^@\s{CONTROL}]+$",
    "an e-mail address: one @, no spaces, no control characters"))]


class PasswordGrant(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True,
                    tag_field="grant_type", tag="password"):
    email: Email
    password: Annotated[Text, Meta(min_length=1, max_length=200)]
    program_id: uuid.UUID | None = None


class RefreshGrant(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True,
                   tag_field="grant_type", tag="refresh_token"):
    refresh_token: Annotated[Text, Meta(min_length=1, max_length=4096)]


TokenRequest = PasswordGrant | RefreshGrant


class AuthController(Controller):
    path = "/v1/auth"
    tags = ["auth"]
    opt = {"exclude_from_auth": True}

    @post("/token", status_code=200, summary="Log in, or rotate a refresh token",
          description="`grant_type: password`: staff, managers and members log in with their "
                      "program's `program_id`; admins without one. Right credentials of a "
                      "program account without `program_id` → 400 "
                      "`/problems/program-id-required` naming the field; anything else wrong "
                      "→ 401. `grant_type: refresh_token` rotates a refresh token (single "
                      "use; a reused one revokes its family). Rate-limited per client "
                      "address (429 with Retry-After).",
          responses=responses(429))
    async def token(self, state: State,
                    data: JSONBody[TokenRequest]) -> TokenPair:
        match data:
            case PasswordGrant(email=email, password=password, program_id=program_id):
                return await sessions.password_login(
                    state.pool, state.tokens, state.hasher, email=email, password=password,
                    program_id=program_id)
            case RefreshGrant(refresh_token=token):
                return await sessions.refresh(state.pool, state.tokens, token)


