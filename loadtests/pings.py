"""Ping ingestion under load (PERFORMANCE.md target 2), open loop, against a real server.

    python -m loadtests.pings [--start 200] [--duration 6] [--workers 1 2] [--members 12000]
                              [--campaigns 4]

Starts a throwaway embedded PostgreSQL with fsync on and pg_stat_statements (or uses
DATABASE_URL), migrates it and seeds one program with `--zones` store zones from the
PERFORMANCE.md workload (`loadtests/workload.py`: clustered around ~50 European cities, 80%
circles, 20% polygons, overlapping), N members with current `location_offers` consent,
each with an access token, and `--campaigns` active drive-to-store campaigns (default: the
realistic set of four in `loadtests/campaigns.py`, enter and dwell triggers, every store or a
subset, one budget that runs out; 0 = none, the workload of the earlier figures), so that
batches in or near a store take the locked transaction and plan offers, as PERFORMANCE.md
target 2 says. Then it starts `uvicorn api.app:create_app --factory` with 1 and
then 2 workers and offers `POST /v1/me/pings` with batches of `--batch` pings at fixed
arrival rates (`loadtests/openloop.py`: Poisson arrivals, latency from the intended send
time), stepping the rate up until p99 exceeds 100 ms or a request fails.

Each member moves on a realistic track: it stays a few minutes at a store (GPS jitter up
to 30 m from the zone's centre), travels at 6-12 m/s to one of the stores nearest to it, stays
there, and so on, one fix every `--interval` seconds (accuracy 5-40 m), so visits open, reach
dwell and close. A member's batches are sent one after another (one request in flight per
member), many members at once; its clock starts 50 minutes in the past (the server refuses
pings older than an hour) and a member whose next batch would be in the future retires.

Printed per step: offered and answered batches/s, pings/s, p50/p99/max latency, CPU ms per
request of the server, PostgreSQL and the generator, PostgreSQL statements per request,
which way the batches went (one statement, two trips, locked; offers planned) and the offers
issued per second and per 100 batches; per worker count the highest rate that held the
target, with the most frequent statements. After each worker count it checks the database
against what the server answered: every `enter` answered is one visit row, every `exit` one
closed visit, every member that sent a ping has its last position stored, no answer was a
5xx, and the offers checks of `loadtests/campaigns.py` (each offer answered stored once,
budgets held, one offer per campaign per visit). Results and plot: `loadtests/report.py`.
"""

from __future__ import annotations

import argparse
import math
import os
import random
import sys
import tempfile
import time
import urllib.request
import uuid
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import msgspec
import numpy as np

from geo.zones import M_PER_DEG, Circle
from loadtests import campaigns, workload
from loadtests.common import (
    CpuMeter,
    Http,
    LockWaits,
    Statements,
    connect_migrated,
    database,
    header_lines,
    insert_members,
    insert_program,
    new_keys,
    run,
    server,
    token_service,
)
from loadtests.openloop import Plan, Run, Send, Step, Target, series
from loadtests.report import save

START_AGO_S = 3000.0  # a member's clock starts this far in the past (max ping age: 3600 s)
NEIGHBOURS = 8  # a member's next store is one of the nearest stores to the current one


# --- seeding -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Store:
    lon: float
    lat: float
    radius_m: float


async def seed(dsn: str, zones: int, members: int, campaign_count: int, rng: random.Random
               ) -> tuple[uuid.UUID, list[Store], list[uuid.UUID]]:
    """A program with `zones` store zones, `members` consenting members and
    `campaign_count` active campaigns (`loadtests/campaigns.py`)."""
    conn = await connect_migrated(dsn)
    try:
        pid = await insert_program(conn)
        shapes = workload.zones(zones)
        store_ids = [uuid.uuid4() for _ in shapes]
        await conn.executemany(  # one row at a time: the trigger versions every zone
            "INSERT INTO stores (id, program_id, code, name, zone) VALUES ($1, $2, $3, $4,"
            " $5::jsonb)",
            [(store_ids[i], pid, f"S{i}", f"Store {i}",
              msgspec.json.encode(z, enc_hook=float).decode())  # numpy floats
             for i, z in enumerate(shapes)])
        ids = [m for m, _ in await insert_members(conn, pid, members)]
        await conn.copy_records_to_table(
            "member_consents", columns=["member_id", "purpose", "granted", "policy_version",
                                        "source"],
            records=[(m, "location_offers", True, "2025-01", "app") for m in ids])
        await campaigns.seed(conn, pid, store_ids, ids, count=campaign_count, rng=rng)
        stores = [Store(float(z.center[0]), float(z.center[1]), z.radius_m) for z in shapes
                  if isinstance(z, Circle)]
        return pid, stores, ids
    finally:
        await conn.close()


