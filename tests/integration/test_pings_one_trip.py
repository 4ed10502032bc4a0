"""A ping batch in one round trip (`geo/pings_speculation.py`, `pings_repo.ONE_TRIP`): it
answers and writes exactly what the two-trip path answers and writes, whatever the member's
state (an open visit or none, a last ping that makes some pings stale or too fast, consent
withdrawn, an Idempotency-Key already stored, zones or campaigns changed since the worker
loaded them); when its assumptions do not hold it writes nothing and falls back."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, NamedTuple

import asyncpg
import msgspec
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from support import ledger_fixtures as fx
from support.locks import wait_until_blocked
from support.offer_fixtures import campaign

from geo import pings_repo
from geo import visits as core
from geo.issuance import CampaignCache, IssueSettings
from geo.issuance_repo import Scheduled
from geo.pings import IngestResult, PingRules, Track
from geo.pings_memory import MemberMemory, Remembered, written
from geo.pings_service import BatchResult, ingest_batch
from geo.pings_speculation import Speculation, speculate
from geo.registry import ZoneRegistry
from geo.visits_repo import decode_open_visits
from wallet.kernel.db import keep_session
from wallet.kernel.idempotency import IdemKey, Outcome, encode

RULES = PingRules(max_age_s=3600, max_future_s=60, max_accuracy_m=100, max_speed_mps=50,
                  exit_after_s=120, dwell_s=300, lost_after_s=3600, raw_retention_s=0)
ISSUING = IssueSettings(weather_max_age_s=3600, push_enabled=False)
STORES = [(2.35, 48.85, 100.0), (2.3520, 48.85, 80.0)]  # lon, lat, radius: overlapping
NEW_STORE = (2.40, 48.85, 150.0)  # added after the worker loaded its zones: a version change
POINTS = [  # lon, lat
    (2.35, 48.85),  # inside store 0
    (2.3510, 48.85),  # inside both
    (2.35, 48.8509),  # about store 0's edge
    (2.35, 48.853),  # near, outside
    (2.40, 48.85),  # the new store
    (5.0, 45.0),  # ~450 km away: too fast from anywhere here
    (2.35, 91.0),  # out of range
]


class State(NamedTuple):
    """What the member's rows hold before the batch (the same for both paths), and at most
    one change that the one-trip path cannot assume (`change`)."""

    last: tuple[int, int] | None  # (seconds ago, point) of the last accepted ping
    open_visit: int | None  # a store with an open visit (needs `last`)
    dwelt: bool
    idle: bool  # last active two days ago: the batch records activity
    key: bool  # the batch is sent with an Idempotency-Key
    # withdrawn: the consent; stored: the key holds this request's answer; other: another
    # request's; new_store, campaigns: changed since the worker loaded the program.
    change: str
    # What the worker remembers writing for the member (`geo/pings_memory.py`): nothing,
    # the state as it is, or a state since changed by another worker's batch (a later last
    # ping, the open visit dwelt or closed) or by the purge (the open visit deleted).
    memory: str = ""


states = st.builds(
    State,
    last=st.none() | st.tuples(st.sampled_from([5, 60, 400, 1900, 3000]),
                               st.integers(0, len(POINTS) - 2)),  # not out of range
    open_visit=st.sampled_from([None, 0, 0, 1]), dwelt=st.booleans(), idle=st.booleans(),
    key=st.booleans(),
    change=st.sampled_from(["", "", "", "", "", "withdrawn", "stored", "other", "new_store",
                            "campaigns"]),
    memory=st.sampled_from(["", "exact", "exact", "exact", "other_stay", "other_left",
                            "purged"]))
FAR_LAST = State(last=(400, 5), open_visit=None, dwelt=False, idle=False, key=True, change="")
NEAR_LAST = FAR_LAST._replace(last=(60, 0))
IN_STORE = NEAR_LAST._replace(open_visit=0, memory="exact")
# Seconds ago (most batches are recent, some reach before the last ping, too old or ahead),
# a point, an accuracy (150 m: inaccurate).
batches = st.lists(st.tuples(st.integers(0, 90) | st.integers(0, 90) | st.integers(-120, 3700),
                             st.integers(0, len(POINTS) - 1),
                             st.sampled_from([0.0, 5.0, 30.0, 150.0])),
                   min_size=1, max_size=12)


async def _store(conn: asyncpg.Connection, pid: uuid.UUID, lon: float, lat: float,
                 radius: float) -> uuid.UUID:
    sid = uuid.uuid4()
    zone = {"type": "Circle", "center": [lon, lat], "radius_m": radius}
    await conn.execute(
        "INSERT INTO stores (id, program_id, code, name, zone) VALUES ($1, $2, $3, 'S', $4)",
        sid, pid, f"S{sid.hex[:8]}", json.dumps(zone))
    return sid


def _key(member_id: uuid.UUID, state: State, batch: list[core.Ping]) -> IdemKey | None:
    if not state.key and state.change not in ("stored", "other"):
        return None
    return IdemKey(scope=str(member_id), key="k", request_hash=repr(batch).encode()[:32])


async def _member(conn: asyncpg.Connection, pid: uuid.UUID, stores: list[uuid.UUID],
                  state: State, now: datetime, batch: list[core.Ping]) -> uuid.UUID:
    m = (await fx.member(conn, pid)).id
    key = _key(m, state, batch)
    consents = [True, False] if state.change == "withdrawn" else [True]
    for granted in consents:
        await conn.execute(
            "INSERT INTO member_consents (member_id, purpose, granted, policy_version, source)"
            " VALUES ($1, 'location_offers', $2, 'v1', 'app')", m, granted)
    if state.idle:
        await conn.execute("UPDATE members SET last_active_at = $2 WHERE id = $1", m,
                           now - timedelta(days=2))
    if state.last is not None:
        ago, point = state.last
        at = now - timedelta(seconds=ago)
        lon, lat = POINTS[point]
        await conn.execute("INSERT INTO member_geo_state VALUES ($1, $2, $3, $4)",
                           m, at, lat, lon)
        if state.open_visit is not None:
            await conn.execute(
                "INSERT INTO visits (id, member_id, program_id, store_id, entered_at,"
                " last_seen_at, dwell_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                uuid.uuid4(), m, pid, stores[state.open_visit], at - timedelta(seconds=400),
                at, at - timedelta(seconds=60) if state.dwelt else None)
    if key is not None and state.change in ("stored", "other"):
        first = BatchResult(ingest=IngestResult(program_id=pid, campaigns_version=0,
                                                accepted=1, matched=0, ignored={}, events=[]),
                            offers=[])
        await conn.execute(
            "INSERT INTO idempotency_keys (scope, key, request_hash, status_code, response_body)"
            " VALUES ($1, $2, $3, 200, $4)", key.scope, key.key,
            key.request_hash if state.change == "stored" else b"x" * 32, encode(first))
    return m


class Ids:
    """Visit ids as small integers, in the order rows are listed (the two paths draw
    different random ids)."""

    def __init__(self) -> None:
        self.seen: dict[uuid.UUID, int] = {}

    def __call__(self, visit_id: uuid.UUID) -> int:
        return self.seen.setdefault(visit_id, len(self.seen))


def _answer(out: Outcome[BatchResult] | BaseException, ids: Ids) -> Any:
    if isinstance(out, BaseException):
        return type(out).__name__, str(out)
    ingest = msgspec.structs.asdict(out.result.ingest)
    ingest["events"] = [(ids(e.visit_id), e.store_id, e.event, e.at, e.entered_at)
                        for e in out.result.ingest.events]
    return out.status, out.replayed, ingest, out.result.offers


async def _rows(conn: asyncpg.Connection, m: uuid.UUID, ids: Ids, now: datetime) -> Any:
    visits = [(ids(r["id"]), *list(r.values())[1:]) for r in await conn.fetch(
        "SELECT id, store_id, entered_at, last_seen_at, dwell_at, outside_since, exited_at"
        " FROM visits WHERE member_id = $1 ORDER BY entered_at, store_id", m)]
    geo = await conn.fetchrow(
        "SELECT last_ping_at, last_lat, last_lon FROM member_geo_state WHERE member_id = $1", m)
    touched = await conn.fetchval("SELECT last_active_at = $2 FROM members WHERE id = $1",
                                  m, now)
    stored = await conn.fetchrow(
        "SELECT status_code, response_body FROM idempotency_keys WHERE scope = $1", str(m))
    answer = None
    if stored is not None:
        out = Outcome(status=stored["status_code"],
                      result=msgspec.json.decode(stored["response_body"], type=BatchResult))
        answer = _answer(out, ids)
    return visits, geo and tuple(geo), touched, answer


class Paths:
    """How often the one-trip statement wrote, and how often it refused."""

    def __init__(self) -> None:
        self.done = self.refused = self.remembered = 0  # remembered: done from memory


@pytest.fixture
def paths(monkeypatch: pytest.MonkeyPatch) -> Iterator[Paths]:
    seen, one_trip = Paths(), pings_repo.one_trip

    async def counted(*args: Any, **kwargs: Any) -> asyncpg.Record | None:
        row = await one_trip(*args, **kwargs)
        if row is not None and row["done"]:
            seen.done += 1
            seen.remembered += args[2].memory is not None
        else:
            seen.refused += 1
        return row

    monkeypatch.setattr(pings_repo, "one_trip", counted)
    yield seen


async def _run(pool: asyncpg.Pool, m: uuid.UUID, batch: list[core.Ping], now: datetime,
               key: IdemKey | None, registry: ZoneRegistry, campaigns: CampaignCache,
               program_id: uuid.UUID | None, memory: MemberMemory | None = None
               ) -> Outcome[BatchResult] | BaseException:
    try:
        return await ingest_batch(pool, m, batch, registry=registry, campaigns=campaigns,
                                  rules=RULES, issuing=ISSUING, now=now, idem=key,
                                  program_id=program_id, memory=memory)
    except Exception as exc:  # the same error from both paths is the expected answer
        return exc


class World(NamedTuple):
    """One example: the program, two members in the same state, the batch, and the caches of
    a worker that loaded the program before the state's change."""

    program_id: uuid.UUID
    members: tuple[uuid.UUID, uuid.UUID]
    batch: list[core.Ping]
    now: datetime
    zones: ZoneRegistry
    campaigns: CampaignCache


