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
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING

import msgspec

from geo import visits as core
from geo.pings import IngestResult, Near, PingRules, Track, classify, walk

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

    @property
    def may_earn_offers(self) -> bool:
        """In or near a store: with an active campaign, offers may be due."""
        return bool(self.result.matched or self.result.events)


def speculate(zones: ProgramZones, pings: Sequence[core.Ping], *, now: datetime,
              rules: PingRules, program_id: uuid.UUID, campaigns_version: int) -> Speculation:
    """The batch's outcome for a member with no last ping and no open visit."""
    accepted, counts = core.screen_pings(
        pings, now=now, last_processed_at=None, prev_position=None, max_age_s=rules.max_age_s,
        max_future_s=rules.max_future_s, max_accuracy_m=rules.max_accuracy_m,
        max_speed_mps=rules.max_speed_mps)
    tracks: dict[uuid.UUID, Track] = {}
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
        first=accepted[0] if accepted else None)


def same_screening(spec: Speculation, prev: core.Ping | None, max_speed_mps: float) -> bool:
    """Whether screening the batch after `prev` (the member's last accepted ping, accuracy 0)
    keeps what `spec` kept and ignores what it ignored (the module docstring's conditions)."""
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


class VisitHints:
    """The members whose last batch on this worker left a visit open, the latest `limit`: a
    hint only, never a fact an answer depends on. Such a member's next batch would most
    likely be refused by the one-trip statement (an open visit), so it reads, then writes; a
    wrong hint costs a round trip, never a wrong answer."""

    def __init__(self, limit: int = 100_000) -> None:
        self._open: dict[uuid.UUID, None] = {}  # insertion order: the oldest first
        self._limit = limit

    def likely_open(self, member_id: uuid.UUID) -> bool:
        return member_id in self._open

    def note(self, member_id: uuid.UUID, tracks: Sequence[Track]) -> None:
        """What a written batch left: `tracks`, its visits (open unless `exited_at`)."""
        self._open.pop(member_id, None)
        if any(t.exited_at is None for t in tracks):
            self._open[member_id] = None
            if len(self._open) > self._limit:
                del self._open[next(iter(self._open))]
