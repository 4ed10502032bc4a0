"""Passes' services: each owns its connection and transaction.

* Members download their Apple pass or get a "save to Google Wallet" link (the first call
  creates the pass: a random serial and `ApplePass` token, nothing derived from the member).
* The PassKit web service (Apple's reference): devices register and unregister for a pass's
  updates, list the passes updated since a tag, fetch the latest pass (`If-Modified-Since`).
  Every call naming a pass is authenticated by its `ApplePass` token (constant-time compare);
  an unknown serial and a wrong token are the same `PassAuthFailed`, so serials cannot be
  probed.
* Managers set the program's colours and flagship stores (`put_design`).
"""

from __future__ import annotations

import hmac
import logging
import secrets
import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime

import asyncpg
import msgspec
from cryptography.hazmat.primitives.asymmetric import rsa

from wallet.kernel.errors import NotFound, PassAuthFailed, RuleViolation
from wallet.members.members_repo import gone
from wallet.passes import content, google_jwt, passes_repo, pkpass
from wallet.passes.google_jwt import ServiceAccount
from wallet.passes.model import Design, PassKind, PassRef, PassView
from wallet.passes.pkpass import Signer

log = logging.getLogger("wallet.passes")


class ApplePasses:
    """The operator's Apple Wallet set-up: identifiers, signer, optional own images."""

    def __init__(self, *, pass_type_id: str, team_id: str, web_service_url: str,
                 signer: Signer, images: Mapping[str, bytes] | None = None) -> None:
        self.pass_type_id = pass_type_id
        self.team_id = team_id
        self.web_service_url = web_service_url
        self.signer = signer
        self.images = dict(images) if images else None

    def render(self, view: PassView) -> bytes:
        """The signed .pkpass of `view`."""
        data = content.apple_pass_json(view, pass_type_id=self.pass_type_id,
                                       team_id=self.team_id,
                                       web_service_url=self.web_service_url)
        return pkpass.build(data, self.images or pkpass.default_images(
            view.design.background_color), self.signer)


class GooglePasses:
    """The operator's Google Wallet set-up: issuer, service account, allowed origins."""

    def __init__(self, *, issuer_id: str, account: ServiceAccount, key: rsa.RSAPrivateKey,
                 origins: Sequence[str], issuer_name: str = "", logo_url: str = "") -> None:
        self.issuer_id = issuer_id
        self.account = account
        self.key = key
        self.origins = list(origins)
        self.issuer_name = issuer_name
        self.logo_url = logo_url

    def save_url(self, view: PassView, now: datetime) -> str:
        classes = [content.google_class(view, issuer_id=self.issuer_id,
                                        issuer_name=self.issuer_name or view.program_name,
                                        logo_url=self.logo_url)] if self.logo_url else []
        token = google_jwt.save_jwt(
            self.account, self.key, origins=self.origins,
            objects=[content.google_object(view, issuer_id=self.issuer_id)],
            classes=classes, now=now)
        return google_jwt.save_url(token)


class IssuedPass(msgspec.Struct, frozen=True, kw_only=True):
    serial: str
    created: bool  # this call created the pass (the "passes issued" metric)
    modified_at: datetime
    data: bytes = b""  # the .pkpass (Apple)
    save_url: str = ""  # the save link (Google)


async def _member_pass(pool: asyncpg.Pool, member_id: uuid.UUID, kind: PassKind, *,
                       show_name: bool | None, now: datetime) -> tuple[PassView, bool]:
    """The member's pass of `kind` (created now if new: a random serial and token)."""
    async with pool.acquire() as conn, conn.transaction():
        created = await passes_repo.create(
            conn, member_id, kind, serial=secrets.token_urlsafe(24),
            auth_token=secrets.token_urlsafe(32), show_name=bool(show_name))
        if show_name is not None and not created:
            await passes_repo.set_show_name(conn, member_id, kind, show_name)
        view = await passes_repo.view_of_member(conn, member_id, kind, now)
    if view is None:  # no such member (erased meanwhile)
        raise gone()
    return view, created


async def apple_pass(pool: asyncpg.Pool, member_id: uuid.UUID, apple: ApplePasses, *,
                     show_name: bool | None, now: datetime) -> IssuedPass:
    """The member's signed .pkpass (created on first call). `show_name` None keeps the
    member's earlier choice (none: the name is not shown)."""
    view, created = await _member_pass(pool, member_id, "apple", show_name=show_name, now=now)
    return IssuedPass(serial=view.serial, created=created, modified_at=view.modified_at,
                      data=apple.render(view))


