"""Campaign statistics: the SQL beside the function that runs it (see `geo/campaign_stats.py`
for what the figures mean). Reads only; the service runs it in one read-only, repeatable-read
transaction so every figure comes from the same snapshot."""

from __future__ import annotations

import uuid
from datetime import date, datetime, time

from geo.campaign_stats import (
    CampaignFigures,
    Day,
    DeliveryStats,
    Period,
    ProgramStats,
    Stats,
    StoreStats,
    conversion,
)
from geo.campaigns import Campaign
from wallet.kernel.db import Conn

# Per store of the campaign (every live store when it names none, plus any store that got
# offers): offers issued, opened and redeemed in the period, and those whose validity ended
# in it (up to now) unredeemed; with the store's code and name (a store deleted since keeps
# them). $4/$5 bound the period, $6 is now.
BY_STORE = """
WITH scope AS (
    SELECT id AS store_id FROM stores
     WHERE program_id = $1 AND deleted_at IS NULL AND (cardinality($2::uuid[]) = 0
                                                        OR id = ANY($2::uuid[]))
    UNION
    SELECT DISTINCT store_id FROM offers WHERE campaign_id = $3
), o AS (
    SELECT store_id,
           count(*) FILTER (WHERE issued_at >= $4 AND issued_at < $5) AS issued,
           count(*) FILTER (WHERE opened_at >= $4 AND opened_at < $5) AS opened,
           count(*) FILTER (WHERE redeemed_at >= $4 AND redeemed_at < $5) AS redeemed,
           count(*) FILTER (WHERE redeemed_at IS NULL AND expires_at >= $4
                              AND expires_at < $5 AND expires_at <= $6) AS expired
      FROM offers WHERE campaign_id = $3 GROUP BY store_id
)
SELECT sc.store_id, s.code AS store_code, s.name AS store_name,
       coalesce(o.issued, 0) AS issued, coalesce(o.opened, 0) AS opened,
       coalesce(o.redeemed, 0) AS redeemed, coalesce(o.expired, 0) AS expired
FROM scope sc LEFT JOIN o USING (store_id) LEFT JOIN stores s ON s.id = sc.store_id
ORDER BY s.name, sc.store_id
"""

# Visits of those stores that began in the period and inside the campaign's schedule: dates,
# then weekdays and hour windows on the program's wall clock ($6).
VISITS = """
SELECT v.store_id, count(*) AS visits
  FROM visit_counts v  -- anonymous: survives erasure and visit retention (0007)
  CROSS JOIN LATERAL (SELECT (v.entered_at AT TIME ZONE $6) AS lt) l
 WHERE v.program_id = $1 AND v.store_id = ANY($2::uuid[])
   AND v.entered_at >= $3 AND v.entered_at < $4 AND v.entered_at < $5
   AND ($7::int[] IS NULL OR extract(isodow FROM l.lt)::int = ANY($7::int[]))
   AND ($8::time[] IS NULL OR EXISTS (
         SELECT 1 FROM unnest($8::time[], $9::time[]) AS h(f, t)
          WHERE CASE WHEN h.f < h.t THEN l.lt::time >= h.f AND l.lt::time < h.t
                     ELSE l.lt::time >= h.f OR l.lt::time < h.t END))
 GROUP BY v.store_id
"""

# One row per local day with any offer issued, opened or redeemed on it ($4: time zone).
DAILY = """
SELECT d, count(*) FILTER (WHERE k = 'i') AS issued, count(*) FILTER (WHERE k = 'o') AS opened,
       count(*) FILTER (WHERE k = 'r') AS redeemed
FROM (
    SELECT (issued_at AT TIME ZONE $4)::date AS d, 'i' AS k FROM offers
     WHERE campaign_id = $1 AND issued_at >= $2 AND issued_at < $3
    UNION ALL
    SELECT (opened_at AT TIME ZONE $4)::date, 'o' FROM offers
     WHERE campaign_id = $1 AND opened_at >= $2 AND opened_at < $3
    UNION ALL
    SELECT (redeemed_at AT TIME ZONE $4)::date, 'r' FROM offers
     WHERE campaign_id = $1 AND redeemed_at >= $2 AND redeemed_at < $3
) e
GROUP BY d
"""

DELIVERIES = """
SELECT state, count(*) AS n, sum(attempts) AS attempts
FROM offer_outbox WHERE campaign_id = $1 GROUP BY state
"""