async def _world(pool: asyncpg.Pool, state: State, raw: list[tuple[int, int, float]]) -> World:
    now = datetime.now(UTC)
    batch = [core.Ping(lon=POINTS[p][0], lat=POINTS[p][1], accuracy_m=acc,
                       at=now - timedelta(seconds=ago)) for ago, p, acc in raw]
    async with pool.acquire() as conn:
        pid = await fx.program(conn)
        stores = [await _store(conn, pid, *s) for s in STORES]
        a = await _member(conn, pid, stores, state, now, batch)
        b = await _member(conn, pid, stores, state, now, batch)
        zones, campaigns = ZoneRegistry(pool), CampaignCache()
        await zones.current(pid, 0, conn)
        await campaigns.current(conn, pid, 0)
        if state.change == "new_store":
            await _store(conn, pid, *NEW_STORE)
        if state.change == "campaigns":
            await conn.execute("UPDATE programs SET timezone = 'Europe/Berlin' WHERE id = $1",
                               pid)
    return World(pid, (a, b), batch, now, zones, campaigns)


async def _remembered(pool: asyncpg.Pool, w: World, state: State) -> MemberMemory:
    """The worker's memory of the first member, as `state.memory` says (the twins' rows
    changed alike after it was taken, for a stale one)."""
    memory = MemberMemory()
    if not state.memory:
        return memory
    async with pool.acquire() as conn:
        ctx = await pings_repo.read_context(conn, w.members[0])
        assert ctx is not None
        if ctx["last_ping_at"] is None:  # nothing was written: nothing to remember
            return memory
        last = core.Ping(at=ctx["last_ping_at"], lat=ctx["last_lat"], lon=ctx["last_lon"],
                         accuracy_m=0.0)
        memory.note(w.members[0], Remembered(
            program_id=w.program_id, version=ctx["geo_version"], last=last,
            open_visits=tuple(decode_open_visits(ctx["open_visits"]))))
        for m in w.members:
            if state.memory in ("other_stay", "other_left"):  # another worker's batch
                async with conn.transaction():  # a later ping; the visit dwelt, or closed
                    await conn.execute(
                        "UPDATE member_geo_state SET last_ping_at = last_ping_at + interval"
                        " '1 second' WHERE member_id = $1", m)
                    await conn.execute(
                        "UPDATE visits SET last_seen_at = last_seen_at + interval '1 second',"
                        " dwell_at = coalesce(dwell_at, last_seen_at), exited_at = CASE WHEN"
                        " $2 THEN last_seen_at + interval '1 second' END"
                        " WHERE member_id = $1 AND exited_at IS NULL", m,
                        state.memory == "other_left")
            elif state.memory == "purged":
                await conn.execute("DELETE FROM visits WHERE member_id = $1", m)
    return memory