def neighbours(stores: list[Store]) -> list[list[int]]:
    """For each store, the `NEIGHBOURS` nearest others (equirectangular metres)."""
    lon = np.array([s.lon for s in stores])
    lat = np.array([s.lat for s in stores])
    kx = M_PER_DEG * np.cos(np.radians(lat))
    out = []
    for i in range(len(stores)):
        d2 = ((lon - lon[i]) * kx[i]) ** 2 + ((lat - lat[i]) * M_PER_DEG) ** 2
        d2[i] = np.inf
        out.append([int(j) for j in np.argsort(d2)[:NEIGHBOURS]])
    return out


# --- members on the move -----------------------------------------------------------------------


class Member:
    """One member's track: stay at a store, travel to a neighbour, stay, ... (see module doc)."""

    def __init__(self, member_id: uuid.UUID, token: str, *, stores: list[Store],
                 near: list[list[int]], rng: random.Random, start: float,
                 interval: float) -> None:
        self.id = member_id
        self.auth = header_lines({"Authorization": f"Bearer {token}",
                                  "Content-Type": "application/json"})
        self.stores, self.near, self.rng, self.interval = stores, near, rng, interval
        self.t = start + rng.uniform(0, interval)
        self.at = rng.randrange(len(stores))
        s = stores[self.at]
        self.lon, self.lat = s.lon, s.lat
        self.target: int | None = None  # travelling to this store, else staying at `at`
        self.left = rng.uniform(0, 600)  # seconds left of the current stay
        self.speed = 0.0

    def _fix(self) -> dict[str, object]:
        store = self.stores[self.at]
        if self.target is None:  # staying: jitter within the zone
            self.left -= self.interval
            r = min(store.radius_m * 0.5, 30.0) * math.sqrt(self.rng.random())
            a = self.rng.uniform(0, 2 * math.pi)
            kx = M_PER_DEG * math.cos(math.radians(store.lat))
            lon, lat = store.lon + r * math.cos(a) / kx, store.lat + r * math.sin(a) / M_PER_DEG
            if self.left <= 0:
                self.target = self.rng.choice(self.near[self.at])
                self.speed = self.rng.uniform(6, 12)
                self.lon, self.lat = lon, lat
        else:  # travelling in a straight line
            goal = self.stores[self.target]
            kx = M_PER_DEG * math.cos(math.radians(self.lat))
            dx, dy = (goal.lon - self.lon) * kx, (goal.lat - self.lat) * M_PER_DEG
            dist = math.hypot(dx, dy)
            step = self.speed * self.interval
            if dist <= step:
                self.lon, self.lat, self.at, self.target = goal.lon, goal.lat, self.target, None
                self.left = self.rng.uniform(120, 900)
            else:
                self.lon += dx / dist * step / kx
                self.lat += dy / dist * step / M_PER_DEG
            lon, lat = self.lon, self.lat
        fix = {"lat": lat, "lon": lon, "accuracy_m": self.rng.uniform(5, 40),
               "at": datetime.fromtimestamp(self.t, UTC)}
        self.t += self.interval
        return fix

    def batch(self, size: int) -> bytes:
        return msgspec.json.encode({"pings": [self._fix() for _ in range(size)]})


# --- the workload ------------------------------------------------------------------------------


class VisitOut(msgspec.Struct):
    event: str


class OfferOut(msgspec.Struct):
    id: uuid.UUID


class PingsOut(msgspec.Struct):
    visits: list[VisitOut]
    offers: list[OfferOut]
    accepted: int
    ignored: dict[str, int]


