"""Visits are robust to GPS jitter, and unusable pings are screened out by reason."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from geo.matcher.index import Where, ZoneIndex
from geo.visits import (
    OUTSIDE,
    Ping,
    VisitEvent,
    VisitRules,
    VisitState,
    screen_pings,
    stale_bound,
    step,
)
from geo.zones import Circle, CircleShape, validate_zone

T0 = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
RULES = VisitRules(dwell_s=300, exit_after_s=120, lost_after_s=3_600)


def run(observations: list[tuple[int, Where | None]], rules: VisitRules = RULES
        ) -> tuple[VisitState, list[VisitEvent]]:
    state, events = OUTSIDE, []
    for second, where in observations:
        state, new = step(state, T0 + timedelta(seconds=second), where, rules)
        events += new
    return state, events


def kinds(events: list[VisitEvent]) -> list[str]:
    return [e.event for e in events]


def test_hovering_at_the_edge_with_15_m_noise_gives_one_enter_and_one_exit_after_leaving() -> None:
    shape = validate_zone(Circle(center=[2.35, 48.85], radius_m=100.0), max_extent_m=5_000)
    assert isinstance(shape, CircleShape)
    index = ZoneIndex.build([(1, shape)])
    rng = np.random.default_rng(15)
    state, events = OUTSIDE, []
    # 30 minutes at 100 m from the centre (the edge), a ping every 10 s with +-15 m noise,
    # then a walk away to 400 m and 10 more minutes there.
    track = [100.0] * 180 + list(np.linspace(100, 400, 30)) + [400.0] * 60
    for i, dist in enumerate(track):
        noise = rng.normal(0.0, 15.0, 2)
        x, y = dist + noise[0], noise[1]
        lon, lat = shape.lon + x / shape.kx, shape.lat + y / shape.ky
        where = dict(index.classify(lon, lat, 20.0)).get(1)
        state, new = step(state, T0 + timedelta(seconds=10 * i), where, RULES)
        events += new
    assert kinds(events).count("enter") == 1
    assert kinds(events).count("exit") == 1
    assert kinds(events)[-1] == "exit" and not state.inside


def test_enter_happens_on_the_first_inside_observation_only() -> None:
    state, events = run([(0, Where.EDGE), (10, Where.INSIDE), (20, Where.INSIDE)])
    assert events == [VisitEvent(event="enter", at=T0 + timedelta(seconds=10))]
    assert state.inside and state.last_seen_at == T0 + timedelta(seconds=20)


def test_an_edge_observation_never_enters_nor_exits() -> None:
    _, events = run([(s, Where.EDGE) for s in range(0, 1_000, 10)])
    assert events == []
    state, events = run([(0, Where.INSIDE), *[(s, Where.EDGE) for s in range(10, 1_000, 10)]])
    assert kinds(events) == ["enter", "dwell"] and state.inside


def test_dwell_fires_once_after_the_dwell_time() -> None:
    _, events = run([(s, Where.INSIDE) for s in range(0, 1_200, 30)])
    assert kinds(events) == ["enter", "dwell"]
    assert events[1].at == T0 + timedelta(seconds=300)


def test_exit_needs_clearly_outside_for_the_exit_delay() -> None:
    obs = [(0, Where.INSIDE), (10, None), (60, None), (100, Where.EDGE), (110, None),
           (200, None), (229, None)]
    state, events = run(obs)
    assert kinds(events) == ["enter"] and state.inside
    state, events = run([*obs, (230, None)])
    assert kinds(events) == ["enter", "exit"] and not state.inside
    assert events[-1].at == T0 + timedelta(seconds=110)


def test_a_short_excursion_does_not_split_the_visit() -> None:
    obs = [(0, Where.INSIDE), (30, None), (60, None), (90, Where.INSIDE), (400, Where.INSIDE)]
    _, events = run(obs)
    assert kinds(events) == ["enter", "dwell"]


def test_a_visit_lost_for_too_long_is_closed_at_its_last_sighting() -> None:
    _, events = run([(0, Where.INSIDE), (4_000, Where.INSIDE)])
    assert kinds(events) == ["enter", "exit", "enter"]
    assert events[1].at == T0


def test_an_out_of_order_observation_changes_nothing() -> None:
    state, events = run([(100, Where.INSIDE), (50, None)])
    assert kinds(events) == ["enter"] and state.outside_since is None


def ping(second: float, lon: float = 2.35, lat: float = 48.85, acc: float = 10.0) -> Ping:
    return Ping(lon=lon, lat=lat, accuracy_m=acc, at=T0 + timedelta(seconds=second))


def screen(pings: list[Ping], prev: Ping | None = None):  # type: ignore[no-untyped-def]
    return screen_pings(pings, now=T0 + timedelta(seconds=1_000),
                        last_processed_at=T0 + timedelta(seconds=100), max_age_s=600,
                        max_accuracy_m=100, max_speed_mps=70, prev_position=prev)


def test_good_pings_are_accepted_in_time_order() -> None:
    accepted, counts = screen([ping(900), ping(500), ping(700)])
    assert [p.at for p in accepted] == sorted(p.at for p in accepted)
    assert sum(counts.values()) == 0


def test_each_unusable_ping_is_counted_under_its_reason() -> None:
    far = 48.85 + 1.0  # 111 km north: impossible in 10 s
    pings = [
        ping(500, lon=200.0), ping(500, lat=math.nan),  # out_of_range
        ping(1_001),  # future
        ping(399),  # too_old: before now - 600 s
        ping(420, acc=101),  # inaccurate
        ping(600), ping(610, lat=far),  # impossible_speed for the second
    ]
    accepted, counts = screen(pings)
    assert counts == {"out_of_range": 2, "future": 1, "too_old": 1, "stale": 0,
                      "inaccurate": 1, "impossible_speed": 1}
    assert [p.at for p in accepted] == [T0 + timedelta(seconds=600)]


def test_a_ping_older_than_the_last_processed_one_is_stale() -> None:
    result = screen_pings([ping(50)], now=T0 + timedelta(seconds=100),
                          last_processed_at=T0 + timedelta(seconds=60), max_age_s=600,
                          max_accuracy_m=100, max_speed_mps=70, prev_position=None)
    assert result[0] == [] and result[1]["stale"] == 1


def test_speed_is_checked_against_the_previous_position_with_accuracy_slack() -> None:
    prev = ping(500, acc=50)
    near = ping(501, lat=48.85 + 150 / 111_320, acc=50)  # 150 m in 1 s, 100 m of slack
    accepted, counts = screen([near], prev=prev)
    assert accepted == [near] and counts["impossible_speed"] == 0
    far = ping(501, lat=48.85 + 400 / 111_320, acc=50)
    accepted, counts = screen([far], prev=prev)
    assert accepted == [] and counts["impossible_speed"] == 1


_fixes = st.lists(st.builds(
    Ping, lon=st.sampled_from([2.35, 2.36, 200.0]), lat=st.sampled_from([48.85, 48.86]),
    accuracy_m=st.sampled_from([5.0, 50.0, 500.0, -1.0]),
    at=st.integers(-120, 4000).map(lambda s: T0 - timedelta(seconds=s))), max_size=8)


@given(pings=_fixes, last_s=st.integers(-120, 4000))
def test_no_ping_is_stale_exactly_when_the_last_one_is_at_or_before_the_stale_bound(
        pings: list[Ping], last_s: int) -> None:
    last = T0 - timedelta(seconds=last_s)
    bound = stale_bound(pings, now=T0, max_age_s=3600, max_future_s=60)
    _, counts = screen_pings(pings, now=T0, last_processed_at=last, max_age_s=3600,
                             max_future_s=60, max_accuracy_m=100, max_speed_mps=50,
                             prev_position=None)
    assert (counts["stale"] == 0) == (bound is None or last <= bound)
