"""Ping ingestion: consent gate, screening, matching, visits — one member's batch at a time.

`ingest` runs inside the caller's transaction (which may also record an idempotent response):
1. the member row is locked (so a member's batches are processed one after another, in
   order), then one query reads the current `location_offers` consent, the program's zones
   version, the last accepted ping and the open visits;
2. without current consent it raises `ConsentRequired` before anything is written, so the
   transaction rolls back and nothing of the batch is kept;
3. the pure core screens the pings (`geo.visits.screen_pings`), classifies them against the
   program's zone snapshot (`ZoneIndex.classify_batch`, all at once: inside / at the edge /
   outside, with the GPS accuracy circle), and steps the visit state machine
   (`geo.visits.step`) for every zone a ping is near and every open visit;
4. one statement writes the new and changed visits and the last accepted ping.
Raw pings are stored only when a retention is configured (off by default).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta

import msgspec

from geo import visits as core
from geo.matcher.index import Where
from geo.registry import ProgramZones, ZoneRegistry
from wallet.kernel.db import Conn
from wallet.kernel.errors import ConsentRequired
from wallet.members.members_repo import gone, touch_active

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


class OpenVisit(msgspec.Struct, frozen=True, kw_only=True):
    id: uuid.UUID
    store_id: uuid.UUID
    entered_at: datetime
    last_seen_at: datetime
    dwell_at: datetime | None
    outside_since: datetime | None


MEMBER_CONTEXT = """
SELECT m.program_id, p.zones_version, p.campaigns_version, m.last_active_at,
       coalesce((SELECT c.granted FROM member_consents c
                  WHERE c.member_id = m.id AND c.purpose = 'location_offers'
                  ORDER BY c.id DESC LIMIT 1), false) AS consent,
       g.last_ping_at, g.last_lat, g.last_lon,
       (SELECT coalesce(json_agg(json_build_object(
                   'id', v.id, 'store_id', v.store_id, 'entered_at', v.entered_at,
                   'last_seen_at', v.last_seen_at, 'dwell_at', v.dwell_at,
                   'outside_since', v.outside_since)), '[]')
          FROM visits v WHERE v.member_id = m.id AND v.exited_at IS NULL)::text AS open_visits
