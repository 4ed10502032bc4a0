"""Builders for the pure offer-eligibility tests: campaigns, moments and member facts."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, time, timedelta
from typing import Any

from geo.campaigns import (
    Audience,
    Campaign,
    CampaignRules,
    Caps,
    Context,
    HoursWindow,
    OfferTemplate,
    Reward,
    Schedule,
    Trigger,
)
from geo.eligibility import MemberFacts, Moment, Policy, Weather
from wallet.members.consents import Preferences, QuietHours

PARIS = "Europe/Paris"
POLICY = Policy(timezone=PARIS, weather_max_age_s=3600)
STORE = uuid.UUID("00000000-0000-0000-0000-00000000a001")
OTHER_STORE = uuid.UUID("00000000-0000-0000-0000-00000000a002")
CREATED = datetime(2025, 12, 1, tzinfo=UTC)
START = datetime(2026, 1, 1, tzinfo=UTC)
END = datetime(2027, 1, 1, tzinfo=UTC)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def campaign(*, trigger: Trigger | None = None, hours: list[tuple[str, str]] | None = None,
             weekdays: list[int] | None = None, tiers: list[str] | None = None,
             context: Context | None = None, caps: Caps | None = None,
             store_ids: tuple[uuid.UUID, ...] = (), status: str = "active", issued: int = 0,
             starts_at: datetime = START, ends_at: datetime = END,
             cid: uuid.UUID | None = None, created_at: datetime = CREATED) -> Campaign:
    rules = CampaignRules(
        trigger=trigger or Trigger(event="enter"),
        schedule=Schedule(starts_at=starts_at, ends_at=ends_at, weekdays=weekdays,
                          hours=None if hours is None else
                          [HoursWindow(from_=a, to=b) for a, b in hours]),
        audience=Audience(tiers=tiers or []), context=context or Context(),
        offer=OfferTemplate(title="Ice cream", body="One scoop free",
                            reward=Reward(kind="percent_off", value=20), valid_for_s=3600),
        caps=caps or Caps())
    return Campaign(id=cid or uuid.uuid4(), program_id=uuid.uuid4(), name="c",
                    status=status, store_ids=store_ids, rules=rules,  # type: ignore[arg-type]
                    issued=issued, revision=1, created_at=created_at, updated_at=created_at)


def ice_cream(**over: Any) -> Campaign:
    """12:00–18:00 local, at least 25 °C, gold tier, one per member per day, on entering."""
    args: dict[str, Any] = {"hours": [("12:00", "18:00")], "tiers": ["gold"],
                            "context": Context(min_temp_c=25),
                            "caps": Caps(per_member_per_day=1)}
    return campaign(**{**args, **over})


def enter(at: datetime, *, store: uuid.UUID = STORE,
          visit: uuid.UUID | None = None) -> Moment:
    return Moment(visit_id=visit or uuid.uuid4(), store_id=store, kind="enter", at=at,
                  entered_at=at)


def present(at: datetime, since_s: float, *, store: uuid.UUID = STORE,
            visit: uuid.UUID | None = None) -> Moment:
    return Moment(visit_id=visit or uuid.uuid4(), store_id=store, kind="present", at=at,
                  entered_at=at - timedelta(seconds=since_s))


def member(tier: str | None = "gold", *, max_per_day: int | None = None,
           quiet: tuple[str, str] | None = None, channels: tuple[str, ...] = ("push", "in_app"),
           consent: bool = True) -> MemberFacts:
    q = None if quiet is None else QuietHours(start=time.fromisoformat(quiet[0]),
                                              end=time.fromisoformat(quiet[1]))
    prefs = Preferences(max_offers_per_day=max_per_day, quiet_hours=q,
                        channels=channels)  # type: ignore[arg-type]
    return MemberFacts(tier=tier, preferences=prefs, location_consent=consent)


def weather(temp_c: float, at: datetime, condition: str = "clear") -> Weather:
    return Weather(temp_c=temp_c, condition=condition, observed_at=at)  # type: ignore[arg-type]