async def _example(pool: asyncpg.Pool, state: State, raw: list[tuple[int, int, float]]
                   ) -> tuple[Any, Any]:
    w = await _world(pool, state, raw)
    (a, b), batch, now = w.members, w.batch, w.now
    memory = await _remembered(pool, w, state)
    one = await _run(pool, a, batch, now, _key(a, state, batch), w.zones, w.campaigns,
                     w.program_id, memory)
    two = await _run(pool, b, batch, now, _key(b, state, batch), ZoneRegistry(pool),
                     CampaignCache(), None)  # no program id: the two-trip path only
    async with pool.acquire() as conn:
        ids_a, ids_b = Ids(), Ids()
        rows_a, rows_b = await _rows(conn, a, ids_a, now), await _rows(conn, b, ids_b, now)
    return (_answer(one, ids_a), rows_a), (_answer(two, ids_b), rows_b)


def test_one_trip_answers_and_writes_what_the_two_trip_path_does(db_url: str,
                                                                 paths: Paths) -> None:
    async def connect() -> asyncpg.Pool:  # the pool takes the loop running when it is made
        return await asyncpg.create_pool(db_url, min_size=1, max_size=2)

    loop = asyncio.new_event_loop()
    pool = loop.run_until_complete(connect())
    try:
        @given(state=states, raw=batches)
        @example(state=FAR_LAST, raw=[(10, 0, 5.0), (5, 0, 5.0)])  # the first ping too fast
        @example(state=FAR_LAST._replace(last=(3000, 5)), raw=[(10, 0, 5.0)])  # not too fast
        @example(state=NEAR_LAST, raw=[(100, 0, 150.0), (10, 0, 5.0)])  # stale, not inaccurate
        @example(state=NEAR_LAST, raw=[(60, 1, 5.0), (10, 0, 5.0)])  # at the last ping: kept
        @example(state=NEAR_LAST._replace(open_visit=0), raw=[(10, 3, 5.0)])  # an open visit
        @example(state=NEAR_LAST._replace(last=(16, 3)), raw=[(10, 0, 5.0)])  # 55 m/s
        # From the worker's memory, as it is and since changed (the visit dwelt, closed or
        # purged): each stale state would answer differently (dwell, no enter, no enter).
        @example(state=IN_STORE, raw=[(10, 0, 5.0), (5, 3, 5.0)])
        @example(state=IN_STORE._replace(memory="other_stay"), raw=[(10, 0, 5.0)])
        @example(state=IN_STORE._replace(memory="other_left"), raw=[(10, 0, 5.0)])
        @example(state=IN_STORE._replace(memory="purged"), raw=[(10, 0, 5.0)])
        @settings(max_examples=150, database=None, derandomize=True,
                  suppress_health_check=[HealthCheck.too_slow])
        def same(state: State, raw: list[tuple[int, int, float]]) -> None:
            one, two = loop.run_until_complete(_example(pool, state, raw))
            assert one == two

        same()
    finally:
        loop.run_until_complete(pool.close())
        loop.close()
    # Both branches ran: the batch written in one statement (from the empty state and from
    # the worker's memory), and the refusals' fallbacks.
    assert paths.done >= 10 and paths.refused >= 10, (paths.done, paths.refused)
    assert paths.remembered >= 5, paths.remembered


