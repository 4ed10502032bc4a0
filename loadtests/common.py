"""What the HTTP load tests share: a database, a real server, a lean client, figures.

- `database()`: DATABASE_URL, else a throwaway embedded PostgreSQL with fsync on (honest
  commit costs) and pg_stat_statements preloaded; `connect_migrated()` also migrates it.
- `server()`: `uvicorn api.app:create_app --factory` (what `loyalty serve` runs once the
  database is up) on a free 127.0.0.1 port with N workers, ready when `/ready` answers.
- `Http`: a minimal HTTP/1.1 keep-alive client over asyncio streams. It shares the machine's
  two cores with the server and PostgreSQL; httpx spends about half a millisecond of CPU per
  request, which would measure the client, not the server. `run()` uses uvloop when present.
- `health_baseline()`: `GET /health` requests/s with the same client, the baseline every
  benchmark prints beside its figures (the machine is shared and noisy: ratios hold).
- `CpuMeter`: CPU seconds used by the server, PostgreSQL and this process during a run
  (Linux /proc), so a report can say which of them the machine's cores went to.
- `Statements`: PostgreSQL statements per request (round trips, and what triggers run).
- `LockWaits`: the share of PostgreSQL's busy time spent waiting for row locks (sampled).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import AsyncIterator, Coroutine, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import asyncpg

from api.auth.keys import load_or_create
from api.auth.tokens import TokenService
from api.config import Settings
from api.runtime.embedded_pg import EmbeddedPostgres
from migrations.runner import migrate

ROOT = Path(__file__).resolve().parents[1]
T = TypeVar("T")

# --- database ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Database:
    dsn: str
    pid: int | None  # the embedded postmaster, for CPU accounting (None with DATABASE_URL)

    @property
    def where(self) -> str:
        return "DATABASE_URL" if self.pid is None else "embedded, fsync on"


@contextlib.contextmanager
def database() -> Iterator[Database]:
    """DATABASE_URL if set, else a throwaway embedded PostgreSQL with fsync on.

    The embedded server preloads `pg_stat_statements` (so `Statements` can count what each
    request costs in statements): the cluster is initialised once, the setting appended to
    its postgresql.conf, and the server started again.
    """
    if url := os.environ.get("DATABASE_URL"):
        yield Database(url, None)
        return
    parent = Path(tempfile.mkdtemp(prefix="loadtest-pg-"))
    try:
        parent.chmod(0o755)  # the server user (nobody, when we are root) must enter it
        data_dir = parent / "data"
        EmbeddedPostgres(data_dir, fsync=True).start().stop()  # initdb
        with (data_dir / "postgresql.conf").open("a") as conf:  # keeps the file's owner
            conf.write("\nshared_preload_libraries = 'pg_stat_statements'\n"
                       "pg_stat_statements.track = all\n"
                       "pg_stat_statements.track_planning = on\n"
                       "pg_stat_statements.track_utility = on\n")
        with EmbeddedPostgres(data_dir, fsync=True) as pg:
            yield Database(pg.dsn, pg.pid)
    finally:
        shutil.rmtree(parent, ignore_errors=True)


async def connect_migrated(dsn: str) -> asyncpg.Connection[asyncpg.Record]:
    await migrate(dsn)
    return await asyncpg.connect(dsn)


def token_service(keys: Path) -> TokenService:
    """Mints tokens the server (started with LOYALTY_JWT_KEYS_FILE=keys) accepts."""
    s = Settings()
    return TokenService(load_or_create(keys), issuer=s.jwt_issuer, access_ttl_s=3600,
                        refresh_ttl_s=3600, card_ttl_s=60)


def new_keys(data_dir: Path) -> Path:
    keys = data_dir / "jwt-keys.json"
    load_or_create(keys)
    return keys


async def insert_program(conn: asyncpg.Connection[asyncpg.Record], *,
                         tiers_json: str = "[]", stored_value: bool = False) -> uuid.UUID:
    pid = uuid.uuid4()
    await conn.execute(
        "INSERT INTO programs (id, name, currency, timezone, earn_points, earn_per_amount,"
        " points_expiry_days, tiers, stored_value) VALUES ($1, 'Load', 'EUR',"
        " 'Europe/Paris', 1, 100, 365, $2::jsonb, $3)", pid, tiers_json, stored_value)
    return pid


async def insert_members(conn: asyncpg.Connection[asyncpg.Record], program_id: uuid.UUID,
                         count: int, *, pin_hash: str | None = None
                         ) -> list[tuple[uuid.UUID, uuid.UUID]]:
    """`count` members, each with its wallet account, by COPY; returns (member, account)."""
    pairs = [(uuid.uuid4(), uuid.uuid4()) for _ in range(count)]
    await conn.copy_records_to_table(
        "wallet_accounts", columns=["id", "program_id"],
        records=[(account, program_id) for _, account in pairs])
    await conn.copy_records_to_table(
        "members", columns=["id", "program_id", "email", "password_hash", "first_name",
                            "wallet_account_id", "pin_hash"],
        records=[(member, program_id, f"m{i}@load.test", "x", "Load", account, pin_hash)
                 for i, (member, account) in enumerate(pairs)])
    return pairs


# --- server ------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class Server:
    port: int
    pid: int  # uvicorn's main process; with several workers they are its children
    log: Path

    def errors(self, limit: int = 60) -> str:
        """The last `limit` lines of the server's log (where its tracebacks go)."""
        lines = self.log.read_text(errors="replace").splitlines()
        return "\n".join(lines[-limit:])


