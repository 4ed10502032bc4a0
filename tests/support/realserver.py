"""A real server process for tests that the in-thread client cannot show (several workers,
concurrency across processes and connections)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

START_TIMEOUT_S = 60.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def running_server(db_url: str, keys_file: Path, tmp_path: Path, *, workers: int = 2,
                   env: dict[str, str] | None = None) -> Iterator[str]:
    """Serve the app with uvicorn on a free port; yields the base URL once /ready is 200."""
    port = free_port()
    full_env = {**os.environ, "DATABASE_URL": db_url, "LOYALTY_JWT_KEYS_FILE": str(keys_file),
                "LOYALTY_PASSWORD_MEMORY_KIB": "8", "LOYALTY_PASSWORD_TIME_COST": "1",
                "LOYALTY_JOBS_INTERVAL_S": "0", "LOYALTY_DATA_DIR": str(tmp_path),
                "LOYALTY_DB_POOL_MAX": "8", "LOYALTY_CREDENTIAL_ATTEMPTS_PER_MINUTE": "0",
                **(env or {})}
    log = tmp_path / f"server-{port}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "api.app:create_app", "--factory", "--host",
             "127.0.0.1", "--port", str(port), "--workers", str(workers),
             "--log-level", "warning"],
            env=full_env, cwd=Path(__file__).parents[1], stdout=out, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        # one client for the whole poll: each new one builds a TLS context (~35 ms of CPU)
        with httpx.Client(timeout=1.0) as probe:
            while True:  # bounded readiness poll
                if proc.poll() is not None:
                    raise RuntimeError(f"server exited: {log.read_text()[-2000:]}")
                try:
                    if probe.get(f"{base}/ready").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"server not ready in time: {log.read_text()[-2000:]}")
                time.sleep(0.1)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