async def google_pass(pool: asyncpg.Pool, member_id: uuid.UUID, google: GooglePasses, *,
                      show_name: bool | None, now: datetime) -> IssuedPass:
    """The member's "save to Google Wallet" link (the object is created on first call)."""
    view, created = await _member_pass(pool, member_id, "google", show_name=show_name,
                                       now=now)
    return IssuedPass(serial=view.serial, created=created, modified_at=view.modified_at,
                      save_url=google.save_url(view, now))


# --- the PassKit web service --------------------------------------------------------------------


def _check_type(apple: ApplePasses, pass_type_id: str) -> None:
    if pass_type_id != apple.pass_type_id:
        raise NotFound("no passes of this pass type identifier here",
                       field="passTypeIdentifier")


def _authentic(ref: PassRef | None, token: str | None) -> PassRef:
    if ref is None or token is None or not hmac.compare_digest(
            ref.auth_token.encode(), token.encode()):
        raise PassAuthFailed("wrong or missing ApplePass token for this pass")
    return ref


async def register(pool: asyncpg.Pool, apple: ApplePasses, *, device: str,
                   pass_type_id: str, serial: str, token: str | None,
                   push_token: str) -> bool:
    """Register `device` for the pass's updates; True when new (201), False when it was
    already registered (200). A voided pass takes no new registration."""
    _check_type(apple, pass_type_id)
    async with pool.acquire() as conn, conn.transaction():
        ref = _authentic(await passes_repo.ref(conn, serial), token)
        if ref.voided:
            return False
        return await passes_repo.register(conn, device, ref.pass_id, push_token)


async def unregister(pool: asyncpg.Pool, apple: ApplePasses, *, device: str,
                     pass_type_id: str, serial: str, token: str | None) -> None:
    """Forget `device` for the pass (idempotent)."""
    _check_type(apple, pass_type_id)
    async with pool.acquire() as conn, conn.transaction():
        ref = _authentic(await passes_repo.ref(conn, serial), token)
        await passes_repo.unregister(conn, device, ref.pass_id)


def parse_tag(tag: str | None) -> int:
    """A `passesUpdatedSince` tag as we hand them out (a non-negative integer); -1: none."""
    if not tag:
        return -1
    if not tag.isdigit() or len(tag) > 19:
        raise RuleViolation("not an update tag given by this service",
                            field="passesUpdatedSince")
    return int(tag)


async def updated_since(pool: asyncpg.Pool, apple: ApplePasses, *, device: str,
                        pass_type_id: str, tag: str | None) -> tuple[list[str], str] | None:
    """(serials, new tag) of the device's passes updated after `tag`; None when none was
    (the web service answers 204)."""
    _check_type(apple, pass_type_id)
    since = parse_tag(tag)
    async with pool.acquire() as conn:
        rows = await passes_repo.updated_since(conn, device, since)
    if not rows:
        return None
    return [serial for serial, _ in rows], str(max(seq for _, seq in rows))


async def latest(pool: asyncpg.Pool, apple: ApplePasses, *, pass_type_id: str, serial: str,
                 token: str | None, if_modified_since: datetime | None,
                 now: datetime) -> IssuedPass | None:
    """The latest .pkpass, or None when it has not changed since `if_modified_since`
    (the web service answers 304)."""
    _check_type(apple, pass_type_id)
    async with pool.acquire() as conn:
        view = await passes_repo.view_by_serial(conn, serial, now)
    if view is None or view.kind != "apple":
        raise PassAuthFailed("wrong or missing ApplePass token for this pass")
    _authentic(PassRef(pass_id=view.pass_id, serial=view.serial, auth_token=view.auth_token,
                       modified_at=view.modified_at, voided=view.voided), token)
    if if_modified_since is not None and view.modified_at <= if_modified_since:
        return None
    return IssuedPass(serial=view.serial, created=False, modified_at=view.modified_at,
                      data=apple.render(view))


def device_logs(messages: Sequence[str]) -> None:
    """Messages a device sends about problems with our passes, logged for the operator."""
    for message in messages[:20]:
        log.warning("PassKit device log: %s", message[:500])


# --- the program's design -----------------------------------------------------------------------


async def design(pool: asyncpg.Pool, program_id: uuid.UUID) -> Design:
    async with pool.acquire() as conn:
        return await passes_repo.design(conn, program_id)


async def put_design(pool: asyncpg.Pool, program_id: uuid.UUID, d: Design) -> Design:
    """Set the program's pass design; every pass of the program is queued for an update.
    A flagship store that is not a live store of the program is NotFound (naming it)."""
    async with pool.acquire() as conn, conn.transaction():
        unknown = await passes_repo.unknown_stores(conn, program_id, d.featured_store_ids)
        if unknown:
            raise NotFound(f"no such store in this program: {unknown[0]}",
                           field="featured_store_ids")
        await passes_repo.put_design(conn, program_id, d)
    return d