# --- each fallback, and what it costs ----------------------------------------------------------

COMMON = State(last=(3000, 3), open_visit=None, dwelt=False, idle=False, key=True, change="")
ENTER = [(30, 3, 5.0), (20, 0, 5.0), (10, 0, 5.0)]  # near the store, then in it: an enter


@pytest.fixture
async def counted_pool(db_url: str) -> AsyncIterator[tuple[asyncpg.Pool, list[str]]]:
    """A pool like the app's (no session reset on release) whose connections log every
    statement they send (the round trips), but asyncpg's one-off type introspection."""
    sent: list[str] = []

    def logged(q: asyncpg.connection.LoggedQuery) -> None:
        if "set_config('jit'" not in q.query and "pg_catalog.pg_type" not in q.query:
            sent.append(q.query)

    async def log(conn: asyncpg.Connection) -> None:
        conn.add_query_logger(logged)

    pool = await asyncpg.create_pool(db_url, min_size=1, max_size=2, init=log,
                                     reset=keep_session)
    try:
        yield pool, sent
    finally:
        await pool.close()


@pytest.mark.parametrize(("state", "statements", "answer"), [
    (COMMON, 1, "200"),  # the common case: one statement
    (COMMON._replace(last=None), 1, "200"),  # the member's first batch
    (COMMON._replace(last=(60, 0), open_visit=0), 2, "200"),  # refused, then the write
    (COMMON._replace(last=(25, 3)), 2, "200"),  # a ping before the last one: stale
    (COMMON._replace(last=(200, 5)), 2, "200"),  # the first ping too fast from the last
    (COMMON._replace(change="new_store"), 3, "200"),  # refused, zones reloaded, the write
    (COMMON._replace(change="campaigns"), 3, "200"),  # refused, campaigns reloaded, write
    (COMMON._replace(change="withdrawn"), 1, "ConsentRequired"),  # from what it read
    (COMMON._replace(change="stored"), 1, "replayed"),
    (COMMON._replace(change="other"), 1, "IdempotencyConflict"),
])
async def test_each_fallback_writes_nothing_and_goes_on_from_what_it_read(
        counted_pool: tuple[asyncpg.Pool, list[str]], state: State, statements: int,
        answer: str) -> None:
    pool, sent = counted_pool
    w = await _world(pool, state, ENTER)
    (a, b), batch, now = w.members, w.batch, w.now
    sent.clear()
    one = await _run(pool, a, batch, now, _key(a, state, batch), w.zones, w.campaigns,
                     w.program_id)
    assert len(sent) == statements, sent
    assert isinstance(one, BaseException) or one.status == 200
    got = (type(one).__name__ if isinstance(one, BaseException)
           else "replayed" if one.replayed else "200")
    assert got == answer
    two = await _run(pool, b, batch, now, _key(b, state, batch), ZoneRegistry(pool),
                     CampaignCache(), None)
    async with pool.acquire() as conn:
        ids_a, ids_b = Ids(), Ids()
        assert ((_answer(one, ids_a), await _rows(conn, a, ids_a, now))
                == (_answer(two, ids_b), await _rows(conn, b, ids_b, now)))


