"""A ping batch decided before its member's state is read: the pure part of the one-trip path.

`pings_service` processes most batches in ONE statement: Python decides the outcome against
the member's most common state, *no open visit and a last accepted ping that changes nothing
in the screening*, and the statement (`pings_repo.ONE_TRIP`) writes that outcome only if the
member's real state is such a state, else writes nothing and returns the state it read.

`speculate` runs the unchanged pure cores from the empty state (no last ping, no open visit):
`geo.visits.screen_pings`, then `geo.pings.walk` over the zone snapshot. Against a member whose
last accepted ping is at `last` (position `P`), the outcome is the same if and only if:
- no ping is stale: `last` is at or before `stale_bound` (the earliest ping the screening
  tests for staleness), so the same pings are kept; and
- the speed screen's first test passes: the first accepted ping is not too fast from `P`
  (`not too_fast(P, first)`); from there on the screening walks from that ping either way.
With no open visit, `walk` from the empty state is the real walk. The statement checks
both conditions in SQL (`pings_repo`: the speed test with a margin, so a rounding difference
between SQL and Python can only refuse, never accept a ping Python would refuse).

A member with a visit open is decided instead from the state the worker last wrote for it
(`geo/pings_memory.py`): the same cores, screening after the remembered last ping and walking
from the remembered open visits; the statement then checks that the member's last-position row
is still the version that write returned (and the open visits as many), which makes the
remembered state the real one.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING

import msgspec

from geo import visits as core
from geo.pings import IngestResult, Near, PingRules, Track, classify, open_tracks, walk
from geo.pings_memory import Remembered

if TYPE_CHECKING:  # a type only: no I/O here
    from geo.registry import ProgramZones


class Speculation(msgspec.Struct, frozen=True, kw_only=True):
    """The outcome against the empty state and what it assumes of the real one (see the
    module docstring): `stale_bound` (None: nothing to assume) and `first` (the first
    accepted ping, the speed screen's first test; None when no ping is accepted)."""

    result: IngestResult
    zones_version: int  # of the snapshot it was decided with: what the statement must find
    near: Near  # the accepted pings' zones: reused by a fallback that accepts the same pings
    tracks: list[Track]  # every one new: opened (and maybe closed) by this batch
    accepted: list[core.Ping]
    stale_bound: datetime | None
    first: core.Ping | None
    # Decided from this state, as the worker last wrote it (`geo/pings_memory.py`), not
    # from the empty state: what the statement checks is then that state's version.
    memory: Remembered | None = None

    @property
    def may_earn_offers(self) -> bool:
        """In or near a store: with an active campaign, offers may be due."""
        return bool(self.result.matched or self.result.events)


def speculate(zones: ProgramZones, pings: Sequence[core.Ping], *, now: datetime,
              rules: PingRules, program_id: uuid.UUID, campaigns_version: int,
              memory: Remembered | None = None) -> Speculation:
    """The batch's outcome for a member with no last ping and no open visit, or, given
    `memory`, for a member in that state."""
    prev = memory.last if memory is not None else None
    accepted, counts = core.screen_pings(
        pings, now=now, last_processed_at=prev.at if prev else None, prev_position=prev,
        max_age_s=rules.max_age_s, max_future_s=rules.max_future_s,
        max_accuracy_m=rules.max_accuracy_m, max_speed_mps=rules.max_speed_mps)
    tracks: dict[uuid.UUID, Track] = open_tracks(memory.open_visits) if memory else {}
    visit_rules = core.VisitRules(dwell_s=rules.dwell_s, exit_after_s=rules.exit_after_s,
                                  lost_after_s=rules.lost_after_s)
    near = classify(zones, accepted)
    events, closed, matched = walk(zones, accepted, tracks, visit_rules, near)
    result = IngestResult(program_id=program_id, campaigns_version=campaigns_version,
                          accepted=len(accepted), matched=matched,
                          ignored={r: n for r, n in counts.items() if n}, events=events)
    return Speculation(
        result=result, zones_version=zones.version, near=near, tracks=[*tracks.values(), *closed],
        accepted=accepted,
        stale_bound=core.stale_bound(pings, now=now, max_age_s=rules.max_age_s,
                                     max_future_s=rules.max_future_s),
        first=accepted[0] if accepted else None, memory=memory)


def same_screening(spec: Speculation, prev: core.Ping | None, max_speed_mps: float) -> bool:
    """Whether screening the batch after `prev` (the member's last accepted ping, accuracy 0)
    keeps what `spec` kept and ignores what it ignored (the module docstring's conditions)."""
    if spec.memory is not None:  # screened after the remembered last ping: the same one?
        last = spec.memory.last
        return prev is not None and (prev.at, prev.lat, prev.lon) == (last.at, last.lat,
                                                                        last.lon)
    if prev is None:
        return True
    if spec.stale_bound is not None and prev.at > spec.stale_bound:
        return False
    return spec.first is None or not core.too_fast(prev, spec.first, max_speed_mps)


def reusable(spec: Speculation | None, zones: ProgramZones, accepted: Sequence[core.Ping]
             ) -> Near | None:
    """`spec.near` if it classified these very pings against a snapshot of this version."""
    if (spec is None or spec.zones_version != zones.version
            or len(spec.accepted) != len(accepted)
            or any(a is not b for a, b in zip(spec.accepted, accepted, strict=True))):
        return None
    return spec.near