async def _deliveries(conn: Conn, c: Campaign) -> DeliveryStats:
    counts = {r["state"]: (int(r["n"]), int(r["attempts"]))
              for r in await conn.fetch(DELIVERIES, c.id)}
    n = {state: counts.get(state, (0, 0))[0]
         for state in ("pending", "delivered", "expired", "skipped")}
    # every delivered row took exactly one successful attempt; all other attempts failed
    failed = sum(attempts for _, attempts in counts.values()) - n["delivered"]
    return DeliveryStats(pending=n["pending"], delivered=n["delivered"], expired=n["expired"],
                         skipped=n["skipped"], failed_attempts=failed)


async def stats(conn: Conn, c: Campaign, p: Period, *, timezone: str, now: datetime) -> Stats:
    """The campaign's figures over period `p` (see `geo.campaign_stats`)."""
    stores = await conn.fetch(BY_STORE, c.program_id, list(c.store_ids), c.id, p.start,
                              p.end, now)
    s = c.rules.schedule
    hours = s.hours
    visits = {r["store_id"]: int(r["visits"]) for r in await conn.fetch(
        VISITS, c.program_id, [r["store_id"] for r in stores], max(p.start, s.starts_at),
        min(p.end, s.ends_at), now, timezone, s.weekdays,
        [time.fromisoformat(w.from_) for w in hours] if hours else None,
        [time.fromisoformat(w.to) for w in hours] if hours else None)}
    by_day: dict[date, tuple[int, int, int]] = {
        r["d"]: (int(r["issued"]), int(r["opened"]), int(r["redeemed"]))
        for r in await conn.fetch(DAILY, c.id, p.start, p.end, timezone)}
    by_store = [StoreStats(store_id=r["store_id"], store_code=r["store_code"],
                           store_name=r["store_name"], visits=visits.get(r["store_id"], 0),
                           issued=r["issued"], opened=r["opened"], redeemed=r["redeemed"])
                for r in stores]
    issued = sum(b.issued for b in by_store)
    redeemed = sum(b.redeemed for b in by_store)
    return Stats(
        from_=p.first, to=p.last, timezone=timezone, issued=issued,
        opened=sum(b.opened for b in by_store), redeemed=redeemed,
        expired=sum(int(r["expired"]) for r in stores),
        conversion_rate=conversion(redeemed, issued), by_store=by_store,
        daily=[Day(date=d, issued=by_day.get(d, (0, 0, 0))[0],
                   opened=by_day.get(d, (0, 0, 0))[1], redeemed=by_day.get(d, (0, 0, 0))[2])
               for d in p.days()],
        deliveries=await _deliveries(conn, c))


# ---- The whole program ----------------------------------------------------------------------
# Offers of the program's campaigns with an event in the period [$2, $3): nothing issued after
# its end can have one (every event follows the issue), so the (campaign_id, issued_at) index
# bounds the scan. Per campaign and store: issued, opened, redeemed, and expired unredeemed
# (validity ended in the period, up to now $4).
PROGRAM_OFFERS = """
SELECT o.campaign_id, o.store_id,
       count(*) FILTER (WHERE o.issued_at >= $2) AS issued,
       count(*) FILTER (WHERE o.opened_at >= $2 AND o.opened_at < $3) AS opened,
       count(*) FILTER (WHERE o.redeemed_at >= $2 AND o.redeemed_at < $3) AS redeemed,
       count(*) FILTER (WHERE o.redeemed_at IS NULL AND o.expires_at >= $2
                          AND o.expires_at < $3 AND o.expires_at <= $4) AS expired
  FROM campaigns c JOIN offers o ON o.campaign_id = c.id
 WHERE c.program_id = $1 AND o.issued_at < $3
   AND (o.issued_at >= $2 OR o.expires_at >= $2 OR o.opened_at >= $2 OR o.redeemed_at >= $2)
 GROUP BY o.campaign_id, o.store_id
"""

