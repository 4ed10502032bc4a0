"""Operator accounts of a program: managers and store-scoped staff (admins are created by the
CLI). Passwords are hashed with argon2id before the transaction opens and never leave it.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Literal

import asyncpg
import msgspec

from wallet.kernel.db import Conn
from wallet.kernel.errors import AccessDenied, Conflict, RuleViolation
from wallet.kernel.hashing import Hasher
from wallet.programs.programs import fetch_program

AccountRole = Literal["manager", "staff"]


class Account(msgspec.Struct, frozen=True, kw_only=True):
    id: uuid.UUID
    program_id: uuid.UUID
    email: str
    role: AccountRole
    store_ids: tuple[uuid.UUID, ...]
    created_at: datetime


def check_account(*, actor_role: str, role: AccountRole,
                  store_ids: Sequence[uuid.UUID]) -> tuple[uuid.UUID, ...]:
    """Who may create what: admins create managers and staff, managers create staff only.
    Staff need at least one store; managers have none (they act for the whole program).
    Returns the store ids without duplicates, in their given order."""
    if actor_role != "admin" and role != "staff":
        raise AccessDenied("a manager can only create staff accounts", field="role")
    if role == "manager" and store_ids:
        raise RuleViolation("only staff accounts are scoped to stores", field="store_ids")
    if role == "staff" and not store_ids:
        raise RuleViolation("a staff account needs at least one store", field="store_ids")
    return tuple(dict.fromkeys(store_ids))


LIVE_STORES = """
SELECT id FROM stores WHERE program_id = $1 AND id = ANY($2::uuid[]) AND deleted_at IS NULL
"""


async def require_stores(conn: Conn, program_id: uuid.UUID,
                         store_ids: Sequence[uuid.UUID]) -> None:
    """Every id must be a live store of the program (422 naming the strays otherwise)."""
    if not store_ids:
        return
    found = {r["id"] for r in await conn.fetch(LIVE_STORES, program_id, list(store_ids))}
    strays = [str(s) for s in store_ids if s not in found]
    if strays:
        raise RuleViolation(f"not stores of this program: {', '.join(strays)}",
                            field="store_ids")


INSERT_ACCOUNT = """
INSERT INTO accounts (id, program_id, email, password_hash, role, store_ids)
VALUES ($1, $2, $3, $4, $5, $6::uuid[])
RETURNING id, program_id, email, role, store_ids, created_at
"""


async def insert_account(conn: Conn, *, program_id: uuid.UUID, email: str,
                         password_hash: str, role: AccountRole,
                         store_ids: Sequence[uuid.UUID]) -> Account:
    try:
        row = await conn.fetchrow(INSERT_ACCOUNT, uuid.uuid4(), program_id, email,
                                  password_hash, role, list(store_ids))
    except asyncpg.UniqueViolationError as exc:
        raise Conflict("an account with this e-mail already exists in the program",
                       field="email") from exc
    assert row is not None
    return Account(id=row["id"], program_id=row["program_id"], email=row["email"],
                   role=row["role"], store_ids=tuple(row["store_ids"]),
                   created_at=row["created_at"])


async def create_account(pool: asyncpg.Pool, hasher: Hasher, *, actor_role: str,
                         program_id: uuid.UUID, email: str, password: str, role: AccountRole,
                         store_ids: Sequence[uuid.UUID]) -> Account:
    """Create a manager or staff account in `program_id` on behalf of `actor_role`."""
    stores = check_account(actor_role=actor_role, role=role, store_ids=store_ids)
    password_hash = await hasher.hash_async(password)
    async with pool.acquire() as conn, conn.transaction():
        await fetch_program(conn, program_id)
        await require_stores(conn, program_id, stores)
        return await insert_account(conn, program_id=program_id, email=email,
                                    password_hash=password_hash, role=role, store_ids=stores)


INSERT_ADMIN = """
INSERT INTO accounts (id, program_id, email, password_hash, role)
VALUES ($1, NULL, $2, $3, 'admin')
"""


async def insert_admin(conn: Conn, email: str, password_hash: str) -> uuid.UUID:
    """An operator admin (no program): the bootstrap account, created by the CLI."""
    admin_id = uuid.uuid4()
    await conn.execute(INSERT_ADMIN, admin_id, email, password_hash)
    return admin_id


class SignInCandidate(msgspec.Struct, frozen=True, kw_only=True):
    """An operator account a browser sign-in may open (the hash is checked by the caller)."""

    id: uuid.UUID
    email: str
    role: Literal["admin", "manager", "staff"]
    program_id: uuid.UUID | None
    program_name: str | None
    store_ids: tuple[uuid.UUID, ...]
    password_hash: str


ACCOUNTS_BY_EMAIL = """
SELECT a.id, a.email, a.role, a.program_id, p.name AS program_name, a.store_ids,
       a.password_hash
FROM accounts a LEFT JOIN programs p ON p.id = a.program_id
WHERE lower(a.email) = lower($1) AND ($2::uuid IS NULL OR a.program_id = $2)
ORDER BY p.name NULLS FIRST, a.id
LIMIT 50
"""


async def accounts_by_email(conn: Conn, email: str, program_id: uuid.UUID | None
                            ) -> list[SignInCandidate]:
    """Operator accounts with this e-mail in any program (or only `program_id`'s)."""
    return [SignInCandidate(**{**dict(r), "store_ids": tuple(r["store_ids"])})
            for r in await conn.fetch(ACCOUNTS_BY_EMAIL, email, program_id)]


ACCOUNT_EMAIL = "SELECT email FROM accounts WHERE id = $1"


async def account_email(conn: Conn, account_id: uuid.UUID) -> str:
    """The account's e-mail ("" once the account is gone)."""
    return str(await conn.fetchval(ACCOUNT_EMAIL, account_id) or "")
