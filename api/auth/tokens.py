"""Tokens and guards.

Access tokens are short-lived JWTs (EdDSA, `kid` in the header); refresh tokens are JWTs too,
stored only as a SHA-256 hash, rotated on every use and revoked with their whole family when
a rotated one is presented again (see `api/auth/sessions.py`). Verification is strict: the
algorithm is pinned, the `kid` must be known, `exp`, `iat`, `nbf`, `iss` and `typ` are
required and checked. Card QR payloads are the same kind of token with `typ=card`.

pyjwt mints tokens; the header (once per header segment), the signature and the claims of
every token are checked here, with `cryptography`'s Ed25519 and msgspec, the
checks pyjwt's `decode` made (segments canonical base64url, signature, required claims
and their types, `iat`/`nbf`/`exp` with the leeway, `iss`, no `aud`) in C rather than in
pyjwt 2.15's per-character Python: a ping batch, whose token is rarely remembered, spent
about a tenth of its server CPU in that check (tests/unit/api/test_token_verify.py holds
the two to the same answers).
"""

from __future__ import annotations

import base64
import binascii
import re
import secrets
import time
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Literal

import jwt
import msgspec
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from litestar import Request
from litestar.connection import ASGIConnection
from litestar.di import NamedDependency
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException
from litestar.handlers.base import BaseRouteHandler
from litestar.middleware import AbstractAuthenticationMiddleware, AuthenticationResult

from api.auth.keys import ALGORITHM, Keyset
from wallet.kernel import errors
from wallet.kernel.model import Role
from wallet.members.members_service import ensure_member

TokenType = Literal["access", "refresh", "card"]
_LEEWAY_S = 5
_VERIFIED_CACHE = 8192  # access tokens remembered after a successful verification
_HEADERS_KNOWN = 16  # token header segments remembered with their key (one per kid, in use)
_HEADER_NAMES = frozenset({"alg", "kid", "typ"})  # what a header may hold (no crit, b64, jku...)
_COMPACT = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")  # unpadded


class Principal(msgspec.Struct, frozen=True, kw_only=True):
    """Who is calling, from a verified access token."""

    sub: uuid.UUID
    role: Role
    program_id: uuid.UUID | None = None
    store_ids: tuple[uuid.UUID, ...] = ()
    jti: str = ""

    def require_program(self, program_id: uuid.UUID) -> None:
        """Managers, staff and members act only inside their own program; admins anywhere."""
        if self.role != "admin" and self.program_id != program_id:
            raise errors.AccessDenied("this token is not valid for that program")

    def require_store(self, store_id: uuid.UUID) -> None:
        """Staff act only for their `store_ids`; managers for any store of their program."""
        if self.role == "staff" and store_id not in self.store_ids:
            raise errors.AccessDenied(
                "this staff account cannot act for that store", field="store_id")


class Claims(msgspec.Struct, frozen=True, kw_only=True):
    sub: str
    typ: TokenType
    role: Role
    exp: int
    iat: int
    jti: str
    program_id: str | None = None
    store_ids: list[str] = []
    fam: str | None = None  # refresh-token family
    card: str | None = None  # card id, for typ=card


class _Signed(Claims, frozen=True, kw_only=True):
    """A token's payload as verified: the claims plus those only checked."""

    iss: str
    nbf: int
    aud: object = None  # refused when present and not empty, as pyjwt did


_PAYLOAD = msgspec.json.Decoder(_Signed, strict=True)
_HEADER = msgspec.json.Decoder(dict[str, object])


def _segment(text: str) -> bytes:
    """A base64url segment's bytes; ValueError unless it is the canonical unpadded form
    (no stray trailing bits: one token, one spelling)."""
    raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    if base64.urlsafe_b64encode(raw).rstrip(b"=").decode() != text:
        raise ValueError("not canonical base64url")
    return raw


