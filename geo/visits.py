"""Visits: the pure enter / dwell / exit state machine and the ping filter in front of it.

Times are timezone-aware UTC ``datetime``s passed in (no clock is read here); durations are
seconds; distances metres; coordinates ``lon``/``lat`` degrees.

Robustness to GPS (per member and zone, see :func:`step`):
- an ``EDGE`` observation (accuracy circle crossing the boundary) never changes inside/outside;
- enter on the first ``INSIDE`` observation;
- exit only after the member has been *clearly outside* (``None``) continuously for
  ``exit_after_s`` (hysteresis): an ``INSIDE`` or ``EDGE`` observation resets that clock;
- dwell fires once per visit, on the first observation at least ``dwell_s`` after the enter.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import datetime
from typing import Literal

import msgspec

from geo.matcher.index import Where

__all__ = [
    "OUTSIDE", "REASONS", "IgnoreReason", "Ping", "VisitEvent", "VisitRules", "VisitState",
    "Where", "distance_m", "screen_pings", "stale_bound", "step", "too_fast",
]
EARTH_RADIUS_M = 6_371_008.8


class VisitRules(msgspec.Struct, frozen=True, kw_only=True):
    """Visit tuning. ``lost_after_s``: an open visit with no INSIDE/EDGE observation for that
    long is closed at its ``last_seen_at`` before the next ping is applied (``None``: never)."""

    dwell_s: float = 300.0
    exit_after_s: float = 120.0
    lost_after_s: float | None = 3_600.0


class VisitState(msgspec.Struct, frozen=True, kw_only=True):
    """State of one (member, zone) pair. ``outside_since``: start of the current run of
    clearly-outside observations while a visit is open (the pending exit)."""

    inside: bool = False
    entered_at: datetime | None = None
    last_seen_at: datetime | None = None
    dwell_fired: bool = False
    outside_since: datetime | None = None


class VisitEvent(msgspec.Struct, frozen=True, kw_only=True):
    """``at``: enter = the first INSIDE ping; dwell = the ping that reached ``dwell_s``;
    exit = the first ping of the clearly-outside run that closed the visit."""

    event: Literal["enter", "dwell", "exit"]
    at: datetime


OUTSIDE = VisitState()


def step(
    state: VisitState, ping_at: datetime, where: Where | None, rules: VisitRules
) -> tuple[VisitState, list[VisitEvent]]:
    """Apply one observation (``None`` = clearly outside). Pings must come in time order; one
    older than the state's ``last_seen_at`` / ``outside_since`` is ignored (no change)."""
    # Called for every (ping, zone) pair of a batch: plain comparisons, no generator.
    last, since = state.last_seen_at, state.outside_since
    if (last is not None and ping_at < last) or (since is not None and ping_at < since):
        return state, []  # older than the latest observation: ignored
    events: list[VisitEvent] = []
    if (
        state.inside
        and rules.lost_after_s is not None
        and last is not None
        and (ping_at - last).total_seconds() >= rules.lost_after_s
    ):
        events.append(VisitEvent(event="exit", at=last))
        state = OUTSIDE
    if where is None:
        if not state.inside:
            return state, events
        since = state.outside_since or ping_at
        if (ping_at - since).total_seconds() >= rules.exit_after_s:
            return OUTSIDE, [*events, VisitEvent(event="exit", at=since)]
        return msgspec.structs.replace(state, outside_since=since), events
    if not state.inside:
        if where is Where.EDGE:
            return state, events
        events.append(VisitEvent(event="enter", at=ping_at))
        state = VisitState(inside=True, entered_at=ping_at, last_seen_at=ping_at)
    else:
        state = msgspec.structs.replace(state, last_seen_at=ping_at, outside_since=None)
    assert state.entered_at is not None
    if not state.dwell_fired and (ping_at - state.entered_at).total_seconds() >= rules.dwell_s:
        events.append(VisitEvent(event="dwell", at=ping_at))
        state = msgspec.structs.replace(state, dwell_fired=True)
    return state, events


class Ping(msgspec.Struct, frozen=True, kw_only=True):
    """One location report: degrees, metres (radius of the accuracy circle), UTC time."""

    lon: float
    lat: float
    accuracy_m: float
    at: datetime


IgnoreReason = Literal[
    "out_of_range", "future", "too_old", "stale", "inaccurate", "impossible_speed"
]
REASONS: tuple[IgnoreReason, ...] = (
    "out_of_range", "future", "too_old", "stale", "inaccurate", "impossible_speed"
)


