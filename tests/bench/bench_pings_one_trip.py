"""What a ping batch costs in one statement against the two-trip path (not a pass/fail test).

    .venv/bin/python tests/bench/bench_pings_one_trip.py [--batches 400] [--rounds 5] [--workers 1]

On a throwaway embedded PostgreSQL with fsync on, the ping load test's world
(`loadtests/pings.py`: 1,000 store zones around European cities, members staying at stores
and travelling between them, a fix every 5 s, batches of 50): batches go through the ping
service (`geo.pings_service.ingest_batch`, one pooled connection, sequential, no HTTP) in
alternating blocks (ABBA) with the program id of the member's token and the worker's memory
of what it wrote (the one-trip path, as the API runs it) and without them (the two-trip
path: read, then the self-committing write). Each path has its own members, twins sending
the same tracks, so both see the same batches from members with a history (open visits, a
last ping). Per batch: wall time, this process's CPU (the service, the pure cores, asyncpg),
the CPU of the PostgreSQL backend serving the connection (from /proc) and statements sent;
medians of the rounds, the ratio one-trip / two-trip measured in the same run, and the share
of batches the one-trip statement was tried for and wrote. `--workers N`: the one-trip path
keeps N workers' memories and each batch goes to one of them at random, as a member's batches
land on either worker behind one listening socket (what each worker remembers is then stale or
missing for some batches).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
import asyncpg
import msgspec

from api.runtime.embedded_pg import EmbeddedPostgres
from geo import pings_repo
from geo.issuance import CampaignCache, IssueSettings
from geo.pings import Ping, PingRules
from geo.pings_memory import MemberMemory
from geo.pings_service import ingest_batch
from geo.registry import ZoneRegistry
from loadtests.common import cpu_seconds
from loadtests.pings import START_AGO_S, Member, neighbours, seed
from wallet.kernel.db import keep_session

RULES = PingRules(max_age_s=3600, max_future_s=60, max_accuracy_m=100, max_speed_mps=50,
                  exit_after_s=120, dwell_s=300, lost_after_s=3600, raw_retention_s=0)
ISSUING = IssueSettings(weather_max_age_s=3600, push_enabled=False)


class _Fix(msgspec.Struct):
    lat: float
    lon: float
    accuracy_m: float
    at: datetime


class _Batch(msgspec.Struct):
    pings: list[_Fix]


_decode = msgspec.json.Decoder(_Batch).decode




class Counts:
    def __init__(self) -> None:
        self.statements = self.done = self.tried = 0


async def _block(pool: asyncpg.Pool, backend: int, members: list[Member], n: int,
                 program_id: uuid.UUID | None, zones: ZoneRegistry, campaigns: CampaignCache,
                 counts: Counts, memories: list[MemberMemory] | None = None
                 ) -> tuple[float, float, float, float]:
    """(wall µs, client CPU µs, backend CPU µs, statements) per batch of one block."""
    batches = []
    for i in range(n):  # built before the clock starts: the generator is not measured
        m = members[i % len(members)]
        raw = _decode(m.batch(50))
        batches.append((m.id, [Ping(lon=f.lon, lat=f.lat, accuracy_m=f.accuracy_m,
                                    at=f.at.astimezone(UTC)) for f in raw.pings]))
    sent = counts.statements
    wall, cpu, pg = time.perf_counter(), time.process_time(), cpu_seconds([backend])
    for member_id, pings in batches:
        memory = memories[WORKER.randrange(len(memories))] if memories else None
        await ingest_batch(pool, member_id, pings, registry=zones, campaigns=campaigns,
                           rules=RULES, issuing=ISSUING, now=datetime.now(UTC), idem=None,
                           program_id=program_id, memory=memory)
    return ((time.perf_counter() - wall) / n * 1e6, (time.process_time() - cpu) / n * 1e6,
            (cpu_seconds([backend]) - pg) / n * 1e6, (counts.statements - sent) / n)


WORKER = random.Random(7)  # which worker's memory each batch meets


async def main(batches: int, rounds: int, members: int, workers: int) -> None:
    with EmbeddedPostgres(fsync=True) as pg:
        program_id, stores, ids = await seed(pg.dsn, 1000, 2 * members, 0, random.Random(1))
        near, rng = neighbours(stores), random.Random(1)
        # Members start 50 minutes back and send one batch (250 s) per turn: a round of
        # `batches` on `members` members stays in the past for rounds * batches / members turns.
        start = time.time() - START_AGO_S
        seeds = [rng.random() for _ in range(members)]  # twins: the same tracks on each path

        def crowd(ids: list[uuid.UUID]) -> list[Member]:
            return [Member(m, "", stores=stores, near=near, rng=random.Random(seed),
                           start=start, interval=5.0) for m, seed in zip(ids, seeds, strict=True)]

        counts = Counts()

        def logged(_: Any) -> None:
            counts.statements += 1

        async def init(conn: asyncpg.Connection) -> None:
            conn.add_query_logger(logged)

        one_trip = pings_repo.one_trip

        async def counted(*args: Any, **kwargs: Any) -> asyncpg.Record | None:
            row = await one_trip(*args, **kwargs)
            counts.tried += 1
            counts.done += bool(row is not None and row["done"])
            return row

        pings_repo.one_trip = counted  # type: ignore[assignment]
        pool = await asyncpg.create_pool(pg.dsn, min_size=1, max_size=1, init=init,
                                         reset=keep_session)
        async with pool.acquire() as c:
            backend = c.get_server_pid()
        zones, campaigns = ZoneRegistry(pool), CampaignCache()
        paths = {"one trip": (program_id, crowd(ids[:members])),
                 "two trips": (None, crowd(ids[members:]))}
        memory = [MemberMemory() for _ in range(workers)]  # the one-trip path's, per worker
        for pid, who in paths.values():  # warm up: prepared statements, zones, campaigns
            await _block(pool, backend, who, min(100, batches), pid, zones, campaigns, counts,
                         memory if pid else None)
        got: dict[str, list[tuple[float, float, float, float]]] = {name: [] for name in paths}
        counts.done = counts.tried = 0
        for i in range(rounds):  # ABBA: a drift over the run (caches, tracks) favours neither
            for name, (pid, who) in list(paths.items())[::1 if i % 2 == 0 else -1]:
                got[name].append(await _block(pool, backend, who, batches, pid, zones,
                                              campaigns, counts, memory if pid else None))
        medians = {name: [statistics.median(r[i] for r in rows) for i in range(4)]
                   for name, rows in got.items()}
        print(f"{batches} batches of 50 pings x {rounds} rounds per path ({members} members "
              f"each, {workers} worker memories), sequential, fsync on; load average "
              f"{os.getloadavg()[0]:.1f}")
        print(f"{'path':<10} {'wall µs':>9} {'client CPU µs':>14} {'PostgreSQL CPU µs':>18}"
              f" {'statements':>11}")
        for name, (wall, cpu, pgcpu, stmts) in medians.items():
            print(f"{name:<10} {wall:>9.0f} {cpu:>14.0f} {pgcpu:>18.0f} {stmts:>11.2f}")
        one, two = medians["one trip"], medians["two trips"]
        print("ratio one/two: " + ", ".join(
            f"{label} {a / b:.2f}" for label, a, b in zip(
                ("wall", "client CPU", "PostgreSQL CPU"), one, two, strict=False)))
        total = rounds * batches
        print(f"one-trip statement: tried for {counts.tried} of {total} batches "
              f"({counts.tried / total:.0%}; the others' member had a visit open), wrote "
              f"{counts.done} ({counts.done / total:.0%}), the rest fell back")
        await pool.close()


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--batches", type=int, default=400)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--members", type=int, default=300, help="per path")
    p.add_argument("--workers", type=int, default=1, help="worker memories (one-trip path)")
    a = p.parse_args()
    asyncio.run(main(a.batches, a.rounds, a.members, a.workers))
