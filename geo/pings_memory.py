"""What a worker last wrote for a member: the input of the one-trip path for a member with a
visit open (pure, no I/O).

After each batch it writes, a worker keeps the member's state as written: the open visits,
the last accepted ping and the version (`xmin`) of the member's last-position row that the
write returned. The next batch of that member on this worker is decided from that state by
the unchanged pure cores (`pings_speculation.speculate`), and the one statement that writes it
(`pings_repo.ONE_TRIP`) checks that the row is still at that version and the member still has
as many open visits: every batch that changes a member's visits or last ping rewrites that row
(a new version), and the only other writer of visits, the retention purge, only deletes them.
So a state remembered here is never a fact an answer depends on: when another worker or path
wrote in between, the statement refuses, writes nothing, and the batch is decided again from
what it read.

Bounded: the `limit` members used last (least recently used forgotten first).
"""

from __future__ import annotations

import uuid
from collections import OrderedDict
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

import msgspec

from geo import visits as core
from geo.pings import OpenVisit, Track


class Remembered(msgspec.Struct, frozen=True, kw_only=True):
    """A member's state as this worker last wrote it."""

    program_id: uuid.UUID
    version: str  # member_geo_state.xmin as the write returned it
    last: core.Ping  # the last accepted ping as stored (accuracy 0, UTC)
    open_visits: tuple[OpenVisit, ...]  # times in UTC, as read back


def _utc(at: datetime | None) -> datetime | None:
    return None if at is None else at.astimezone(UTC)


def written(program_id: uuid.UUID, version: str, last: core.Ping,
            tracks: Sequence[Track]) -> Remembered:
    """The state a batch's write left: `tracks`, its visits (open unless `exited_at`), and
    `last`, its last accepted ping; as the database gives them back (UTC, accuracy 0)."""
    visits = []
    for t in tracks:
        if t.exited_at is not None:
            continue
        entered, seen = _utc(t.state.entered_at), _utc(t.state.last_seen_at)
        assert entered is not None and seen is not None, "an open visit was entered and seen"
        visits.append(OpenVisit(id=t.id, store_id=t.store_id, entered_at=entered,
                                last_seen_at=seen, dwell_at=_utc(t.dwell_at),
                                outside_since=_utc(t.state.outside_since)))
    return Remembered(program_id=program_id, version=version,
                      last=core.Ping(at=last.at.astimezone(UTC), lat=last.lat, lon=last.lon,
                                     accuracy_m=0.0),
                      open_visits=tuple(visits))


class MemberMemory:
    """The members' states this worker last wrote (`Remembered`), the `limit` used last.
    `count` (optional) is told what each batch found: "hit" (its member remembered with a
    visit open: decided from that state), "idle" (remembered with none open: decided from
    the empty state, whose checks hold whoever wrote last), "miss" (not remembered), and
    "stale" for a hit the statement refused (another worker or path wrote since)."""

    def __init__(self, limit: int = 100_000,
                 count: Callable[[str], None] | None = None) -> None:
        self._states: OrderedDict[uuid.UUID, Remembered] = OrderedDict()
        self._limit = limit
        self._count = count

    def recall(self, member_id: uuid.UUID, program_id: uuid.UUID) -> Remembered | None:
        """The member's state to decide its batch from: remembered, of this program, with a
        visit open."""
        state = self._states.get(member_id)
        if state is not None:
            self._states.move_to_end(member_id)
            if state.program_id != program_id or not state.open_visits:
                state = None
                outcome = "idle"
            else:
                outcome = "hit"
        else:
            outcome = "miss"
        if self._count is not None:
            self._count(outcome)
        return state

    def stale(self, member_id: uuid.UUID) -> None:
        """The member's remembered state was refused: forget it."""
        self._states.pop(member_id, None)
        if self._count is not None:
            self._count("stale")

    def note(self, member_id: uuid.UUID, state: Remembered | None) -> None:
        """What this worker just wrote for the member (None: forget it)."""
        self._states.pop(member_id, None)
        if state is not None:
            self._states[member_id] = state
            if len(self._states) > self._limit:
                self._states.popitem(last=False)

    def __len__(self) -> int:
        return len(self._states)
