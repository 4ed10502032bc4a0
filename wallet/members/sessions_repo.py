"""Sessions in SQL: who may log in with an e-mail (operator accounts and the program's members),
and refresh tokens — stored only as a SHA-256 hash, single-use, revoked by family.

The token service that mints and verifies the tokens is the API's (`api/auth/sessions.py`);
this module only stores and finds what it needs.
"""

from __future__ import annotations

import uuid

import asyncpg
import msgspec

from wallet.kernel.db import Conn
from wallet.kernel.model import Role


class Identity(msgspec.Struct, frozen=True, kw_only=True):
    id: uuid.UUID
    role: Role
    program_id: uuid.UUID | None
    store_ids: tuple[uuid.UUID, ...] = ()


FIND_ACCOUNTS = """
SELECT id, role, program_id, store_ids, password_hash FROM accounts
WHERE lower(email) = lower($1) AND program_id IS NOT DISTINCT FROM $2
"""
FIND_MEMBER = """
SELECT id, program_id, password_hash FROM members
WHERE lower(email) = lower($1) AND program_id = $2
"""


async def candidates(conn: Conn, email: str, program_id: uuid.UUID | None
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


PROGRAM_ACCOUNTS_LIMIT = 5  # a login without program_id checks at most this many
FIND_IN_PROGRAMS = """
(SELECT id, role, program_id, password_hash FROM accounts
  WHERE lower(email) = lower($1) AND program_id IS NOT NULL)
UNION ALL
(SELECT id, 'member', program_id, password_hash FROM members WHERE lower(email) = lower($1))
LIMIT $2
"""


async def program_candidates(conn: Conn, email: str) -> list[tuple[Identity, str]]:
    """The program accounts (staff, managers, members of any program) with this e-mail, at
    most `PROGRAM_ACCOUNTS_LIMIT`: what a login that forgot `program_id` may have meant."""
    rows = await conn.fetch(FIND_IN_PROGRAMS, email, PROGRAM_ACCOUNTS_LIMIT)
    return [(Identity(id=r["id"], role=r["role"], program_id=r["program_id"]),
             r["password_hash"]) for r in rows]


INSERT_REFRESH = """
INSERT INTO refresh_tokens (token_hash, family_id, subject_id, role, program_id, expires_at)
VALUES ($1, $2, $3, $4, $5, to_timestamp($6))
"""


class NewRefresh(msgspec.Struct, frozen=True, kw_only=True):
    """A refresh token to keep: its SHA-256 `digest`, its family, whose it is, and until when
    (Unix seconds)."""

    digest: bytes
    family: uuid.UUID
    who: Identity
    expires_at: int


async def store_refresh(conn: Conn, new: NewRefresh) -> None:
    """Keep a refresh token's hash in its family."""
    await conn.execute(INSERT_REFRESH, new.digest, new.family, new.who.id, new.who.role,
                       new.who.program_id, new.expires_at)


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


async def claim(conn: Conn, digest: bytes) -> asyncpg.Record | None:
    """Mark an unused, unrevoked, unexpired refresh token used; its row, or None."""
    return await conn.fetchrow(CLAIM_REFRESH, digest)


async def family_of(conn: Conn, digest: bytes) -> uuid.UUID | None:
    family: uuid.UUID | None = await conn.fetchval(FAMILY_OF, digest)
    return family


async def revoke_family(conn: Conn, family: uuid.UUID) -> None:
    await conn.execute(REVOKE_FAMILY, family)


async def identity_for(conn: Conn, row: asyncpg.Record) -> Identity | None:
    if not await conn.fetchval(SUBJECT_EXISTS, row["subject_id"]):
        return None
    stores: tuple[uuid.UUID, ...] = ()
    if row["role"] == "staff":
        stores = tuple(await conn.fetchval(STAFF_STORES, row["subject_id"]) or ())
    return Identity(id=row["subject_id"], role=row["role"], program_id=row["program_id"],
                    store_ids=stores)
