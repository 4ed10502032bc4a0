"""Ping ingestion, the service: one member's batch in one transaction — consent gate,
screening, matching, visits, then the offers the batch earns.

`ingest_batch` owns the transaction and the batch's Idempotency-Key (through the one
implementation, `wallet.kernel.idempotency`):
1. the member row is locked (so a member's batches are processed one after another, in
   order), then one query reads the current `location_offers` consent, the program's zones
   version, the last accepted ping and the open visits (`pings_repo`);
2. without current consent it raises `ConsentRequired` before anything is written, so the
   transaction rolls back and nothing of the batch is kept;
3. the pure core screens the pings (`geo.visits.screen_pings`), classifies them against the
   program's zone snapshot (`ZoneIndex.classify_batch`, all at once: inside / at the edge /
   outside, with the GPS accuracy circle), and steps the visit state machine
   (`geo.pings.walk`) for every zone a ping is near and every open visit;
4. one statement writes the new and changed visits and the last accepted ping;
5. in or near a store, `geo.issuance.issue_for_batch` issues the offers the visits earn, in
   the same transaction.
Raw pings are stored only when a retention is configured (off by default).

Most batches take ONE round trip (`_one_trip`, `geo/pings_speculation.py`): with the program
from the member's token and the worker's zone snapshot and campaigns (no I/O), the pure cores
decide the batch for a member with no open visit and a last ping that changes nothing in the
screening, or, for a member with a visit open, from the state this worker last wrote for it
(`geo/pings_memory.py`); one self-committing statement (`pings_repo.ONE_TRIP`,
`ONE_TRIP_REMEMBERED`) reads the context and writes that outcome, with the answer under the
key, only if the member's state is such a state (or the remembered one: the last position's
row at the version the worker's write returned), the consent current and both versions the
ones used; else it writes nothing and the batch goes on from the context it read, the
optimistic way below (a stored key is replayed, a withdrawn consent refused, from that read).
A refused batch reuses the speculation's screening when the real last ping changes nothing in
it, and its zone classification. A batch that may earn offers by the worker's campaigns (one
active, the batch in or near a store) goes straight to the locked transaction.

Otherwise a batch goes the optimistic way (`_optimistic`): step 1 reads without the lock (one
statement, one snapshot, with the version of the member's last-position row and the answer
stored under the batch's Idempotency-Key, if any), steps 2–3 as above, and step 4's statement
stores the answer under the key and commits on its own, only if that row is unchanged and
the consent still current (every batch that changes anything rewrites it): two round trips
instead of five (six with a key), no lock held across them. A batch that lost that race reads
again; one that may earn offers (an active campaign, the member in or near a store) or keeps
raw pings, or that keeps losing, takes the locked transaction above.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta

import asyncpg
import msgspec

from geo import pings_repo
from geo import visits as core
from geo.issuance import CampaignCache, IssueSettings, issue_for_batch
from geo.pings import IngestResult, Ping, PingRules, Track, open_tracks, walk
from geo.pings_memory import MemberMemory, Remembered, written
from geo.pings_speculation import Speculation, reusable, same_screening, speculate
from geo.registry import ZoneRegistry
from geo.visits_repo import decode_open_visits
from wallet.kernel.db import Conn
from wallet.kernel.errors import ConsentRequired
from wallet.kernel.idempotency import (
    IdemKey,
    IdempotencyRace,
    Outcome,
    encode,
    lookup,
    replay,
    run_idempotent,
)
from wallet.kernel.idempotency_repo import record
from wallet.members.members_repo import gone, touch_active
from wallet.offers.model import Offer

_ACTIVE_EVERY = timedelta(days=1)  # members.last_active_at granularity (idle accounts)
_OPTIMISTIC_ATTEMPTS = 2  # reads and version-checked writes before taking the member lock


class BatchResult(msgspec.Struct, frozen=True, kw_only=True):
    """What one batch did: its visit events, the offers it issued, and its ping counts."""

    ingest: IngestResult
    offers: list[Offer]


def _usable(ctx: asyncpg.Record | None) -> asyncpg.Record:
    """The context of a member who may send pings (401 when erased, 403 without consent)."""
    if ctx is None:
        raise gone()  # erased: the token must stop working (401)
    if not ctx["consent"]:
        raise ConsentRequired(
            "location pings need current consent to the location_offers purpose",
            field="consents.location_offers")
    return ctx


async def _step(conn: Conn, ctx: asyncpg.Record, registry: ZoneRegistry,
                pings: Sequence[Ping], *, now: datetime, rules: PingRules,
                spec: Speculation | None = None
                ) -> tuple[IngestResult, list[Track], list[core.Ping]]:
    """Step 3 of the module docstring: (the result, the visits to write, the accepted pings).
    `spec`: a refused speculation of this batch, whose screening is reused if the last ping
    changes nothing in it, and its classification if it classified the same pings against
    the same snapshot."""
    program_id: uuid.UUID = ctx["program_id"]
    zones = await registry.current(program_id, ctx["zones_version"], conn)
    prev = None
    if ctx["last_ping_at"] is not None:
        prev = core.Ping(at=ctx["last_ping_at"], lat=ctx["last_lat"], lon=ctx["last_lon"],
                         accuracy_m=0.0)
    if spec is not None and same_screening(spec, prev, rules.max_speed_mps):
        accepted, ignored = spec.accepted, spec.result.ignored
    else:
        accepted, counts = core.screen_pings(
            pings,
            now=now, last_processed_at=ctx["last_ping_at"], prev_position=prev,
            max_age_s=rules.max_age_s, max_future_s=rules.max_future_s,
            max_accuracy_m=rules.max_accuracy_m, max_speed_mps=rules.max_speed_mps)
        ignored = {r: n for r, n in counts.items() if n}

    tracks = open_tracks(decode_open_visits(ctx["open_visits"]))
    visit_rules = core.VisitRules(dwell_s=rules.dwell_s, exit_after_s=rules.exit_after_s,
                                  lost_after_s=rules.lost_after_s)
    events, closed, matched = walk(zones, accepted, tracks, visit_rules,
                                   reusable(spec, zones, accepted))
    result = IngestResult(program_id=program_id, campaigns_version=ctx["campaigns_version"],
                          accepted=len(accepted), matched=matched,
                          ignored=ignored, events=events)
    return result, [*tracks.values(), *closed], accepted


async def ingest(conn: Conn, registry: ZoneRegistry, member_id: uuid.UUID,
                 pings: Sequence[Ping], *, now: datetime, rules: PingRules,
                 memory: MemberMemory | None = None) -> IngestResult:
    """Steps 1–4 of the module docstring, inside the caller's transaction."""
    ctx = _usable(await pings_repo.lock_member_context(conn, member_id))
    if ctx["last_active_at"] < now - _ACTIVE_EVERY:  # at most one write a day
        await touch_active(conn, member_id, now)
    result, tracks, accepted = await _step(conn, ctx, registry, pings, now=now, rules=rules)
    # Checked against the version read under the lock, too: the optimistic and one-trip
    # writes don't take the member lock, so one may have committed since that read (then
    # this refuses as a whole and `run_idempotent` runs the transaction again).
    version = await pings_repo.write(conn, member_id, result.program_id, tracks, accepted,
                                     version=ctx["geo_version"])
    _remember(memory, member_id, result.program_id, version, accepted=accepted,
              tracks=tracks)
    if rules.raw_retention_s > 0 and accepted:
        await pings_repo.insert_raw(conn, member_id, rules.raw_retention_s, accepted)
    return result


