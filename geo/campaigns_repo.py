"""Campaigns, their revisions, weather and stats: SQL constants above the functions that run
them. Functions take a connection and never open transactions (the services own them); this
is the only module of the campaigns area that catches asyncpg exceptions."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

import asyncpg
import msgspec

from geo.campaigns import Campaign, CampaignRules, CampaignSpec, Status
from geo.eligibility import Weather
from wallet.kernel.db import Conn
from wallet.kernel.errors import NotFound, RuleViolation
from wallet.kernel.localtime import local, local_or_none
from wallet.kernel.model import Tier
from wallet.offers.model import Offer, OfferStatus, Reward, offer_status

_RULES = msgspec.json.Decoder(CampaignRules)
_TIERS = msgspec.json.Decoder(list[Tier])
_json = msgspec.json.Encoder()

# `issued`, "offers issued so far": a budgeted campaign counts them in its row (the unit of
# budget each offer takes, `issuance_repo.TAKE_BUDGET`); a campaign without a budget keeps no
# counter (its offers take no lock on the row) and counts its offers, an index-only count on
# `offers_campaign_visit` (campaign_id, visit_id). Offers are never deleted but with their
# campaign (erasure only clears member_id), so both are the same number.
def _offers_of(campaign: str) -> str:
    """SQL: how many offers the campaign `campaign` (an expression) has issued."""
    return f"(SELECT count(*) FROM offers o WHERE o.campaign_id = {campaign})::integer"


ISSUED = f"CASE WHEN max_issued IS NULL THEN {_offers_of('campaigns.id')} ELSE issued END"
_HEAD = "id, program_id, name, status, store_ids, rules::text AS rules"
_TAIL = "revision, created_at, updated_at"
STORED_COLUMNS = f"{_HEAD}, issued, {_TAIL}"  # `issued` as stored (stale if no budget)
COLUMNS = f"{_HEAD}, {ISSUED} AS issued, {_TAIL}"


def campaign_of(row: asyncpg.Record) -> Campaign:
    return Campaign(id=row["id"], program_id=row["program_id"], name=row["name"],
                    status=row["status"], store_ids=tuple(row["store_ids"]),
                    rules=_RULES.decode(row["rules"]), issued=row["issued"],
                    revision=row["revision"], created_at=row["created_at"],
                    updated_at=row["updated_at"])


class ProgramFacts(msgspec.Struct, frozen=True, kw_only=True):
    timezone: str
    tier_names: tuple[str, ...]


PROGRAM_FACTS = "SELECT timezone, tiers::text AS tiers FROM programs WHERE id = $1"


async def program_facts(conn: Conn, program_id: uuid.UUID) -> ProgramFacts:
    row = await conn.fetchrow(PROGRAM_FACTS, program_id)
    if row is None:
        raise NotFound("no such program")
    return ProgramFacts(timezone=row["timezone"],
                        tier_names=tuple(t.name for t in _TIERS.decode(row["tiers"])))


LIVE_STORES = """
SELECT id FROM stores WHERE program_id = $1 AND deleted_at IS NULL AND id = ANY($2::uuid[])
"""


async def live_stores(conn: Conn, program_id: uuid.UUID,
                      store_ids: Sequence[uuid.UUID]) -> set[uuid.UUID]:
    """Those of `store_ids` that are live stores of the program."""
    if not store_ids:
        return set()
    return {r["id"] for r in await conn.fetch(LIVE_STORES, program_id, list(store_ids))}


INSERT = f"""
INSERT INTO campaigns (id, program_id, name, store_ids, rules, starts_at, ends_at, max_issued)
VALUES ($1, $2, $3, $4::uuid[], $5::jsonb, $6, $7, $8)
RETURNING {COLUMNS}
"""


async def insert(conn: Conn, program_id: uuid.UUID, spec: CampaignSpec) -> Campaign:
    s = spec.rules.schedule
    row = await conn.fetchrow(INSERT, uuid.uuid4(), program_id, spec.name, list(spec.store_ids),
                              _json.encode(spec.rules).decode(), s.starts_at, s.ends_at,
                              spec.rules.caps.max_issued)
    assert row is not None
    return campaign_of(row)


SELECT_ONE = f"SELECT {COLUMNS} FROM campaigns WHERE id = $1 AND program_id = $2"


async def get(conn: Conn, program_id: uuid.UUID, campaign_id: uuid.UUID, *,
              for_update: bool = False) -> Campaign:
    """The campaign, or NotFound (also for a campaign of another program)."""
    row = await conn.fetchrow(SELECT_ONE + (" FOR UPDATE" if for_update else ""),
                              campaign_id, program_id)
    if row is None:
        raise NotFound("no such campaign in this program")
    return campaign_of(row)


SELECT_PAGE = f"""
SELECT {COLUMNS} FROM campaigns
WHERE program_id = $1 AND ($2::text IS NULL OR status = $2)
  AND ($3::timestamptz IS NULL OR (created_at, id) > ($3, $4::uuid))
