"""Ping ingestion's pure core: the rules of a batch, the visit tracks it steps, and the walk
that steps every (ping, store) pair through the visit state machine in time order.

No I/O: `pings_service` reads the member's context and writes what `walk` returns (through
`pings_repo`), in one transaction per batch.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING

import msgspec

from geo import visits as core
from geo.matcher.index import Where

if TYPE_CHECKING:  # a type only: the pure core never touches the registry's I/O
    from geo.registry import ProgramZones

# The pure core's ping, used as is: a batch is not copied into a second, identical type.
Ping = core.Ping


class PingRules(msgspec.Struct, frozen=True, kw_only=True):
    max_age_s: int
    max_future_s: int
    max_accuracy_m: float
    max_speed_mps: float
    exit_after_s: int
    dwell_s: int
    lost_after_s: int
    raw_retention_s: int


class VisitEvent(msgspec.Struct, frozen=True, kw_only=True):
    visit_id: uuid.UUID
    store_id: uuid.UUID
    event: str  # enter | dwell | exit
    at: datetime
    entered_at: datetime


class IngestResult(msgspec.Struct, frozen=True, kw_only=True):
    program_id: uuid.UUID
    campaigns_version: int  # read with the context: what `issue_for_batch` must be as new as
    accepted: int
    matched: int
    ignored: dict[str, int]
    events: list[VisitEvent]


class Track(msgspec.Struct, kw_only=True):
    """A visit being stepped through this batch: its id, whether it is new, its state."""

    id: uuid.UUID
    store_id: uuid.UUID
    new: bool
    state: core.VisitState
    dwell_at: datetime | None = None
    exited_at: datetime | None = None


class OpenVisit(msgspec.Struct, frozen=True, kw_only=True):
    """An open visit as stored (`geo.visits_repo` reads it back; a worker remembers writing
    it, `geo.pings_memory`)."""

    id: uuid.UUID
    store_id: uuid.UUID
    entered_at: datetime
    last_seen_at: datetime
    dwell_at: datetime | None
    outside_since: datetime | None


def open_tracks(visits: Iterable[OpenVisit]) -> dict[uuid.UUID, Track]:
    """The member's open visits as the tracks `walk` steps (by store)."""
    return {v.store_id: Track(
        id=v.id, store_id=v.store_id, new=False, dwell_at=v.dwell_at,
        state=core.VisitState(inside=True, entered_at=v.entered_at, last_seen_at=v.last_seen_at,
                              dwell_fired=v.dwell_at is not None,
                              outside_since=v.outside_since))
        for v in visits}


# What `ZoneIndex.classify_batch` says of each accepted ping: (zone key, INSIDE or EDGE) pairs.
Near = list[list[tuple[int, Where]]]


def classify(zones: ProgramZones, accepted: Sequence[core.Ping]) -> Near:
    """The zones each accepted ping is near (the accuracy circle), against `zones`."""
    return zones.index.classify_batch([p.lon for p in accepted], [p.lat for p in accepted],
                                      [p.accuracy_m for p in accepted])


def walk(zones: ProgramZones, accepted: Sequence[core.Ping], tracks: dict[uuid.UUID, Track],
         visit_rules: core.VisitRules, near: Near | None = None
         ) -> tuple[list[VisitEvent], list[Track], int]:
    """Step every (ping, store) pair of the batch through the visit state machine, in time
    order: the stores a ping is near and the open visits. Updates `tracks` (the open visits)
    in place; returns the events, the visits closed and the count of pings inside a zone.
    `near`: `classify(zones, accepted)` if already known."""
    events: list[VisitEvent] = []
    closed: list[Track] = []
    matched = 0
    if near is None:
        near = classify(zones, accepted)
    for ping, found in zip(accepted, near, strict=True):
        if not found and not tracks:
            continue  # near no zone, no open visit: stepping would change nothing
        where = {zones.store(key): w for key, w in found}
        matched += any(w is Where.INSIDE for w in where.values())
        for store_id in where.keys() | tracks.keys():
            track = tracks.get(store_id)
            state, evs = core.step(track.state if track else core.OUTSIDE, ping.at,
                                   where.get(store_id), visit_rules)
            for ev in evs:
                if ev.event == "exit":
                    assert track is not None, "only an open visit can exit"
                    track.exited_at = ev.at
                    closed.append(tracks.pop(store_id))
                elif ev.event == "enter":
                    track = tracks[store_id] = Track(id=uuid.uuid4(), store_id=store_id,
                                                      new=True, state=state)
                else:
                    assert track is not None, "only an open visit can dwell"
                    track.dwell_at = ev.at
                assert track is not None
                events.append(VisitEvent(visit_id=track.id, store_id=store_id, event=ev.event,
                                         at=ev.at, entered_at=_entered(track)))
            if state.inside and store_id in tracks:
                tracks[store_id].state = state
    return events, closed, matched


def _entered(track: Track) -> datetime:
    assert track.state.entered_at is not None
    return track.state.entered_at
