"""Delivering issued offers to the app's push service: a transactional outbox.

The ping transaction that issues an offer also writes its outbox row (`geo/issuance.py`), so
an offer is never issued without being queued, nor queued without being issued. Each worker
runs `deliver_due` in a loop: one transaction claims up to `batch` due rows with
`SELECT … FOR UPDATE SKIP LOCKED` (so two workers never send the same row at once), POSTs them
concurrently, records each outcome and commits. Delivery is at least once: a crash after the
POST and before the commit sends that row again, so receivers deduplicate on the
`X-Loyalty-Delivery` header (the offer id).

Each request carries `X-Loyalty-Timestamp` (Unix seconds) and `X-Loyalty-Signature:
sha256=<hex>`, the HMAC-SHA256 with the configured secret of `f"{timestamp}.{body}"` over the
exact body bytes sent. Receivers recompute it, compare in constant time and refuse old
timestamps (replays).

A non-2xx answer or a transport error is a failed attempt: the row is retried after
`backoff_s × 2^(attempts-1)`, at most `max_backoff_s`, for as long as the offer is valid. An
offer that expires before it could be delivered is marked `expired` and never sent (a push for
an offer that can no longer be used would only annoy). Rows of members who do not take push
messages were written `skipped` and are never claimed.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import time
import uuid
from datetime import datetime, timedelta

import asyncpg
import httpx
import msgspec

from wallet.kernel.db import Conn


class WebhookConfig(msgspec.Struct, frozen=True, kw_only=True):
    url: str
    secret: str
    timeout_s: float = 5.0
    batch: int = 50
    backoff_s: float = 1.0
    max_backoff_s: float = 300.0


class DeliveryReport(msgspec.Struct, frozen=True, kw_only=True):
    claimed: int = 0
    delivered: int = 0
    failed: int = 0  # attempts that failed this round (each will be retried)
    expired: int = 0  # dropped: the offer expired before it could be delivered


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """`sha256=<hex>` of HMAC-SHA256(secret, f"{timestamp}." + body)."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"sha256={mac.hexdigest()}"


def verify(secret: str, timestamp: str, body: bytes, sig: str) -> bool:
    """A receiver's check of `signature` (constant-time comparison)."""
    try:
        ts = int(timestamp)
    except ValueError:
        return False
    return hmac.compare_digest(signature(secret, ts, body), sig)


def backoff(attempts: int, cfg: WebhookConfig) -> timedelta:
    """Delay before the next try after `attempts` failed ones (≥ 1): exponential, capped."""
    return timedelta(seconds=min(cfg.max_backoff_s,
                                 cfg.backoff_s * 2 ** min(max(attempts - 1, 0), 30)))


CLAIM = """
SELECT o.offer_id, o.payload::text AS payload, o.attempts, f.expires_at
FROM offer_outbox o JOIN offers f ON f.id = o.offer_id
WHERE o.state = 'pending' AND o.next_attempt_at <= $1
ORDER BY o.next_attempt_at
LIMIT $2
FOR UPDATE OF o SKIP LOCKED
"""

RECORD = """
UPDATE offer_outbox o
   SET state = u.state, attempts = o.attempts + u.tried, next_attempt_at = u.next_at,
       last_error = u.error, delivered_at = u.delivered_at
  FROM unnest($1::uuid[], $2::text[], $3::int[], $4::timestamptz[], $5::text[],
              $6::timestamptz[]) AS u(offer_id, state, tried, next_at, error, delivered_at)
 WHERE o.offer_id = u.offer_id
"""


class _Row(msgspec.Struct, frozen=True, kw_only=True):
    offer_id: uuid.UUID
    body: bytes
    attempts: int
    expires_at: datetime


async def _post(client: httpx.AsyncClient, cfg: WebhookConfig, row: _Row) -> str | None:
    """POST one row; None on a 2xx answer, else a short error."""
    ts = int(time.time())
    headers = {"Content-Type": "application/json", "X-Loyalty-Timestamp": str(ts),
               "X-Loyalty-Signature": signature(cfg.secret, ts, row.body),
               "X-Loyalty-Delivery": str(row.offer_id),
               "X-Loyalty-Attempt": str(row.attempts + 1)}
    try:
        r = await client.post(cfg.url, content=row.body, headers=headers,
                              timeout=cfg.timeout_s)
    except httpx.HTTPError as exc:
        return f"{type(exc).__name__}: {exc}"[:500]
    return None if 200 <= r.status_code < 300 else f"HTTP {r.status_code}"


async def _claim_and_send(conn: Conn, client: httpx.AsyncClient, cfg: WebhookConfig,
                          now: datetime) -> DeliveryReport:
    rows = [_Row(offer_id=r["offer_id"], body=r["payload"].encode(), attempts=r["attempts"],
                 expires_at=r["expires_at"])
            for r in await conn.fetch(CLAIM, now, cfg.batch)]
    if not rows:
        return DeliveryReport()
    live = [r for r in rows if r.expires_at > now]
    errors = await asyncio.gather(*(_post(client, cfg, r) for r in live))
    outcome: dict[uuid.UUID, str | None] = dict(zip((r.offer_id for r in live), errors,
                                                    strict=True))
    ids: list[uuid.UUID] = []
    states: list[str] = []
    tried: list[int] = []
    next_at: list[datetime] = []
    errs: list[str | None] = []
    delivered_at: list[datetime | None] = []
    for r in rows:
        ids.append(r.offer_id)
        if r.offer_id not in outcome:
            states.append("expired")
            tried.append(0)
            next_at.append(now)
            errs.append("the offer expired before delivery")
            delivered_at.append(None)
            continue
        err = outcome[r.offer_id]
        states.append("delivered" if err is None else "pending")
        tried.append(1)
        next_at.append(now if err is None else now + backoff(r.attempts + 1, cfg))
        errs.append(err)
        delivered_at.append(now if err is None else None)
    await conn.execute(RECORD, ids, states, tried, next_at, errs, delivered_at)
    failed = sum(e is not None for e in errors)
    return DeliveryReport(claimed=len(rows), delivered=len(live) - failed, failed=failed,
                          expired=len(rows) - len(live))


async def deliver_due(pool: asyncpg.Pool, client: httpx.AsyncClient, cfg: WebhookConfig, *,
                      now: datetime) -> DeliveryReport:
    """Claim up to `cfg.batch` rows due at `now`, send them and record the outcomes, in one
    transaction (see the module docstring). Safe to run from several workers at once."""
    async with pool.acquire() as conn, conn.transaction():
        return await _claim_and_send(conn, client, cfg, now)
