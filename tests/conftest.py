"""Test fixtures: one real PostgreSQL per test session, one fresh database per test.

Without DATABASE_URL a throwaway embedded cluster is started (fsync off, in RAM when there is
room: `pg_scratch_dir`); with it, that server is used (the role needs CREATEDB). The schema is
migrated once into a template database; each test that asks for `db_url` gets its own copy,
so tests are isolated and may run in any order.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from litestar import Litestar
from litestar.testing import AsyncTestClient
from support import figures as figures_report

from api.app import create_app
from api.auth.keys import load_or_create
from api.auth.tokens import TokenService
from api.config import Settings
from api.runtime.embedded_pg import EmbeddedPostgres
from api.runtime.pg_host import sweep_private_dirs
from migrations.runner import migrate

# Shared CI machines are noisy: a property's examples are judged on what they compute, never on
# how long one took (per-example deadlines and "too slow" health checks make a loaded run red).
hypothesis_settings.register_profile(
    "loyalty", deadline=None, suppress_health_check=[HealthCheck.too_slow])
hypothesis_settings.load_profile("loyalty")

# Under pytest-xdist (`make test`) each worker process has its own session: its own embedded
# cluster, or on a shared DATABASE_URL server its own template.
WORKER = os.environ.get("PYTEST_XDIST_WORKER", "main")
TEMPLATE = f"loyalty_test_template_{WORKER}"
# the cluster goes in a mkdtemp directory of its own there; a session's stays far below 2 GiB
RAM_DIR, RAM_DIR_NEEDED = Path("/dev/shm"), 2 << 30  # noqa: S108
_counter = itertools.count()


def with_database(dsn: str, name: str) -> str:
    parts = urlsplit(dsn)
    return urlunsplit(parts._replace(path=f"/{name}"))


def pg_scratch_dir() -> Path | None:
    """Where the session's throwaway cluster lives: `LOYALTY_TEST_PG_DIR` if set, else
    /dev/shm (RAM) when it has room, else the temp dir (None).

    On a virtual disk, creating and dropping one database per test cost ~0.3–0.7 s of I/O
    each even with fsync off; in RAM ~20 ms (README, "Running the tests")."""
    if configured := os.environ.get("LOYALTY_TEST_PG_DIR"):
        return Path(configured)
    try:
        room = os.statvfs(RAM_DIR)
    except OSError:
        return None
    if room.f_bavail * room.f_frsize < RAM_DIR_NEEDED or not os.access(RAM_DIR, os.W_OK):
        return None
    return RAM_DIR


@pytest.fixture(scope="session")
def pg_server() -> Iterator[str]:
    """DSN of the maintenance database of the session's PostgreSQL server."""
    external = os.environ.get("DATABASE_URL")
    if external:
        yield external
        return
    scratch = pg_scratch_dir()
    if scratch is not None:  # what killed test runs left there (`loyalty serve` sweeps /tmp)
        sweep_private_dirs(scratch)
    pg = EmbeddedPostgres(fsync=False, scratch_dir=scratch)
    pg.start()
    try:
        yield pg.dsn
    finally:
        pg.stop()


@pytest.fixture(scope="session")
def template_dsn(pg_server: str) -> str:
    async def build() -> None:
        conn = await asyncpg.connect(pg_server)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{TEMPLATE}" WITH (FORCE)')
            await conn.execute(f'CREATE DATABASE "{TEMPLATE}"')
        finally:
            await conn.close()
        await migrate(with_database(pg_server, TEMPLATE))

    asyncio.run(build())
    return with_database(pg_server, TEMPLATE)


@pytest.fixture
async def db_url(pg_server: str, template_dsn: str) -> AsyncIterator[str]:
    """A fresh, migrated database for this test alone, dropped afterwards."""
    name = f"t_{os.getpid()}_{next(_counter)}_{uuid.uuid4().hex[:6]}"
    admin = await asyncpg.connect(pg_server)
    try:
        await admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{TEMPLATE}" STRATEGY FILE_COPY')
    finally:
        await admin.close()
    try:
        yield with_database(pg_server, name)
    finally:
        admin = await asyncpg.connect(pg_server)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


@pytest.fixture
async def conn(db_url: str) -> AsyncIterator[asyncpg.Connection]:
    """The test's own connection (never the app's pool, which lives in another loop)."""
    c = await asyncpg.connect(db_url)
    try:
        yield c
    finally:
        await c.close()


@pytest.fixture(scope="session")
def keys_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("keys") / "jwt-keys.json"
    load_or_create(path)
    return path


@pytest.fixture
def settings(db_url: str, keys_file: Path, tmp_path: Path) -> Settings:
    # Cheap argon2 parameters keep the suite fast; production defaults are in Settings.
    return Settings(database_url=db_url, data_dir=str(tmp_path), jwt_keys_file=str(keys_file),
                    password_memory_kib=8, password_time_cost=1, jobs_interval_s=0,
                    db_pool_min=1, db_pool_max=4)


@pytest.fixture
def app(settings: Settings) -> Litestar:
    return create_app(settings)


@pytest.fixture
async def client(app: Litestar) -> AsyncIterator[AsyncTestClient[Litestar]]:
    async with AsyncTestClient(app=app) as c:
        yield c


@pytest.fixture
def tokens(app: Litestar) -> TokenService:
    svc: TokenService = app.state.tokens
    return svc


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def figures(request: pytest.FixtureRequest) -> figures_report.Figures:
    """Record figures a test measured; they are printed at the end of the run."""
    return figures_report.recorder(request.node)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    figures_report.summarise(terminalreporter)


# Tests that share something costly per process (one server and Chromium for the browser
# tests; a PostgreSQL of their own, stopped and restarted, for the fault tests) run on one
# xdist worker, in order (`--dist loadgroup`); the others go to whichever worker is free.
XDIST_GROUPS = {"tests/browser/": "browser", "tests/integration/test_reliability.py": "faults"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        for prefix, group in XDIST_GROUPS.items():
            if item.nodeid.startswith(prefix):
                item.add_marker(pytest.mark.xdist_group(group))