class TokenService:
    """Mints and verifies every token the service issues. Holds the keyset and a bounded
    memory of access tokens it has already verified (see `principal`)."""

    def __init__(self, keyset: Keyset, *, issuer: str, access_ttl_s: int,
                 refresh_ttl_s: int, card_ttl_s: int,
                 verified_cache: int = _VERIFIED_CACHE) -> None:
        self.keyset = keyset
        self.issuer = issuer
        self.access_ttl_s = access_ttl_s
        self.refresh_ttl_s = refresh_ttl_s
        self.card_ttl_s = card_ttl_s
        self._verified: OrderedDict[str, tuple[Principal, int]] = OrderedDict()
        self._verified_max = verified_cache
        self._key_of_header: dict[str, Ed25519PublicKey] = {}

    def _mint(self, claims: dict[str, Any], ttl_s: int, now: float | None) -> tuple[str, int]:
        iat = int(now if now is not None else time.time())
        exp = iat + ttl_s
        payload = {**claims, "iss": self.issuer, "iat": iat, "nbf": iat, "exp": exp,
                   "jti": claims.get("jti") or secrets.token_urlsafe(12)}
        token = jwt.encode(payload, self.keyset.signing_key, algorithm=ALGORITHM,
                           headers={"kid": self.keyset.signing_kid})
        return token, exp

    def mint_access(self, *, sub: uuid.UUID, role: Role, program_id: uuid.UUID | None = None,
                    store_ids: Sequence[uuid.UUID] = (), now: float | None = None,
                    ttl_s: int | None = None) -> str:
        claims: dict[str, Any] = {"sub": str(sub), "role": role, "typ": "access"}
        if role != "admin":
            claims["program_id"] = str(program_id)
        if role == "staff":
            claims["store_ids"] = [str(s) for s in store_ids]
        return self._mint(claims, ttl_s or self.access_ttl_s, now)[0]

    def mint_refresh(self, *, sub: uuid.UUID, role: Role, program_id: uuid.UUID | None,
                     family: uuid.UUID, store_ids: Sequence[uuid.UUID] = (),
                     now: float | None = None) -> tuple[str, str, int]:
        """Returns (token, jti, exp). Only the token's hash is stored server-side."""
        jti = secrets.token_urlsafe(16)
        claims: dict[str, Any] = {"sub": str(sub), "role": role, "typ": "refresh",
                                  "fam": str(family), "jti": jti}
        if program_id is not None:
            claims["program_id"] = str(program_id)
        if store_ids:
            claims["store_ids"] = [str(s) for s in store_ids]
        token, exp = self._mint(claims, self.refresh_ttl_s, now)
        return token, jti, exp

    def mint_card(self, *, card_id: uuid.UUID, member_id: uuid.UUID, program_id: uuid.UUID,
                  now: float | None = None) -> tuple[str, int]:
        claims = {"sub": str(member_id), "role": "member", "typ": "card",
                  "program_id": str(program_id), "card": str(card_id)}
        return self._mint(claims, self.card_ttl_s, now)

    def verify(self, token: str, typ: TokenType) -> Claims:
        """Verify signature, pinned algorithm, known kid, time claims, issuer and type.

        Raises `errors.Unauthenticated` with a short reason; never reveals more than that.
        """
        if not _COMPACT.fullmatch(token):
            raise errors.Unauthenticated("malformed token")
        head, body, signature = token.split(".")
        key = self._key_for(head)
        try:
            key.verify(_segment(signature), f"{head}.{body}".encode())
            claims = _PAYLOAD.decode(_segment(body))
        except (InvalidSignature, binascii.Error, ValueError, msgspec.DecodeError) as exc:
            raise errors.Unauthenticated("invalid token") from exc
        now = time.time()
        if claims.iat > now + _LEEWAY_S or claims.nbf > now + _LEEWAY_S:
            raise errors.Unauthenticated("token not yet valid")
        if claims.exp <= now - _LEEWAY_S:
            raise errors.Unauthenticated("token expired")
        if claims.iss != self.issuer or claims.aud:
            raise errors.Unauthenticated("invalid token")
        if claims.typ != typ:
            raise errors.Unauthenticated(f"not an {typ} token")
        return claims

    def _key_for(self, head: str) -> Ed25519PublicKey:
        """The public key a token's header segment names (its `alg` pinned, its `kid` known,
        nothing else in it but `typ`).

        Every token one key signed has the same header segment, so a header already seen
        is not decoded again: its key is remembered (at most `_HEADERS_KNOWN` headers, which
        only ever hold a known kid). The signature covers the header segment too.
        """
        key = self._key_of_header.get(head)
        if key is not None:
            return key
        try:
            header = _HEADER.decode(_segment(head))
        except (binascii.Error, ValueError, msgspec.DecodeError) as exc:
            raise errors.Unauthenticated("malformed token") from exc
        if header.get("alg") != ALGORITHM:
            raise errors.Unauthenticated("unexpected token algorithm")
        if not _HEADER_NAMES.issuperset(header):
            raise errors.Unauthenticated("unexpected token header")
        kid = header.get("kid")
        key = self.keyset.public.get(kid) if isinstance(kid, str) else None
        if key is None:
            raise errors.Unauthenticated("unknown signing key")
        if len(self._key_of_header) < _HEADERS_KNOWN:
            self._key_of_header[head] = key
        return key

    def principal(self, token: str, *, now: float | None = None) -> Principal:
        """The caller of an access token, verified as `verify` does.

        An Ed25519 verification is most of the CPU of a cheap request, and an app sends the
        same access token until it expires, so a successful verification is remembered, keyed
        by the whole token string (a byte-identical token only: any other is verified in
        full), until the token's `exp` (without the leeway: stricter than `verify`), in a
        least-recently-used table of at most `verified_cache` tokens. Failures are never
        remembered. The keyset cannot change under a running service, so a remembered token
        stays exactly as valid as a fresh verification would find it.
        """
        t = time.time() if now is None else now
        hit = self._verified.get(token)
        if hit is not None:
            if t < hit[1]:
                self._verified.move_to_end(token)
                return hit[0]
            del self._verified[token]
        c = self.verify(token, "access")
        try:
            found = Principal(
                sub=uuid.UUID(c.sub), role=c.role, jti=c.jti,
                program_id=uuid.UUID(c.program_id) if c.program_id else None,
                store_ids=tuple(uuid.UUID(s) for s in c.store_ids))
        except ValueError as exc:
            raise errors.Unauthenticated("invalid token claims") from exc
        if self._verified_max > 0 and t < c.exp:
            self._verified[token] = (found, c.exp)
            if len(self._verified) > self._verified_max:
                self._verified.popitem(last=False)
        return found