async def _optimistic(conn: Conn, registry: ZoneRegistry, campaigns: CampaignCache,
                      member_id: uuid.UUID, pings: Sequence[Ping], *, now: datetime,
                      rules: PingRules, idem: IdemKey | None, ctx: asyncpg.Record | None = None,
                      spec: Speculation | None = None, memory: MemberMemory | None = None
                      ) -> Outcome[BatchResult] | None:
    """Steps 1–4 without the member lock or a transaction: read (with the key's stored
    answer; or go on from `ctx`, what a refused one-trip statement read), step, then one
    write that commits on its own, with the answer under the key, if nothing changed since
    the read (else `asyncpg.SerializationError`). None, having written nothing, when the batch
    needs the locked transaction: offers may be due (issuing reads and writes more under the
    lock), or raw pings are kept."""
    if ctx is None:
        ctx = await pings_repo.read_context(conn, member_id, idem)
    if idem is not None and ctx is not None and (found := pings_repo.stored(ctx)) is not None:
        return replay(found, idem, BatchResult)
    ctx = _usable(ctx)
    result, tracks, accepted = await _step(conn, ctx, registry, pings, now=now, rules=rules,
                                           spec=spec)
    if rules.raw_retention_s > 0 and accepted:
        return None
    # Loaded when behind even far from stores: the next batch's one trip needs the version.
    head = await campaigns.current(conn, result.program_id, result.campaigns_version)
    if (result.matched or result.events) and head is not None and head.at(now):
        return None
    if ctx["last_active_at"] < now - _ACTIVE_EVERY:  # at most one write a day, on its own
        await touch_active(conn, member_id, now)
    done = BatchResult(ingest=result, offers=[])
    if accepted:
        version = await pings_repo.write(conn, member_id, result.program_id, tracks, accepted,
                                         version=ctx["geo_version"], idem=idem,
                                         response=encode(done))
        _remember(memory, member_id, result.program_id, version, accepted=accepted,
              tracks=tracks)
    elif idem is not None:  # nothing changed: only the answer is kept
        await record(conn, idem, 200, encode(done))
    return Outcome(status=200, result=done)


def _remember(memory: MemberMemory | None, member_id: uuid.UUID, program_id: uuid.UUID,
              version: str | None, *, accepted: Sequence[core.Ping], tracks: Sequence[Track]
              ) -> None:
    """Keep what a write that returned `version` left (`geo/pings_memory.py`)."""
    if memory is not None and version is not None and accepted:
        memory.note(member_id, written(program_id, version, accepted[-1], tracks))