async def test_an_erased_member_is_refused_in_one_statement(
        counted_pool: tuple[asyncpg.Pool, list[str]]) -> None:
    pool, sent = counted_pool
    w = await _world(pool, COMMON, ENTER)
    async with pool.acquire() as conn:
        await conn.execute("DELETE FROM members WHERE id = $1", w.members[0])
    sent.clear()
    out = await _run(pool, w.members[0], w.batch, w.now, None, w.zones, w.campaigns,
                     w.program_id)
    assert type(out).__name__ == "Unauthenticated" and len(sent) == 1


async def test_a_batch_that_may_earn_offers_goes_straight_to_the_locked_transaction(
        counted_pool: tuple[asyncpg.Pool, list[str]]) -> None:
    pool, sent = counted_pool
    w = await _world(pool, COMMON, ENTER)
    held = w.campaigns.peek(w.program_id)
    assert held is not None
    on = Scheduled(starts_at=w.now - timedelta(hours=1), ends_at=w.now + timedelta(hours=1),
                   campaign=campaign())
    w.campaigns._programs[w.program_id] = msgspec.structs.replace(  # an active campaign
        held, campaigns=(on,))
    sent.clear()
    out = await _run(pool, w.members[0], w.batch, w.now, None, w.zones, w.campaigns,
                     w.program_id)
    assert not isinstance(out, BaseException) and out.result.ingest.events
    assert sent[0] == "BEGIN;" or "FOR UPDATE" in sent[0], sent


def _speculation(w: World) -> Speculation:
    """The first member's batch decided as the one-trip path decides it."""
    zones, head = w.zones.peek(w.program_id), w.campaigns.peek(w.program_id)
    assert zones is not None and head is not None
    return speculate(zones, w.batch, now=w.now, rules=RULES, program_id=w.program_id,
                     campaigns_version=head.version)


