"""Browser sessions of the console (`/console`) and the till (`/till`).

The refresh token travels only in a cookie the page's JavaScript cannot read: `HttpOnly`,
`SameSite=Strict`, scoped to the app's path, `Secure` unless the page is served on loopback
(plain http on 127.0.0.1 during development). The access token lives only in the page's
memory. Each app has its own cookie and its own roles: managers and admins in the console,
staff and managers at the till; any other token is refused there.

Login takes an e-mail and a password, with no program id to remember: the account is looked up
among the operator accounts of every program; only when the same e-mail and password open
accounts in several programs is the person asked to choose (a 409 listing those programs).

CSRF: the writes the cookie authenticates (refresh, logout) need the token bound to the
session — an HMAC of the refresh-token family under a key derived from the signing key — which
the server gives the page in a `<meta>` and in every session response; a cross-site page can
read neither. The browser's Fetch Metadata (`Sec-Fetch-Site`) and `Origin`, when sent, must
also say same-origin (login included, against login CSRF).

Logout revokes the refresh-token family, so the cookie is dead everywhere it was copied; the
page drops its access token and tells the app's other tabs to drop theirs.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import uuid
from collections.abc import Mapping
from typing import Literal
from urllib.parse import urlsplit

import asyncpg
import msgspec
from cryptography.hazmat.primitives import serialization

from api.auth import sessions
from api.auth.tokens import Claims, Principal, TokenService
from wallet.kernel import errors
from wallet.kernel.hashing import Hasher
from wallet.kernel.model import Role
from wallet.members import sessions_repo
from wallet.members.sessions_repo import Identity
from wallet.programs import accounts_repo

AppName = Literal["console", "till"]


class BrowserApp(msgspec.Struct, frozen=True, kw_only=True):
    name: AppName
    roles: frozenset[str]
    cookie: str
    path: str
    refused: str  # said to an account of another role, after its password was verified


CONSOLE = BrowserApp(name="console", roles=frozenset({"manager", "admin"}),
                     cookie="loyalty_console_session", path="/console",
                     refused="the console is for managers and admins; staff use the till at "
                             "/till")
TILL = BrowserApp(name="till", roles=frozenset({"staff", "manager"}),
                  cookie="loyalty_till_session", path="/till",
                  refused="the till is for store staff and managers; admins use the console "
                          "at /console")
APPS: Mapping[AppName, BrowserApp] = {"console": CONSOLE, "till": TILL}


class AccountView(msgspec.Struct, frozen=True, kw_only=True):
    id: uuid.UUID
    email: str
    role: Role
    program_id: uuid.UUID | None
    store_ids: list[uuid.UUID]


class BrowserSession(msgspec.Struct, frozen=True, kw_only=True):
    """What the page keeps in memory. The refresh token is in the cookie, never here."""

    access_token: str
    expires_in: int
    csrf_token: str
    account: AccountView


class ProgramChoice(msgspec.Struct, frozen=True, kw_only=True):
    id: uuid.UUID
    name: str


class ChooseProgram(Exception):
    """The e-mail and password open accounts in several programs: which one?"""

    def __init__(self, programs: list[ProgramChoice]) -> None:
        super().__init__("this e-mail has accounts in several programs: give program_id")
        self.programs = programs


class Login(msgspec.Struct, frozen=True, kw_only=True):
    session: BrowserSession
    refresh_token: str


def csrf_key(tokens: TokenService) -> bytes:
    """A key for CSRF tokens, derived from the signing key (the same in every worker)."""
    raw = tokens.keyset.signing_key.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
        serialization.NoEncryption())
    return hashlib.sha256(b"loyalty-geo csrf v1\x00" + raw).digest()


def csrf_token(key: bytes, app: BrowserApp, family: str) -> str:
    mac = hmac.new(key, f"{app.name}\x00{family}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).decode().rstrip("=")


def check_csrf(key: bytes, app: BrowserApp, family: str, presented: str) -> None:
    if not presented or not hmac.compare_digest(csrf_token(key, app, family), presented):
        raise errors.AccessDenied("missing or wrong CSRF token: reload the page",
                                  field="X-CSRF-Token")


def check_same_origin(headers: Mapping[str, str], host: str) -> None:
    """Refuse a request a browser says comes from another site (Fetch Metadata, Origin)."""
    site = headers.get("sec-fetch-site")
    if site is not None and site not in ("same-origin", "none"):
        raise errors.AccessDenied(f"cross-site request refused (Sec-Fetch-Site: {site})")
    origin = headers.get("origin")
    if origin is not None and urlsplit(origin).netloc.lower() != host.lower():
        raise errors.AccessDenied("cross-origin request refused (Origin)")


def is_loopback(host: str) -> bool:
    """True for a `Host` of localhost or a loopback address, with or without a port."""
    h = host.strip().lower()
    if h.startswith("["):
        name = h[1:h.find("]")] if "]" in h else h[1:]
    elif h.count(":") == 1:
        name = h.split(":", 1)[0]
    else:
        name = h
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


async def login(pool: asyncpg.Pool, tokens: TokenService, hasher: Hasher, key: bytes,
                app: BrowserApp, *, email: str, password: str,
                program_id: uuid.UUID | None) -> Login:
    """Verify the password against every operator account with this e-mail; one match in an
    allowed role opens a session. Unknown e-mails cost the same hash verification."""
    async with pool.acquire() as conn:
        rows = await accounts_repo.accounts_by_email(conn, email, program_id)
    if not rows:
        await hasher.verify_unknown_async(password)
    matches = [r for r in rows if await hasher.verify_async(r.password_hash, password)]
    if not matches:
        raise errors.Unauthenticated("wrong e-mail or password")
    if len(matches) > 1:
        raise ChooseProgram([ProgramChoice(id=r.program_id, name=r.program_name or "—")
                             for r in matches if r.program_id is not None])
    row = matches[0]
    if row.role not in app.roles:
        raise errors.AccessDenied(app.refused)
    who = Identity(id=row.id, role=row.role, program_id=row.program_id,
                   store_ids=row.store_ids)
    async with pool.acquire() as conn:
        pair = await sessions.issue(conn, tokens, who)
    return _session(tokens, key, app, pair, email=row.email)


def _session(tokens: TokenService, key: bytes, app: BrowserApp, pair: sessions.TokenPair,
             *, email: str) -> Login:
    claims = tokens.verify(pair.refresh_token, "refresh")
    p: Principal = tokens.principal(pair.access_token)
    return Login(refresh_token=pair.refresh_token, session=BrowserSession(
        access_token=pair.access_token, expires_in=pair.expires_in,
        csrf_token=csrf_token(key, app, claims.fam or ""),
        account=AccountView(id=p.sub, email=email, role=p.role, program_id=p.program_id,
                            store_ids=list(p.store_ids))))


def cookie_claims(tokens: TokenService, app: BrowserApp, cookie: str | None) -> Claims | None:
    """The verified claims of a session cookie for this app, or None (absent, invalid,
    expired, or a token of a role this app does not serve)."""
    if not cookie:
        return None
    try:
        claims = tokens.verify(cookie, "refresh")
    except errors.Unauthenticated:
        return None
    return claims if claims.role in app.roles and claims.fam else None


async def refresh(pool: asyncpg.Pool, tokens: TokenService, key: bytes, app: BrowserApp, *,
                  cookie: str | None, csrf: str) -> Login:
    """Rotate the session cookie's refresh token (single use) and mint a new access token."""
    claims = cookie_claims(tokens, app, cookie)
    if claims is None or cookie is None:
        raise errors.Unauthenticated("no session: sign in")
    check_csrf(key, app, claims.fam or "", csrf)
    pair = await sessions.refresh(pool, tokens, cookie)
    async with pool.acquire() as conn:
        email = await accounts_repo.account_email(conn, uuid.UUID(claims.sub))
    return _session(tokens, key, app, pair, email=email)


async def logout(pool: asyncpg.Pool, tokens: TokenService, key: bytes, app: BrowserApp, *,
                 cookie: str | None, csrf: str) -> None:
    """Revoke the session's whole refresh-token family (a cookie that no longer verifies has
    nothing left to revoke: the caller just clears it)."""
    claims = cookie_claims(tokens, app, cookie)
    if claims is None:
        return
    check_csrf(key, app, claims.fam or "", csrf)
    async with pool.acquire() as conn:
        await sessions_repo.revoke_family(conn, uuid.UUID(claims.fam or ""))