def distance_m(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    """Great-circle (haversine) distance in metres."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(h)))


def screen_pings(
    pings: Iterable[Ping],
    *,
    now: datetime,
    last_processed_at: datetime | None,
    max_age_s: float,
    max_accuracy_m: float,
    max_speed_mps: float,
    prev_position: Ping | None,
    max_future_s: float = 0.0,
) -> tuple[list[Ping], dict[IgnoreReason, int]]:
    """Keep the usable pings, sorted by time; count the others by reason.

    Checked in this order, the first failing reason counts: ``out_of_range`` (non-finite or
    lon outside [-180, 180], lat outside [-90, 90], accuracy negative or non-finite),
    ``future`` (after ``now + max_future_s``, the tolerated clock skew),
    ``too_old`` (before ``now - max_age_s``),
    ``stale`` (before ``last_processed_at``, the member's last processed ping), ``inaccurate``
    (accuracy above ``max_accuracy_m``) and, walking the survivors in time order from
    ``prev_position``, ``impossible_speed``: moving faster than ``max_speed_mps`` even after
    granting both pings' accuracy radii (``max(0, d - acc1 - acc2) / dt``). A rejected ping
    does not become the reference for the next one. Counts are 0 for unused reasons.
    """
    counts: dict[IgnoreReason, int] = dict.fromkeys(REASONS, 0)
    kept: list[Ping] = []
    for p in pings:
        reason = _static_reason(p, now, last=last_processed_at, max_age_s=max_age_s,
                                max_accuracy_m=max_accuracy_m, skew_s=max_future_s)
        if reason:
            counts[reason] += 1
        else:
            kept.append(p)
    kept.sort(key=lambda p: p.at)
    accepted: list[Ping] = []
    ref = prev_position
    for p in kept:
        if ref is not None and too_fast(ref, p, max_speed_mps):
            counts["impossible_speed"] += 1
            continue
        accepted.append(p)
        ref = p
    return accepted, counts


def stale_bound(
    pings: Iterable[Ping], *, now: datetime, max_age_s: float, max_future_s: float = 0.0
) -> datetime | None:
    """The earliest time among the pings that ``screen_pings`` tests for ``stale`` (those
    neither ``out_of_range``, ``future`` nor ``too_old``); None when there is none. A
    ``last_processed_at`` at or before it makes no ping stale, so the screening does not
    depend on it: what a caller that does not know the last ping yet may assume and check."""
    def tested(p: Ping) -> bool:
        return _static_reason(p, now, last=None, max_age_s=max_age_s,
                              max_accuracy_m=math.inf, skew_s=max_future_s) is None

    pings = list(pings)
    earliest = min(pings, key=_at, default=None)
    if earliest is None or tested(earliest):  # the common case: one test, not one a ping
        return None if earliest is None else earliest.at
    return min((p.at for p in pings if tested(p)), default=None)


def _at(p: Ping) -> datetime:
    return p.at


def _static_reason(
    p: Ping,
    now: datetime,
    *,
    last: datetime | None,
    max_age_s: float,
    max_accuracy_m: float,
    skew_s: float,
) -> IgnoreReason | None:
    if not (
        math.isfinite(p.lon) and math.isfinite(p.lat) and math.isfinite(p.accuracy_m)
        and -180.0 <= p.lon <= 180.0 and -90.0 <= p.lat <= 90.0 and p.accuracy_m >= 0
    ):
        return "out_of_range"
    age = (now - p.at).total_seconds()
    if age < -skew_s:
        return "future"
    if age > max_age_s:
        return "too_old"
    if last is not None and p.at < last:
        return "stale"
    if p.accuracy_m > max_accuracy_m:
        return "inaccurate"
    return None


def too_fast(a: Ping, b: Ping, max_speed_mps: float) -> bool:
    """Whether moving from `a` to `b` is faster than `max_speed_mps`, after granting both
    pings' accuracy radii: ``screen_pings``'s ``impossible_speed`` test."""
    gap = max(0.0, distance_m(a.lon, a.lat, b.lon, b.lat) - a.accuracy_m - b.accuracy_m)
    dt = (b.at - a.at).total_seconds()
    if dt <= 0:
        return gap > 0
    return gap / dt > max_speed_mps
