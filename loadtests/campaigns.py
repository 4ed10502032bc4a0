"""Drive-to-store campaigns for the ping load test (`loadtests/pings.py --campaigns N`), and
the checks of the offers they issue.

PERFORMANCE.md target 2 is ping ingestion *with offers*: a batch in or near a store while a
campaign is active takes the locked transaction and plans offers (`geo/issuance.py`), which a
program with no campaign never does. The realistic set (`--campaigns 4`, the default) is what a
retailer runs at once, all active from a day ago for a month (no weekday or hour windows, so a
run's offers do not depend on the time of day it is run), no audience tiers and no weather
context (the load test has no tiers and no weather feed), every one with the once-per-visit rule:

1. "Welcome in": `enter`, every store, 50 bonus points, one per member per day; no budget
   (its offers take no lock on the campaign row, `geo/issuance_repo.py`).
2. "Stay ten minutes": `dwell` 300 s, every store, 10% off, two per member per day; no budget.
3. "Flagship stores": `enter`, a quarter of the stores, 5 EUR off, a member cooldown of an
   hour; budget 1M.
4. "First 300 coffees": `dwell` 120 s, a tenth of the stores, 100 bonus points, no member cap;
   budget 300, which runs out early in the run: concurrent batches then race for its last units
   (several connections per worker, two workers), the race `issue_one`'s conditional UPDATE
   settles, and the check below proves it did (issued = offers ≤ 300). Exhausted, it stays
   active, as a real one does until a manager pauses it, so its stores' batches keep taking
   the locked path and are refused by the budget.

More than four repeats the four with other store subsets; `--campaigns 0` is a program without
campaigns (the workload of the earlier figures). Members take offers in the app only (no
webhook is configured, so no outbox rows), and one in five has set a personal maximum of three
offers a day (`member_preferences`).

`verify` (after each worker count, beside the visits checks): every offer answered is one
offers row (none answered twice, none written unanswered); each campaign's `issued` equals its
offers (a budgeted one's counter; one without a budget counts its offers) and is within its
budget; at most one offer per campaign per visit.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import asyncpg

from geo import campaigns_repo
from geo.campaigns import (
    CampaignRules,
    CampaignSpec,
    Caps,
    OfferTemplate,
    Schedule,
    Trigger,
    check_rules,
)
from wallet.offers.model import Reward

_DAY = timedelta(days=1)


# name, share of stores, trigger (dwell_s or None for enter), offer title, body, reward,
# valid_for_s, caps: the set of the module docstring
_SET: tuple[tuple[str, float, int | None, str, str, Reward, int, Caps], ...] = (
    ("Welcome in", 1.0, None, "Welcome in", "50 bonus points today",
     Reward(kind="bonus_points", value=50), 86400,
     Caps(per_member_per_day=1)),
    ("Stay ten minutes", 1.0, 300, "Thanks for staying", "10% off your basket",
     Reward(kind="percent_off", value=10), 7200,
     Caps(per_member_per_day=2)),
    ("Flagship stores", 0.25, None, "Flagship welcome", "5 EUR off from 30 EUR",
     Reward(kind="amount_off", value=500), 86400,
     Caps(member_cooldown_s=3600, max_issued=1_000_000)),
    ("First 300 coffees", 0.1, 120, "A coffee on us", "100 bonus points with a coffee",
     Reward(kind="bonus_points", value=100), 3600, Caps(max_issued=300)),
)
REALISTIC = len(_SET)


def _rules(i: int, now: datetime) -> tuple[str, float, CampaignRules]:
    """The i-th campaign of the set (module docstring): (name, share of stores, rules)."""
    name, share, dwell_s, title, body, reward, valid_for_s, caps = _SET[i % REALISTIC]
    trigger = Trigger(event="enter") if dwell_s is None else Trigger(event="dwell",
                                                                      dwell_s=dwell_s)
    return name, share, CampaignRules(
        trigger=trigger, schedule=Schedule(starts_at=now - _DAY, ends_at=now + 30 * _DAY),
        offer=OfferTemplate(title=title, body=body, reward=reward, valid_for_s=valid_for_s),
        caps=caps)


def specs(count: int, store_ids: Sequence[uuid.UUID], *, now: datetime,
          rng: random.Random) -> list[CampaignSpec]:
    """`count` campaigns of the set, checked as the API checks them."""
    out = []
    for i in range(count):
        name, share, rules = _rules(i, now)
        stores = (() if share >= 1 else
                  tuple(rng.sample(list(store_ids), max(1, int(share * len(store_ids))))))
        if i >= REALISTIC:
            name = f"{name} ({i // REALISTIC + 1})"
        out.append(check_rules(CampaignSpec(name=name, store_ids=stores, rules=rules),
                               tiers=(), stores=store_ids))
    return out


async def seed(conn: asyncpg.Connection[asyncpg.Record], program_id: uuid.UUID,
               store_ids: Sequence[uuid.UUID], member_ids: Sequence[uuid.UUID], *,
               count: int, rng: random.Random) -> None:
    """`count` active campaigns of the set and the members' preferences (module docstring)."""
    if count <= 0:
        return
    for spec in specs(count, store_ids, now=datetime.now(UTC), rng=rng):
        c = await campaigns_repo.insert(conn, program_id, spec)
        await conn.execute("UPDATE campaigns SET status = 'active' WHERE id = $1", c.id)
    await conn.copy_records_to_table(
        "member_preferences", columns=["member_id", "max_offers_per_day", "channels"],
        records=[(m, 3 if i % 5 == 0 else None, ["in_app"])
                 for i, m in enumerate(member_ids)])


