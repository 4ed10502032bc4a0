"""Properties of offer eligibility over random visit streams across a DST change: whatever
the caps, windows and preferences, what `plan` issues always respects them."""

from __future__ import annotations

import itertools
from collections import Counter
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st
from support.offer_fixtures import PARIS, POLICY, campaign, enter, member, utc

from geo.campaigns import Caps
from geo.eligibility import Issue, issued, plan

TZ = ZoneInfo(PARIS)
WEEK_START = utc(2026, 3, 26)  # the week of the spring DST change in Paris

HHMM = st.builds(lambda h, m: f"{h:02d}:{m:02d}", st.integers(0, 23), st.sampled_from([0, 30]))
windows = st.lists(st.tuples(HHMM, HHMM).filter(lambda w: w[0] != w[1]), min_size=1,
                   max_size=2)
caps = st.builds(Caps, per_member_per_day=st.none() | st.integers(1, 3),
                 per_member_total=st.none() | st.integers(1, 8),
                 member_cooldown_s=st.none() | st.integers(1, 4 * 3600),
                 max_issued=st.none() | st.integers(1, 6))
minutes = st.lists(st.integers(0, 7 * 24 * 60), min_size=1, max_size=40)


def _in(local_minutes: int, start: str, end: str) -> bool:
    a = int(start[:2]) * 60 + int(start[3:])
    b = int(end[:2]) * 60 + int(end[3:])
    if a < b:
        return a <= local_minutes < b
    return local_minutes >= a or local_minutes < b


@settings(max_examples=150, deadline=None)
@given(times=minutes, caps_a=caps, caps_b=caps, hours=st.none() | windows,
       max_per_day=st.none() | st.integers(0, 3))
def test_issued_offers_respect_every_cap_window_and_the_members_daily_maximum(
        times: list[int], caps_a: Caps, caps_b: Caps, hours: list[tuple[str, str]] | None,
        max_per_day: int | None) -> None:
    a = campaign(caps=caps_a, hours=hours, created_at=utc(2025, 1, 1))
    b = campaign(caps=caps_b, created_at=utc(2025, 1, 2))
    m = member(max_per_day=max_per_day)
    got: list[tuple[Issue, datetime]] = []
    budget = {a.id: 0, b.id: 0}
    for minute in sorted(times):
        now = WEEK_START + timedelta(minutes=minute)
        current = [msgspec.structs.replace(c, issued=budget[c.id]) for c in (a, b)]
        for issue in plan([enter(now)], m, current, weather={}, now=now, policy=POLICY):
            got.append((issue, now))
            budget[issue.campaign_id] += 1
            m = issued(m, a if issue.campaign_id == a.id else b, issue.moment, now)

    per_day = Counter((i.campaign_id, at.astimezone(TZ).date()) for i, at in got)
    all_day = Counter(at.astimezone(TZ).date() for _, at in got)
    for c, cp in ((a, caps_a), (b, caps_b)):
        mine = [at for i, at in got if i.campaign_id == c.id]
        if cp.per_member_per_day is not None:
            assert all(n <= cp.per_member_per_day for (cid, _), n in per_day.items()
                       if cid == c.id)
        if cp.per_member_total is not None:
            assert len(mine) <= cp.per_member_total
        if cp.max_issued is not None:
            assert len(mine) <= cp.max_issued
        if cp.member_cooldown_s is not None:
            assert all((y - x).total_seconds() >= cp.member_cooldown_s
                       for x, y in itertools.pairwise(mine))
    if max_per_day is not None:
        assert all(n <= max_per_day for n in all_day.values())
    for issue, at in got:
        if issue.campaign_id == a.id and hours is not None:
            local = at.astimezone(TZ)
            assert any(_in(local.hour * 60 + local.minute, f, t) for f, t in hours)


@settings(max_examples=100, deadline=None)
@given(minute=st.integers(0, 7 * 24 * 60))
def test_an_uncapped_always_open_campaign_issues_on_every_enter(minute: int) -> None:
    now = WEEK_START + timedelta(minutes=minute)
    assert len(plan([enter(now)], member(), [campaign()], weather={}, now=now,
                    policy=POLICY)) == 1
