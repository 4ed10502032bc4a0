"""Offer eligibility, pure: a visit moment, the member's facts, a campaign, the store's latest
weather and `now` in; a decision out (issue, or the first reason not to). No I/O, no clock.

Moments. The ping path gives two kinds: `enter` (a visit's enter event in this batch) and
`present` (a visit still open after the batch, or a dwell event, with `at` = the latest ping
seen inside and `entered_at` = the visit's enter). An `enter` campaign takes `enter` moments;
a `dwell` campaign takes any moment whose `at - entered_at >= dwell_s`. The generic dwell event
of `geo.visits` fires once at the configured default dwell, so dwell campaigns are evaluated
against every open visit on every batch instead: whatever its `dwell_s`, a campaign issues on
the first batch after the member has been inside that long (and at most once per visit).

Every time rule is evaluated at `now` (the moment the offer would be issued and shown), on the
program's wall clock (`zoneinfo`, so correct across daylight-saving changes): the schedule's
absolute range [starts_at, ends_at), its ISO weekdays, its hour windows [from, to) (from > to
spans midnight), the member's quiet hours, and "the day" of daily caps, which is the program's
local calendar day (23 or 25 hours long on a DST change day).

Checks, in order (the first failing one is the reason): consent, channel, campaign status,
store, trigger, schedule dates, weekday, hours, audience tier, weather (a missing or stale
observation satisfies no weather condition), quiet hours, the member's own daily maximum
(across all campaigns), one offer per campaign per visit, the campaign's per-member daily cap,
per-member total cap, per-member cooldown, then the campaign's budget. The budget is checked
here too, but only PostgreSQL enforces it under concurrency (see `geo/issuance.py`).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import date, datetime, time
from typing import Literal
from zoneinfo import ZoneInfo

import msgspec

from geo.campaigns import Campaign, Condition, Context, Schedule
from wallet.members.consents import Preferences, in_quiet_hours

Reason = Literal[
    "no_consent", "no_channel", "inactive", "other_store", "trigger", "before_start",
    "after_end", "weekday", "hours", "audience", "no_fresh_weather", "weather", "quiet_hours",
    "member_daily_limit", "already_issued_for_visit", "daily_cap", "total_cap", "cooldown",
    "budget"]


class Moment(msgspec.Struct, frozen=True, kw_only=True):
    visit_id: uuid.UUID
    store_id: uuid.UUID
    kind: Literal["enter", "present"]
    at: datetime
    entered_at: datetime


class Weather(msgspec.Struct, frozen=True, kw_only=True):
    temp_c: float
    condition: Condition
    observed_at: datetime


class PastOffer(msgspec.Struct, frozen=True, kw_only=True):
    campaign_id: uuid.UUID
    visit_id: uuid.UUID
    issued_at: datetime


class MemberFacts(msgspec.Struct, frozen=True, kw_only=True):
    """What eligibility needs to know about the member, read under the member's row lock.

    `recent`: the member's offers of the last two days (any campaign), enough for the daily
    counts; `totals` and `last_issued`: per campaign, over all time; `visit_offers`: the
    (campaign, visit) pairs already offered among the visits being evaluated."""

    tier: str | None
    preferences: Preferences
    location_consent: bool
    recent: tuple[PastOffer, ...] = ()
    totals: dict[uuid.UUID, int] = {}
    last_issued: dict[uuid.UUID, datetime] = {}
    visit_offers: frozenset[tuple[uuid.UUID, uuid.UUID]] = frozenset()


class Policy(msgspec.Struct, frozen=True, kw_only=True):
    timezone: str  # the program's IANA time zone
    weather_max_age_s: int  # an older observation is stale


class Issue(msgspec.Struct, frozen=True, kw_only=True):
    campaign_id: uuid.UUID
    moment: Moment


class Skip(msgspec.Struct, frozen=True, kw_only=True):
    campaign_id: uuid.UUID
    reason: Reason


Decision = Issue | Skip


def local_day(at: datetime, tz: ZoneInfo) -> date:
    """The program's calendar day that the instant `at` falls in."""
    return at.astimezone(tz).date()


def _minutes(hhmm: str) -> int:
    h, m = hhmm.split(":")
    return int(h) * 60 + int(m)


def in_window(local: time, start: str, end: str) -> bool:
    """`local` in [start, end) of HH:MM wall-clock times; start > end spans midnight."""
    t, a, b = local.hour * 60 + local.minute, _minutes(start), _minutes(end)
    return a <= t < b if a < b else (t >= a or t < b)


def schedule_reason(schedule: Schedule, now: datetime, tz: ZoneInfo) -> Reason | None:
    """Why the schedule does not hold at `now` (None if it does)."""
    if now < schedule.starts_at:
        return "before_start"
    if now >= schedule.ends_at:
        return "after_end"
    local = now.astimezone(tz)
    if schedule.weekdays is not None and local.isoweekday() not in schedule.weekdays:
        return "weekday"
    if schedule.hours is not None and not any(
            in_window(local.time(), w.from_, w.to) for w in schedule.hours):
        return "hours"
    return None