PROGRAM_DAILY = """
WITH o AS (
    SELECT o.issued_at, o.opened_at, o.redeemed_at
      FROM campaigns c JOIN offers o ON o.campaign_id = c.id
     WHERE c.program_id = $1 AND o.issued_at < $3
       AND (o.issued_at >= $2 OR o.opened_at >= $2 OR o.redeemed_at >= $2)
)
SELECT d, count(*) FILTER (WHERE k = 'i') AS issued, count(*) FILTER (WHERE k = 'o') AS opened,
       count(*) FILTER (WHERE k = 'r') AS redeemed
FROM (
    SELECT (issued_at AT TIME ZONE $4)::date AS d, 'i' AS k FROM o WHERE issued_at >= $2
    UNION ALL
    SELECT (opened_at AT TIME ZONE $4)::date, 'o' FROM o
     WHERE opened_at >= $2 AND opened_at < $3
    UNION ALL
    SELECT (redeemed_at AT TIME ZONE $4)::date, 'r' FROM o
     WHERE redeemed_at >= $2 AND redeemed_at < $3
) e
GROUP BY d
"""

PROGRAM_CAMPAIGNS = """
SELECT id, name, status FROM campaigns WHERE program_id = $1 ORDER BY created_at, id
"""

# Every store of the program, deleted ones too (they keep their figures and names).
PROGRAM_STORES = """
SELECT id, code, name, deleted_at IS NULL AS live FROM stores WHERE program_id = $1
 ORDER BY name, id
"""

PROGRAM_VISITS = """
SELECT store_id, count(*) AS visits FROM visit_counts
 WHERE store_id = ANY($1::uuid[]) AND entered_at >= $2 AND entered_at < $3 AND entered_at < $4
 GROUP BY store_id
"""

Counts = tuple[int, int, int, int]  # issued, opened, redeemed, expired


def _add(a: Counts, b: Counts) -> Counts:
    return (a[0] + b[0], a[1] + b[1], a[2] + b[2], a[3] + b[3])


async def program_stats(conn: Conn, program_id: uuid.UUID, p: Period, *, timezone: str,
                        now: datetime) -> ProgramStats:
    """The program's figures over period `p`, every campaign together (see
    `geo.campaign_stats.ProgramStats`)."""
    zero: Counts = (0, 0, 0, 0)
    per_store: dict[uuid.UUID, Counts] = {}
    per_campaign: dict[uuid.UUID, Counts] = {}
    for r in await conn.fetch(PROGRAM_OFFERS, program_id, p.start, p.end, now):
        counts = (int(r["issued"]), int(r["opened"]), int(r["redeemed"]), int(r["expired"]))
        per_store[r["store_id"]] = _add(per_store.get(r["store_id"], zero), counts)
        per_campaign[r["campaign_id"]] = _add(per_campaign.get(r["campaign_id"], zero), counts)
    stores = await conn.fetch(PROGRAM_STORES, program_id)
    visits = {r["store_id"]: int(r["visits"]) for r in await conn.fetch(
        PROGRAM_VISITS, [r["id"] for r in stores], p.start, p.end, now)}
    by_store = [StoreStats(store_id=r["id"], store_code=r["code"], store_name=r["name"],
                           visits=visits.get(r["id"], 0), issued=c[0], opened=c[1],
                           redeemed=c[2])
                for r in stores if r["live"] or r["id"] in per_store or r["id"] in visits
                for c in (per_store.get(r["id"], zero),)]
    by_campaign = []
    for r in await conn.fetch(PROGRAM_CAMPAIGNS, program_id):
        c = per_campaign.get(r["id"], zero)
        if r["status"] != "draft" or c != zero:
            by_campaign.append(CampaignFigures(
                campaign_id=r["id"], name=r["name"], status=r["status"], issued=c[0],
                opened=c[1], redeemed=c[2], expired=c[3],
                conversion_rate=conversion(c[2], c[0])))
    by_day = {r["d"]: (int(r["issued"]), int(r["opened"]), int(r["redeemed"]))
              for r in await conn.fetch(PROGRAM_DAILY, program_id, p.start, p.end, timezone)}
    total = zero
    for counts in per_campaign.values():
        total = _add(total, counts)
    return ProgramStats(
        from_=p.first, to=p.last, timezone=timezone, issued=total[0], opened=total[1],
        redeemed=total[2], expired=total[3], conversion_rate=conversion(total[2], total[0]),
        by_store=by_store, by_campaign=by_campaign,
        daily=[Day(date=d, issued=by_day.get(d, (0, 0, 0))[0],
                   opened=by_day.get(d, (0, 0, 0))[1], redeemed=by_day.get(d, (0, 0, 0))[2])
               for d in p.days()])
