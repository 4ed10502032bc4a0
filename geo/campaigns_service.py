"""Campaign services: each call one transaction, validation by the pure `geo.campaigns`, SQL
by `geo.campaigns_repo`.

Every change of a campaign (create, update, activate, pause) writes a revision with who made
it, when, and the campaign before and after, in the transaction of the change. The row is
locked (`FOR UPDATE`) while it changes, so concurrent edits apply one after the other and
every revision's `before` is the previous revision's `after`.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from typing import Literal

import asyncpg

from geo import campaign_stats_repo
from geo import campaigns_repo as repo
from geo.campaign_stats import ProgramStats, Stats, period, program_period
from geo.campaigns import (
    Campaign,
    CampaignChanges,
    CampaignSpec,
    Status,
    apply_changes,
    check_rules,
    next_status,
)
from geo.campaigns_repo import Observation, Revision
from wallet.kernel.db import Conn
from wallet.kernel.errors import RuleViolation
from wallet.offers.model import Offer, OfferStatus

WEATHER_MAX_FUTURE = timedelta(minutes=5)  # tolerated clock skew of the weather feed


async def _checked(conn: Conn, program_id: uuid.UUID, spec: CampaignSpec) -> CampaignSpec:
    facts = await repo.program_facts(conn, program_id)
    stores = await repo.live_stores(conn, program_id, spec.store_ids)
    return check_rules(spec, tiers=facts.tier_names, stores=stores)


async def create(pool: asyncpg.Pool, program_id: uuid.UUID, spec: CampaignSpec, *,
                 by: uuid.UUID, now: datetime) -> Campaign:
    """A new campaign, in `draft`."""
    async with pool.acquire() as conn, conn.transaction():
        campaign = await repo.insert(conn, program_id, await _checked(conn, program_id, spec))
        await repo.record_revision(conn, before=None, after=campaign, by=by, action="create",
                                   now=now)
        return campaign


async def get(pool: asyncpg.Pool, program_id: uuid.UUID, campaign_id: uuid.UUID) -> Campaign:
    async with pool.acquire() as conn:
        return await repo.get(conn, program_id, campaign_id)


async def page(pool: asyncpg.Pool, program_id: uuid.UUID, *, status: Status | None,
               after: tuple[datetime, uuid.UUID] | None, limit: int) -> list[Campaign]:
    async with pool.acquire() as conn:
        return await repo.page(conn, program_id, status=status, after=after, limit=limit)


async def update(pool: asyncpg.Pool, program_id: uuid.UUID, campaign_id: uuid.UUID,
                 changes: CampaignChanges, *, by: uuid.UUID, now: datetime) -> Campaign:
    """Apply a PATCH (any status), validated as a whole, recorded as a revision."""
    async with pool.acquire() as conn, conn.transaction():
        before = await repo.get(conn, program_id, campaign_id, for_update=True)
        spec = apply_changes(CampaignSpec(name=before.name, store_ids=before.store_ids,
                                          rules=before.rules), changes)
        after = await repo.update(conn, campaign_id, await _checked(conn, program_id, spec),
                                  now)
        await repo.record_revision(conn, before=before, after=after, by=by, action="update",
                                   now=now)
        return after


async def transition(pool: asyncpg.Pool, program_id: uuid.UUID, campaign_id: uuid.UUID,
                     action: Literal["activate", "pause"], *, by: uuid.UUID,
                     now: datetime) -> Campaign:
    """Activate or pause; repeating the current state changes (and records) nothing."""
    async with pool.acquire() as conn, conn.transaction():
        before = await repo.get(conn, program_id, campaign_id, for_update=True)
        status = next_status(before.status, action, ends_at=before.rules.schedule.ends_at,
                             now=now)
        if status == before.status:
            return before
        after = await repo.set_status(conn, campaign_id, status, now)
        await repo.record_revision(conn, before=before, after=after, by=by, action=action,
                                   now=now)
        return after


async def revisions(pool: asyncpg.Pool, program_id: uuid.UUID, campaign_id: uuid.UUID, *,
                    before: int | None, limit: int) -> list[Revision]:
    async with pool.acquire() as conn:
        await repo.get(conn, program_id, campaign_id)
        return await repo.revisions(conn, campaign_id, before=before, limit=limit)


async def stats(pool: asyncpg.Pool, program_id: uuid.UUID, campaign_id: uuid.UUID, *,
                first: date | None = None, last: date | None = None, now: datetime) -> Stats:
    """The campaign's figures over local dates `first`..`last` (see `geo.campaign_stats`),
    all read from one snapshot."""
    async with pool.acquire() as conn, conn.transaction(isolation="repeatable_read",
                                                        readonly=True):
        campaign = await repo.get(conn, program_id, campaign_id)
        facts = await repo.program_facts(conn, program_id)
        s = campaign.rules.schedule
        p = period(first, last, timezone=facts.timezone, starts_at=s.starts_at,
                   ends_at=s.ends_at, now=now)
        return await campaign_stats_repo.stats(conn, campaign, p, timezone=facts.timezone,
                                               now=now)


async def program_stats(pool: asyncpg.Pool, program_id: uuid.UUID, *,
                        first: date | None = None, last: date | None = None,
                        now: datetime) -> ProgramStats:
    """Every campaign of the program together over local dates `first`..`last` (default:
    the last 30 days), read from one snapshot."""
    async with pool.acquire() as conn, conn.transaction(isolation="repeatable_read",
                                                        readonly=True):
        facts = await repo.program_facts(conn, program_id)
        p = program_period(first, last, timezone=facts.timezone, now=now)
        return await campaign_stats_repo.program_stats(conn, program_id, p,
                                                       timezone=facts.timezone, now=now)


async def put_weather(pool: asyncpg.Pool, program_id: uuid.UUID,
                      observations: Sequence[Observation], *, now: datetime) -> int:
    """Store the latest observation of each store (of this program, live; observed not after
    now + 5 min of skew). Errors name `observations[i]...`. Returns how many were kept (an
    observation older than the stored one is ignored)."""
    for i, o in enumerate(observations):
        if o.weather.observed_at > now + WEATHER_MAX_FUTURE:
            raise RuleViolation("observed in the future",
                                field=f"observations[{i}].observed_at")
    latest: dict[uuid.UUID, Observation] = {}
    for o in observations:
        kept = latest.get(o.store_id)
        if kept is None or kept.weather.observed_at <= o.weather.observed_at:
            latest[o.store_id] = o
    async with pool.acquire() as conn, conn.transaction():
        live = await repo.live_stores(conn, program_id, list(latest))
        for i, o in enumerate(observations):
            if o.store_id not in live:
                raise RuleViolation("no such store in this program",
                                    field=f"observations[{i}].store_id")
        return await repo.upsert_weather(conn, program_id, list(latest.values()), now)


async def member_offers(pool: asyncpg.Pool, member_id: uuid.UUID, *,
                        status: OfferStatus | None, now: datetime,
                        before: tuple[datetime, uuid.UUID] | None,
                        limit: int) -> list[Offer]:
    async with pool.acquire() as conn:
        return await repo.member_offers(conn, member_id, status=status, now=now,
                                        before=before, limit=limit)


async def mark_opened(pool: asyncpg.Pool, member_id: uuid.UUID, offer_id: uuid.UUID, *,
                      now: datetime) -> None:
    """The member opened their offer in the app; the first opening counts (idempotent)."""
    async with pool.acquire() as conn:
        await repo.mark_opened(conn, member_id, offer_id, now)
