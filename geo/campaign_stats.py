"""What a campaign achieved, as managers read it (pure values and rules; the SQL is in
`geo/campaign_stats_repo.py`).

A period is a range of *local dates* of the program (`from` and `to` inclusive, on the
program's wall clock): an offer counts as issued, opened or redeemed on the day it was
issued, opened or redeemed there, so a day's figures match what the shops saw that day. With
no range, the period runs from the campaign's first scheduled day to its last one (or today,
if that is earlier). The daily series has one row per day of the period, zeros included.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime, time, timedelta

import msgspec

from wallet.kernel.errors import RuleViolation
from wallet.kernel.localtime import zone

MAX_DAYS = 1000  # the longest daily series one request returns


class Period(msgspec.Struct, frozen=True, kw_only=True):
    """Local dates `first`..`last` (inclusive) and the UTC-aware instants that bound them:
    `start` (the first day's midnight, local) and `end` (the midnight after the last day)."""

    first: date
    last: date
    start: datetime
    end: datetime

    def days(self) -> list[date]:
        return [self.first + timedelta(days=i) for i in range((self.last - self.first).days + 1)]


def period(first: date | None, last: date | None, *, timezone: str, starts_at: datetime,
           ends_at: datetime, now: datetime) -> Period:
    """The period asked for, defaulting each missing end to the campaign's schedule (the last
    day no later than today). A reversed range, or one asked for longer than `MAX_DAYS`, is
    refused naming `to`/`from`; a default one that long keeps its latest `MAX_DAYS` days."""
    tz = zone(timezone)
    asked = first is not None
    if last is None:
        last = min(ends_at, now).astimezone(tz).date()
        last = max(last, first) if first is not None else last
    if first is None:
        first = min(starts_at.astimezone(tz).date(), last)
    if last < first:
        raise RuleViolation("`to` is before `from`", field="to")
    if (last - first).days >= MAX_DAYS:
        if asked:
            raise RuleViolation(f"at most {MAX_DAYS} days per request", field="from")
        first = last - timedelta(days=MAX_DAYS - 1)  # a long campaign: its latest days
    start = datetime.combine(first, time(0), tz)
    end = datetime.combine(last + timedelta(days=1), time(0), tz)
    return Period(first=first, last=last, start=start, end=end)


class StoreStats(msgspec.Struct, frozen=True, kw_only=True):
    store_id: uuid.UUID
    store_code: str | None  # None only for a store that no longer exists at all
    store_name: str | None
    visits: int  # visits that began in the period and inside the campaign's schedule
    issued: int
    opened: int
    redeemed: int


class Day(msgspec.Struct, frozen=True, kw_only=True):
    date: date
    issued: int
    opened: int
    redeemed: int


class DeliveryStats(msgspec.Struct, frozen=True, kw_only=True):
    pending: int = 0
    delivered: int = 0
    expired: int = 0  # the offer expired before the receiver took it
    skipped: int = 0  # the member does not take push messages
    failed_attempts: int = 0  # attempts that failed (each retried until delivered or expired)


class Figures(msgspec.Struct, frozen=True, kw_only=True):
    """What a campaign's and a program's figures share, over the period `from`..`to` (local
    dates of `timezone`). `conversion_rate` is redeemed / issued in the period; `expired`
    counts offers whose validity ended in the period (up to now) unredeemed."""

    from_: date = msgspec.field(name="from")
    to: date
    timezone: str
    issued: int
    opened: int
    redeemed: int
    expired: int
    conversion_rate: float
    by_store: list[StoreStats]


class Stats(Figures, frozen=True, kw_only=True):
    """A campaign's figures (`Figures`), its `daily` series, and `deliveries`: the webhook
    outbox, all time."""

    daily: list[Day]
    deliveries: DeliveryStats


def conversion(redeemed: int, issued: int) -> float:
    return round(redeemed / issued, 4) if issued else 0.0


CSV_HEADER = ("row", "date", "store_id", "store_code", "store_name", "visits", "issued",
              "opened", "redeemed", "expired", "conversion_rate")


def csv_rows(s: Stats) -> list[tuple[object, ...]]:
    """The same figures as one flat table: a `total` row, one `day` row per date, one `store`
    row per store (empty cells where a figure does not apply)."""
    rows: list[tuple[object, ...]] = [
        ("total", f"{s.from_.isoformat()}/{s.to.isoformat()}", "", "", "",
         sum(b.visits for b in s.by_store), s.issued, s.opened, s.redeemed, s.expired,
         s.conversion_rate)]
    rows += [("day", d.date.isoformat(), "", "", "", "", d.issued, d.opened, d.redeemed, "",
              conversion(d.redeemed, d.issued)) for d in s.daily]
    rows += [("store", "", str(b.store_id), b.store_code or "", b.store_name or "", b.visits,
              b.issued, b.opened, b.redeemed, "", conversion(b.redeemed, b.issued))
             for b in s.by_store]
    return rows


# ---- The whole program: every campaign over one period -------------------------------------

PROGRAM_DAYS = 30  # the default period of program figures: the last 30 local days


def program_period(first: date | None, last: date | None, *, timezone: str,
                   now: datetime) -> Period:
    """The program's period: `to` defaults to today, `from` to `PROGRAM_DAYS` days ending on
    `to` (or on `from`'s 30th day when only `from` is given, no later than today)."""
    today = now.astimezone(zone(timezone)).date()
    span = timedelta(days=PROGRAM_DAYS - 1)
    if last is None:
        last = today if first is None else max(first, min(first + span, today))
    if first is None:
        first = last - span
    return period(first, last, timezone=timezone, starts_at=now, ends_at=now, now=now)


class CampaignFigures(msgspec.Struct, frozen=True, kw_only=True):
    campaign_id: uuid.UUID
    name: str
    status: str
    issued: int
    opened: int
    redeemed: int
    expired: int
    conversion_rate: float


class ProgramStats(Figures, frozen=True, kw_only=True):
    """The program's figures over `from`..`to` (local dates), all campaigns together, with
    the same meanings as a campaign's `Stats`; `by_store` counts every visit of the period
    (not only those inside a campaign's schedule), `by_campaign` every campaign but drafts
    that issued nothing."""

    by_campaign: list[CampaignFigures]
    daily: list[Day]


PROGRAM_CSV_HEADER = ("row", "date", "store_id", "store_code", "store_name", "campaign_id",
                      "campaign_name", "visits", "issued", "opened", "redeemed", "expired",
                      "conversion_rate")


def program_csv_rows(s: ProgramStats) -> list[tuple[object, ...]]:
    """The program's figures as one flat table: a `total` row, a `day` row per date, a
    `store` row per store and a `campaign` row per campaign."""
    rows: list[tuple[object, ...]] = [
        ("total", f"{s.from_.isoformat()}/{s.to.isoformat()}", "", "", "", "", "",
         sum(b.visits for b in s.by_store), s.issued, s.opened, s.redeemed, s.expired,
         s.conversion_rate)]
    rows += [("day", d.date.isoformat(), "", "", "", "", "", "", d.issued, d.opened,
              d.redeemed, "", conversion(d.redeemed, d.issued)) for d in s.daily]
    rows += [("store", "", str(b.store_id), b.store_code or "", b.store_name or "", "", "",
              b.visits, b.issued, b.opened, b.redeemed, "", conversion(b.redeemed, b.issued))
             for b in s.by_store]
    rows += [("campaign", "", "", "", "", str(c.campaign_id), c.name, "", c.issued, c.opened,
              c.redeemed, c.expired, c.conversion_rate) for c in s.by_campaign]
    return rows
