"""What each statement of a ping batch costs PostgreSQL (not a pass/fail test).

    .venv/bin/python tests/bench/bench_pings_statements.py [--calls 2000] [--rounds 3]

On a throwaway embedded PostgreSQL (fsync on, pg_stat_statements), members each with a last
ping and a visit open in a store; one connection sends, for a batch of 50 pings in that store
(the same speculation as `geo.pings_service`, `--calls` members per kind, each once):
- read: `READ_CONTEXT`, the two-trip path's read;
- refused, from the empty state: `ONE_TRIP` for a member with a visit open (it writes nothing);
- refused, from memory: `ONE_TRIP_REMEMBERED` with a stale version (it writes nothing);
- done, from memory: `ONE_TRIP_REMEMBERED` that writes the batch (and commits);
- read + write: the two-trip path for the same batch (`READ_CONTEXT`, then `WRITE`).
Per call: the backend's CPU (from /proc/<pid>/schedstat: parse, bind, executor start-up and
end, commit, which pg_stat_statements' execution time leaves out) and pg_stat_statements'
execution time; medians of `--rounds` rounds, kinds interleaved.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import asyncpg

from geo import pings_repo
from geo import visits as core
from geo.issuance import CampaignCache
from geo.pings import PingRules
from geo.pings_memory import Remembered
from geo.pings_speculation import Speculation, speculate
from geo.registry import ZoneRegistry
from geo.visits_repo import decode_open_visits
from loadtests.common import connect_migrated, database, insert_members, insert_program

RULES = PingRules(max_age_s=3600, max_future_s=60, max_accuracy_m=100, max_speed_mps=50,
                  exit_after_s=120, dwell_s=300, lost_after_s=3600, raw_retention_s=0)
KINDS = ["read", "refused, from the empty state", "refused, from memory", "done, from memory",
         "read + write"]


async def _seed(conn: asyncpg.Connection, count: int) -> tuple[uuid.UUID, list[uuid.UUID]]:
    pid = await insert_program(conn)
    store = uuid.uuid4()
    await conn.execute(
        "INSERT INTO stores (id, program_id, code, name, zone) VALUES ($1, $2, 'S', 'S', $3)",
        store, pid, json.dumps({"type": "Circle", "center": [2.35, 48.85], "radius_m": 100}))
    members = [m for m, _ in await insert_members(conn, pid, count)]
    await conn.copy_records_to_table(
        "member_consents", columns=["member_id", "purpose", "granted", "policy_version",
                                    "source"],
        records=[(m, "location_offers", True, "v1", "app") for m in members])
    at = datetime.now(UTC) - timedelta(seconds=100)
    await conn.copy_records_to_table(
        "member_geo_state", columns=["member_id", "last_ping_at", "last_lat", "last_lon"],
        records=[(m, at, 48.85, 2.35) for m in members])
    await conn.copy_records_to_table(
        "visits", columns=["id", "member_id", "program_id", "store_id", "entered_at",
                           "last_seen_at"],
        records=[(uuid.uuid4(), m, pid, store, at - timedelta(seconds=60), at)
                 for m in members])
    await conn.execute("VACUUM ANALYZE")
    return pid, members


def _backend_ns(pid: int) -> int:
    return int(Path(f"/proc/{pid}/schedstat").read_text().split()[0])


async def main(calls: int, rounds: int) -> None:
    with database() as db:
        admin = await connect_migrated(db.dsn)
        await admin.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        pid, members = await _seed(admin, calls * len(KINDS) * rounds)
        conn = await asyncpg.connect(db.dsn, server_settings={"timezone": "UTC"})
        pool = await asyncpg.create_pool(db.dsn, min_size=1, max_size=1)
        zones, campaigns = ZoneRegistry(pool), CampaignCache()
        async with pool.acquire() as c:
            snapshot = await zones.current(pid, 0, c)
            head = await campaigns.current(c, pid, 0)
        assert head is not None
        now = datetime.now(UTC)
        batch = [core.Ping(lon=2.35, lat=48.85, accuracy_m=10.0,
                           at=now - timedelta(seconds=50 - i)) for i in range(50)]

        async def decided(m: uuid.UUID, kind: str) -> Speculation:
            memory = None
            if "memory" in kind or kind == "read + write":
                ctx = await admin.fetchrow(pings_repo.READ_CONTEXT, m, None, None)
                assert ctx is not None
                memory = Remembered(
                    program_id=pid, version="1" if "refused" in kind else ctx["geo_version"],
                    last=core.Ping(at=ctx["last_ping_at"], lat=ctx["last_lat"],
                                   lon=ctx["last_lon"], accuracy_m=0.0),
                    open_visits=tuple(decode_open_visits(ctx["open_visits"])))
            return speculate(snapshot, batch, now=now, rules=RULES, program_id=pid,
                             campaigns_version=head.version, memory=memory)

        async def send(m: uuid.UUID, kind: str, spec: Speculation) -> None:
            if kind == "read":
                await conn.fetchrow(pings_repo.READ_CONTEXT, m, None, None)
            elif kind == "read + write":
                ctx = await conn.fetchrow(pings_repo.READ_CONTEXT, m, None, None)
                assert ctx is not None
                await pings_repo.write(conn, m, pid, spec.tracks, spec.accepted,
                                       version=ctx["geo_version"])
            else:
                row = await pings_repo.one_trip(conn, m, spec, max_speed_mps=50, now=now,
                                                idem=None, response=b"")
                assert row is not None and row["done"] == kind.startswith("done"), kind

        backend = conn.get_server_pid()
        cpu: dict[str, list[float]] = {k: [] for k in KINDS}
        exec_us: dict[str, list[float]] = {k: [] for k in KINDS}
        left = iter(members)
        for _ in range(rounds):
            for kind in KINDS:
                todo = [(m, await decided(m, kind)) for m in (next(left) for _ in range(calls))]
                for m, spec in todo[:20]:  # prepared, planned (generic after five)
                    await send(m, kind, spec)
                await admin.execute("SELECT pg_stat_statements_reset()")
                start = _backend_ns(backend)
                for m, spec in todo[20:]:
                    await send(m, kind, spec)
                cpu[kind].append((_backend_ns(backend) - start) / 1000 / (calls - 20))
                total: Any = await admin.fetchval(
                    "SELECT sum(total_exec_time) FROM pg_stat_statements WHERE toplevel"
                    " AND query NOT LIKE '%pg_stat_statements%'")
                exec_us[kind].append(1000 * float(total) / (calls - 20))
        print(f"{calls - 20} calls per kind x {rounds} rounds, one connection, fsync on")
        print(f"{'kind':<32} {'backend CPU µs':>15} {'exec µs (pg_stat_statements)':>30}")
        for kind in KINDS:
            print(f"{kind:<32} {statistics.median(cpu[kind]):>15.1f} "
                  f"{statistics.median(exec_us[kind]):>30.1f}")
        await pool.close()
        await conn.close()
        await admin.close()


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--calls", type=int, default=2000)
    p.add_argument("--rounds", type=int, default=3)
    a = p.parse_args()
    asyncio.run(main(a.calls, a.rounds))