CHECK = """
SELECT c.name, CASE WHEN c.max_issued IS NULL THEN count(o.id) ELSE c.issued END AS issued,
       c.max_issued, count(o.id) AS offers,
       count(DISTINCT o.visit_id) AS visits
FROM campaigns c LEFT JOIN offers o ON o.campaign_id = c.id
WHERE c.program_id = $1
GROUP BY c.id ORDER BY c.created_at, c.id
"""
TOTALS = """
SELECT (SELECT count(*) FROM offers WHERE program_id = $1) AS offers,
       (SELECT count(*) FROM offers WHERE id = ANY($2::uuid[])) AS answered_found
"""


async def verify(conn: asyncpg.Connection[asyncpg.Record], program_id: uuid.UUID,
                 answered: Sequence[uuid.UUID]) -> list[str]:
    """The offers checks of the module docstring; what failed (empty: all held)."""
    problems: list[str] = []
    rows = await conn.fetch(CHECK, program_id)
    if not rows:
        return problems
    unique = set(answered)
    totals = await conn.fetchrow(TOTALS, program_id, list(unique))
    assert totals is not None
    print("offers: " + "; ".join(
        f"{r['name']} {r['offers']}" + (f"/{r['max_issued']}" if r["max_issued"] else "")
        for r in rows) + f"; {len(answered)} answered")
    if len(unique) != len(answered):
        problems.append(f"{len(answered) - len(unique)} offers answered twice")
    if totals["answered_found"] != len(unique):
        problems.append(f"{len(unique) - totals['answered_found']} offers answered but not "
                        "stored")
    if totals["offers"] != len(unique):
        problems.append(f"{totals['offers']} offers stored, {len(unique)} answered")
    for r in rows:
        if r["issued"] != r["offers"]:
            problems.append(f"{r['name']}: issued {r['issued']}, {r['offers']} offers")
        if r["max_issued"] is not None and r["offers"] > r["max_issued"]:
            problems.append(f"{r['name']}: {r['offers']} offers, budget {r['max_issued']}")
        if r["visits"] != r["offers"]:
            problems.append(f"{r['name']}: {r['offers']} offers for {r['visits']} visits")
    if not totals["offers"]:
        problems.append("the campaigns issued no offer")
    return problems
