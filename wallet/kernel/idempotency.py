"""Idempotency-Key, the one implementation: the same key with the same request returns the
first response again and changes nothing; with another request it is a 409.

Why in the service layer and not a middleware: the response must be stored *in the same
transaction* as the business writes. A crash must not keep the writes without the stored
response (the retry would count twice) nor the response without the writes (the retry would
replay a lie). So every retried write path is a service that owns its transaction and goes
through this module:

* `key_for(...)` builds the key (pure): scope = the caller's `sub`, across routes (Stripe's
  rule: a key names one request of that caller, wherever it was sent), request hash = sha256
  of method, path and the canonical body (the decoded Struct re-encoded by msgspec: field
  order, whitespace and omitted defaults do not change it). The same key sent by the same
  caller to another route, or with another body, is the same key with another request: 409.
* `run_idempotent(pool, key, work, type_)` serves any write: look the key up (a committed
  response → replay, or 409 if the request differs); otherwise run `work(conn)` inside a
  transaction and record the response there. Used by the scan, the ping batch and every
  route that has no hotter path.
* `retrying(conn, key, type_, work)` is the loop both use: it retries a transaction that hit a
  serialization failure or a deadlock, and when a concurrent request committed the same key
  first (`IdempotencyRace`, raised by the key's unique index) it replays that response. Hot
  paths (the till, `wallet/ledger/till.py`) fold the lookup into their post-lock read and the
  record into their single write statement, and still go through `retrying` and `replay`.

Errors raised by `work` roll back and store nothing, so a corrected retry can still succeed.
"""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar

import asyncpg
import msgspec

from wallet.kernel import errors
from wallet.kernel.db import Conn
from wallet.kernel.idempotency_repo import (
    IdemKey,
    IdempotencyRace,
    StoredResponse,
    lookup,
    record,
)

T = TypeVar("T")
RETRIES = 5  # attempts of one transaction on serialization failure or deadlock

_encoder = msgspec.json.Encoder(order="deterministic")

__all__ = ["IdemKey", "IdempotencyRace", "Outcome", "StoredResponse", "encode", "key_for",
           "lookup", "replay", "retrying", "run_idempotent"]


class Outcome(msgspec.Struct, Generic[T], frozen=True, kw_only=True):
    """What a retried write answered: `status` is the HTTP status the first run chose,
    `replayed` tells the caller that this is a stored response."""

    status: int
    result: T
    replayed: bool = False


def key_for(sub: uuid.UUID, key: str, *, method: str, path: str, body: Any) -> IdemKey:
    """The key of one request. `body` is the decoded request Struct (or None). Scoped per
    caller only: the route is part of the request, so a key reused on another route by the
    same caller conflicts (409) instead of running a second operation (a purchase's key
    reused for a top-up ran both)."""
    route = f"{method.upper()} {path}"
    digest = hashlib.sha256()
    digest.update(route.encode())
    digest.update(b"\n")
    digest.update(_encoder.encode(body))
    return IdemKey(scope=str(sub), key=key, request_hash=digest.digest())


def encode(result: Any) -> bytes:
    """The bytes stored as a response (deterministic key order)."""
    return _encoder.encode(result)


def replay(stored: StoredResponse, key: IdemKey, type_: type[T]) -> Outcome[T]:
    """The stored response for `key`, or IdempotencyConflict if its request was another."""
    if stored.request_hash != key.request_hash:
        raise errors.IdempotencyConflict(
            "this Idempotency-Key was already used for another request (another route or "
            "body): a key names one request of its sender")
    return Outcome(status=stored.status_code, replayed=True,
                   result=msgspec.json.decode(stored.body, type=type_))


async def retrying(conn: Conn, key: IdemKey | None, type_: type[T],
                   work: Callable[[], Awaitable[Outcome[T]]]) -> Outcome[T]:
    """Run `work` (one transaction) with retries on serialization failure and deadlock; when
    a concurrent request committed the same key first, replay its response."""
    for attempt in range(RETRIES):
        try:
            return await work()
        except IdempotencyRace:
            assert key is not None
            stored = await lookup(conn, key)
            if stored is None:  # pragma: no cover - the winner committed before we failed
                raise
            return replay(stored, key, type_)
        except (asyncpg.SerializationError, asyncpg.DeadlockDetectedError):
            if attempt == RETRIES - 1:
                raise
            await asyncio.sleep(0.005 * 2 ** attempt)  # back off before the retry
    raise AssertionError("unreachable")


async def run_idempotent(pool: asyncpg.Pool, key: IdemKey | None,
                         work: Callable[[Conn], Awaitable[T]], type_: type[T], *,
                         status: int = 200) -> Outcome[T]:
    """Run `work(conn)` in one transaction, once per key (no key: once per call), with the
    retries of `retrying`; see the module docstring."""
    async with pool.acquire() as conn:
        if key is not None and (stored := await lookup(conn, key)) is not None:
            return replay(stored, key, type_)

        async def attempt() -> Outcome[T]:
            async with conn.transaction():
                result = await work(conn)
                if key is not None:
                    await record(conn, key, status, _encoder.encode(result))
            return Outcome(status=status, result=result)

        return await retrying(conn, key, type_, attempt)
