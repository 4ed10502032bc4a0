"""Campaign statistics: the SQL beside the function that runs it (see `geo/campaign_stats.py`
for what the figures mean). Reads only; the service runs it in one read-only, repeatable-read
transaction so every figure comes from the same snapshot."""

from __future__ import annotations

from datetime import date, datetime, time

from geo.campaign_stats import Day, DeliveryStats, Period, Stats, StoreStats, conversion
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