@contextlib.contextmanager
def server(dsn: str, keys: Path, workers: int, data_dir: Path,
           env: dict[str, str] | None = None) -> Iterator[Server]:
    """The real app under uvicorn (uvloop + httptools when installed), no access log.

    Cheap argon2 parameters (8 KiB, t=1) as in the tests; periodic jobs off; a pool of 16
    connections per worker. `env` overrides any of it. The log is `data_dir/server-N.log`.
    """
    port = free_port()
    full_env = {**os.environ, "DATABASE_URL": dsn, "LOYALTY_JWT_KEYS_FILE": str(keys),
                "LOYALTY_PASSWORD_MEMORY_KIB": "8", "LOYALTY_PASSWORD_TIME_COST": "1",
                "LOYALTY_JOBS_INTERVAL_S": "0", "LOYALTY_DATA_DIR": str(data_dir),
                "LOYALTY_DB_POOL_MAX": "16", **(env or {})}
    log = (data_dir / f"server-{workers}.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "api.app:create_app", "--factory", "--host",
         "127.0.0.1", "--port", str(port), "--workers", str(workers), "--log-level",
         "warning", "--no-access-log"], env=full_env, cwd=ROOT, stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 60
        while True:  # bounded readiness poll
            if proc.poll() is not None:
                raise RuntimeError(f"server exited, see {log.name}")
            with contextlib.suppress(OSError):
                url = f"http://127.0.0.1:{port}/ready"
                with urllib.request.urlopen(url, timeout=1) as r:
                    if r.status == 200:
                        break
            if time.monotonic() > deadline:
                raise RuntimeError("server not ready within 60 s")
            time.sleep(0.1)
        yield Server(port, proc.pid, Path(log.name))
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


# --- a minimal keep-alive HTTP/1.1 client ------------------------------------------------------


