"""Issuing offers for a batch of pings, inside the ping's transaction.

`issue_for_batch` runs after `geo.pings_service.ingest`, on the same connection and
transaction, so the member row is already locked: a member's batches are handled one after
another, and the facts read here (offers today, per campaign, per visit) cannot change under
us. Steps:
1. the program's time zone and its campaigns active at `now` come from the worker's
   `CampaignCache`, which reloads them (one query) only when the `campaigns_version` that
   `ingest` read has moved (migration 0008 bumps it on every campaign change but a budget
   count, and on a time zone change): so a campaign activated or paused takes effect on the
   next ping, and a program without active campaigns costs no query at all; none → done;
2. one query reads the member's facts (tier, consent, preferences, recent offers, open visits,
   offers already made for these visits), the campaigns' budget counts (`issued`, never
   cached; only a budgeted campaign's counts) and the latest weather of the stores concerned;
3. the pure `geo.eligibility.plan` decides;
4. one statement per offer (in campaign id order, so concurrent batches lock campaign rows in
   one order and cannot deadlock) takes the campaign *and* inserts the offer and its outbox
   row. A budgeted campaign gives one unit of its budget: `UPDATE campaigns SET issued =
   issued + 1 WHERE issued < max_issued`: concurrent issuers queue on the campaign row and
   re-check the condition on the row as committed, so the budget is never exceeded (a CHECK
   backs it). A campaign without a budget is only locked `FOR SHARE` (no write, no queue
   between issuers; a pause or edit waits for the offers in flight, and offers that come
   after it see it), and its `issued` is the count of its offers (`geo.issuance_repo`).
   One offer per campaign per visit is guaranteed by the member lock and backed by
   UNIQUE (campaign_id, visit_id).

An offer lost to the budget race is simply not issued (the next batch re-plans). Outbox rows
are written only when a webhook is configured: `pending` when the member takes push
messages, `skipped` (kept for the managers' delivery counts) when not.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Literal

import asyncpg
import msgspec

from geo import issuance_repo as repo
from geo.eligibility import MemberFacts, Moment, Policy, Weather, plan
from geo.issuance_repo import ActiveCampaigns
from geo.pings import OpenVisit, VisitEvent
from geo.visits_repo import decode_open_visits
from wallet.kernel.db import Conn
from wallet.kernel.localtime import local
from wallet.members.consents import Preferences, QuietHours
from wallet.offers.model import Offer

RECENT = timedelta(days=2)  # covers "today" in any time zone, DST days included


class IssueSettings(msgspec.Struct, frozen=True, kw_only=True):
    weather_max_age_s: int
    push_enabled: bool  # a webhook is configured


class CampaignCache:
    """The worker's `ActiveCampaigns` per program, reloaded when a batch reads a newer
    `campaigns_version` than the one held (see the module docstring)."""

    def __init__(self) -> None:
        self._programs: dict[uuid.UUID, ActiveCampaigns] = {}

    def peek(self, program_id: uuid.UUID) -> ActiveCampaigns | None:
        """The program's campaigns held, without checking their version (no I/O)."""
        return self._programs.get(program_id)

    async def current(self, conn: Conn, program_id: uuid.UUID, version: int
                      ) -> ActiveCampaigns | None:
        """The program's campaigns at `version` or newer; None if the program is gone."""
        held = self._programs.get(program_id)
        if held is not None and held.version >= version:
            return held
        loaded = await repo.load_active(conn, program_id)
        if loaded is None:
            return None
        held = self._programs.get(program_id)  # another batch may have loaded a newer one
        if held is None or held.version <= loaded.version:
            self._programs[program_id] = loaded
        return loaded


class WebhookOffer(msgspec.Struct, frozen=True, kw_only=True):
    """The body POSTed to the push service for one offer."""

    type: Literal["offer.issued"] = "offer.issued"
    program_id: uuid.UUID
    member_id: uuid.UUID
    offer: Offer


_json = msgspec.json.Encoder()


