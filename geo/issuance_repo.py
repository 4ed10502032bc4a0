"""Offer issuance's SQL: the active campaigns of a program, the member's facts an offer
decision needs (one query), and the statement that takes one unit of budget and issues one
offer with its outbox row (see `geo.issuance` for the rules of the game)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

import asyncpg
import msgspec

from geo.campaigns import Campaign, CampaignRules
from geo.campaigns_repo import STORED_COLUMNS
from geo.eligibility import PastOffer, Weather
from geo.visits_repo import OPEN_VISITS, open_visit_column
from wallet.kernel.db import Conn
from wallet.members.consents_repo import current_consent

# Every campaign with status 'active', whatever its schedule (filtered at `now` per batch), so
# the result stays right until the version moves; version and rows come from one snapshot.
ACTIVE = f"""
SELECT p.timezone, p.campaigns_version,
       ARRAY(SELECT row_to_json(x)::text FROM (
               SELECT {STORED_COLUMNS}, starts_at, ends_at FROM campaigns
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


async def load_active(conn: Conn, program_id: uuid.UUID) -> ActiveCampaigns | None:
    """The program's time zone and active campaigns, one snapshot; None if it is gone."""
    row = await conn.fetchrow(ACTIVE, program_id)
    if row is None:
        return None
    return ActiveCampaigns(version=row["campaigns_version"], timezone=row["timezone"],
                           campaigns=tuple(_scheduled(raw) for raw in row["campaigns"]))


FACTS = f"""
SELECT w.tier,
       {current_consent("location_offers", "m.id")} AS consent,
       p.max_offers_per_day, p.quiet_from, p.quiet_to,
       coalesce(p.channels, '{{push,in_app}}') AS channels,
       {OPEN_VISITS} AS open_visits,
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
                  {open_visit_column("id")}))
       ) AS visit_offers,
       (SELECT coalesce(json_agg(json_build_object(
                 'store_id', s.store_id, 'temp_c', s.temp_c, 'condition', s.condition,
                 'observed_at', s.observed_at)), '[]')::text
          FROM store_weather s
         WHERE s.store_id = ANY($5::uuid[]) OR s.store_id IN (
                  {open_visit_column("store_id")})) AS weather,
       (SELECT coalesce(json_agg(json_build_object('id', c.id, 'issued', c.issued)),
                        '[]')::text
          FROM campaigns c WHERE c.id = ANY($3::uuid[])) AS issued
FROM members m
JOIN wallet_accounts w ON w.id = m.wallet_account_id
LEFT JOIN member_preferences p ON p.member_id = m.id
WHERE m.id = $1
"""


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


decode_recent = msgspec.json.Decoder(list[PastOffer]).decode
decode_totals = msgspec.json.Decoder(list[_Total]).decode
decode_visit_offers = msgspec.json.Decoder(list[_VisitOffer]).decode
decode_weather = msgspec.json.Decoder(list[_StoreWeather]).decode
decode_issued = msgspec.json.Decoder(list[_Issued]).decode

async def member_facts(conn: Conn, member_id: uuid.UUID, since: datetime, *,
                       campaign_ids: list[uuid.UUID], visit_ids: list[uuid.UUID],
                       store_ids: list[uuid.UUID]) -> asyncpg.Record | None:
    """The row of `FACTS` (JSON columns decoded by the caller with the decoders above)."""
    return await conn.fetchrow(FACTS, member_id, since, campaign_ids, visit_ids, store_ids)


# How an offer takes its campaign: `ISSUE` runs one of these as its `take` CTE, chosen by the
# campaign's budget as cached; each re-checks its own case on the row, so a campaign whose
# budget changed since (the version moved) issues nothing this batch and is re-planned.
# * A budget: one unit of it, `issued + 1` under the row's exclusive lock: concurrent issuers
#   queue on the row and re-check `issued < max_issued` on the row as committed, so the budget
#   is never exceeded (the CHECK `campaigns_budget` backs it).
# * No budget: nothing to count, so no exclusive lock and no write on the campaign: `FOR SHARE`
#   does not conflict with other issuers, only with a change of the campaign (pause, edit,
#   delete), so a pause waits for the offers in flight and an issuer that comes after the
#   pause re-checks `status` on the paused row and issues nothing. Its `issued` is the count
#   of its offers (`campaigns_repo.ISSUED`).
TAKE_BUDGET = """
    UPDATE campaigns SET issued = issued + 1
     WHERE id = $2 AND status = 'active' AND max_issued IS NOT NULL AND issued < max_issued
       AND NOT EXISTS (SELECT 1 FROM offers WHERE campaign_id = $2 AND visit_id = $5)
    RETURNING revision
"""
TAKE_OPEN = """
    SELECT revision FROM campaigns
     WHERE id = $2 AND status = 'active' AND max_issued IS NULL
       AND NOT EXISTS (SELECT 1 FROM offers WHERE campaign_id = $2 AND visit_id = $5)
       FOR SHARE
"""
ISSUE = """
WITH take AS ({take}), offer AS (
    INSERT INTO offers (id, program_id, campaign_id, campaign_revision, member_id, visit_id,
                        store_id, title, body, reward_kind, reward_value, issued_at,
                        expires_at)
    SELECT $1, $3, $2, t.revision, $4, $5, $6, $7, $8, $9, $10, $11, $12 FROM take t
    RETURNING id
), store AS (
    SELECT name FROM stores WHERE id = $6
), outbox AS (
    INSERT INTO offer_outbox (offer_id, campaign_id, state, payload, next_attempt_at)
    SELECT o.id, $2, $13::text,
           jsonb_set($14::jsonb, '{{offer,store_name}}',
                     coalesce((SELECT to_jsonb(name) FROM store), 'null'::jsonb)), $11
      FROM offer o WHERE $13::text IS NOT NULL
    RETURNING 1
)
SELECT (SELECT count(*) FROM offer) > 0 AS issued, (SELECT name FROM store) AS store_name
"""
ISSUE_BUDGETED = ISSUE.format(take=TAKE_BUDGET)
ISSUE_OPEN = ISSUE.format(take=TAKE_OPEN)


class Issued(msgspec.Struct, frozen=True, kw_only=True):
    store_name: str | None  # the store's name, for the member's offer and its push message


async def issue_one(conn: Conn, *args: object, budgeted: bool) -> Issued | None:
    """Run `ISSUE` (with the budget's `take` when `budgeted`) with its 14 parameters; the
    issued offer's facts, or None when it was not issued (no budget left, paused, or the
    budget changed since the campaigns were cached)."""
    row = await conn.fetchrow(ISSUE_BUDGETED if budgeted else ISSUE_OPEN, *args)
    if row is None or not row["issued"]:
        return None
    return Issued(store_name=row["store_name"])
