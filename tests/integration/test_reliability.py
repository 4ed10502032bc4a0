"""Faults under load (issue 14): a till load with retries on the same keys, a fault in the
middle, and the ledger checked after it — nothing acknowledged lost, nothing doubled, every
balance the sum of its entries. Also two `loyalty serve` nodes on one PostgreSQL.

Each test waits on what it can observe (purchases acknowledged, backends waiting on a lock,
a worker's log line), never on a timer; only the outage's length is a duration. Figures are
printed at the end of the run (`support.figures`; quoted in the README's Reliability section).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx
import pytest
from support.campaign_helpers import campaign_body
from support.faults import Serve, TillLoad, ledger_check, serve_env, until, wait_gone
from support.figures import Figures
from support.realserver import free_port

from api.runtime.embedded_pg import EmbeddedPostgres, running_dsn
from api.runtime.launcher import METRICS_PREFIX
from api.runtime.pg_host import PRIVATE_PREFIX
from api.runtime.scratch import OWNER_FILE
from loadtests.common import new_keys, token_service
from loadtests.till import Card, seed
from migrations.runner import migrate

pytestmark = pytest.mark.slow
OUTAGE_S = 3.0
MEMBERS = 40
TEMPLATE = "faults_template"


@pytest.fixture(scope="module")
def open_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="faults-"))
    path.chmod(0o755)  # the server user must enter it
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module")
def fault_pg(open_dir: Path) -> Iterator[EmbeddedPostgres]:
    """A PostgreSQL of its own (the tests stop it), on a fixed port so it comes back there."""
    pg = EmbeddedPostgres(open_dir / "pg", fsync=False, port=free_port())
    pg.start()

    async def template() -> None:
        conn = await asyncpg.connect(pg.dsn)
        try:
            await conn.execute(f'CREATE DATABASE "{TEMPLATE}"')
        finally:
            await conn.close()
        await migrate(database(pg.dsn, TEMPLATE))

    asyncio.run(template())
    yield pg
    pg.stop()


class Rig:
    def __init__(self, dsn: str, data_dir: Path) -> None:
        self.dsn, self.data_dir = dsn, data_dir
        self.keys = new_keys(data_dir)
        self.servers: list[Serve] = []

    async def seed(self) -> tuple[uuid.UUID, uuid.UUID, list[Card], str]:
        program_id, store_id, cards = await seed(self.dsn, MEMBERS)
        token = token_service(self.keys).mint_access(
            sub=uuid.uuid4(), role="staff", program_id=program_id, store_ids=[store_id])
        return program_id, store_id, cards, token

    def serve(self, *, workers: int = 2, dsn: str | None = "", port: int | None = None,
              env: dict[str, str] | None = None, extra: tuple[str, ...] = ()) -> Serve:
        node = Serve(port or free_port(), {**serve_env(self.dsn if dsn == "" else dsn,
                                                       self.keys, self.data_dir), **(env or {})},
                     self.data_dir / f"serve-{len(self.servers)}.log", workers=workers,
                     extra=extra)
        self.servers.append(node)
        node.wait_ready()
        return node


def database(dsn: str, name: str) -> str:
    return urlunsplit(urlsplit(dsn)._replace(path=f"/{name}"))


@pytest.fixture
async def rig(fault_pg: EmbeddedPostgres, tmp_path: Path) -> AsyncIterator[Rig]:
    """A fresh database (card numbers are unique server-wide) and the nodes started on it."""
    tmp_path.chmod(0o755)
    name = f"f_{uuid.uuid4().hex[:12]}"
    conn = await asyncpg.connect(fault_pg.dsn)
    try:
        await conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{TEMPLATE}"')
    finally:
        await conn.close()
    rig = Rig(database(fault_pg.dsn, name), tmp_path)
    try:
        yield rig
    finally:
        for node in rig.servers:
            node.stop()


def clean(result: dict[str, int]) -> bool:
    return result == {"lost": 0, "doubled": 0, "unbalanced": 0, "unacknowledged": 0}


async def test_a_worker_killed_with_kill_9_loses_and_doubles_nothing(rig: Rig,
                                                                   figures: Figures) -> None:
    program_id, store_id, cards, token = await rig.seed()
    node = rig.serve(workers=2)
    load = TillLoad([node.base], token, store_id, cards, seed=1)
    running = asyncio.ensure_future(load.run())
    await until(lambda: len(load.acked) >= 100)
    victim = node.worker_pids()[0]
    os.kill(victim, signal.SIGKILL)
    before = len(load.acked)
    await until(lambda: len(load.acked) >= before + 150)
    await until(lambda: len(node.worker_pids()) == 2 and victim not in node.worker_pids())
    load.stop.set()
    await running
    result = await ledger_check(rig.dsn, program_id, load)
    figures("kill -9 a worker", load.figures() | result)
    assert clean(result), result
    assert load.statuses[500] == 0


async def test_postgres_stopped_answers_503_with_retry_after_then_recovers(
        rig: Rig, fault_pg: EmbeddedPostgres, figures: Figures) -> None:
    program_id, store_id, cards, token = await rig.seed()
    node = rig.serve(workers=2)
    load = TillLoad([node.base], token, store_id, cards, seed=2)
    running = asyncio.ensure_future(load.run())
    await until(lambda: len(load.acked) >= 100)
    fault_pg.stop()
    await until(lambda: load.statuses[503] >= 5)
    async with httpx.AsyncClient() as client:
        ready = await client.get(f"{node.base}/ready")
    await asyncio.sleep(OUTAGE_S)  # the outage's length, not a synchronisation
    acked_during = len(load.acked)
    fault_pg.start()  # from the main thread: the server dies with the thread that starts it
    up = time.monotonic()
    async with httpx.AsyncClient() as client:  # the server's own recovery, tills aside
        for _ in range(3000):  # bounded: until /ready says the database answers
            if (await client.get(f"{node.base}/ready")).status_code == 200:
                break
        else:
            raise AssertionError("the server never said ready again")
    ready_ms = (time.monotonic() - up) * 1000
    await until(lambda: len(load.acked) > acked_during)
    recovery_ms = (time.monotonic() - up) * 1000  # tills wait out their Retry-After first
    await until(lambda: len(load.acked) >= acked_during + 100)
    # each worker's zone listener (geo.registry) connected again by itself
    await until(lambda: node.log.read_text().count("zone listener listening again") >= 2)
    load.stop.set()
    await running
    result = await ledger_check(rig.dsn, program_id, load)
    figures("PostgreSQL stopped", load.figures() | result | {
        "outage_s": OUTAGE_S, "ready_ms": round(ready_ms), "recovery_ms": round(recovery_ms)})
    assert ready.status_code == 503
    assert ready.json() == {"status": "unavailable", "database": "unreachable",
                            "pending_migrations": []}
    assert clean(result), result
    assert load.statuses[500] == 0
    assert load.statuses[503] >= 5
    assert load.retry_after_missing == 0


WAITING_ON_LOCKS = """
SELECT count(*) FROM pg_stat_activity
WHERE datname = current_database() AND wait_event_type = 'Lock'
"""


async def test_sigterm_lets_requests_in_flight_complete(rig: Rig, figures: Figures) -> None:
    program_id, store_id, cards, token = await rig.seed()
    node = rig.serve(workers=2)
    held = cards[:6]
    locker, watcher = await asyncpg.connect(rig.dsn), await asyncpg.connect(rig.dsn)
    try:
        hold = locker.transaction()
        await hold.start()
        await locker.execute("SELECT 1 FROM wallet_accounts WHERE id = ANY($1::uuid[]) "
                             "FOR UPDATE", [c.account_id for c in held])
        async with httpx.AsyncClient(timeout=60) as client:
            async def buy(card: Card, n: int) -> httpx.Response:
                return await client.post(
                    f"{node.base}/v1/pos/purchases",
                    json={"store_id": str(store_id), "card_number": card.number,
                          "receipt_id": f"inflight-{n}", "amount": 1000, "currency": "EUR"},
                    headers={"Authorization": f"Bearer {token}", "Idempotency-Key": f"f{n}"})

            in_flight = [asyncio.ensure_future(buy(c, n)) for n, c in enumerate(held)]
            for _ in range(5000):  # bounded: until every purchase waits on our lock
                if await watcher.fetchval(WAITING_ON_LOCKS) >= len(held):
                    break
            else:
                raise AssertionError("the purchases never reached the database")
            node.proc.send_signal(signal.SIGTERM)
            await until(lambda: node.output().count("Shutting down") >= node.workers)
            await hold.commit()
            answers = await asyncio.gather(*in_flight)
        assert [r.status_code for r in answers] == [201] * len(held), [r.text for r in answers]
        assert await asyncio.to_thread(node.proc.wait, 60) == 0
        recorded = await watcher.fetchval(
            "SELECT count(*) FROM transactions WHERE program_id = $1", program_id)
    finally:
        await locker.close()
        await watcher.close()
    figures("SIGTERM in flight", {"requests": len(held), "completed": len(answers)})
    assert recorded == len(held)
    log = node.log.read_text()  # answered after both workers began shutting down
    assert log.rindex("Shutting down") < log.index('"POST /v1/pos/purchases'), log


async def test_a_killed_parent_leaves_no_orphan_and_a_restart_works(
        rig: Rig, open_dir: Path, figures: Figures) -> None:
    data_dir = open_dir / "node"  # its own persistent cluster, which dies with it
    port = free_port()
    scratch = own_temp_dir(open_dir)
    env = {"LOYALTY_DATA_DIR": str(data_dir), "TMPDIR": str(scratch)}
    node = rig.serve(workers=2, dsn=None, port=port, env=env)
    dsn = running_dsn((data_dir / "pg").absolute())
    assert dsn is not None
    program_id, store_id, cards, _ = await Rig(dsn, rig.data_dir).seed()
    token = token_service(rig.keys).mint_access(
        sub=uuid.uuid4(), role="staff", program_id=program_id, store_ids=[store_id])
    load = TillLoad([node.base], token, store_id, cards, seed=4)
    running = asyncio.ensure_future(load.run())
    await until(lambda: len(load.acked) >= 100)
    workers = node.worker_pids()
    postmaster = int((data_dir / "pg" / "postmaster.pid").read_text().split()[0])
    left = (_owned_by(scratch, node.proc.pid, METRICS_PREFIX)
            + _owned_by(scratch, node.proc.pid, PRIVATE_PREFIX))
    assert len(left) == 2, left  # the metrics directory and the cluster's socket directory
    os.kill(node.proc.pid, signal.SIGKILL)
    assert await asyncio.to_thread(wait_gone, [*workers, postmaster]) == []
    assert all(d.exists() for d in left), "what a killed run leaves, until the next start"
    acked = len(load.acked)
    again = rig.serve(workers=2, dsn=None, port=port, env=env)  # the same port: no EADDRINUSE
    assert "left by killed runs" in again.output()
    assert not any(d.exists() for d in left)
    await until(lambda: len(load.acked) >= acked + 100)
    load.stop.set()
    await running
    result = await ledger_check(dsn := running_dsn((data_dir / "pg").absolute()) or "",
                                program_id, load)
    figures("parent killed", load.figures() | result)
    assert dsn
    assert clean(result), result
    assert load.statuses[500] == 0


async def test_a_killed_throwaway_run_leaves_its_cluster_only_until_the_next_start(
        rig: Rig, open_dir: Path, figures: Figures) -> None:
    """`loyalty serve --throwaway-db` initialises a cluster of its own in the temp dir (tens
    of MB). Killed with kill -9 it cannot remove it: its workers and PostgreSQL die with it,
    and the next start removes the cluster and the metrics directory it left."""
    port = free_port()
    scratch = own_temp_dir(open_dir)
    env = {"TMPDIR": str(scratch)}
    node = rig.serve(workers=2, dsn=None, port=port, env=env, extra=("--throwaway-db",))
    [cluster] = _owned_by(scratch, node.proc.pid, PRIVATE_PREFIX)
    [metrics] = _owned_by(scratch, node.proc.pid, METRICS_PREFIX)
    postmaster = int((cluster / "data" / "postmaster.pid").read_text().split()[0])
    size_mb = sum(f.stat().st_size for f in cluster.rglob("*") if f.is_file()) / 2**20
    workers = node.worker_pids()
    os.kill(node.proc.pid, signal.SIGKILL)
    assert await asyncio.to_thread(wait_gone, [*workers, postmaster]) == []
    assert cluster.is_dir() and metrics.is_dir()
    again = rig.serve(workers=2, dsn=None, port=port, env=env, extra=("--throwaway-db",))
    assert "left by killed runs" in again.output()
    still = [d for d in (cluster, metrics) if d.exists()]
    figures("throwaway run killed", {"cluster_left_mb": round(size_mb),
                                     "left_after_next_start": len(still)})
    assert still == []


def own_temp_dir(parent: Path) -> Path:
    """A temp dir (TMPDIR) for one node alone: a `loyalty serve` started meanwhile elsewhere
    (another test, another xdist worker) sweeps what a killed run leaves in the shared one,
    before the restart under test could."""
    path = Path(tempfile.mkdtemp(prefix="tmp-", dir=parent))
    path.chmod(0o755)  # the server user must enter it
    return path


def _owned_by(base: Path, pid: int, prefix: str) -> list[Path]:
    """The scratch directories (`api.runtime.scratch`) process `pid` claimed in `base`."""
    return [d for d in base.glob(f"{prefix}*")
            if (d / OWNER_FILE).is_file()
            and (d / OWNER_FILE).read_text().split()[0] == str(pid)]


# --- two nodes (two machines behind a load balancer) on one PostgreSQL ------------------------


async def _member(client: httpx.AsyncClient, base: str, program_id: uuid.UUID
                  ) -> dict[str, str]:
    version = (await client.get(f"{base}/v1/privacy/notice")).json()["version"]
    r = await client.post(f"{base}/v1/programs/{program_id}/members", json={
        "email": f"m{uuid.uuid4().hex[:10]}@example.com", "password": "a long enough password",
        "first_name": "Alex", "consents": [{"purpose": "location_offers", "granted": True,
                                            "policy_version": version}]})
    assert r.status_code == 201, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def _ping(lat: float, lon: float) -> dict[str, Any]:
    at = datetime.now(UTC).replace(microsecond=0).isoformat()
    return {"pings": [{"lat": lat, "lon": lon, "accuracy_m": 5, "at": at}]}


async def test_two_nodes_share_keys_zones_and_budgets(rig: Rig, figures: Figures) -> None:
    program_id, store_id, cards, token = await rig.seed()
    a, b = rig.serve(workers=1), rig.serve(workers=1)
    mint = token_service(rig.keys)
    boss = {"Authorization": "Bearer " + mint.mint_access(
        sub=uuid.uuid4(), role="manager", program_id=program_id)}
    async with httpx.AsyncClient(timeout=30) as client:
        # a key retried on the other node replays the first answer
        body = {"store_id": str(store_id), "card_number": cards[0].number,
                "receipt_id": "two-nodes", "amount": 1500, "currency": "EUR"}
        headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": "two-nodes"}
        first = await client.post(f"{a.base}/v1/pos/purchases", json=body, headers=headers)
        again = await client.post(f"{b.base}/v1/pos/purchases", json=body, headers=headers)
        assert (first.status_code, again.status_code) == (201, 201), again.text
        assert first.json() == again.json()

        # a zone created on A is matched on B at once (B had the program loaded before)
        member = await _member(client, a.base, program_id)
        lat, lon = 45.7640, 4.8357  # Lyon, far from the seeded store
        before = await client.post(f"{b.base}/v1/me/pings", json=_ping(lat, lon),
                                   headers=member)
        assert before.status_code == 200 and before.json()["visits"] == [], before.text
        made = await client.post(f"{a.base}/v1/programs/{program_id}/stores", headers=boss,
                                 json={"code": "LYON", "name": "Lyon", "zone": {
                                     "type": "Circle", "center": [lon, lat], "radius_m": 80}})
        assert made.status_code == 201, made.text
        after = await client.post(f"{b.base}/v1/me/pings", json=_ping(lat, lon),
                                  headers=member)
        assert [(v["store_id"], v["event"]) for v in after.json()["visits"]] == [
            (made.json()["id"], "enter")]

        # a campaign budget of 3 offers holds across both nodes
        campaign = campaign_body(store_ids=[made.json()["id"]], caps={"max_issued": 3})
        c = await client.post(f"{a.base}/v1/programs/{program_id}/campaigns", json=campaign,
                              headers=boss)
        assert c.status_code == 201, c.text
        act = await client.post(
            f"{b.base}/v1/programs/{program_id}/campaigns/{c.json()['id']}/activate",
            headers=boss)
        assert act.status_code == 200, act.text
        members = [await _member(client, a.base, program_id) for _ in range(10)]
        answers = await asyncio.gather(*(
            client.post(f"{(a, b)[i % 2].base}/v1/me/pings", json=_ping(lat, lon), headers=m)
            for i, m in enumerate(members)))
    assert [r.status_code for r in answers] == [200] * 10
    issued = sum(len(r.json()["offers"]) for r in answers)
    figures("two nodes", {"replayed across nodes": 1, "zone seen on the other node": 1,
                          "offers issued (budget 3)": issued})
    assert issued == 3
