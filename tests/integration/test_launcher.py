"""The launcher: database for CLI commands, and `serve` end to end in a child process.

`serve` runs as `loyalty serve --throwaway-db` would, with a tiny raw-ASGI app that reports
what it sees (applied migrations, DATABASE_URL's server), so these tests check the launcher
alone; one more test serves the real app and asks its /ready.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from support.processes import session_members, wait_until_gone
from support.realserver import free_port

from api.runtime import launcher
from api.runtime.embedded_pg import EmbeddedPostgres
from api.runtime.launcher import database_for_cli
from migrations.runner import discover

ROOT = Path(__file__).resolve().parents[2]

TINY_APP = '''
import json, os
import asyncpg

def create_app():
    dsn = os.environ["DATABASE_URL"]  # set by the launcher before uvicorn starts

    async def app(scope, receive, send):
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                kind = message["type"].rsplit(".", 1)[1]
                await send({"type": f"lifespan.{kind}.complete"})
                if kind == "shutdown":
                    return
        conn = await asyncpg.connect(dsn)
        try:
            names = [r["name"] for r in await conn.fetch(
                "SELECT name FROM schema_migrations ORDER BY name")]
            data_dir = await conn.fetchval("SELECT current_setting('data_directory')")
        finally:
            await conn.close()
        body = json.dumps({"migrations": names, "data_directory": data_dir}).encode()
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": body})

    return app
'''

SERVE = '''
import sys
from pathlib import Path
from api.runtime.launcher import serve
port, workers, data_dir, factory = sys.argv[1:]
sys.exit(serve(host="127.0.0.1", port=int(port), workers=int(workers), throwaway_db=True,
               data_dir=Path(data_dir), seed_demo=False, app_factory=factory))
'''


@pytest.fixture
def open_dir() -> Iterator[Path]:
    """A fresh 0755 directory, enterable by the server user (pytest's tmp_path base is 0700)."""
    path = Path(tempfile.mkdtemp(prefix="pgtest-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def postmaster_pid(data_dir: Path) -> int:
    return int((data_dir / "postmaster.pid").read_text().split()[0])


def test_database_for_cli_uses_database_url_when_set(
        monkeypatch: pytest.MonkeyPatch, open_dir: Path) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://u:p@db.example:5432/x")
    with database_for_cli(open_dir) as dsn:
        assert dsn == "postgresql://u:p@db.example:5432/x"
    assert not (open_dir / "pg").exists()


def test_database_for_cli_runs_the_persistent_cluster_only_for_the_command(
        monkeypatch: pytest.MonkeyPatch, open_dir: Path) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    with database_for_cli(open_dir) as dsn:
        pid = postmaster_pid(open_dir / "pg")
        assert f"127.0.0.1:{(open_dir / 'pg' / 'postmaster.pid').read_text().split()[3]}" in dsn
    assert wait_until_gone(pid) == []
    assert (open_dir / "pg" / "PG_VERSION").is_file()
    assert not (open_dir / "pg" / "postmaster.pid").exists()


def test_database_for_cli_joins_a_server_already_running_on_the_data_dir(
        monkeypatch: pytest.MonkeyPatch, open_dir: Path) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    with EmbeddedPostgres(open_dir / "pg") as running:
        with database_for_cli(open_dir) as dsn:
            assert dsn == running.dsn
        assert session_members(running.pid), "the command must not stop `make run`'s server"


def start_serve(tmp_path: Path, workers: int, factory: str) -> tuple[subprocess.Popen[bytes],
                                                                       int, Path]:
    (tmp_path / "tiny_app.py").write_text(textwrap.dedent(TINY_APP))
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env["PYTHONPATH"] = os.pathsep.join([str(tmp_path), str(ROOT), env.get("PYTHONPATH", "")])
    env["LOYALTY_DATA_DIR"] = str(tmp_path / "data")  # the real app keeps its keys there
    port, log = free_port(), tmp_path / "serve.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-c", SERVE, str(port), str(workers), str(tmp_path / "data"),
             factory], cwd=tmp_path, env=env, stdout=out, stderr=subprocess.STDOUT)
    return proc, port, log


def get_when_up(proc: subprocess.Popen[bytes], url: str, log: Path) -> httpx.Response:
    """Poll until the server answers (bounded); fail with its output if it exits or hangs."""
    deadline = time.monotonic() + 60
    with httpx.Client(timeout=5) as probe:  # one TLS context (~35 ms) for the whole poll
        while time.monotonic() < deadline:
            assert proc.poll() is None, f"serve exited {proc.returncode}:\n{log.read_text()}"
            try:
                return probe.get(url)
            except httpx.TransportError:
                time.sleep(0.05)
    pytest.fail(f"serve did not answer within 60 s:\n{log.read_text()}")


@pytest.mark.slow
@pytest.mark.parametrize(("stop_signal", "workers"), [(signal.SIGTERM, 1),
                                                      (signal.SIGINT, 1),
                                                      (signal.SIGTERM, 2)])
def test_serve_migrates_before_serving_then_stops_postgres_on_a_signal(
        tmp_path: Path, stop_signal: signal.Signals, workers: int) -> None:
    proc, port, log = start_serve(tmp_path, workers, "tiny_app:create_app")
    try:
        seen = get_when_up(proc, f"http://127.0.0.1:{port}/", log).json()
        assert seen["migrations"] == [m.name for m in discover()]
        data_dir = Path(seen["data_directory"])
        pid = postmaster_pid(data_dir)
        proc.send_signal(stop_signal)
        assert proc.wait(timeout=60) == 0, log.read_text()
        assert wait_until_gone(pid) == []
        assert not data_dir.parent.exists(), "the throwaway temp dir must be removed"
        output = log.read_text()
        assert f"API   http://127.0.0.1:{port}" in output
        assert f"Docs  http://127.0.0.1:{port}/schema" in output
        assert f"Console  http://127.0.0.1:{port}/console" in output
        assert f"Till     http://127.0.0.1:{port}/till" in output
        assert "loyalty token --role admin" in output
    finally:
        proc.kill()
        proc.wait()


@pytest.mark.slow
def test_serve_runs_the_real_app_which_is_ready_once_migrated(tmp_path: Path) -> None:
    proc, port, log = start_serve(tmp_path, 1, launcher.APP_FACTORY)
    try:
        ready = get_when_up(proc, f"http://127.0.0.1:{port}/ready", log)
        assert ready.status_code == 200, ready.text
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0, log.read_text()
    finally:
        proc.kill()
        proc.wait()


def test_serve_explains_a_database_that_cannot_start_and_returns_1(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setenv("PG_BINDIR", str(tmp_path))
    status = launcher.serve(host="127.0.0.1", port=free_port(), workers=1, throwaway_db=True,
                            data_dir=tmp_path, seed_demo=False)
    assert status == 1
    assert f"cannot start: PG_BINDIR={tmp_path} holds no initdb" in capsys.readouterr().err


def test_serve_on_a_taken_port_says_so_before_starting_anything(tmp_path: Path) -> None:
    """`make run` / `loyalty serve` on a port another server listens on: a clear message and
    exit status 1, before the database starts or the banner is printed."""
    import socket

    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        port = other.getsockname()[1]
        env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
        proc = subprocess.run(
            [str(ROOT / ".venv" / "bin" / "loyalty"), "serve", "--port", str(port), "--demo"],
            env={**env, "LOYALTY_DATA_DIR": str(tmp_path)}, capture_output=True, text=True,
            timeout=60, check=False)
    assert proc.returncode == 1, proc
    assert f"port {port} on 127.0.0.1 is already in use" in proc.stderr
    assert f"make run PORT={port + 1}" in proc.stderr
    assert "PostgreSQL ready" not in proc.stdout and "API" not in proc.stdout
    assert not (tmp_path / "pg").exists()
