"""Issuing offers for a batch of pings, inside the ping's transaction.

`issue_for_batch` runs after `geo.pings.ingest`, on the same connection and transaction, so the
member row is already locked: a member's batches are handled one after another, and the facts
read here (offers today, per campaign, per visit) cannot change under us. Steps:
1. the program's time zone and its campaigns active at `now` come from the worker's
   `CampaignCache`, which reloads them (one query) only when the `campaigns_version` that
   `ingest` read has moved (migration 0008 bumps it on every campaign change but a budget
   count, and on a time zone change): so a campaign activated or paused takes effect on the
   next ping, and a program without active campaigns costs no query at all; none → done;
2. one query reads the member's facts (tier, consent, preferences, recent offers, open visits,
   offers already made for these visits), the campaigns' budget counts (`issued`, never
   cached) and the latest weather of the stores concerned;
3. the pure `geo.offers.plan` decides;
4. one statement per offer (in campaign id order, so concurrent batches lock campaign rows in
   one order and cannot deadlock) takes one unit of the campaign's budget *and* inserts the
   offer and its outbox row. The budget is `UPDATE campaigns SET issued = issued + 1 WHERE
   issued < max_issued`: concurrent issuers queue on the campaign row and re-check the
   condition on the row as committed, so the budget is never exceeded (a CHECK backs it).
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

from geo import campaigns_repo
from geo.campaigns import Campaign, CampaignRules, Reward
from geo.eligibility import MemberFacts, Moment, PastOffer, Policy, Weather, plan
from geo.pings import VisitEvent
from wallet.kernel.db import Conn
from wallet.privacy.consents import Preferences, QuietHours

RECENT = timedelta(days=2)  # covers "today" in any time zone, DST days included


class IssuedOffer(msgspec.Struct, frozen=True, kw_only=True):
    id: uuid.UUID
    campaign_id: uuid.UUID
    store_id: uuid.UUID
    title: str
    body: str
    reward: Reward
    issued_at: datetime
    expires_at: datetime


class IssueSettings(msgspec.Struct, frozen=True, kw_only=True):
    weather_max_age_s: int
    push_enabled: bool  # a webhook is configured


# Every campaign with status 'active', whatever its schedule (filtered at `now` per batch), so
# the result stays right until the version moves; version and rows come from one snapshot.
ACTIVE = f"""
SELECT p.timezone, p.campaigns_version,
       ARRAY(SELECT row_to_json(x)::text FROM (
               SELECT {campaigns_repo.COLUMNS}, starts_at, ends_at FROM campaigns
                WHERE program_id = p.id AND status = 'active') x) AS campaigns
FROM programs p WHERE p.id = $1
"""


class _CampaignRow(msgspec.Struct, frozen=True, kw_only=True):
    id: uuid.UUID
    program_id: uuid.UUID
    name: str
    status: Literal["draft", "active", "paused"]
    store_ids: list[uuid.UUID]
    rules: str
    issued: int
    revision: int
    created_at: datetime
    updated_at: datetime
    starts_at: datetime
    ends_at: datetime


_row = msgspec.json.Decoder(_CampaignRow)
_rules_dec = msgspec.json.Decoder(CampaignRules)


class Scheduled(msgspec.Struct, frozen=True, kw_only=True):
    """An active campaign and the range [starts_at, ends_at) it issues in."""

    starts_at: datetime
    ends_at: datetime
    campaign: Campaign


def _scheduled(raw: str) -> Scheduled:
    r = _row.decode(raw)
    return Scheduled(starts_at=r.starts_at, ends_at=r.ends_at, campaign=Campaign(
        id=r.id, program_id=r.program_id, name=r.name, status=r.status,
        store_ids=tuple(r.store_ids), rules=_rules_dec.decode(r.rules), issued=r.issued,
        revision=r.revision, created_at=r.created_at, updated_at=r.updated_at))


class ActiveCampaigns(msgspec.Struct, frozen=True, kw_only=True):
    """A program's time zone and active campaigns as of `version` (`issued` as loaded:
    stale by design, replaced by the fresh count before planning)."""

    version: int
    timezone: str
    campaigns: tuple[Scheduled, ...]

    def at(self, now: datetime) -> list[Campaign]:
        """The campaigns whose schedule range holds `now` (what `ACTIVE` used to filter)."""
        return [s.campaign for s in self.campaigns if s.starts_at <= now < s.ends_at]


class CampaignCache:
    """The worker's `ActiveCampaigns` per program, reloaded when a batch reads a newer
    `campaigns_version` than the one held (see the module docstring)."""

    def __init__(self) -> None:
        self._programs: dict[uuid.UUID, ActiveCampaigns] = {}

    async def current(self, conn: Conn, program_id: uuid.UUID, version: int
                      ) -> ActiveCampaigns | None:
        """The program's campaigns at `version` or newer; None if the program is gone."""
        held = self._programs.get(program_id)
        if held is not None and held.version >= version:
            return held
        row = await conn.fetchrow(ACTIVE, program_id)
        if row is None:
            return None
        loaded = ActiveCampaigns(version=row["campaigns_version"], timezone=row["timezone"],
                                 campaigns=tuple(_scheduled(raw) for raw in row["campaigns"]))
        held = self._programs.get(program_id)  # another batch may have loaded a newer one
        if held is None or held.version <= loaded.version:
            self._programs[program_id] = loaded
        return loaded


