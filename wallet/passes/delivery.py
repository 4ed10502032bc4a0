"""Delivering pass updates: the outbox's service. One round (`run_round`):

1. take the delivery lock (transaction-scoped advisory lock; a worker that finds it taken
   skips the round: one deliverer at a time across workers and hosts);
2. publish: consume queued changes, give each changed pass a new update tag, make one push
   row per registered device (APNs) or Google object (a change merges into a push still
   pending for the same device);
3. send the due pushes concurrently (APNs over HTTP/2 multiplexes them on one connection);
   a Google push renders the object as it is *now*, so a merged or retried update always
   carries the latest state;
4. record the outcomes in one statement: sent and gone rows deleted (a gone device loses
   its registration), failures retried after `backoff_s × 2^(attempts)`, capped at
   `max_backoff_s`, for as long as it takes: nothing is lost while the service is down;
5. now and then, purge farewells and voided passes past the farewell period.

Why one deliverer: update tags must be handed out in commit order (see
`outbox_repo.PUBLISH`), and a push must never be in flight while a newer change of its pass
is being published (the device could list before the new tag commits and miss it). The
sends happen outside any transaction that a till could wait on: the triggers only append
`pass_changes` rows, which this service deletes, never locks for long.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime, timedelta

import asyncpg
import msgspec

from wallet.passes import content, outbox_repo, passes_repo
from wallet.passes.apns import ApnsSender
from wallet.passes.google_api import GoogleWalletApi
from wallet.passes.model import PassView, PushOutcome

# The access log's actor for updates sent to Google Wallet (a processor, not a person).
GOOGLE_WALLET_ACTOR = uuid.UUID("5e7a11e7-0000-4000-8000-00000000600d")


class DeliveryConfig(msgspec.Struct, frozen=True, kw_only=True):
    batch: int = 200  # changes published and pushes sent per round
    backoff_s: float = 1.0  # first retry; doubles each time
    max_backoff_s: float = 300.0
    farewell_s: int = 30 * 86400  # how long an erased member's devices may learn the void
    google_issuer_id: str = ""


class RoundReport(msgspec.Struct, frozen=True, kw_only=True):
    skipped: bool = False  # another worker holds the lock
    published: int = 0  # passes given a new update tag
    sent: int = 0
    failed: int = 0  # attempts that failed and will be retried
    gone: int = 0  # dropped for good (device unregistered, object never saved)
    purged: int = 0
    due: int = 0  # pushes taken this round (a full batch: more may be due)


def backoff(attempts: int, cfg: DeliveryConfig) -> timedelta:
    """Delay before the next try after `attempts` failed ones (≥ 1): exponential, capped."""
    return timedelta(seconds=min(cfg.max_backoff_s,
                                 cfg.backoff_s * 2 ** min(max(attempts - 1, 0), 30)))


async def _send(push: outbox_repo.Push, view: PassView | None, *, apns: ApnsSender | None,
                google: GoogleWalletApi | None, cfg: DeliveryConfig) -> PushOutcome:
    if push.target == "apns":
        if apns is None:
            return PushOutcome(status="retry", error="APNs is not configured")
        return await apns.push(push.push_token)
    if google is None:
        return PushOutcome(status="retry", error="the Google Wallet API is not configured")
    if view is None:  # deleted since (purged)
        return PushOutcome(status="gone", error="the pass no longer exists")
    return await google.update(content.google_object(view, issuer_id=cfg.google_issuer_id))


async def run_round(pool: asyncpg.Pool, *, apns: ApnsSender | None,
                    google: GoogleWalletApi | None, cfg: DeliveryConfig, now: datetime,
                    purge: bool = False) -> RoundReport:
    """One round of publishing and delivery (see the module docstring)."""
    async with pool.acquire() as held, held.transaction():
        if not await outbox_repo.try_lock(held):
            return RoundReport(skipped=True)
        async with pool.acquire() as conn:
            async with conn.transaction():
                published = await outbox_repo.publish(
                    conn, now=now, batch=cfg.batch, apns=apns is not None,
                    google=google is not None)
            pushes = await outbox_repo.due(conn, now=now, batch=cfg.batch)
            views = {p.pass_id: await passes_repo.view_by_id(conn, p.pass_id, now)
                     for p in pushes if p.target == "google"}
            outcomes = await asyncio.gather(*(
                _send(p, views.get(p.pass_id), apns=apns, google=google, cfg=cfg)
                for p in pushes))
            if pushes:
                await outbox_repo.record(
                    conn, [p.id for p in pushes], [o.status for o in outcomes],
                    [now + backoff(p.attempts + 1, cfg) for p in pushes],
                    [o.error for o in outcomes], google_actor=GOOGLE_WALLET_ACTOR)
            purged = await outbox_repo.purge(
                conn, now - timedelta(seconds=cfg.farewell_s)) if purge else 0
    return RoundReport(
        published=published.passes, due=len(pushes), purged=purged,
        sent=sum(o.status == "sent" for o in outcomes),
        failed=sum(o.status == "retry" for o in outcomes),
        gone=sum(o.status == "gone" for o in outcomes))


async def backlog(pool: asyncpg.Pool) -> outbox_repo.Backlog:
    """Changes not yet published and pushes not yet sent (the "pending" metric)."""
    async with pool.acquire() as conn:
        return await outbox_repo.backlog(conn)