ORDER BY created_at, id
LIMIT $5
"""


async def page(conn: Conn, program_id: uuid.UUID, *, status: Status | None,
               after: tuple[datetime, uuid.UUID] | None, limit: int) -> list[Campaign]:
    rows = await conn.fetch(SELECT_PAGE, program_id, status, after[0] if after else None,
                            after[1] if after else None, limit)
    return [campaign_of(r) for r in rows]


# A campaign given a budget starts its counter at its offers so far (the row is locked by
# then, so no offer is in flight: issuers without a budget hold it FOR SHARE).
UPDATE = f"""
UPDATE campaigns SET name = $2, store_ids = $3::uuid[], rules = $4::jsonb, starts_at = $5,
       ends_at = $6, max_issued = $7, revision = revision + 1, updated_at = $8,
       issued = CASE WHEN max_issued IS NULL AND $7::integer IS NOT NULL
                     THEN {_offers_of("$1")} ELSE issued END
WHERE id = $1
RETURNING {COLUMNS}
"""


async def update(conn: Conn, campaign_id: uuid.UUID, spec: CampaignSpec,
                 now: datetime) -> Campaign:
    """Replace the definition (the row must be locked). A budget below what was already
    issued is refused, naming `caps.max_issued`."""
    s = spec.rules.schedule
    try:
        row = await conn.fetchrow(UPDATE, campaign_id, spec.name, list(spec.store_ids),
                                  _json.encode(spec.rules).decode(), s.starts_at, s.ends_at,
                                  spec.rules.caps.max_issued, now)
    except asyncpg.CheckViolationError as exc:
        if exc.constraint_name == "campaigns_budget":
            raise RuleViolation("the budget is below the number of offers already issued",
                                field="caps.max_issued") from exc
        raise
    assert row is not None
    return campaign_of(row)


SET_STATUS = f"""
UPDATE campaigns SET status = $2, revision = revision + 1, updated_at = $3 WHERE id = $1
RETURNING {COLUMNS}
"""


async def set_status(conn: Conn, campaign_id: uuid.UUID, status: Status,
                     now: datetime) -> Campaign:
    row = await conn.fetchrow(SET_STATUS, campaign_id, status, now)
    assert row is not None
    return campaign_of(row)


class CampaignDoc(msgspec.Struct, frozen=True, kw_only=True):
    """What a revision records of a campaign: its definition and status."""

    name: str
    status: Status
    store_ids: tuple[uuid.UUID, ...]
    rules: CampaignRules


class Revision(msgspec.Struct, frozen=True, kw_only=True):
    revision: int
    changed_at: datetime
    changed_by: uuid.UUID
    action: str
    before: CampaignDoc | None
    after: CampaignDoc


_DOC = msgspec.json.Decoder(CampaignDoc)


def document(c: Campaign) -> str:
    return _json.encode(CampaignDoc(name=c.name, status=c.status, store_ids=c.store_ids,
                                    rules=c.rules)).decode()


INSERT_REVISION = """
INSERT INTO campaign_revisions (campaign_id, revision, changed_at, changed_by, action, before,
                                after)
VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7::jsonb)
"""


async def record_revision(conn: Conn, *, before: Campaign | None, after: Campaign,
                          by: uuid.UUID, action: str, now: datetime) -> None:
    await conn.execute(INSERT_REVISION, after.id, after.revision, now, by, action,
                       document(before) if before else None, document(after))


SELECT_REVISIONS = """
SELECT revision, changed_at, changed_by, action, before::text AS before, after::text AS after
FROM campaign_revisions WHERE campaign_id = $1 AND ($2::integer IS NULL OR revision < $2)
ORDER BY revision DESC LIMIT $3
"""


async def revisions(conn: Conn, campaign_id: uuid.UUID, *, before: int | None,
                    limit: int) -> list[Revision]:
    rows = await conn.fetch(SELECT_REVISIONS, campaign_id, before, limit)
    return [Revision(revision=r["revision"], changed_at=r["changed_at"],
                     changed_by=r["changed_by"], action=r["action"],
                     before=_DOC.decode(r["before"]) if r["before"] else None,
                     after=_DOC.decode(r["after"])) for r in rows]


# --- weather ----------------------------------------------------------------------------------

UPSERT_WEATHER = """
INSERT INTO store_weather (store_id, program_id, temp_c, condition, observed_at, received_at)
SELECT u.store_id, $1, u.temp_c, u.condition, u.observed_at, $6
FROM unnest($2::uuid[], $3::float8[], $4::text[], $5::timestamptz[])
     AS u(store_id, temp_c, condition, observed_at)