FACTS = """
SELECT w.tier,
       coalesce((SELECT c.granted FROM member_consents c
                  WHERE c.member_id = m.id AND c.purpose = 'location_offers'
                  ORDER BY c.id DESC LIMIT 1), false) AS consent,
       p.max_offers_per_day, p.quiet_from, p.quiet_to,
       coalesce(p.channels, '{push,in_app}') AS channels,
       (SELECT coalesce(json_agg(json_build_object(
                 'id', v.id, 'store_id', v.store_id, 'entered_at', v.entered_at,
                 'last_seen_at', v.last_seen_at)), '[]')::text
          FROM visits v WHERE v.member_id = m.id AND v.exited_at IS NULL) AS open_visits,
       (SELECT coalesce(json_agg(json_build_object(
                 'campaign_id', o.campaign_id, 'visit_id', o.visit_id,
                 'issued_at', o.issued_at)), '[]')::text
          FROM offers o WHERE o.member_id = m.id AND o.issued_at > $2) AS recent,
       (SELECT coalesce(json_agg(json_build_object(
                 'campaign_id', t.campaign_id, 'n', t.n, 'last', t.last)), '[]')::text
          FROM (SELECT campaign_id, count(*) AS n, max(issued_at) AS last FROM offers
                 WHERE member_id = m.id AND campaign_id = ANY($3::uuid[])
                 GROUP BY campaign_id) t) AS totals,
       (SELECT coalesce(json_agg(json_build_object(
                 'campaign_id', o.campaign_id, 'visit_id', o.visit_id)), '[]')::text
          FROM offers o
         WHERE o.member_id = m.id AND o.campaign_id = ANY($3::uuid[])
           AND (o.visit_id = ANY($4::uuid[]) OR o.visit_id IN (
                  SELECT v.id FROM visits v WHERE v.member_id = m.id AND v.exited_at IS NULL))
       ) AS visit_offers,
       (SELECT coalesce(json_agg(json_build_object(
                 'store_id', s.store_id, 'temp_c', s.temp_c, 'condition', s.condition,
                 'observed_at', s.observed_at)), '[]')::text
          FROM store_weather s
         WHERE s.store_id = ANY($5::uuid[]) OR s.store_id IN (
                  SELECT v.store_id FROM visits v
                   WHERE v.member_id = m.id AND v.exited_at IS NULL)) AS weather,
       (SELECT coalesce(json_agg(json_build_object('id', c.id, 'issued', c.issued)),
                        '[]')::text
          FROM campaigns c WHERE c.id = ANY($3::uuid[])) AS issued
FROM members m
JOIN wallet_accounts w ON w.id = m.wallet_account_id
LEFT JOIN member_preferences p ON p.member_id = m.id
WHERE m.id = $1
"""


class _OpenVisit(msgspec.Struct, frozen=True, kw_only=True):
    id: uuid.UUID
    store_id: uuid.UUID
    entered_at: datetime
    last_seen_at: datetime


class _Total(msgspec.Struct, frozen=True, kw_only=True):
    campaign_id: uuid.UUID
    n: int
    last: datetime


class _VisitOffer(msgspec.Struct, frozen=True, kw_only=True):
    campaign_id: uuid.UUID
    visit_id: uuid.UUID


class _StoreWeather(Weather, frozen=True, kw_only=True):
    store_id: uuid.UUID


class _Issued(msgspec.Struct, frozen=True, kw_only=True):
    id: uuid.UUID
    issued: int


