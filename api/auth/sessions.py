"""Logins and refresh-token rotation (`POST /v1/auth/token`).

A password login looks the e-mail up among the operator/staff accounts (of the given program,
or admins when no program is given) and the program's members, verifying with argon2id; an
unknown e-mail costs the same hash verification as a wrong password. Refresh tokens are
single-use: each use marks the presented token used and issues a new one in the same family;
presenting a used or revoked token revokes the whole family. The SQL is in
`wallet/members/sessions_repo.py`.
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime
from typing import Literal

import asyncpg
import msgspec

from api.auth.tokens import TokenService
from wallet.kernel import errors
from wallet.kernel.db import Conn
from wallet.kernel.hashing import Hasher
from wallet.members import sessions_repo
from wallet.members.members_repo import touch_active
from wallet.members.sessions_repo import Identity


class TokenPair(msgspec.Struct, frozen=True, kw_only=True):
    access_token: str
    refresh_token: str
    token_type: Literal["Bearer"] = "Bearer"  # noqa: S105 - the OAuth token type, not a secret
    expires_in: int


def token_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def mint(tokens: TokenService, who: Identity,
         family: uuid.UUID | None = None) -> tuple[TokenPair, sessions_repo.NewRefresh]:
    """An access token and a refresh token for `who` (a new family if none), and the refresh
    token's record to store (in the caller's transaction)."""
    fam = family or uuid.uuid4()
    refresh, _, exp = tokens.mint_refresh(sub=who.id, role=who.role, program_id=who.program_id,
                                          family=fam, store_ids=who.store_ids)
    access = tokens.mint_access(sub=who.id, role=who.role, program_id=who.program_id,
                                store_ids=who.store_ids)
    pair = TokenPair(access_token=access, refresh_token=refresh, expires_in=tokens.access_ttl_s)
    return pair, sessions_repo.NewRefresh(digest=token_hash(refresh), family=fam, who=who,
                                          expires_at=exp)


async def issue(conn: Conn, tokens: TokenService, who: Identity,
                family: uuid.UUID | None = None) -> TokenPair:
    """Mint an access token and a stored refresh token for `who` (a new family if none)."""
    pair, new = mint(tokens, who, family)
    await sessions_repo.store_refresh(conn, new)
    if who.role == "member":  # activity, for the idle-account retention
        await touch_active(conn, who.id, datetime.now(UTC))
    return pair


async def password_login(pool: asyncpg.Pool, tokens: TokenService, hasher: Hasher, *,
                         email: str, password: str, program_id: uuid.UUID | None
                         ) -> TokenPair:
    """Log in with e-mail and password: an operator account of `program_id` (admins: none)
    or a member of `program_id`.

    Without `program_id`, when no admin matches but the password is right for a staff,
    manager or member account of a program, the refusal says that `program_id` is missing
    (ProgramRequired) instead of "wrong e-mail or password". Only someone who knows the
    password learns that the account exists; anyone else gets the same refusal as ever."""
    async with pool.acquire() as conn:
        candidates = await sessions_repo.candidates(conn, email, program_id)
        elsewhere = [] if program_id is not None or candidates else \
            await sessions_repo.program_candidates(conn, email)
    if not candidates and not elsewhere:
        await hasher.verify_unknown_async(password)
    for who, hashed in candidates:
        if await hasher.verify_async(hashed, password):
            async with pool.acquire() as conn:
                return await issue(conn, tokens, who)
    for who, hashed in elsewhere:
        if await hasher.verify_async(hashed, password):
            raise errors.ProgramRequired(
                f"this is a {who.role} account of a program: log in with its `program_id`",
                field="program_id")
    raise errors.Unauthenticated("wrong e-mail or password")


async def refresh(pool: asyncpg.Pool, tokens: TokenService, refresh_token: str) -> TokenPair:
    """Rotate a refresh token. Reuse of a rotated token revokes its family and fails."""
    tokens.verify(refresh_token, "refresh")
    digest = token_hash(refresh_token)
    async with pool.acquire() as conn:
        async with conn.transaction():
            row = await sessions_repo.claim(conn, digest)
            if row is not None:
                who = await sessions_repo.identity_for(conn, row)
                if who is not None:
                    return await issue(conn, tokens, who, family=row["family_id"])
        # Reuse (or an erased subject): revoke the family, committed on its own so that the
        # refusal below cannot roll it back.
        family = row["family_id"] if row is not None else await sessions_repo.family_of(
            conn, digest)
        if family is not None:
            await sessions_repo.revoke_family(conn, family)
    if row is not None:
        raise errors.Unauthenticated("the account no longer exists")
    raise errors.Unauthenticated("refresh token already used, revoked or expired")