def moments_of(events: Sequence[VisitEvent], open_visits: Sequence[OpenVisit]) -> list[Moment]:
    """Enter events, dwell events and every visit still open become moments (see geo.offers)."""
    out = [Moment(visit_id=e.visit_id, store_id=e.store_id,
                  kind="enter" if e.event == "enter" else "present", at=e.at,
                  entered_at=e.entered_at)
           for e in events if e.event in ("enter", "dwell")]
    out += [Moment(visit_id=v.id, store_id=v.store_id, kind="present", at=v.last_seen_at,
                   entered_at=v.entered_at) for v in open_visits]
    return out


def _preferences(row: asyncpg.Record) -> Preferences:
    quiet = (None if row["quiet_from"] is None
             else QuietHours(start=row["quiet_from"], end=row["quiet_to"]))
    return Preferences(max_offers_per_day=row["max_offers_per_day"], quiet_hours=quiet,
                       channels=tuple(row["channels"]))


async def issue_for_batch(conn: Conn, member_id: uuid.UUID, program_id: uuid.UUID,
                          events: Sequence[VisitEvent], *, now: datetime,
                          settings: IssueSettings, cache: CampaignCache,
                          campaigns_version: int) -> list[Offer]:
    """Issue the offers this batch earns (see the module docstring); returns them.

    `campaigns_version`: the program's version read in this transaction (by `ingest`)."""
    head = await cache.current(conn, program_id, campaigns_version)
    active = head.at(now) if head is not None else []
    if head is None or not active:
        return []
    ids = [c.id for c in active]
    row = await repo.member_facts(conn, member_id, now - RECENT, campaign_ids=ids,
                                   visit_ids=[e.visit_id for e in events],
                                   store_ids=[e.store_id for e in events])
    if row is None:
        return []
    fresh = {c.id: c.issued for c in repo.decode_issued(row["issued"])}
    campaigns = [msgspec.structs.replace(c, issued=fresh[c.id]) for c in active
                 if c.id in fresh]  # a campaign deleted since the version was read is gone
    open_visits = decode_open_visits(row["open_visits"])
    moments = moments_of(events, open_visits)
    if not moments:
        return []
    totals = repo.decode_totals(row["totals"])
    prefs = _preferences(row)
    member = MemberFacts(
        tier=row["tier"], preferences=prefs, location_consent=row["consent"],
        recent=tuple(repo.decode_recent(row["recent"])),
        totals={t.campaign_id: t.n for t in totals},
        last_issued={t.campaign_id: t.last for t in totals},
        visit_offers=frozenset((v.campaign_id, v.visit_id)
                               for v in repo.decode_visit_offers(row["visit_offers"])))
    weather = {w.store_id: Weather(temp_c=w.temp_c, condition=w.condition,
                                   observed_at=w.observed_at)
               for w in repo.decode_weather(row["weather"])}
    policy = Policy(timezone=head.timezone, weather_max_age_s=settings.weather_max_age_s)
    decisions = plan(moments, member, campaigns, weather=weather, now=now, policy=policy)
    by_id = {c.id: c for c in campaigns}
    state = None
    if settings.push_enabled:
        state = "pending" if "push" in prefs.channels else "skipped"
    out: list[Offer] = []
    for d in sorted(decisions, key=lambda d: d.campaign_id.bytes):
        c = by_id[d.campaign_id]
        tpl = c.rules.offer
        # times on the program's wall clock, as the member's app shows them
        at = local(now, head.timezone)
        offer = Offer(id=uuid.uuid4(), campaign_id=c.id, store_id=d.moment.store_id,
                      title=tpl.title, body=tpl.body, reward=tpl.reward, issued_at=at,
                      expires_at=at + timedelta(seconds=tpl.valid_for_s))
        payload = WebhookOffer(program_id=program_id, member_id=member_id, offer=offer)
        issued = await repo.issue_one(
            conn, offer.id, c.id, program_id, member_id, d.moment.visit_id, offer.store_id,
            offer.title, offer.body, offer.reward.kind, offer.reward.value, now,
            offer.expires_at, state, _json.encode(payload).decode(),
            budgeted=c.rules.caps.max_issued is not None)
        if issued is not None:  # the SQL put the store's name in the outbox payload too
            out.append(msgspec.structs.replace(offer, store_name=issued.store_name))
    return out