def _speculation(registry: ZoneRegistry, campaigns: CampaignCache,
                 program_id: uuid.UUID | None, pings: Sequence[Ping], *, now: datetime,
                 rules: PingRules, memory: Remembered | None
                 ) -> tuple[Speculation | None, bool]:
    """(the batch decided against the empty state, or against `memory`, the state this worker
    last wrote for the member; or None when it cannot be: the worker holds no zone snapshot
    or campaigns of the program yet, or raw pings are kept; whether offers may be due: then
    the batch goes straight to the locked transaction)."""
    zones = registry.peek(program_id) if program_id is not None else None
    head = campaigns.peek(program_id) if program_id is not None else None
    if zones is None or head is None or program_id is None or rules.raw_retention_s > 0:
        return None, False
    spec = speculate(zones, pings, now=now, rules=rules, program_id=program_id,
                     campaigns_version=head.version, memory=memory)
    if spec.may_earn_offers and head.at(now):
        return None, True
    return spec, False


async def _one_trip(conn: Conn, spec: Speculation, member_id: uuid.UUID, *, now: datetime,
                    rules: PingRules, idem: IdemKey | None, memory: MemberMemory | None
                    ) -> Outcome[BatchResult] | asyncpg.Record:
    """The batch in one statement (`pings_repo.ONE_TRIP`): its outcome if the member's state
    is one `spec` holds for, else the context the statement read (nothing written)."""
    done = BatchResult(ingest=spec.result, offers=[])
    row = await pings_repo.one_trip(
        conn, member_id, spec, max_speed_mps=rules.max_speed_mps, now=now, idem=idem,
        response=encode(done) if idem is not None else b"")
    if row is None:
        raise gone()  # erased: the token must stop working (401)
    if row["done"]:
        _remember(memory, member_id, spec.result.program_id, row["version"],
                  accepted=spec.accepted, tracks=spec.tracks)
        return Outcome(status=200, result=done)
    if memory is not None and spec.memory is not None:
        memory.stale(member_id)  # another worker or path wrote since: forget it
    return row


async def _replay_race(conn: Conn, idem: IdemKey | None) -> Outcome[BatchResult]:
    """The answer of the concurrent request that committed the same key first."""
    assert idem is not None
    if (found := await lookup(conn, idem)) is None:  # pragma: no cover
        raise IdempotencyRace("the key's winner is not visible")
    return replay(found, idem, BatchResult)


async def ingest_batch(pool: asyncpg.Pool, member_id: uuid.UUID, pings: Sequence[Ping], *,
                       registry: ZoneRegistry, campaigns: CampaignCache, rules: PingRules,
                       issuing: IssueSettings, now: datetime, idem: IdemKey | None,
                       program_id: uuid.UUID | None = None,
                       memory: MemberMemory | None = None) -> Outcome[BatchResult]:
    """Process one batch (the whole module docstring) in one transaction; a retried batch
    with the same key replays the first answer and changes nothing. `program_id` (the
    token's) lets it try `_one_trip` first (from the state `memory`, the worker's, holds for
    the member if a visit was open), then `_optimistic` (two round trips, no lock held but
    during its write), then the locked transaction."""
    remembered = None
    if memory is not None and program_id is not None:
        remembered = memory.recall(member_id, program_id)
    spec, offers_due = _speculation(registry, campaigns, program_id, pings, now=now,
                                    rules=rules, memory=remembered)
    async with pool.acquire() as conn:
        ctx: asyncpg.Record | None = None
        if spec is not None:
            try:
                got = await _one_trip(conn, spec, member_id, now=now, rules=rules, idem=idem,
                                      memory=memory)
            except (asyncpg.SerializationError, asyncpg.ForeignKeyViolationError,
                    asyncpg.DeadlockDetectedError):
                got = None  # another batch or an erasure since the snapshot: read again
                if memory is not None and spec.memory is not None:
                    memory.stale(member_id)
            except IdempotencyRace:
                return await _replay_race(conn, idem)
            if isinstance(got, Outcome):
                return got
            ctx = got
        for _ in range(0 if offers_due else _OPTIMISTIC_ATTEMPTS):
            try:
                done = await _optimistic(conn, registry, campaigns, member_id, pings,
                                         now=now, rules=rules, idem=idem, ctx=ctx, spec=spec,
                                         memory=memory)
            except (asyncpg.SerializationError, asyncpg.ForeignKeyViolationError):
                continue  # another batch, an erasure or a withdrawal since the read
            except IdempotencyRace:  # the same key, committed first by a concurrent request
                return await _replay_race(conn, idem)
            finally:
                ctx = None  # a second attempt reads again
            if done is None:
                break
            return done

    async def work(conn: Conn) -> BatchResult:
        result = await ingest(conn, registry, member_id, pings, now=now, rules=rules,
                              memory=memory)
        offers: list[Offer] = []
        if result.matched or result.events:  # in or near a store: offers may be due
            offers = await issue_for_batch(
                conn, member_id, result.program_id, result.events, now=now,
                settings=issuing, cache=campaigns, campaigns_version=result.campaigns_version)
        return BatchResult(ingest=result, offers=offers)

    return await run_idempotent(pool, idem, work, BatchResult)