_open = msgspec.json.Decoder(list[_OpenVisit])
_recent = msgspec.json.Decoder(list[PastOffer])
_totals = msgspec.json.Decoder(list[_Total])
_visit_offers = msgspec.json.Decoder(list[_VisitOffer])
_weather = msgspec.json.Decoder(list[_StoreWeather])
_issued = msgspec.json.Decoder(list[_Issued])

ISSUE = """
WITH budget AS (
    UPDATE campaigns SET issued = issued + 1
     WHERE id = $2 AND status = 'active' AND (max_issued IS NULL OR issued < max_issued)
       AND NOT EXISTS (SELECT 1 FROM offers WHERE campaign_id = $2 AND visit_id = $5)
    RETURNING revision
), offer AS (
    INSERT INTO offers (id, program_id, campaign_id, campaign_revision, member_id, visit_id,
                        store_id, title, body, reward_kind, reward_value, issued_at,
                        expires_at)
    SELECT $1, $3, $2, b.revision, $4, $5, $6, $7, $8, $9, $10, $11, $12 FROM budget b
    RETURNING id
), outbox AS (
    INSERT INTO offer_outbox (offer_id, campaign_id, state, payload, next_attempt_at)
    SELECT o.id, $2, $13::text, $14::jsonb, $11 FROM offer o WHERE $13::text IS NOT NULL
    RETURNING 1
)
SELECT (SELECT count(*) FROM offer) AS issued
"""


class WebhookOffer(msgspec.Struct, frozen=True, kw_only=True):
    """The body POSTed to the push service for one offer."""

    type: Literal["offer.issued"] = "offer.issued"
    program_id: uuid.UUID
    member_id: uuid.UUID
    offer: IssuedOffer


_json = msgspec.json.Encoder()


def moments_of(events: Sequence[VisitEvent], open_visits: Sequence[_OpenVisit]) -> list[Moment]:
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
                          campaigns_version: int) -> list[IssuedOffer]:
    """Issue the offers this batch earns (see the module docstring); returns them.

    `campaigns_version`: the program's version read in this transaction (by `ingest`)."""
    head = await cache.current(conn, program_id, campaigns_version)
    active = head.at(now) if head is not None else []
    if head is None or not active:
        return []
    ids = [c.id for c in active]
    row = await conn.fetchrow(FACTS, member_id, now - RECENT, ids,
                              [e.visit_id for e in events], [e.store_id for e in events])
    if row is None:
        return []
    fresh = {c.id: c.issued for c in _issued.decode(row["issued"])}
    campaigns = [msgspec.structs.replace(c, issued=fresh[c.id]) for c in active
                 if c.id in fresh]  # a campaign deleted since the version was read is gone
    open_visits = _open.decode(row["open_visits"])
    moments = moments_of(events, open_visits)
    if not moments:
        return []
    totals = _totals.decode(row["totals"])
    prefs = _preferences(row)
    member = MemberFacts(
        tier=row["tier"], preferences=prefs, location_consent=row["consent"],
        recent=tuple(_recent.decode(row["recent"])),
        totals={t.campaign_id: t.n for t in totals},
        last_issued={t.campaign_id: t.last for t in totals},
        visit_offers=frozenset((v.campaign_id, v.visit_id)
                               for v in _visit_offers.decode(row["visit_offers"])))
    weather = {w.store_id: Weather(temp_c=w.temp_c, condition=w.condition,
                                   observed_at=w.observed_at)
               for w in _weather.decode(row["weather"])}
    policy = Policy(timezone=head.timezone, weather_max_age_s=settings.weather_max_age_s)
    decisions = plan(moments, member, campaigns, weather=weather, now=now, policy=policy)
    by_id = {c.id: c for c in campaigns}
    state = None
    if settings.push_enabled:
        state = "pending" if "push" in prefs.channels else "skipped"
    out: list[IssuedOffer] = []
    for d in sorted(decisions, key=lambda d: d.campaign_id.bytes):
        c = by_id[d.campaign_id]
        tpl = c.rules.offer
        offer = IssuedOffer(id=uuid.uuid4(), campaign_id=c.id, store_id=d.moment.store_id,
                            title=tpl.title, body=tpl.body, reward=tpl.reward, issued_at=now,
                            expires_at=now + timedelta(seconds=tpl.valid_for_s))
        payload = WebhookOffer(program_id=program_id, member_id=member_id, offer=offer)
        n = await conn.fetchval(
            ISSUE, offer.id, c.id, program_id, member_id, d.moment.visit_id, offer.store_id,
            offer.title, offer.body, offer.reward.kind, offer.reward.value, now,
            offer.expires_at, state, _json.encode(payload).decode())
        if n:
            out.append(offer)
    return out