async def _statement(conn: Any, m: uuid.UUID, spec: Speculation, now: datetime
                     ) -> asyncpg.Record | None:
    return await pings_repo.one_trip(conn, m, spec, max_speed_mps=RULES.max_speed_mps,
                                     now=now, idem=None, response=b"")


async def _refused_whole(conn: asyncpg.Connection, late: asyncio.Task[asyncpg.Record | None],
                         m: uuid.UUID) -> None:
    """The statement that waited refuses as a whole: no visit of the member written."""
    with pytest.raises(asyncpg.SerializationError):
        await late
    assert await conn.fetchval("SELECT count(*) FROM visits WHERE member_id = $1", m) == 0


async def test_a_batch_committed_while_the_statement_runs_makes_it_write_nothing(
        counted_pool: tuple[asyncpg.Pool, list[str]], conn: asyncpg.Connection,
        db_url: str) -> None:
    """Another batch of the member holds the last position's row: the statement (its
    snapshot taken before that batch commits) waits for the row, then refuses whole."""
    pool, _ = counted_pool
    w = await _world(pool, COMMON, ENTER)
    m, spec, other = w.members[0], _speculation(w), w.now - timedelta(seconds=40)
    holder = await asyncpg.connect(db_url)
    try:
        async with pool.acquire() as mine, holder.transaction():
            await holder.execute(
                "UPDATE member_geo_state SET last_ping_at = $2 WHERE member_id = $1", m, other)
            late = asyncio.create_task(_statement(mine, m, spec, w.now))
            await wait_until_blocked(conn, mine.get_server_pid(), holder.get_server_pid(),
                                     running=late)
    finally:
        await holder.close()
    await _refused_whole(conn, late, m)
    assert await conn.fetchval(
        "SELECT last_ping_at FROM member_geo_state WHERE member_id = $1", m) == other


async def test_a_snapshot_refreshed_after_the_decision_does_not_lend_it_its_version(
        counted_pool: tuple[asyncpg.Pool, list[str]], monkeypatch: pytest.MonkeyPatch) -> None:
    """The zone change's notification lands while the batch waits for a connection: the
    statement checks the version of the snapshot the batch was decided with, not the new one."""
    pool, _ = counted_pool
    state = COMMON._replace(change="new_store")
    w = await _world(pool, state, [(10, 4, 5.0)])  # a ping in the new store
    stale = w.zones.peek(w.program_id)
    await w.zones.refresh(w.program_id)
    peek, calls = w.zones.peek, 0

    def first_stale(program_id: uuid.UUID) -> Any:
        nonlocal calls
        calls += 1
        return stale if calls == 1 else peek(program_id)

    monkeypatch.setattr(w.zones, "peek", first_stale)
    out = await _run(pool, w.members[0], w.batch, w.now, None, w.zones, w.campaigns,
                     w.program_id)
    assert not isinstance(out, BaseException)
    assert [e.event for e in out.result.ingest.events] == ["enter"]


LATER = [(30, 0, 5.0), (20, 1, 5.0), (10, 3, 5.0)]  # in the store, then out at its edge


def _later(batch: list[core.Ping], seconds: int) -> list[core.Ping]:
    return [msgspec.structs.replace(p, at=p.at + timedelta(seconds=seconds)) for p in batch]


@pytest.mark.parametrize("steps", [
    [ENTER, ENTER, ENTER],  # enter, then stay: the visit open from memory
    [ENTER, LATER, LATER, ENTER],  # stay, go out (an exit pending), come back
    [ENTER, [(10, 5, 5.0)], ENTER],  # a ping too fast from the remembered last one: ignored
])
async def test_a_member_with_a_visit_open_is_one_statement_from_the_workers_memory(
        counted_pool: tuple[asyncpg.Pool, list[str]], steps: list[list[tuple[int, int, float]]]
        ) -> None:
    """Batch after batch on one worker, the member's visit open: each batch is decided from
    what the worker wrote last and written by one statement, and answers and writes what the
    two-trip path does for a twin."""
    pool, sent = counted_pool
    w = await _world(pool, COMMON._replace(last=None, key=False), ENTER)
    (a, b), memory = w.members, MemberMemory()
    for i, raw in enumerate(steps):
        now = w.now + timedelta(seconds=300 * i)
        batch = [core.Ping(lon=POINTS[p][0], lat=POINTS[p][1], accuracy_m=acc,
                           at=now - timedelta(seconds=ago)) for ago, p, acc in raw]
        sent.clear()
        one = await _run(pool, a, batch, now, None, w.zones, w.campaigns, w.program_id, memory)
        assert len(sent) == 1, sent
        assert sent[0] == (pings_repo.ONE_TRIP if i == 0 else pings_repo.ONE_TRIP_REMEMBERED)
        two = await _run(pool, b, batch, now, None, w.zones, w.campaigns, None)
        async with pool.acquire() as conn:
            ids_a, ids_b = Ids(), Ids()
            assert ((_answer(one, ids_a), await _rows(conn, a, ids_a, now))
                    == (_answer(two, ids_b), await _rows(conn, b, ids_b, now)))
            assert _sorted(memory.recall(a, w.program_id)) == await _as_stored(conn, a,
                                                                               w.program_id)