def weather_reason(context: Context, weather: Weather | None, now: datetime,
                   max_age_s: int) -> Reason | None:
    """Why the weather context does not hold (None if it does, or if none is required)."""
    if not context.needs_weather:
        return None
    if weather is None or (now - weather.observed_at).total_seconds() > max_age_s:
        return "no_fresh_weather"
    if context.min_temp_c is not None and weather.temp_c < context.min_temp_c:
        return "weather"
    if context.max_temp_c is not None and weather.temp_c > context.max_temp_c:
        return "weather"
    if context.conditions is not None and weather.condition not in context.conditions:
        return "weather"
    return None


def _fit_reason(moment: Moment, member: MemberFacts, campaign: Campaign,
                weather: Weather | None, *, now: datetime, policy: Policy) -> Reason | None:
    """Consent, channel, status, store, trigger, schedule, audience, weather, quiet hours."""
    rules = campaign.rules
    prefs = member.preferences
    tz = ZoneInfo(policy.timezone)
    if not member.location_consent:
        return "no_consent"
    if not ({"push", "in_app"} & set(prefs.channels)):
        return "no_channel"
    if campaign.status != "active":
        return "inactive"
    if campaign.store_ids and moment.store_id not in campaign.store_ids:
        return "other_store"
    if rules.trigger.event == "enter":
        if moment.kind != "enter":
            return "trigger"
    elif (moment.at - moment.entered_at).total_seconds() < (rules.trigger.dwell_s or 0):
        return "trigger"
    if (why := schedule_reason(rules.schedule, now, tz)) is not None:
        return why
    tiers = rules.audience.tiers
    if tiers and (member.tier is None
                  or member.tier.casefold() not in {t.casefold() for t in tiers}):
        return "audience"
    if (why := weather_reason(rules.context, weather, now, policy.weather_max_age_s)):
        return why
    if in_quiet_hours(prefs, now.astimezone(tz).time()):
        return "quiet_hours"
    return None


def _cap_reason(moment: Moment, member: MemberFacts, campaign: Campaign, *, now: datetime,
                policy: Policy) -> Reason | None:
    """The member's daily maximum, once per visit, the campaign's caps and budget."""
    tz = ZoneInfo(policy.timezone)
    today = local_day(now, tz)
    todays = [o for o in member.recent if local_day(o.issued_at, tz) == today]
    cap = member.preferences.max_offers_per_day
    if cap is not None and len(todays) >= cap:
        return "member_daily_limit"
    if (campaign.id, moment.visit_id) in member.visit_offers:
        return "already_issued_for_visit"
    caps = campaign.rules.caps
    if caps.per_member_per_day is not None and sum(
            o.campaign_id == campaign.id for o in todays) >= caps.per_member_per_day:
        return "daily_cap"
    if (caps.per_member_total is not None
            and member.totals.get(campaign.id, 0) >= caps.per_member_total):
        return "total_cap"
    last = member.last_issued.get(campaign.id)
    if (caps.member_cooldown_s is not None and last is not None
            and (now - last).total_seconds() < caps.member_cooldown_s):
        return "cooldown"
    if caps.max_issued is not None and campaign.issued >= caps.max_issued:
        return "budget"
    return None


def decide(moment: Moment, member: MemberFacts, campaign: Campaign, *,
           weather: Weather | None, now: datetime, policy: Policy) -> Decision:
    """Issue an offer of `campaign` for `moment`, or Skip with the first reason not to."""
    why = (_fit_reason(moment, member, campaign, weather, now=now, policy=policy)
           or _cap_reason(moment, member, campaign, now=now, policy=policy))
    if why is None:
        return Issue(campaign_id=campaign.id, moment=moment)
    return Skip(campaign_id=campaign.id, reason=why)


def issued(member: MemberFacts, campaign: Campaign, moment: Moment,
           now: datetime) -> MemberFacts:
    """The member's facts after an offer of `campaign` was issued for `moment` at `now`."""
    cid = campaign.id
    return msgspec.structs.replace(
        member,
        recent=(*member.recent, PastOffer(campaign_id=cid, visit_id=moment.visit_id,
                                          issued_at=now)),
        totals={**member.totals, cid: member.totals.get(cid, 0) + 1},
        last_issued={**member.last_issued, cid: now},
        visit_offers=member.visit_offers | {(cid, moment.visit_id)})


def plan(moments: Sequence[Moment], member: MemberFacts, campaigns: Sequence[Campaign], *,
         weather: dict[uuid.UUID, Weather], now: datetime, policy: Policy) -> list[Issue]:
    """The offers to issue for a batch's moments: campaigns in creation order, moments in
    time order, each issue counted before the next decision (so a daily maximum of 1 with two
    eligible campaigns gives one offer). Also keeps each campaign's budget in step."""
    out: list[Issue] = []
    budget: dict[uuid.UUID, int] = {}
    for campaign in sorted(campaigns, key=lambda c: (c.created_at, c.id.bytes)):
        for moment in sorted(moments, key=lambda m: (m.at, m.visit_id.bytes)):
            current = msgspec.structs.replace(
                campaign, issued=campaign.issued + budget.get(campaign.id, 0))
            decision = decide(moment, member, current, weather=weather.get(moment.store_id),
                              now=now, policy=policy)
            if isinstance(decision, Issue):
                out.append(decision)
                member = issued(member, campaign, moment, now)
                budget[campaign.id] = budget.get(campaign.id, 0) + 1
    return out
