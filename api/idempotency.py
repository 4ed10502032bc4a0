"""Idempotency-Key, as API.md says: the same key with the same body returns the first response
again and changes nothing; with another body it is a 409.

Design: an explicit service-layer helper, not a middleware. A middleware would have to
buffer and re-parse bodies, and above all could not store the response *in the same
transaction* as the business writes, which is the one property that matters: a crash must not
keep the writes without the stored response (the retry would count twice) nor the response
without the writes (the retry would replay a lie). So:

* `key_for(...)` builds the key: scope = (caller's `sub`, route), request hash = sha256 of
  method, path and the canonical body (the decoded Struct re-encoded by msgspec: field order,
  whitespace and omitted defaults do not change it).
* Hot paths (`wallet/ledger/till.py`) fold the lookup into their post-lock read and the insert into
  their single write statement.
* `run_idempotent(pool, key, work, type_)` does the same for any other route (pings later):
  look the key up (committed response → replay, or 409 if the body differs); otherwise run
  `work(conn)` inside a transaction and insert the response there. Two concurrent requests
  with one key: the second's insert waits on the key's unique index until the first commits,
  fails, rolls back everything it did and replays the first's response. Errors raised by
  `work` roll back and store nothing, so a corrected retry can still succeed.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypeVar

import asyncpg
import msgspec
from litestar.params import HeaderParameter

from wallet.kernel.db import Conn
from wallet.kernel.idempotency_repo import IdemKey, IdempotencyRace, lookup, record
from wallet.ledger.till import Outcome, replay

T = TypeVar("T")

IdempotencyKey = Annotated[str, HeaderParameter(
    name="Idempotency-Key", min_length=1, max_length=200,
    description="Required: a retried request with the same key and body returns the first "
                "response and changes nothing; the same key with another body is a 409.")]

_encoder = msgspec.json.Encoder(order="deterministic")


def key_for(sub: uuid.UUID, key: str, *, method: str, path: str, body: Any) -> IdemKey:
    """The key of one request. `body` is the decoded request Struct (or None)."""
    route = f"{method.upper()} {path}"
    digest = hashlib.sha256()
    digest.update(route.encode())
    digest.update(b"\n")
    digest.update(_encoder.encode(body))
    return IdemKey(scope=f"{sub}:{route}", key=key, request_hash=digest.digest())


async def run_idempotent(pool: asyncpg.Pool, key: IdemKey,
                         work: Callable[[Conn], Awaitable[T]], type_: type[T], *,
                         status: int = 200) -> Outcome[T]:
    """Run `work` once per key: see the module docstring."""
    async with pool.acquire() as conn:
        stored = await lookup(conn, key)
        if stored is not None:
            return replay(stored, key, type_)
        try:
            async with conn.transaction():
                result = await work(conn)
                await record(conn, key, status, _encoder.encode(result))
        except IdempotencyRace:
            stored = await lookup(conn, key)
            if stored is None:  # pragma: no cover - the winner committed before we failed
                raise
            return replay(stored, key, type_)
        return Outcome(status=status, result=result)
