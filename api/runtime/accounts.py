"""Operator accounts created outside the HTTP API (bootstrap: `loyalty admin create`)."""

from __future__ import annotations

import uuid

import asyncpg

from wallet.programs.accounts_repo import insert_admin


async def create_admin(dsn: str, email: str, password_hash: str) -> uuid.UUID:
    conn = await asyncpg.connect(dsn)
    try:
        return await insert_admin(conn, email, password_hash)
    finally:
        await conn.close()