ON CONFLICT (store_id) DO UPDATE
   SET temp_c = EXCLUDED.temp_c, condition = EXCLUDED.condition,
       observed_at = EXCLUDED.observed_at, received_at = EXCLUDED.received_at
 WHERE store_weather.observed_at <= EXCLUDED.observed_at
RETURNING store_id
"""


class Observation(msgspec.Struct, frozen=True, kw_only=True):
    store_id: uuid.UUID
    weather: Weather


async def upsert_weather(conn: Conn, program_id: uuid.UUID, obs: Sequence[Observation],
                         now: datetime) -> int:
    """Keep the latest observation per store (an older one never replaces a newer one).
    `obs` must hold one observation per store. Returns how many were stored."""
    rows = await conn.fetch(UPSERT_WEATHER, program_id, [o.store_id for o in obs],
                            [o.weather.temp_c for o in obs], [o.weather.condition for o in obs],
                            [o.weather.observed_at for o in obs], now)
    return len(rows)


# --- the member's offers ----------------------------------------------------------------------

MEMBER_OFFERS = """
SELECT o.id, o.campaign_id, o.store_id, s.name AS store_name, o.title, o.body, o.reward_kind,
       o.reward_value, o.issued_at, o.expires_at, o.opened_at, o.redeemed_at, p.timezone
FROM offers o
JOIN programs p ON p.id = o.program_id
LEFT JOIN stores s ON s.id = o.store_id
WHERE o.member_id = $1
  AND ($2::text IS NULL OR CASE $2::text
        WHEN 'redeemed' THEN o.redeemed_at IS NOT NULL
        WHEN 'expired' THEN o.redeemed_at IS NULL AND o.expires_at <= $3
        ELSE o.redeemed_at IS NULL AND o.expires_at > $3 END)
  AND ($4::timestamptz IS NULL OR (o.issued_at, o.id) < ($4, $5::uuid))
ORDER BY o.issued_at DESC, o.id DESC
LIMIT $6
"""


async def member_offers(conn: Conn, member_id: uuid.UUID, *, status: OfferStatus | None,
                        now: datetime, before: tuple[datetime, uuid.UUID] | None,
                        limit: int) -> list[Offer]:
    """The member's offers, newest first, with their status at `now`, their store's name and
    times on the program's wall clock (with its offset)."""
    rows = await conn.fetch(MEMBER_OFFERS, member_id, status, now,
                            before[0] if before else None, before[1] if before else None,
                            limit)
    return [Offer(id=r["id"], campaign_id=r["campaign_id"], store_id=r["store_id"],
                  store_name=r["store_name"], title=r["title"], body=r["body"],
                  reward=Reward(kind=r["reward_kind"], value=r["reward_value"]),
                  issued_at=local(r["issued_at"], r["timezone"]),
                  expires_at=local(r["expires_at"], r["timezone"]),
                  opened_at=local_or_none(r["opened_at"], r["timezone"]),
                  status=offer_status(r["redeemed_at"], r["expires_at"], now))
            for r in rows]


# The first opening is kept (a retried or repeated call changes nothing); never before issue.
MARK_OPENED = """
UPDATE offers SET opened_at = coalesce(opened_at, greatest($3::timestamptz, issued_at))
WHERE id = $1 AND member_id = $2
RETURNING opened_at
"""


async def mark_opened(conn: Conn, member_id: uuid.UUID, offer_id: uuid.UUID,
                      now: datetime) -> datetime:
    """Record that the member opened their offer (idempotent); NotFound for an offer that is
    not theirs (another member's offer does not exist for them)."""
    opened: datetime | None = await conn.fetchval(MARK_OPENED, offer_id, member_id, now)
    if opened is None:
        raise NotFound("no such offer", field="offer_id")
    return opened