class JWTAuthMiddleware(AbstractAuthenticationMiddleware):
    """Puts the verified `Principal` in `request.user` for every route not marked public."""

    async def authenticate_request(self, connection: ASGIConnection[Any, Any, Any, Any]
                                   ) -> AuthenticationResult:
        header = connection.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise NotAuthorizedException("a bearer token is required")
        tokens: TokenService = connection.app.state.tokens
        try:
            principal = tokens.principal(token.strip())
        except errors.Unauthenticated as exc:
            raise NotAuthorizedException(exc.detail) from exc
        return AuthenticationResult(user=principal, auth=token)


def roles(*allowed: Role
          ) -> Callable[[ASGIConnection[Any, Any, Any, Any], BaseRouteHandler], Awaitable[None]]:
    """A guard: the caller's role must be one of `allowed` (403 otherwise).

    Async on purpose: Litestar runs a synchronous guard in a worker thread, and that hop cost
    about a tenth of a till purchase's server CPU."""
    allowed_set = frozenset(allowed)

    async def guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler
                    ) -> None:
        user = connection.scope.get("user")
        if not isinstance(user, Principal):
            raise NotAuthorizedException("a bearer token is required")
        if user.role not in allowed_set:
            raise PermissionDeniedException(
                f"role {user.role!r} may not call this route "
                f"(needs {', '.join(sorted(allowed_set))})")

    guard.__name__ = f"roles_{'_'.join(sorted(allowed_set))}"
    return guard


async def live_member(connection: ASGIConnection[Any, Any, Any, Any],
                      _: BaseRouteHandler) -> None:
    """Guard for routes open to members that never read the member row themselves: a token
    of an erased member is 401 there too (the routes under /v1/me check it as they read)."""
    user = connection.scope.get("user")
    if isinstance(user, Principal) and user.role == "member":
        await ensure_member(connection.app.state.pool, user.sub)


def caller_of(request: Request[Any, Any, Any]) -> Principal:
    """The verified caller of `request` (the middleware has already rejected anonymous
    calls). What the `principal` dependency gives; the two hottest routes (ping batches,
    till purchases) call it directly rather than through Litestar's dependency injection,
    which resolves and validates a dependency's own parameters on every request."""
    user = request.scope.get("user")
    if not isinstance(user, Principal):
        raise NotAuthorizedException("a bearer token is required")
    return user


async def provide_principal(request: Request[Any, Any, Any]) -> Principal:
    """Dependency: the verified caller (see `caller_of`)."""
    return caller_of(request)


# The verified caller, injected into handlers as `principal: Caller`.
Caller = NamedDependency[Principal]