def _sorted(state: Remembered | None) -> Remembered | None:
    """`state` with its open visits in one order (the database's is unspecified)."""
    if state is None:
        return None
    return msgspec.structs.replace(
        state, open_visits=tuple(sorted(state.open_visits, key=lambda v: v.id)))


async def _as_stored(conn: asyncpg.Connection, m: uuid.UUID, program_id: uuid.UUID
                     ) -> Remembered | None:
    """The member's state as the database holds it, in the form a worker remembers it."""
    ctx = await pings_repo.read_context(conn, m)
    assert ctx is not None and ctx["last_ping_at"] is not None
    return _sorted(Remembered(program_id=program_id, version=ctx["geo_version"],
                              last=core.Ping(at=ctx["last_ping_at"], lat=ctx["last_lat"],
                                             lon=ctx["last_lon"], accuracy_m=0.0),
                              open_visits=tuple(decode_open_visits(ctx["open_visits"]))))


async def test_what_each_path_writes_is_what_the_worker_remembers(
        counted_pool: tuple[asyncpg.Pool, list[str]]) -> None:
    """After the locked transaction (offers may be due), the two-trip write (a stale memory
    refused) and the one statement, the worker remembers exactly the stored state: its
    version, last ping and open visits (times in UTC, as read back)."""
    pool, _ = counted_pool
    w = await _world(pool, COMMON._replace(last=None, key=False), ENTER)
    m, memory = w.members[0], MemberMemory()
    held = w.campaigns.peek(w.program_id)
    assert held is not None
    on = Scheduled(starts_at=w.now - timedelta(hours=1), ends_at=w.now + timedelta(hours=1),
                   campaign=campaign())
    w.campaigns._programs[w.program_id] = msgspec.structs.replace(held, campaigns=(on,))
    paris = [msgspec.structs.replace(p, at=p.at.astimezone(timezone(timedelta(hours=1))))
             for p in w.batch]  # sent with a +01:00 offset: remembered in UTC all the same
    out = await _run(pool, m, paris, w.now, None, w.zones, w.campaigns, w.program_id, memory)
    assert not isinstance(out, BaseException) and out.result.ingest.events  # locked: entered
    async with pool.acquire() as conn:
        assert _sorted(memory.recall(m, w.program_id)) == await _as_stored(conn, m,
                                                                           w.program_id)
    w.campaigns._programs[w.program_id] = held  # no campaign: the one statement again
    for seconds, memory_now in ((300, MemberMemory()), (600, memory)):  # a stale memory too
        memory_now.note(m, memory.recall(m, w.program_id) if memory_now is memory else None)
        later = _later(w.batch, seconds)
        await _run(pool, m, later, w.now + timedelta(seconds=seconds), None, w.zones,
                   w.campaigns, w.program_id, memory_now)
        async with pool.acquire() as conn:
            assert _sorted(memory_now.recall(m, w.program_id)) == await _as_stored(
                conn, m, w.program_id)


