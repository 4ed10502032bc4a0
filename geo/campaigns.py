"""Drive-to-store campaigns: the definition, its validation and its status, all pure.

A campaign says where (`store_ids`, empty = every store of the program), when (`schedule`:
an absolute date range, plus optional ISO weekdays 1 = Monday … 7 = Sunday and wall-clock
hour windows, both in the program's time zone), for whom (`audience.tiers`), in what weather
(`context`), what (`offer`: title, body, reward, validity) and how often (`caps`).

Shapes (types, ranges a field can hold on its own) are checked at decoding, so a bad shape is
a 400 naming the field. `check_rules` adds the rules that need more than one field or the
program (a 422 naming the field): `starts_at < ends_at`; weekdays unique; an hour window's
`from` differs from its `to` (a window with `from > to` spans midnight: 22:00–02:00 holds
23:30 and 01:00; `to` = "00:00" means until midnight); `dwell_s` given exactly for dwell
triggers; the reward value in the range of its kind; audience tiers that exist in the
program; stores that are live stores of the program; `min_temp_c <= max_temp_c`.

Reward values are integers: `bonus_points` 1..1,000,000 points; `points_multiplier` 2..10,
a whole factor applied to the points the purchase earns (3 = ×3); `percent_off` 1..100 percent
of the purchase amount; `amount_off` in minor units of the program's currency, > 0.

Status: `draft` → `active` ⇄ `paused`. Every change (create, update, activate, pause) is
recorded as a revision with who, when, before and after; a change of an active campaign
applies to offers issued from then on, never to offers already issued (those copied their
title, body, reward and expiry when they were issued).
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Annotated, Literal, TypeVar

import msgspec
from msgspec import Meta

from wallet.kernel.errors import Conflict, RuleViolation
from wallet.kernel.text import MultilineText, Text
from wallet.offers.model import Reward

Condition = Literal["clear", "clouds", "rain", "snow", "storm", "fog"]
CONDITIONS: tuple[Condition, ...] = ("clear", "clouds", "rain", "snow", "storm", "fog")
Status = Literal["draft", "active", "paused"]
HHMM = Annotated[str, Meta(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$",
                           description="wall-clock time HH:MM in the program's time zone")]
Temp = Annotated[float, Meta(ge=-100, le=70, description="degrees Celsius")]
PositiveCap = Annotated[int, Meta(gt=0, le=2_147_483_647)]

# Inclusive ranges of reward values, by kind (see the module docstring).
REWARD_RANGES: dict[str, tuple[int, int]] = {
    "bonus_points": (1, 1_000_000),
    "points_multiplier": (2, 10),
    "percent_off": (1, 100),
    "amount_off": (1, 10**9),
}
MAX_VALID_FOR_S = 90 * 86400
_T = TypeVar("_T")


class Trigger(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """`enter`: on entering a store's zone. `dwell`: once the member has been in the zone
    for `dwell_s` seconds (seconds since the visit's enter)."""

    event: Literal["enter", "dwell"]
    dwell_s: Annotated[int, Meta(gt=0, le=86400)] | None = None


class HoursWindow(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """[from, to) in local wall-clock time; from > to spans midnight."""

    from_: HHMM = msgspec.field(name="from")
    to: HHMM


class Schedule(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    starts_at: Annotated[datetime, Meta(tz=True)]
    ends_at: Annotated[datetime, Meta(tz=True)]
    weekdays: Annotated[list[Annotated[int, Meta(ge=1, le=7)]], Meta(min_length=1,
                                                                       max_length=7)] | None = None
    hours: Annotated[list[HoursWindow], Meta(min_length=1, max_length=24)] | None = None


class Audience(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Members of any of these tiers (by name); no tiers listed = every member."""

    tiers: Annotated[list[Annotated[Text, Meta(min_length=1, max_length=100)]],
                     Meta(max_length=50)] = []


class Context(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Weather the store must have (latest fresh observation). Empty = no weather needed."""

    min_temp_c: Temp | None = None
    max_temp_c: Temp | None = None
    conditions: Annotated[list[Condition], Meta(min_length=1, max_length=6)] | None = None

    @property
    def needs_weather(self) -> bool:
        return (self.min_temp_c is not None or self.max_temp_c is not None
                or self.conditions is not None)


class OfferTemplate(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    title: Annotated[Text, Meta(min_length=1, max_length=120)]
    body: Annotated[MultilineText, Meta(min_length=1, max_length=1000)]
    reward: Reward
    valid_for_s: Annotated[int, Meta(gt=0, le=MAX_VALID_FOR_S)]


class Caps(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Absent = no such cap. A member never gets two offers of a campaign for one visit."""

    per_member_per_day: PositiveCap | None = None  # in the program's local day
    per_member_total: PositiveCap | None = None
    member_cooldown_s: PositiveCap | None = None  # since the member's last offer of it
    max_issued: PositiveCap | None = None  # the campaign's budget, over all members


class CampaignRules(msgspec.Struct, frozen=True, kw_only=True):
    """Everything a campaign decides with (stored as one jsonb document)."""

    trigger: Trigger
    schedule: Schedule
    audience: Audience = msgspec.field(default_factory=Audience)
    context: Context = msgspec.field(default_factory=Context)
    offer: OfferTemplate
    caps: Caps = msgspec.field(default_factory=Caps)


class CampaignSpec(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    store_ids: tuple[uuid.UUID, ...]
    rules: CampaignRules


class Campaign(msgspec.Struct, frozen=True, kw_only=True):
    """A stored campaign."""

    id: uuid.UUID
    program_id: uuid.UUID
    name: str
    status: Status
    store_ids: tuple[uuid.UUID, ...]
    rules: CampaignRules
    issued: int
    revision: int
    created_at: datetime
    updated_at: datetime


class CampaignChanges(msgspec.Struct, frozen=True, kw_only=True):
    """A PATCH: each present part replaces the stored one whole; UNSET parts are kept."""

    name: str | msgspec.UnsetType = msgspec.UNSET
    store_ids: Sequence[uuid.UUID] | msgspec.UnsetType = msgspec.UNSET
    trigger: Trigger | msgspec.UnsetType = msgspec.UNSET
    schedule: Schedule | msgspec.UnsetType = msgspec.UNSET
    audience: Audience | msgspec.UnsetType = msgspec.UNSET
    context: Context | msgspec.UnsetType = msgspec.UNSET
    offer: OfferTemplate | msgspec.UnsetType = msgspec.UNSET
    caps: Caps | msgspec.UnsetType = msgspec.UNSET


def _minutes(hhmm: str) -> int:
    h, m = hhmm.split(":")
    return int(h) * 60 + int(m)


def _check_schedule(s: Schedule) -> None:
    if s.starts_at >= s.ends_at:
        raise RuleViolation("the schedule must start before it ends", field="schedule.ends_at")
    for i, day in enumerate(s.weekdays or ()):
        if day in (s.weekdays or [])[:i]:
            raise RuleViolation(f"weekday {day} is listed twice", field=f"schedule.weekdays[{i}]")
    for i, w in enumerate(s.hours or ()):
        if _minutes(w.from_) == _minutes(w.to):
            raise RuleViolation("an hour window must not start and end at the same time",
                                field=f"schedule.hours[{i}].to")


def _check_offer(r: CampaignRules) -> None:
    if r.trigger.event == "dwell" and r.trigger.dwell_s is None:
        raise RuleViolation("a dwell trigger needs dwell_s > 0", field="trigger.dwell_s")
    if r.trigger.event == "enter" and r.trigger.dwell_s is not None:
        raise RuleViolation("dwell_s applies only to dwell triggers", field="trigger.dwell_s")
    low, high = REWARD_RANGES[r.offer.reward.kind]
    if not low <= r.offer.reward.value <= high:
        raise RuleViolation(f"a {r.offer.reward.kind} reward takes a value in {low}..{high}",
                            field="offer.reward.value")
    c = r.context
    if c.min_temp_c is not None and c.max_temp_c is not None and c.min_temp_c > c.max_temp_c:
        raise RuleViolation("min_temp_c is above max_temp_c", field="context.max_temp_c")
    if c.conditions is not None and len(set(c.conditions)) != len(c.conditions):
        raise RuleViolation("a condition is listed twice", field="context.conditions")


def check_rules(spec: CampaignSpec, *, tiers: Collection[str],
                stores: Collection[uuid.UUID]) -> CampaignSpec:
    """`spec` if coherent (see the module docstring), else RuleViolation naming the field.

    `tiers` are the program's tier names, `stores` its live store ids."""
    _check_schedule(spec.rules.schedule)
    _check_offer(spec.rules)
    known = {t.casefold() for t in tiers}
    for i, tier in enumerate(spec.rules.audience.tiers):
        if tier.casefold() not in known:
            raise RuleViolation(f"the program has no tier {tier!r}", field=f"audience.tiers[{i}]")
    live = set(stores)
    for i, store_id in enumerate(spec.store_ids):
        if store_id not in live:
            raise RuleViolation("no such store in this program", field=f"store_ids[{i}]")
        if store_id in spec.store_ids[:i]:
            raise RuleViolation("a store is listed twice", field=f"store_ids[{i}]")
    return spec


def _pick(new: _T | msgspec.UnsetType, old: _T) -> _T:
    return old if isinstance(new, msgspec.UnsetType) else new


def apply_changes(spec: CampaignSpec, changes: CampaignChanges) -> CampaignSpec:
    """`spec` with the present parts of `changes` (validate the result with check_rules)."""
    r = spec.rules

    rules = CampaignRules(trigger=_pick(changes.trigger, r.trigger),
                          schedule=_pick(changes.schedule, r.schedule),
                          audience=_pick(changes.audience, r.audience),
                          context=_pick(changes.context, r.context),
                          offer=_pick(changes.offer, r.offer), caps=_pick(changes.caps, r.caps))
    store_ids = (spec.store_ids if isinstance(changes.store_ids, msgspec.UnsetType)
                 else tuple(changes.store_ids))
    return CampaignSpec(name=_pick(changes.name, spec.name), store_ids=store_ids, rules=rules)


def next_status(current: Status, action: Literal["activate", "pause"], *,
                ends_at: datetime, now: datetime) -> Status:
    """The status after `action`: activate a draft or paused campaign (not one whose schedule
    has ended), pause an active one. Repeating an action is a no-op; anything else is a
    Conflict."""
    if action == "activate":
        if current != "active" and ends_at <= now:
            raise RuleViolation("the campaign's schedule has ended", field="schedule.ends_at")
        return "active"
    if current == "draft":
        raise Conflict("a draft campaign cannot be paused: activate it first", field="status")
    return "paused"