class Http:
    """One keep-alive connection to 127.0.0.1:`port`; one request at a time."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(self, method: str, path: str, headers: bytes = b"",
                      body: bytes = b"") -> tuple[int, bytes]:
        """`headers`: ready-made `Name: value\\r\\n` lines. Returns (status, body)."""
        if self.reader is not None and self.reader.at_eof():  # the server closed it when idle
            self.close()
            self.reader = self.writer = None
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        assert self.reader is not None
        self.writer.write(b"%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: %d\r\n%s\r\n%s"
                          % (method.encode(), path.encode(), len(body), headers, body))
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        for line in head.split(b"\r\n"):
            name, _, value = line.partition(b":")
            if name.lower() == b"content-length":
                length = int(value)
        return status, await self.reader.readexactly(length)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def header_lines(headers: dict[str, str]) -> bytes:
    return b"".join(f"{k}: {v}\r\n".encode() for k, v in headers.items())


async def health_baseline(port: int, duration: float, concurrency: int) -> float:
    """`GET /health` requests/s over `concurrency` connections for `duration` seconds."""
    count = 0
    deadline = time.perf_counter() + duration

    async def user() -> None:
        nonlocal count
        http = Http(port)
        try:
            while time.perf_counter() < deadline:
                await http.request("GET", "/health")
                count += 1
        finally:
            http.close()

    await asyncio.gather(*(user() for _ in range(concurrency)))
    return count / duration


# --- figures -----------------------------------------------------------------------------------


def _tree(root: int) -> list[int]:
    """`root` and its descendants (Linux /proc; empty elsewhere)."""
    children: dict[int, list[int]] = {}
    with contextlib.suppress(OSError):
        for entry in os.scandir("/proc"):
            if entry.name.isdigit():
                with contextlib.suppress(OSError, IndexError, ValueError):
                    stat = Path(entry.path, "stat").read_text()
                    ppid = int(stat.rsplit(")", 1)[1].split()[1])
                    children.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, ()))
    return out


def cpu_seconds(pids: Sequence[int]) -> float:
    """utime + stime of the processes `pids`, in seconds (Linux /proc)."""
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime + stime, in clock ticks
    return total / os.sysconf("SC_CLK_TCK")


class CpuMeter:
    """Cores used by named process trees between `start()` and `stop()` (0 if unknown).

    A process that joins a tree meanwhile (a PostgreSQL backend for a connection the server's
    pool opened during the step) is counted with all its CPU, which it used since it started:
    reading the trees only at `start()` missed it, and a step that grew the pool showed less
    PostgreSQL CPU per request than it used."""

    def __init__(self, **roots: int | None) -> None:
        self.roots = {name: pid for name, pid in roots.items() if pid is not None}
        self._pids: dict[str, list[int]] = {}
        self._t0 = 0.0
        self._cpu0: dict[str, float] = {}
        self.cores: dict[str, float] = {}
        self.seconds: dict[str, float] = {}  # CPU seconds per tree

    def _trees(self) -> dict[str, list[int]]:
        """Each root's processes; a root inside another's tree counts only as itself."""
        trees = {name: _tree(pid) for name, pid in self.roots.items()}
        out = {}
        for name, pids in trees.items():
            nested = {p for other, root in self.roots.items() if other != name
                      and root in pids for p in trees[other]}
            out[name] = [p for p in pids if p not in nested]
        return out

    def start(self) -> None:
        self._pids = self._trees()
        self._cpu0 = {name: cpu_seconds(pids) for name, pids in self._pids.items()}
        self._t0 = time.perf_counter()

    def stop(self) -> None:
        wall = time.perf_counter() - self._t0
        now = self._trees()
        self.seconds = {
            name: cpu_seconds(pids) - self._cpu0[name]
            + cpu_seconds([p for p in now.get(name, []) if p not in set(pids)])
            for name, pids in self._pids.items()}
        self.cores = {name: cpu / wall for name, cpu in self.seconds.items()}


def _round_trip(row: asyncpg.Record) -> bool:
    """A statement a client sent. Deferred constraint triggers run at COMMIT, outside any
    statement, so pg_stat_statements counts their queries as top level: they are told apart
    by what only trigger code says (`NEW.` / `OLD.`)."""
    query: str = row["query"]
    return bool(row["toplevel"]) and "NEW." not in query and "OLD." not in query


class Statements:
    """Statements PostgreSQL executed between `reset()` and `read()`, from pg_stat_statements.

    Top-level statements (BEGIN and COMMIT included) are the round trips the clients made;
    statements run inside triggers and functions are counted apart (`nested`, see
    `_round_trip`). This
    counter's own queries are left out. `available` is False when the extension cannot be
    loaded (a DATABASE_URL server without it in shared_preload_libraries): figures are None.
    """

    def __init__(self, conn: asyncpg.Connection[asyncpg.Record]) -> None:
        self.conn = conn
        self.available = False

    @classmethod
    async def connect(cls, dsn: str) -> Statements:
        self = cls(await asyncpg.connect(dsn))
        try:
            await self.conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
            await self.conn.fetchval("SELECT count(*) FROM pg_stat_statements")
            self.available = True
        except asyncpg.PostgresError:
            pass
        return self

    async def reset(self) -> None:
        if self.available:
            await self.conn.execute("SELECT pg_stat_statements_reset()")

    async def read(self, requests: int, top: int = 10) -> tuple[float | None,
                                                                list[dict[str, Any]]]:
        """(top-level statements per request, the `top` statements by calls, each with its
        calls and execution time per request and whether it was top-level or nested)."""
        if not self.available or not requests:
            return None, []
        rows = await self.conn.fetch(
            "SELECT query, toplevel, calls, total_exec_time, total_plan_time, plans"
            " FROM pg_stat_statements"
            " WHERE query NOT LIKE '%pg_stat_statements%'"
            " AND query NOT LIKE '%pg_stat_activity%' ORDER BY calls DESC")
        per_request = sum(r["calls"] for r in rows if _round_trip(r)) / requests
        return per_request, [
            {"query": " ".join(r["query"].split())[:160], "toplevel": _round_trip(r),
             "calls_per_request": round(r["calls"] / requests, 3),
             "exec_ms_per_request": round(r["total_exec_time"] / requests, 3),
             "plans_per_request": round(r["plans"] / requests, 3),
             "plan_ms_per_request": round(r["total_plan_time"] / requests, 3)}
            for r in rows[:top]]

    async def close(self) -> None:
        await self.conn.close()


class LockWaits:
    """How much of PostgreSQL's busy time goes to waiting for locks, by sampling.

    While `running()`, every `every` seconds one query reads `pg_stat_activity`: the client
    backends inside a statement (state 'active'), and among them those waiting for a lock
    (`wait_event_type = 'Lock'`: a row lock held by another transaction shows as
    `transactionid` or `tuple`). `share` = lock-waiting samples / active samples: the part
    of the requests' time in PostgreSQL spent queued behind another transaction's lock.
    (`Statements` leaves these samples out of its counts.)
    """

    QUERY = """
    SELECT count(*) FILTER (WHERE state = 'active') AS active,
           count(*) FILTER (WHERE state = 'active' AND wait_event_type = 'Lock') AS waiting
    FROM pg_stat_activity WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()
    """

    def __init__(self, conn: asyncpg.Connection[asyncpg.Record], every: float = 0.02) -> None:
        self.conn, self.every = conn, every
        self.active = self.waiting = 0

    @classmethod
    async def connect(cls, dsn: str) -> LockWaits:
        return cls(await asyncpg.connect(dsn))

    @property
    def share(self) -> float | None:
        return self.waiting / self.active if self.active else None

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[LockWaits]:
        self.active = self.waiting = 0

        async def sample() -> None:
            while True:
                row = await self.conn.fetchrow(self.QUERY)
                assert row is not None
                self.active += row["active"]
                self.waiting += row["waiting"]
                await asyncio.sleep(self.every)

        task = asyncio.create_task(sample())
        try:
            yield self
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def close(self) -> None:
        await self.conn.close()


def run(main: Coroutine[Any, Any, T]) -> T:
    """asyncio.run on uvloop when installed: the client's CPU is the server's loss."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvicorn[standard] brings it
        return asyncio.run(main)
    return uvloop.run(main)