FROM members m
JOIN programs p ON p.id = m.program_id
LEFT JOIN member_geo_state g ON g.member_id = m.id
WHERE m.id = $1
"""

# A statement of its own, before MEMBER_CONTEXT: in READ COMMITTED a statement that waits for
# a row lock still reads everything else (the open visits) from the snapshot it took before
# waiting, so a batch queued behind another batch of the same member would miss the visit
# that batch opened. Locked first, every later statement reads after the other committed.
LOCK_MEMBER = "SELECT 1 FROM members WHERE id = $1 FOR UPDATE"

_open_visits = msgspec.json.Decoder(list[OpenVisit])
_ACTIVE_EVERY = timedelta(days=1)  # members.last_active_at granularity (idle accounts)

WRITE = """
WITH upd AS (
    UPDATE visits v
       SET last_seen_at = u.last_seen_at, dwell_at = u.dwell_at,
           outside_since = u.outside_since, exited_at = u.exited_at
      FROM unnest($10::uuid[], $11::timestamptz[], $12::timestamptz[], $13::timestamptz[],
                  $14::timestamptz[]) AS u(id, last_seen_at, dwell_at, outside_since, exited_at)
     WHERE v.id = u.id AND v.member_id = $1
    RETURNING 1
), ins AS (
    -- After `upd` (the WHERE makes it run first): a visit closed and the same store entered
    -- again in one batch would otherwise hit `visits_one_open` before the close is applied.
    INSERT INTO visits (id, member_id, program_id, store_id, entered_at, last_seen_at,
                        dwell_at, outside_since, exited_at)
    SELECT u.id, $1, $2, u.store_id, u.entered_at, u.last_seen_at, u.dwell_at,
           u.outside_since, u.exited_at
    FROM unnest($3::uuid[], $4::uuid[], $5::timestamptz[], $6::timestamptz[],
                $7::timestamptz[], $8::timestamptz[], $9::timestamptz[])
         AS u(id, store_id, entered_at, last_seen_at, dwell_at, outside_since, exited_at)
    WHERE (SELECT count(*) FROM upd) >= 0
    RETURNING 1
), geo AS (
    INSERT INTO member_geo_state (member_id, last_ping_at, last_lat, last_lon)
    SELECT $1, $15, $16, $17 WHERE $15::timestamptz IS NOT NULL
    ON CONFLICT (member_id) DO UPDATE
       SET last_ping_at = EXCLUDED.last_ping_at, last_lat = EXCLUDED.last_lat,
           last_lon = EXCLUDED.last_lon
    RETURNING 1
)
SELECT (SELECT count(*) FROM ins), (SELECT count(*) FROM upd), (SELECT count(*) FROM geo)
"""

INSERT_RAW = """
INSERT INTO raw_pings (member_id, at, lat, lon, accuracy_m, expires_at)
SELECT $1, u.at, u.lat, u.lon, u.acc, u.at + make_interval(secs => $2)
FROM unnest($3::timestamptz[], $4::float8[], $5::float8[], $6::float4[]) AS u(at, lat, lon, acc)
"""


class _Track(msgspec.Struct, kw_only=True):
    """A visit being stepped through this batch: its id, whether it is new, its state."""

    id: uuid.UUID
    store_id: uuid.UUID
    new: bool
    state: core.VisitState
    dwell_at: datetime | None = None
    exited_at: datetime | None = None


async def ingest(conn: Conn, registry: ZoneRegistry, member_id: uuid.UUID,
                 pings: Sequence[Ping], *, now: datetime, rules: PingRules) -> IngestResult:
    """Process one batch for `member_id` inside the caller's transaction (see module doc)."""
    locked = await conn.fetchval(LOCK_MEMBER, member_id)
    ctx = await conn.fetchrow(MEMBER_CONTEXT, member_id) if locked else None
    if ctx is None:
        raise gone()  # erased: the token must stop working (401)
    if not ctx["consent"]:
        raise ConsentRequired(
            "location pings need current consent to the location_offers purpose",
            field="consents.location_offers")
    if ctx["last_active_at"] < now - _ACTIVE_EVERY:  # at most one write a day
        await touch_active(conn, member_id, now)
    program_id: uuid.UUID = ctx["program_id"]
    zones = await registry.current(program_id, ctx["zones_version"], conn)

    prev = None
    if ctx["last_ping_at"] is not None:
        prev = core.Ping(at=ctx["last_ping_at"], lat=ctx["last_lat"], lon=ctx["last_lon"],
                         accuracy_m=0.0)
    accepted, counts = core.screen_pings(
        pings,
        now=now, last_processed_at=ctx["last_ping_at"], prev_position=prev,
        max_age_s=rules.max_age_s, max_future_s=rules.max_future_s,
        max_accuracy_m=rules.max_accuracy_m, max_speed_mps=rules.max_speed_mps)

    tracks = {v.store_id: _Track(
        id=v.id, store_id=v.store_id, new=False, dwell_at=v.dwell_at,
        state=core.VisitState(inside=True, entered_at=v.entered_at, last_seen_at=v.last_seen_at,
                              dwell_fired=v.dwell_at is not None,
                              outside_since=v.outside_since))
        for v in _open_visits.decode(ctx["open_visits"])}
    visit_rules = core.VisitRules(dwell_s=rules.dwell_s, exit_after_s=rules.exit_after_s,
                                  lost_after_s=rules.lost_after_s)
    events, closed, matched = _walk(zones, accepted, tracks, visit_rules)

    await _write(conn, member_id, program_id, [*tracks.values(), *closed], accepted)
    if rules.raw_retention_s > 0 and accepted:
        await conn.execute(INSERT_RAW, member_id, float(rules.raw_retention_s),
                           [p.at for p in accepted], [p.lat for p in accepted],
                           [p.lon for p in accepted], [p.accuracy_m for p in accepted])
    return IngestResult(program_id=program_id, campaigns_version=ctx["campaigns_version"],
                        accepted=len(accepted), matched=matched,
                        ignored={r: n for r, n in counts.items() if n}, events=events)


def _walk(zones: ProgramZones, accepted: Sequence[core.Ping], tracks: dict[uuid.UUID, _Track],
          visit_rules: core.VisitRules) -> tuple[list[VisitEvent], list[_Track], int]:
    """Step every (ping, store) pair of the batch through the visit state machine, in time
    order: the stores a ping is near and the open visits. Updates `tracks` (the open visits)
    in place; returns the events, the visits closed and the count of pings inside a zone."""
    events: list[VisitEvent] = []
    closed: list[_Track] = []
    matched = 0
    near = zones.index.classify_batch([p.lon for p in accepted], [p.lat for p in accepted],
                                      [p.accuracy_m for p in accepted])
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
                    track = tracks[store_id] = _Track(id=uuid.uuid4(), store_id=store_id,
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


def _entered(track: _Track) -> datetime:
    assert track.state.entered_at is not None
    return track.state.entered_at


async def _write(conn: Conn, member_id: uuid.UUID, program_id: uuid.UUID,
                 tracks: Sequence[_Track], accepted: Sequence[core.Ping]) -> None:
    new = [t for t in tracks if t.new]
    old = [t for t in tracks if not t.new]
    last = accepted[-1] if accepted else None
    if not (new or old or last):
        return
    await conn.fetchrow(
        WRITE, member_id, program_id,
        [t.id for t in new], [t.store_id for t in new], [t.state.entered_at for t in new],
        [t.state.last_seen_at for t in new], [t.dwell_at for t in new],
        [t.state.outside_since for t in new], [t.exited_at for t in new],
        [t.id for t in old], [t.state.last_seen_at for t in old],
        [t.dwell_at for t in old], [t.state.outside_since for t in old],
        [t.exited_at for t in old],
        last.at if last else None, last.lat if last else None, last.lon if last else None)


