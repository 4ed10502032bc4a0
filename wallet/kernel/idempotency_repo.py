"""Stored responses of retried requests (`Idempotency-Key`), for any route.

The till folds the lookup and the insert into its own statements (`wallet/ledger/ledger_repo.py`);
other routes go through `wallet.kernel.idempotency.run_idempotent`, which uses `lookup` and
`record` here.
"""

from __future__ import annotations

import asyncpg
import msgspec

from wallet.kernel.db import Conn


class IdempotencyRace(Exception):
    """A concurrent request committed the same Idempotency-Key first: roll back and replay."""


class IdemKey(msgspec.Struct, frozen=True, kw_only=True):
    """Who sent which key for which request: `scope` is the caller (its `sub`, across routes),
    `request_hash` the sha256 of method, path and canonical body (see
    `wallet.kernel.idempotency.key_for`)."""

    scope: str
    key: str
    request_hash: bytes


class StoredResponse(msgspec.Struct, frozen=True, kw_only=True):
    request_hash: bytes
    status_code: int
    body: bytes


IDEM_LOOKUP = """
SELECT request_hash, status_code, response_body FROM idempotency_keys
WHERE scope = $1 AND key = $2
"""


async def lookup(conn: Conn, key: IdemKey) -> StoredResponse | None:
    """The committed response stored under `key`, if any."""
    row = await conn.fetchrow(IDEM_LOOKUP, key.scope, key.key)
    if row is None:
        return None
    return StoredResponse(request_hash=bytes(row["request_hash"]),
                          status_code=row["status_code"], body=bytes(row["response_body"]))


IDEM_RECORD = """
INSERT INTO idempotency_keys (scope, key, request_hash, status_code, response_body)
VALUES ($1, $2, $3, $4, $5)
"""


async def record(conn: Conn, key: IdemKey, status_code: int,
                             body: bytes) -> None:
    """Store the first response under `key` (in the caller's transaction). A concurrent
    request holding the same key makes this wait for it, then raise IdempotencyRace."""
    try:
        await conn.execute(IDEM_RECORD, key.scope, key.key, key.request_hash, status_code, body)
    except asyncpg.UniqueViolationError as exc:
        raise IdempotencyRace(str(exc)) from exc
