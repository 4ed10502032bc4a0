"""Per-program zone snapshots, kept current on every worker.

Each program's zones live in an immutable `ZoneIndex` snapshot (`geo/matcher/index.py`) held by a
`ProgramZones` value; a change builds a new snapshot with `with_changes` (no full rebuild) and
swaps one dict entry, so matching never sees a half-updated index.

Freshness: a store write bumps `programs.zones_version` and stamps the store with it
(`stores.zone_seq`, migration 0005). A worker refreshes a program by loading only the stores
with `zone_seq` above its snapshot's version. Refreshes are triggered two ways: a LISTEN on
channel `zones_changed` (every worker, as soon as the change commits), and the ping path, which
reads the program's current version in its first query and refreshes before matching when the
snapshot is behind. The second makes "the next ping sees the change" hold even when the
notification is still in flight.

The LISTEN connection is the worker's own (application_name `loyalty zone listener`). When it
is lost (a database restart, a proxy's idle timeout, pg_terminate_backend) the registry
connects again, retrying with a growing delay while the database is away, then refreshes every
program it holds: the changes made while nobody listened are caught up without waiting for a
ping to find them (which would rebuild the snapshot while a member waits).

A silent partition (a NAT or proxy that drops the connection's state, a host gone without a
reset) reports no loss: the socket just stops delivering. So every `heartbeat_s` the registry
sends the listener a `SELECT 1` bounded by `heartbeat_timeout_s`; no answer in time is a lost
connection, which it ends itself and then goes through the same listen-again-and-refresh.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from typing import Any

import asyncpg
import msgspec

from geo.matcher.index import ZoneIndex
from geo.zones import ZoneShape, decode_zone, validate_zone
from wallet.kernel.db import Conn

log = logging.getLogger(__name__)
CHANNEL = "zones_changed"
LISTENER_NAME = "loyalty zone listener"
RETRY_MAX_S = 5.0  # the longest wait between two attempts to listen again
HEARTBEAT = "SELECT 1"
Connect = Callable[..., Awaitable[asyncpg.Connection]]
_NO_LIMIT = float("inf")  # stored zones were validated against the extent limit on write


class ProgramZones(msgspec.Struct, frozen=True, kw_only=True):
    """An immutable snapshot of one program's zones. Index keys are small ints; `stores`
    maps a key back to its store id (None for a key whose store was deleted)."""

    version: int
    index: ZoneIndex
    stores: tuple[uuid.UUID | None, ...]
    keys: dict[uuid.UUID, int]

    def store(self, key: int) -> uuid.UUID:
        store_id = self.stores[key]
        assert store_id is not None, "a deleted key is never in the index"
        return store_id


# One statement, so the version and the changed stores come from one snapshot.
CHANGED_SINCE = """
SELECT p.zones_version, s.id, s.zone::text AS zone, s.deleted_at IS NOT NULL AS deleted
FROM programs p
LEFT JOIN stores s ON s.program_id = p.id AND s.zone_seq > $2
WHERE p.id = $1
ORDER BY s.zone_seq
"""


def _shape(raw: str) -> ZoneShape:
    return validate_zone(decode_zone(raw.encode()), max_extent_m=_NO_LIMIT)


def _apply(current: ProgramZones | None, rows: Iterable[asyncpg.Record], version: int
           ) -> ProgramZones:
    """Fold changed store rows into a new snapshot (pure but for building the index)."""
    stores = list(current.stores) if current else []
    keys = dict(current.keys) if current else {}
    upserts: list[tuple[int, ZoneShape]] = []
    deletes: list[int] = []
    for row in rows:
        store_id: uuid.UUID = row["id"]
        key = keys.get(store_id)
        if row["deleted"]:
            if key is not None:
                deletes.append(key)
                stores[key] = None
                del keys[store_id]
            continue
        if key is None:
            key = len(stores)
            stores.append(store_id)
            keys[store_id] = key
        upserts.append((key, _shape(row["zone"])))
    if current is None:
        index = ZoneIndex.build(upserts)
    elif upserts or deletes:
        index = current.index.with_changes(upserts, deletes)
    else:
        index = current.index
    return ProgramZones(version=version, index=index, stores=tuple(stores), keys=keys)


class ZoneRegistry:
    """The worker's snapshots, one per program, loaded lazily and refreshed on change."""

    def __init__(self, pool: asyncpg.Pool, *, connect: Connect = asyncpg.connect,
                 retry_s: float = 0.1, heartbeat_s: float = 0.0,
                 heartbeat_timeout_s: float = 5.0) -> None:
        """`heartbeat_s`: how often the listener is asked to answer (0: never)."""
        self._pool = pool
        self._programs: dict[uuid.UUID, ProgramZones] = {}
        self._locks: dict[uuid.UUID, asyncio.Lock] = {}
        self._listener: asyncpg.Connection | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._connect, self._retry_s = connect, retry_s
        self._heartbeat_s, self._heartbeat_timeout_s = heartbeat_s, heartbeat_timeout_s
        self._dsn = ""
        self._stopping = False

    def peek(self, program_id: uuid.UUID) -> ProgramZones | None:
        return self._programs.get(program_id)

    async def current(self, program_id: uuid.UUID, version: int,
                      conn: Conn | None = None) -> ProgramZones:
        """The program's snapshot at `version` or newer, refreshing first if it is behind."""
        snap = self._programs.get(program_id)
        if snap is not None and snap.version >= version:
            return snap
        return await self.refresh(program_id, conn)

    async def refresh(self, program_id: uuid.UUID, conn: Conn | None = None) -> ProgramZones:
        lock = self._locks.setdefault(program_id, asyncio.Lock())
        async with lock:
            snap = self._programs.get(program_id)
            if conn is None:
                async with self._pool.acquire() as own:
                    snap = await self._load(own, program_id, snap)
            else:
                snap = await self._load(conn, program_id, snap)
            self._programs[program_id] = snap
            return snap

    @staticmethod
    async def _load(conn: Conn, program_id: uuid.UUID, snap: ProgramZones | None
                    ) -> ProgramZones:
        since = snap.version if snap else -1
        found = await conn.fetch(CHANGED_SINCE, program_id, since)
        version = found[0]["zones_version"] if found else 0  # no row: the program is gone
        rows = [r for r in found if r["id"] is not None]
        if snap is not None and not rows:
            return ProgramZones(version=max(version, snap.version), index=snap.index,
                                stores=snap.stores, keys=snap.keys)
        # Validating shapes and building the index is CPU work (up to seconds for a large
        # program): a worker thread does it, so the event loop keeps serving every other
        # request (and /health) meanwhile; only callers needing this program's new snapshot
        # wait for it. Snapshots are immutable, so the thread shares nothing mutable.
        return await asyncio.to_thread(_apply, snap, rows, version)

    async def start(self, dsn: str) -> None:
        """LISTEN for zone changes; each notification refreshes its program if loaded."""
        self._dsn = dsn
        await self._listen()
        if self._heartbeat_s > 0:
            self._spawn(self._heartbeat())

    async def _listen(self) -> None:
        conn = await self._connect(self._dsn,
                                   server_settings={"application_name": LISTENER_NAME})
        try:
            await conn.add_listener(CHANNEL, self._on_notify)
        except BaseException:
            await conn.close()
            raise
        conn.add_termination_listener(self._on_lost)
        self._listener = conn

    def _on_lost(self, _conn: object) -> None:
        if self._stopping or self._listener is None:  # None: already listening again
            return
        log.warning("zone listener lost its connection; listening again")
        self._listener = None
        self._spawn(self._listen_again())

    async def _listen_again(self) -> None:
        """Listen again (retrying while the database is away), then catch up: a change
        committed while nobody listened sent its notification to no one."""
        delay = self._retry_s
        while True:
            try:
                await self._listen()
                break
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.info("zone listener: cannot listen yet (%s); next try in %.1f s",
                         type(exc).__name__, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, RETRY_MAX_S)
        # A warning like the loss, so an operator sees the outage's end in the default log.
        log.warning("zone listener listening again; refreshing %d programs",
                    len(self._programs))
        for program_id in list(self._programs):
            await self._refresh_quietly(program_id)

    async def _heartbeat(self) -> None:
        """Ask the listener to answer every `heartbeat_s`; a silence longer than
        `heartbeat_timeout_s` ends the connection, whose loss listens again (`_on_lost`)."""
        while True:
            await asyncio.sleep(self._heartbeat_s)
            conn = self._listener
            if conn is None or conn.is_closed():
                continue  # being replaced
            try:
                await conn.fetchval(HEARTBEAT, timeout=self._heartbeat_timeout_s)
            except (TimeoutError, OSError, asyncpg.PostgresError,
                    asyncpg.InterfaceError) as exc:
                if conn is self._listener and not conn.is_closed():
                    log.warning("zone listener: no answer to the heartbeat (%s within %.1f s); "
                                "listening again", type(exc).__name__,
                                self._heartbeat_timeout_s)
                    conn.terminate()  # its termination listener (`_on_lost`) listens again

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _on_notify(self, _conn: Conn, _pid: int, _channel: str, payload: object) -> None:
        try:
            program_id = uuid.UUID(str(payload))
        except ValueError:
            log.warning("ignoring malformed %s payload %r", CHANNEL, payload)
            return
        if program_id not in self._programs:
            return  # loaded lazily on first use, at the current version
        self._spawn(self._refresh_quietly(program_id))

    async def _refresh_quietly(self, program_id: uuid.UUID) -> None:
        try:
            await self.refresh(program_id)
        except (asyncpg.PostgresError, OSError):
            log.exception("zone refresh failed for program %s; the ping path will retry",
                          program_id)

    async def stop(self) -> None:
        self._stopping = True
        for task in list(self._tasks):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._listener is not None:
            # bounded: over a silent partition a graceful close would wait for ever
            with contextlib.suppress(TimeoutError):
                await self._listener.close(timeout=self._heartbeat_timeout_s)
            self._listener = None