_answer = msgspec.json.Decoder(PingsOut)


@dataclass
class Stats:
    """Every answer, across warm-up and steps (for the checks)."""

    statuses: dict[int, int] = field(default_factory=dict)
    pings: int = 0  # sent in requests answered 200
    accepted: int = 0
    ignored: dict[str, int] = field(default_factory=dict)
    events: dict[str, int] = field(default_factory=dict)
    retired: int = 0
    active: set[uuid.UUID] = field(default_factory=set)  # members with an accepted ping
    offers: list[uuid.UUID] = field(default_factory=list)  # every offer answered, in order


class Batches:
    """The ping workload: the next free member's next batch. A member is held from the moment
    its batch is built until the answer (its batches arrive in order, one in flight) and
    retires when its clock would pass the present. `prepare(n)` builds the next `n` batches
    ahead, between steps, so that building them costs the generator no CPU during a step (a
    member's track does not depend on the server's answers)."""

    def __init__(self, members: deque[Member], stats: Stats, batch: int) -> None:
        self.members, self.stats, self.size = members, stats, batch
        self.ready: deque[tuple[Member, bytes]] = deque()

    def prepare(self, count: int) -> None:
        while len(self.ready) < count and self.members:
            m = self.members.popleft()
            self.ready.append((m, m.batch(self.size)))

    def __call__(self) -> Send | None:
        if self.ready:
            m, body = self.ready.popleft()
        elif self.members:
            m = self.members.popleft()
            body = m.batch(self.size)
        else:
            return None
        stats, size = self.stats, self.size

        async def send(http: Http) -> str | None:
            try:
                status, raw = await http.request("POST", "/v1/me/pings", m.auth, body)
            finally:
                if m.t + m.interval * size < time.time() + 30:
                    self.members.append(m)
                else:
                    stats.retired += 1
            stats.statuses[status] = stats.statuses.get(status, 0) + 1
            if status != 200:
                return f"HTTP {status}"
            out = _answer.decode(raw)
            stats.pings += size
            stats.accepted += out.accepted
            if out.accepted:
                stats.active.add(m.id)
            for reason, n in out.ignored.items():
                stats.ignored[reason] = stats.ignored.get(reason, 0) + n
            for v in out.visits:
                stats.events[v.event] = stats.events.get(v.event, 0) + 1
            stats.offers.extend(o.id for o in out.offers)
            return None

        return send


# --- which way the batches went ---------------------------------------------------------------

ONE_TRIP = "WITH ctx AS ("  # geo/pings_repo.ONE_TRIP, as pg_stat_statements shows it
REMEMBERED = "WITH memory AS ("  # geo/pings_repo.ONE_TRIP_REMEMBERED
WRITE = "WITH geo AS ("  # geo/pings_repo.WRITE: the write of a batch that fell back
LOCKED = "SELECT 1 FROM members WHERE id = $1 FOR UPDATE"  # the locked transaction's lock
FACTS = "SELECT w.tier,"  # geo/issuance_repo.FACTS: a locked batch with campaigns to plan


def paths(s: Step) -> None:
    """Which way the step's batches went, from pg_stat_statements: every batch of this
    workload writes (its pings are all usable), so one not written by the one-trip statement
    is written by the two-trip path's write (the locked transaction uses it too)."""
    if s.statements is None:  # the warm-up, or no pg_stat_statements
        return

    def per_request(prefix: str) -> float:
        return float(sum(t["calls_per_request"] for t in s.top_statements
                         if t["query"].startswith(prefix)))

    s.extra["one_trip_tried_pct"] = 100 * (per_request(ONE_TRIP) + per_request(REMEMBERED))
    s.extra["remembered_tried_pct"] = 100 * per_request(REMEMBERED)
    s.extra["fell_back_pct"] = 100 * per_request(WRITE)
    s.extra["one_trip_pct"] = max(0.0, 100 - s.extra["fell_back_pct"])
    s.extra["locked_pct"] = 100 * per_request(LOCKED)
    s.extra["planned_pct"] = 100 * per_request(FACTS)
    print(f"  batches: {s.extra['one_trip_pct']:.1f}% in one statement (tried for "
          f"{s.extra['one_trip_tried_pct']:.1f}%, from the worker's memory for "
          f"{s.extra['remembered_tried_pct']:.1f}%), {s.extra['fell_back_pct']:.1f}% written "
          f"by the two-trip path, {s.extra['locked_pct']:.1f}% locked (offers planned for "
          f"{s.extra['planned_pct']:.1f}%)", flush=True)


