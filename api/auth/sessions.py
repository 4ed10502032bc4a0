"""Logins and refresh-token rotation (`POST /v1/auth/token`).

A password login looks the e-mail up among the operator/staff accounts (of the given program,
or admins when no program is given) and the program's members, verifying with argon2id; an
unknown e-mail costs the same hash verification as a wrong password. Refresh tokens are
single-use: each use marks the presented token used and issues a new one in the same family;
presenting a used or revoked token revokes the whole family.
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime
from typing import Literal

import asyncpg
import msgspec

from api.auth.tokens import Role, TokenService
from wallet.kernel import errors
from wallet.kernel.db import Conn
from wallet.kernel.hashing import Hasher
from wallet.members.members_repo import touch_active


class TokenPair(msgspec.Struct, frozen=True, kw_only=True):
    access_token: str
    refresh_token: str
    token_type: Literal["Bearer"] = "Bearer"  # noqa: S105 - the OAuth token type, not a secret
    expires_in: int


class Identity(msgspec.Struct, frozen=True, kw_only=True):
    id: uuid.UUID
    role: Role
    program_id: uuid.UUID | None
    store_ids: tuple[uuid.UUID, ...] = ()


def token_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


FIND_ACCOUNTS = """
SELECT id, role, program_id, store_ids, password_hash FROM accounts
WHERE lower(email) = lower($1) AND program_id IS NOT DISTINCT FROM $2
"""
FIND_MEMBER = """
SELECT id, program_id, password_hash FROM members
WHERE lower(email) = lower($1) AND program_id = $2
"""


async def _candidates(conn: Conn, email: str, program_id: uuid.UUID | None
                      ) -> list[tuple[Identity, str]]:
    found: list[tuple[Identity, str]] = []
    for r in await conn.fetch(FIND_ACCOUNTS, email, program_id):
        found.append((Identity(id=r["id"], role=r["role"], program_id=r["program_id"],
                               store_ids=tuple(r["store_ids"])), r["password_hash"]))
    if program_id is not None:
        m = await conn.fetchrow(FIND_MEMBER, email, program_id)
        if m is not None:
            found.append((Identity(id=m["id"], role="member", program_id=m["program_id"]),
                          m["password_hash"]))
    return found


INSERT_REFRESH = """
INSERT INTO refresh_tokens (token_hash, family_id, subject_id, role, program_id, expires_at)
VALUES ($1, $2, $3, $4, $5, to_timestamp($6))
"""


async def issue(conn: Conn, tokens: TokenService, who: Identity,
                family: uuid.UUID | None = None) -> TokenPair:
    """Mint an access token and a stored refresh token for `who` (a new family if none)."""
    fam = family or uuid.uuid4()
    refresh, _, exp = tokens.mint_refresh(sub=who.id, role=who.role, program_id=who.program_id,
                                          family=fam, store_ids=who.store_ids)
    await conn.execute(INSERT_REFRESH, token_hash(refresh), fam, who.id, who.role,
                       who.program_id, exp)
    if who.role == "member":  # activity, for the idle-account retention
        await touch_active(conn, who.id, datetime.now(UTC))
    access = tokens.mint_access(sub=who.id, role=who.role, program_id=who.program_id,
                                store_ids=who.store_ids)
    return TokenPair(access_token=access, refresh_token=refresh, expires_in=tokens.access_ttl_s)


async def password_login(pool: asyncpg.Pool, tokens: TokenService, hasher: Hasher, *,
                         email: str, password: str, program_id: uuid.UUID | None
                         ) -> TokenPair:
    async with pool.acquire() as conn:
        candidates = await _candidates(conn, email, program_id)
    if not candidates:
        await hasher.verify_unknown_async(password)
    for who, hashed in candidates:
        if await hasher.verify_async(hashed, password):
            async with pool.acquire() as conn:
                return await issue(conn, tokens, who)
    raise errors.Unauthenticated("wrong e-mail or password")


CLAIM_REFRESH = """
UPDATE refresh_tokens SET used_at = now()
WHERE token_hash = $1 AND used_at IS NULL AND revoked_at IS NULL AND expires_at > now()
RETURNING family_id, subject_id, role, program_id
"""
FAMILY_OF = "SELECT family_id FROM refresh_tokens WHERE token_hash = $1"
REVOKE_FAMILY = """
UPDATE refresh_tokens SET revoked_at = now() WHERE family_id = $1 AND revoked_at IS NULL
"""
STAFF_STORES = "SELECT store_ids FROM accounts WHERE id = $1"
SUBJECT_EXISTS = """
SELECT EXISTS (SELECT 1 FROM accounts WHERE id = $1) OR EXISTS (SELECT 1 FROM members WHERE id = $1)
"""


async def refresh(pool: asyncpg.Pool, tokens: TokenService, refresh_token: str) -> TokenPair:
    """Rotate a refresh token. Reuse of a rotated token revokes its family and fails."""
    tokens.verify(refresh_token, "refresh")
    digest = token_hash(refresh_token)
    async with pool.acquire() as conn:
        async with conn.transaction():
            row = await conn.fetchrow(CLAIM_REFRESH, digest)
            if row is not None:
                who = await _identity_for(conn, row)
                if who is not None:
                    return await issue(conn, tokens, who, family=row["family_id"])
        # Reuse (or an erased subject): revoke the family, committed on its own so that the
        # refusal below cannot roll it back.
        family = row["family_id"] if row is not None else await conn.fetchval(FAMILY_OF, digest)
        if family is not None:
            await conn.execute(REVOKE_FAMILY, family)
    if row is not None:
        raise errors.Unauthenticated("the account no longer exists")
    raise errors.Unauthenticated("refresh token already used, revoked or expired")


async def _identity_for(conn: Conn, row: asyncpg.Record) -> Identity | None:
    if not await conn.fetchval(SUBJECT_EXISTS, row["subject_id"]):
        return None
    stores: tuple[uuid.UUID, ...] = ()
    if row["role"] == "staff":
        stores = tuple(await conn.fetchval(STAFF_STORES, row["subject_id"]) or ())
    return Identity(id=row["subject_id"], role=row["role"], program_id=row["program_id"],
                    store_ids=stores)