async def test_a_write_by_another_worker_makes_the_memory_refused_and_the_answer_right(
        counted_pool: tuple[asyncpg.Pool, list[str]]) -> None:
    """Worker A remembers the member's visit open; worker B writes the member's next batch
    (the member left: the visit closed); A's next batch is refused (the version moved),
    writes nothing, and is decided again from what the statement read: two statements."""
    pool, sent = counted_pool
    w = await _world(pool, COMMON._replace(last=None, key=False), ENTER)
    (a, b), mine, other = w.members, MemberMemory(), MemberMemory()
    out = [core.Ping(lon=POINTS[3][0], lat=POINTS[3][1], accuracy_m=5.0,
                     at=w.now + timedelta(seconds=s)) for s in (200, 400)]
    for m in (a, b):  # the twin goes the same way, on the two-trip path
        worker = (mine, other) if m == a else (None, None)
        pid = w.program_id if m == a else None
        await _run(pool, m, w.batch, w.now, None, w.zones, w.campaigns, pid, worker[0])
        left = await _run(pool, m, out, w.now + timedelta(seconds=400), None, w.zones,
                          w.campaigns, pid, worker[1])
        assert not isinstance(left, BaseException)
        assert [e.event for e in left.result.ingest.events] == ["exit"]
    assert mine.recall(a, w.program_id) is not None  # a visit open, now stale
    later = _later(w.batch, 900)
    sent.clear()
    one = await _run(pool, a, later, w.now + timedelta(seconds=900), None, w.zones,
                     w.campaigns, w.program_id, mine)
    assert sent[0] == pings_repo.ONE_TRIP_REMEMBERED and len(sent) == 2, sent
    two = await _run(pool, b, later, w.now + timedelta(seconds=900), None, w.zones,
                     w.campaigns, None)
    async with pool.acquire() as conn:
        ids_a, ids_b = Ids(), Ids()
        assert ((_answer(one, ids_a), await _rows(conn, a, ids_a, w.now))
                == (_answer(two, ids_b), await _rows(conn, b, ids_b, w.now)))
    assert not isinstance(one, BaseException)
    assert [e.event for e in one.result.ingest.events] == ["enter"]  # a new visit


def test_the_memory_forgets_the_members_used_longest_ago_beyond_its_limit() -> None:
    counted: list[str] = []
    memory, members = MemberMemory(limit=2, count=counted.append), [uuid.uuid4() for _ in
                                                                    range(3)]
    last = core.Ping(lon=2.35, lat=48.85, accuracy_m=5.0, at=datetime.now(UTC))
    state = written(uuid.uuid4(), "7", last, [Track(
        id=uuid.uuid4(), store_id=uuid.uuid4(), new=True,
        state=core.VisitState(inside=True, entered_at=last.at, last_seen_at=last.at))])
    pid = state.program_id
    memory.note(members[0], state)
    memory.note(members[1], state)
    assert memory.recall(members[0], pid) == state  # used: now the most recent
    memory.note(members[2], state)
    assert [memory.recall(m, pid) is not None for m in members] == [True, False, True]
    memory.stale(members[0])
    assert memory.recall(members[0], pid) is None and len(memory) == 1
    memory.note(members[2], msgspec.structs.replace(state, open_visits=()))
    assert memory.recall(members[2], pid) is None  # no visit open: from the empty state
    memory.note(members[1], state)
    assert memory.recall(members[1], uuid.uuid4()) is None  # another program's
    assert counted == ["hit", "hit", "miss", "hit", "stale", "miss", "idle", "idle"]
    assert state.last.accuracy_m == 0.0 and len(state.open_visits) == 1


async def test_the_statement_takes_the_member_row_before_the_last_position(
        counted_pool: tuple[asyncpg.Pool, list[str]], conn: asyncpg.Connection,
        db_url: str) -> None:
    """A batch that records the day's activity locks the member row first, as the locked
    transaction does: behind one holding the member and then writing the last position, it
    waits, then refuses whole (no deadlock)."""
    pool, _ = counted_pool
    w = await _world(pool, COMMON._replace(idle=True), ENTER)
    m, spec, other = w.members[0], _speculation(w), w.now - timedelta(seconds=40)
    holder = await asyncpg.connect(db_url)
    try:
        async with pool.acquire() as mine, holder.transaction():
            await holder.execute("SELECT 1 FROM members WHERE id = $1 FOR UPDATE", m)
            late = asyncio.create_task(_statement(mine, m, spec, w.now))
            await wait_until_blocked(conn, mine.get_server_pid(), holder.get_server_pid(),
                                     running=late)
            await holder.execute(
                "UPDATE member_geo_state SET last_ping_at = $2 WHERE member_id = $1", m, other)
    finally:
        await holder.close()
    await _refused_whole(conn, late, m)
    assert await conn.fetchval(
        "SELECT last_active_at < $2 FROM members WHERE id = $1", m, w.now)