class StepFigures:
    """`on_step`: `paths`, and the offers answered in the step, per second and per 100
    batches (from the answers: a step waits for all of its own)."""

    def __init__(self, stats: Stats) -> None:
        self.stats, self.seen = stats, 0

    def __call__(self, s: Step) -> None:
        paths(s)
        n = len(self.stats.offers) - self.seen
        self.seen += n
        if s.statements is None or not s.ok:  # the warm-up's figures count for nothing
            return
        s.extra["offers_per_s"] = n / s.seconds
        s.extra["offers_per_100_batches"] = 100 * n / s.ok
        print(f"  offers: {n} issued, {s.extra['offers_per_s']:.1f}/s, "
              f"{s.extra['offers_per_100_batches']:.2f} per 100 batches", flush=True)


def memory_hits(port: int, run: Run) -> None:
    """How often a batch found its member in the worker's memory (`geo/pings_memory.py`), over
    the whole run (warm-up included), from the server's /metrics; kept in the last step."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
        text = r.read().decode()
    prefix = 'pings_memory_total{outcome="'
    seen = {}
    for line in text.splitlines():
        if line.startswith(prefix):
            outcome, value = line[len(prefix):].split('"} ')
            seen[outcome] = float(value)
    if not seen or not run.steps:
        return  # the one-trip path is off
    hit, idle, miss, stale = (seen.get(k, 0.0) for k in ("hit", "idle", "miss", "stale"))
    run.steps[-1].extra.update(memory_hit=hit, memory_idle=idle, memory_miss=miss,
                               memory_stale=stale)
    total = max(1.0, hit + idle + miss)
    print(f"  worker memory (whole run, {total:.0f} batches): {100 * hit / total:.1f}% found "
          f"their member with a visit open ({100 * stale / max(1.0, hit):.1f}% of those stale:"
          f" another worker wrote since), {100 * idle / total:.1f}% with none open, "
          f"{100 * miss / total:.1f}% not remembered", flush=True)


# --- checks ------------------------------------------------------------------------------------

CHECK = """
SELECT (SELECT count(*) FROM visits WHERE program_id = $1) AS visits,
       (SELECT count(*) FROM visits WHERE program_id = $1 AND exited_at IS NOT NULL) AS closed,
       (SELECT count(*) FROM visits WHERE program_id = $1 AND dwell_at IS NOT NULL) AS dwelt,
       (SELECT count(*) FROM member_geo_state g JOIN members m ON m.id = g.member_id
         WHERE m.program_id = $1) AS located
