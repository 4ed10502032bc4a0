"""Offer eligibility, pure: the ice-cream scenario (also on daylight-saving change days), and
every rule on its own."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

import pytest
from support.offer_fixtures import (
    OTHER_STORE,
    POLICY,
    STORE,
    campaign,
    enter,
    ice_cream,
    member,
    present,
    utc,
    weather,
)

from geo.campaigns import Caps, Context, Trigger
from geo.eligibility import Decision, Issue, MemberFacts, Skip, decide, issued, plan

# 2026-07-15 is a summer Wednesday: Paris is UTC+2, so 14:00 local is 12:00Z.
SUMMER_14H = utc(2026, 7, 15, 12, 0)


def why(d: Decision) -> str | None:
    return None if isinstance(d, Issue) else d.reason


def check(at: datetime, *, temp: float | None = 28, m: MemberFacts | None = None,
          weather_at: datetime | None = None, **over: object) -> str | None:
    """The reason the ice-cream campaign does not issue on entering at `at` (None: issues)."""
    w = None if temp is None else weather(temp, weather_at or at - timedelta(minutes=10))
    return why(decide(enter(at), m or member("gold"), ice_cream(**over), weather=w, now=at,
                      policy=POLICY))


# --- the ice-cream scenario -------------------------------------------------------------------


def test_ice_cream_issues_to_a_gold_member_entering_at_14h_at_28_degrees() -> None:
    assert check(SUMMER_14H) is None


def test_ice_cream_is_not_issued_to_a_silver_member() -> None:
    assert check(SUMMER_14H, m=member("silver")) == "audience"


def test_ice_cream_is_not_issued_to_a_member_without_a_tier() -> None:
    assert check(SUMMER_14H, m=member(None)) == "audience"


def test_ice_cream_is_not_issued_at_19h() -> None:
    assert check(utc(2026, 7, 15, 17, 0)) == "hours"


def test_ice_cream_window_is_half_open_18h_is_out_and_12h_is_in() -> None:
    assert check(utc(2026, 7, 15, 16, 0)) == "hours"  # 18:00 local
    assert check(utc(2026, 7, 15, 10, 0)) is None  # 12:00 local


def test_ice_cream_is_not_issued_at_20_degrees() -> None:
    assert check(SUMMER_14H, temp=20) == "weather"


def test_ice_cream_at_exactly_25_degrees_is_issued() -> None:
    assert check(SUMMER_14H, temp=25) is None


def test_ice_cream_is_not_issued_without_a_weather_observation() -> None:
    assert check(SUMMER_14H, temp=None) == "no_fresh_weather"


def test_ice_cream_is_not_issued_on_a_stale_observation_however_hot() -> None:
    stale = SUMMER_14H - timedelta(seconds=3601)
    assert check(SUMMER_14H, temp=35, weather_at=stale) == "no_fresh_weather"
    assert check(SUMMER_14H, temp=35, weather_at=SUMMER_14H - timedelta(seconds=3600)) is None


def test_ice_cream_is_not_issued_in_the_members_quiet_hours() -> None:
    assert check(SUMMER_14H, m=member(quiet=("13:30", "15:00"))) == "quiet_hours"
    assert check(SUMMER_14H, m=member(quiet=("22:00", "08:00"))) is None


def test_ice_cream_is_not_issued_twice_the_same_day_but_again_the_next_day() -> None:
    c = ice_cream()
    hot = {STORE: weather(28, SUMMER_14H)}
    first = enter(SUMMER_14H)
    m = issued(member("gold"), c, first, SUMMER_14H)
    later = SUMMER_14H + timedelta(hours=3)  # 17:00 local, another visit
    assert why(decide(enter(later), m, c, weather=weather(28, later), now=later,
                      policy=POLICY)) == "daily_cap"
    tomorrow = SUMMER_14H + timedelta(days=1)
    assert why(decide(enter(tomorrow), m, c, weather=weather(28, tomorrow), now=tomorrow,
                      policy=POLICY)) is None
    assert plan([first, enter(SUMMER_14H + timedelta(minutes=5))], member("gold"), [c],
                weather=hot, now=SUMMER_14H + timedelta(minutes=5), policy=POLICY) == [
        Issue(campaign_id=c.id, moment=first)]


# --- the same on daylight-saving change days ------------------------------------------------
# Paris springs forward on 2026-03-29 (02:00 → 03:00, UTC+1 → UTC+2) and falls back on
# 2026-10-25 (03:00 → 02:00, UTC+2 → UTC+1).


@pytest.mark.parametrize(("at", "reason"), [
    (utc(2026, 3, 29, 12, 0), None),  # 14:00 CEST
    (utc(2026, 3, 29, 10, 0), None),  # 12:00 CEST (it would be 11:00 in winter time)
    (utc(2026, 3, 29, 9, 59), "hours"),  # 11:59 CEST
    (utc(2026, 3, 29, 15, 59), None),  # 17:59 CEST
    (utc(2026, 3, 29, 16, 30), "hours"),  # 18:30 CEST (17:30 in winter time)
    (utc(2026, 3, 28, 16, 30), None),  # the day before: 17:30 CET
    (utc(2026, 10, 25, 11, 0), None),  # 12:00 CET after falling back
    (utc(2026, 10, 25, 10, 30), "hours"),  # 11:30 CET (12:30 in summer time)
    (utc(2026, 10, 25, 17, 0), "hours"),  # 18:00 CET
    (utc(2026, 10, 24, 16, 30), "hours"),  # the day before: 18:30 CEST
])
def test_ice_cream_hours_follow_the_local_clock_across_dst_changes(
        at: datetime, reason: str | None) -> None:
    assert check(at) == reason


def test_on_the_spring_dst_day_every_ice_cream_rule_still_holds() -> None:
    at = utc(2026, 3, 29, 12, 0)  # 14:00 CEST
    assert check(at) is None
    assert check(at, m=member("silver")) == "audience"
    assert check(at, temp=20) == "weather"
    assert check(at, temp=None) == "no_fresh_weather"
    assert check(at + timedelta(hours=5)) == "hours"  # 19:00 CEST
    assert check(at, m=member(quiet=("14:00", "14:30"))) == "quiet_hours"


def test_on_the_spring_dst_day_the_daily_cap_counts_the_local_23_hour_day() -> None:
    c = campaign(caps=Caps(per_member_per_day=1))  # no hours, no weather
    morning = utc(2026, 3, 28, 23, 30)  # 00:30 CET on 03-29
    m = issued(member(), c, enter(morning), morning)
    late = utc(2026, 3, 29, 21, 59)  # 23:59 CEST, still 03-29
    assert why(decide(enter(late), m, c, weather=None, now=late, policy=POLICY)) == "daily_cap"
    next_day = utc(2026, 3, 29, 22, 0)  # 00:00 CEST on 03-30
    assert why(decide(enter(next_day), m, c, weather=None, now=next_day,
                      policy=POLICY)) is None


def test_on_the_autumn_dst_day_the_daily_cap_counts_the_local_25_hour_day() -> None:
    c = campaign(caps=Caps(per_member_per_day=1))
    first = utc(2026, 10, 24, 22, 0)  # 00:00 CEST on 10-25
    m = issued(member(), c, enter(first), first)
    late = utc(2026, 10, 25, 22, 59)  # 23:59 CET, still 10-25, 25 hours later
    assert why(decide(enter(late), m, c, weather=None, now=late, policy=POLICY)) == "daily_cap"
    assert why(decide(enter(late + timedelta(minutes=1)), m, c, weather=None,
                      now=late + timedelta(minutes=1), policy=POLICY)) is None


def test_the_ice_cream_cap_on_the_spring_dst_day_is_one_offer() -> None:
    c = ice_cream()
    at = utc(2026, 3, 29, 10, 30)  # 12:30 CEST
    m = issued(member("gold"), c, enter(at), at)
    later = utc(2026, 3, 29, 15, 30)  # 17:30 CEST
    assert why(decide(enter(later), m, c, weather=weather(30, later), now=later,
                      policy=POLICY)) == "daily_cap"


# --- each rule on its own ---------------------------------------------------------------------


def _decide(c: object, moment: object = None, m: MemberFacts | None = None,
            now: datetime = SUMMER_14H, w: object = None) -> str | None:
    return why(decide(moment or enter(now), m or member(), c, weather=w,  # type: ignore[arg-type]
                      now=now, policy=POLICY))


def test_no_location_consent_no_offer() -> None:
    assert _decide(campaign(), m=member(consent=False)) == "no_consent"


def test_a_member_who_takes_neither_push_nor_in_app_gets_no_offer() -> None:
    assert _decide(campaign(), m=member(channels=("email",))) == "no_channel"
    assert _decide(campaign(), m=member(channels=("in_app",))) is None


@pytest.mark.parametrize("status", ["draft", "paused"])
def test_only_active_campaigns_issue(status: str) -> None:
    assert _decide(campaign(status=status)) == "inactive"


def test_a_campaign_with_stores_issues_only_at_them() -> None:
    c = campaign(store_ids=(STORE,))
    assert _decide(c, enter(SUMMER_14H, store=OTHER_STORE)) == "other_store"
    assert _decide(c, enter(SUMMER_14H, store=STORE)) is None
    assert _decide(campaign(), enter(SUMMER_14H, store=OTHER_STORE)) is None  # [] = every store


def test_an_enter_campaign_ignores_presence_in_an_open_visit() -> None:
    assert _decide(campaign(), present(SUMMER_14H, 600)) == "trigger"


def test_a_dwell_campaign_issues_once_the_member_has_been_inside_for_dwell_s() -> None:
    c = campaign(trigger=Trigger(event="dwell", dwell_s=600))
    assert _decide(c, enter(SUMMER_14H)) == "trigger"
    assert _decide(c, present(SUMMER_14H, 599)) == "trigger"
    assert _decide(c, present(SUMMER_14H, 600)) is None


def test_the_schedule_dates_are_half_open() -> None:
    c = campaign(starts_at=SUMMER_14H, ends_at=SUMMER_14H + timedelta(hours=1))
    assert _decide(c, now=SUMMER_14H - timedelta(seconds=1)) == "before_start"
    assert _decide(c, now=SUMMER_14H) is None
    assert _decide(c, now=SUMMER_14H + timedelta(hours=1)) == "after_end"


def test_weekdays_are_iso_in_the_program_time_zone() -> None:
    c = campaign(weekdays=[3])  # Wednesday
    assert _decide(c) is None  # Wed 15 July
    assert _decide(c, now=SUMMER_14H + timedelta(days=1)) == "weekday"
    # 23:30Z on Tuesday 14 July is already Wednesday 01:30 in Paris
    assert _decide(c, now=utc(2026, 7, 14, 23, 30)) is None


def test_an_hour_window_may_span_midnight() -> None:
    c = campaign(hours=[("22:00", "02:00")])
    assert _decide(c, now=utc(2026, 7, 15, 21, 30)) is None  # 23:30 local
    assert _decide(c, now=utc(2026, 7, 15, 23, 30)) is None  # 01:30 local
    assert _decide(c, now=utc(2026, 7, 16, 0, 0)) == "hours"  # 02:00 local
    assert _decide(c) == "hours"


def test_to_midnight_means_until_the_end_of_the_day() -> None:
    c = campaign(hours=[("20:00", "00:00")])
    assert _decide(c, now=utc(2026, 7, 15, 21, 59)) is None  # 23:59 local
    assert _decide(c, now=utc(2026, 7, 15, 22, 0)) == "hours"  # 00:00 local


def test_several_hour_windows_any_of_them_holds() -> None:
    c = campaign(hours=[("08:00", "09:00"), ("13:00", "15:00")])
    assert _decide(c) is None


def test_weather_conditions_and_maximum_temperature() -> None:
    c = campaign(context=Context(max_temp_c=10, conditions=["rain", "storm"]))
    assert _decide(c, w=weather(8, SUMMER_14H, "rain")) is None
    assert _decide(c, w=weather(8, SUMMER_14H, "clear")) == "weather"
    assert _decide(c, w=weather(12, SUMMER_14H, "rain")) == "weather"
    assert _decide(c) == "no_fresh_weather"


def test_a_campaign_without_weather_context_ignores_the_weather() -> None:
    assert _decide(campaign()) is None


def test_the_members_own_daily_maximum_counts_every_campaign() -> None:
    a = campaign(created_at=utc(2025, 1, 1))
    b = campaign(created_at=utc(2025, 1, 2))
    moment = enter(SUMMER_14H)
    got = plan([moment], member(max_per_day=1), [b, a], weather={}, now=SUMMER_14H,
               policy=POLICY)
    assert [i.campaign_id for i in got] == [a.id]  # the older campaign first
    two = plan([moment], member(max_per_day=2), [a, b], weather={}, now=SUMMER_14H,
               policy=POLICY)
    assert len(two) == 2
    assert plan([moment], member(max_per_day=0), [a], weather={}, now=SUMMER_14H,
                policy=POLICY) == []


def test_one_offer_per_campaign_per_visit() -> None:
    c = campaign(trigger=Trigger(event="dwell", dwell_s=60))
    visit = uuid.uuid4()
    moments = [present(SUMMER_14H, 120, visit=visit),
               present(SUMMER_14H + timedelta(seconds=30), 150, visit=visit)]
    got = plan(moments, member(), [c], weather={}, now=SUMMER_14H, policy=POLICY)
    assert len(got) == 1
    m = issued(member(), c, moments[0], SUMMER_14H)
    assert _decide(c, moments[1], m) == "already_issued_for_visit"


def test_per_member_total_cap() -> None:
    c = campaign(caps=Caps(per_member_total=2))
    m = member()
    for day in range(2):
        at = SUMMER_14H + timedelta(days=day)
        assert _decide(c, m=m, now=at) is None
        m = issued(m, c, enter(at), at)
    assert _decide(c, m=m, now=SUMMER_14H + timedelta(days=5)) == "total_cap"


def test_member_cooldown() -> None:
    c = campaign(caps=Caps(member_cooldown_s=3600))
    m = issued(member(), c, enter(SUMMER_14H), SUMMER_14H)
    assert _decide(c, m=m, now=SUMMER_14H + timedelta(seconds=3599)) == "cooldown"
    assert _decide(c, m=m, now=SUMMER_14H + timedelta(seconds=3600)) is None


def test_the_budget_stops_issuing_and_plan_counts_its_own_issues() -> None:
    assert _decide(campaign(caps=Caps(max_issued=5), issued=5)) == "budget"
    c = campaign(caps=Caps(max_issued=5), issued=4)
    got = plan([enter(SUMMER_14H), enter(SUMMER_14H)], member(), [c], weather={},
               now=SUMMER_14H, policy=POLICY)
    assert len(got) == 1


def test_reasons_come_in_a_fixed_order_consent_first() -> None:
    d = decide(enter(SUMMER_14H), member("silver", consent=False), ice_cream(status="paused"),
               weather=None, now=utc(2026, 7, 15, 20, 0), policy=POLICY)
    assert isinstance(d, Skip) and d.reason == "no_consent"
