"""Operator accounts created outside the HTTP API (bootstrap)."""

from __future__ import annotations

import uuid

import asyncpg

INSERT_ADMIN = """
INSERT INTO accounts (id, program_id, email, password_hash, role)
VALUES ($1, NULL, $2, $3, 'admin')
"""


async def create_admin(dsn: str, email: str, password_hash: str) -> uuid.UUID:
    admin_id = uuid.uuid4()
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(INSERT_ADMIN, admin_id, email, password_hash)
    finally:
        await conn.close()
    return admin_id