"""


async def verify(dsn: str, program_id: uuid.UUID, stats: Stats) -> list[str]:
    import asyncpg

    events, active = stats.events, stats.active
    problems: list[str] = []
    if fives := sum(n for s, n in stats.statuses.items() if s >= 500):
        problems.append(f"{fives} answers were 5xx")
    conn = await asyncpg.connect(dsn)
    try:
        row = await conn.fetchrow(CHECK, program_id)
        problems += await campaigns.verify(conn, program_id, stats.offers)
    finally:
        await conn.close()
    assert row is not None
    print(f"visits: {row['visits']} opened ({row['dwelt']} reached dwell, {row['closed']} "
          f"closed); events answered: {events}; members located: {row['located']}")
    if row["visits"] != events.get("enter", 0):
        problems.append(f"{events.get('enter', 0)} enters answered, {row['visits']} visits")
    if row["closed"] != events.get("exit", 0):
        problems.append(f"{events.get('exit', 0)} exits answered, {row['closed']} closed")
    if row["dwelt"] != events.get("dwell", 0):
        problems.append(f"{events.get('dwell', 0)} dwells answered, {row['dwelt']} dwelt")
    if row["located"] != len(active):
        problems.append(f"{len(active)} members sent pings, {row['located']} located")
    if not row["visits"] or not row["closed"]:
        problems.append("the workload opened or closed no visit")
    return problems


async def main_async(args: argparse.Namespace) -> int:
    rng = random.Random(args.seed)
    target = Target(p99_ms=args.p99_ms, rate=60_000, unit="pings/s", per_request=args.batch)
    plan = Plan(start=args.start, duration=args.duration, max_steps=args.max_steps)
    with tempfile.TemporaryDirectory(prefix="pings-load-") as tmp, database() as db:
        data_dir = Path(tmp)
        keys = new_keys(data_dir)
        t0 = time.perf_counter()
        program_id, stores, ids = await seed(db.dsn, args.zones, args.members,
                                             args.campaigns, random.Random(args.seed))
        tokens = token_service(keys)
        near = neighbours(stores)
        start = time.time() - START_AGO_S
        members = deque(
            Member(m, tokens.mint_access(sub=m, role="member", program_id=program_id),
                   stores=stores, near=near, rng=random.Random(rng.random()), start=start,
                   interval=args.interval)
            for m in ids)
        print(f"seeded {args.zones} zones, {args.members} members and {args.campaigns} "
              f"active campaigns in "
              f"{time.perf_counter() - t0:.1f} s (PostgreSQL: {db.where}); open loop, Poisson "
              f"arrivals from {plan.start:g} batches/s, batches of {args.batch} pings, "
              f"{plan.duration:g} s per step, p99 target {target.p99_ms:g} ms")
        stats = Stats()
        make = Batches(members, stats, args.batch)
        figures = StepFigures(stats)
        statements = await Statements.connect(db.dsn)
        locks = await LockWaits.connect(db.dsn)
        runs: list[Run] = []
        problems: list[str] = []
        try:
            for i, workers in enumerate(args.workers):
                metrics_dir = data_dir / f"metrics-{workers}"  # /metrics sums the workers
                metrics_dir.mkdir()
                with server(db.dsn, keys, workers, data_dir,
                            env={"PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)}) as srv:
                    runs.append(await series(
                        srv.port, make, workers=workers, plan=plan, target=target, rng=rng,
                        cpu=CpuMeter(server=srv.pid, postgres=db.pid, client=os.getpid()),
                        statements=statements, locks=locks, on_step=figures, header=i == 0,
                        prepare=make.prepare))
                    memory_hits(srv.port, runs[-1])
                    if any(code >= 500 for code in stats.statuses):
                        print(f"server errors ({workers} workers):\n{srv.errors()}")
                if not members and not make.ready:
                    print("every member's clock reached the present: raise --members")
                problems = await verify(db.dsn, program_id, stats)  # after each worker count
                if problems:
                    break
        finally:
            await statements.close()
            await locks.close()
        print(f"pings: {stats.pings} sent, {stats.accepted} accepted, ignored {stats.ignored}; "
              f"answers {dict(sorted(stats.statuses.items()))}")
        save("pings", target, runs, settings=vars(args), database=db.where, problems=problems)
        if problems:
            print("CHECK FAILED:\n  " + "\n  ".join(problems))
            return 1
        print("check: every enter answered is a visit row, every exit a closed visit, every "
              "dwell a dwelt visit; every member that sent a ping is located; no 5xx; every "
              "offer answered is stored once, each campaign within its budget and at most one "
              "offer per campaign per visit")
    return 0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--start", type=float, default=200.0, help="first offered rate, batches/s")
    p.add_argument("--duration", type=float, default=6.0, help="seconds per step")
    p.add_argument("--max-steps", type=int, default=8, help="steps per worker count")
    p.add_argument("--p99-ms", type=float, default=100.0, help="the p99 target")
    p.add_argument("--members", type=int, default=12000)
    p.add_argument("--zones", type=int, default=1000)
    p.add_argument("--batch", type=int, default=50, help="pings per request")
    p.add_argument("--interval", type=float, default=5.0, help="seconds between fixes")
    p.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--campaigns", type=int, default=campaigns.REALISTIC,
                   help="active campaigns (loadtests/campaigns.py); 0 = none")
    return run(main_async(p.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
