"""Rigs for faults under load: `loyalty serve` processes we can kill, and a till load that
retries like a real till (the same Idempotency-Key and body until acknowledged).

`Serve` starts `python -m api.runtime.cli serve` in its own session (so teardown can end
everything it started, and only that). `TillLoad` runs N tills against one or more base
URLs; each sends purchases, retries a key on a 503 (after its Retry-After) or a broken
connection, and now and then replays a key already acknowledged, which must answer the same
transaction. `ledger_check` then compares what was acknowledged with what PostgreSQL holds.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from support import till_retry

from loadtests.till import CHECK, PIN, Card

ROOT = Path(__file__).resolve().parents[2]
READY_TIMEOUT_S = 90.0


async def until(condition: Callable[[], bool], within: float = 60.0) -> None:
    """Wait until `condition()` holds (checked every 10 ms), failing after `within` s."""
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)


def children(pid: int) -> list[int]:
    """Live child processes of `pid` (Linux /proc)."""
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid and fields[0] != "Z":
            out.append(int(stat.parent.name))
    return out


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def wait_gone(pids: list[int], timeout: float = 30.0) -> list[int]:
    """Poll (bounded) until none of `pids` is alive; returns the survivors."""
    deadline = time.monotonic() + timeout
    while (left := [p for p in pids if alive(p)]) and time.monotonic() < deadline:
        time.sleep(0.02)
    return left


class Serve:
    """One `loyalty serve` process (a node), with its workers."""

    def __init__(self, port: int, env: dict[str, str], log: Path, *, workers: int = 2,
                 extra: tuple[str, ...] = ()) -> None:
        self.port, self.env, self.log, self.workers = port, env, log, workers
        self.base = f"http://127.0.0.1:{port}"
        argv = [sys.executable, "-m", "api.runtime.cli", "serve", "--port", str(port),
                "--workers", str(workers), *extra]
        with log.open("ab") as out:
            self.proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=out,
                                         stderr=subprocess.STDOUT, start_new_session=True)

    def wait_ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_S
        with httpx.Client(timeout=2) as probe:  # one TLS context (~35 ms) for the whole poll
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"serve exited {self.proc.returncode}:\n{self.output()}")
                with contextlib.suppress(httpx.TransportError):
                    if probe.get(f"{self.base}/ready").status_code == 200:
                        return
                time.sleep(0.05)
        raise RuntimeError(f"serve not ready in {READY_TIMEOUT_S} s:\n{self.output()}")

    def worker_pids(self) -> list[int]:
        return children(self.proc.pid) if self.workers > 1 else [self.proc.pid]

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]

    def stop(self) -> None:
        """Teardown: SIGTERM, then SIGKILL to the session if it lingers."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(30)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()


def serve_env(dsn: str | None, keys: Path, data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env |= {"LOYALTY_JWT_KEYS_FILE": str(keys), "LOYALTY_PASSWORD_MEMORY_KIB": "8",
            "LOYALTY_PASSWORD_TIME_COST": "1", "LOYALTY_JOBS_INTERVAL_S": "0",
            "LOYALTY_DATA_DIR": str(data_dir), "LOYALTY_DB_POOL_MAX": "8",
            "LOYALTY_CREDENTIAL_ATTEMPTS_PER_MINUTE": "0",
            "PYTHONPATH": os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])}
    if dsn:
        env["DATABASE_URL"] = dsn
    return env


@dataclass
class TillLoad:
    """Tills buying at one store; figures for the report."""

    bases: list[str]
    token: str
    store_id: uuid.UUID
    cards: list[Card]
    tills: int = 8
    seed: int = 1
    sent: dict[str, dict[str, Any]] = field(default_factory=dict)
    acked: dict[str, set[str]] = field(default_factory=dict)
    statuses: Counter[int] = field(default_factory=Counter)
    transport_errors: int = 0
    retry_after_missing: int = 0
    requests: int = 0
    replays: int = 0

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        self._n = 0
        self.stop = asyncio.Event()

    def _new(self) -> tuple[str, dict[str, Any]]:
        self._n += 1
        card = self.rng.choice(self.cards)
        amount = self.rng.randint(100, 20_000)
        body: dict[str, Any] = {"store_id": str(self.store_id), "card_number": card.number,
                                "receipt_id": f"r{self.seed}-{self._n}", "amount": amount,
                                "currency": "EUR"}
        if self.rng.random() < 0.2:
            body["stored_value"] = {"amount": self.rng.randint(1, amount), "pin": PIN}
        key = f"k{self.seed}-{self._n}"
        self.sent[key] = body
        return key, body

    async def _send(self, client: httpx.AsyncClient, key: str, body: dict[str, Any],
                    give_up_at: float) -> None:
        """POST until acknowledged (201) or `give_up_at`; a replay must repeat the tx id."""
        headers = {"Authorization": f"Bearer {self.token}", "Idempotency-Key": key}
        while time.monotonic() < give_up_at:
            base = self.rng.choice(self.bases)
            self.requests += 1
            try:
                r = await client.post(f"{base}/v1/pos/purchases", json=body, headers=headers)
            except httpx.TransportError:
                self.transport_errors += 1
                await asyncio.sleep(0.05)  # a till's back-off before it retries
                continue
            self.statuses[r.status_code] += 1
            if r.status_code == 201:
                self.replays += key in self.acked
                self.acked.setdefault(key, set()).add(r.json()["transaction_id"])
                return
            if till_retry.in_progress(r):  # PIN checks in flight on the card: send it again
                continue
            if r.status_code == 503:
                retry = r.headers.get("retry-after")
                if retry is None:
                    self.retry_after_missing += 1
                await asyncio.sleep(min(float(retry or 1), 1.0))
                continue
            raise AssertionError(f"{r.status_code} for {key}: {r.text}")

    async def _till(self) -> None:
        async with httpx.AsyncClient(timeout=30) as client:
            while not self.stop.is_set():
                if self.acked and self.rng.random() < 0.1:
                    key = self.rng.choice(list(self.acked))
                    body = self.sent[key]
                else:
                    key, body = self._new()
                await self._send(client, key, body, time.monotonic() + 60)

    async def run(self, duration: float | None = None) -> None:
        """Run the tills until `stop` is set (or `duration` passes); each finishes its key."""
        tasks = [asyncio.ensure_future(self._till()) for _ in range(self.tills)]
        if duration is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stop.wait(), duration)
            self.stop.set()
        await asyncio.gather(*tasks)

    def figures(self) -> dict[str, int]:
        return {"requests": self.requests, "purchases": len(self.acked),
                "replays": self.replays,
                "503": self.statuses[503], "500": self.statuses[500],
                "connection errors": self.transport_errors}


async def ledger_check(dsn: str, program_id: uuid.UUID, load: TillLoad) -> dict[str, int]:
    """What PostgreSQL holds against what was acknowledged: `lost` acknowledged purchases
    missing, `doubled` keys answered with two transactions or purchases recorded without an
    acknowledgement, `unbalanced` accounts whose balance is not the sum of their entries."""
    conn = await asyncpg.connect(dsn)
    try:
        unbalanced = sum(1 for _, points, value, e_points, e_value, lots
                         in await conn.fetch(CHECK, program_id)
                         if not (points == e_points == lots and value == e_value))
        recorded = {str(r["id"]) for r in await conn.fetch(
            "SELECT id FROM transactions WHERE program_id = $1 AND kind = 'purchase'",
            program_id)}
    finally:
        await conn.close()
    answered = set().union(*load.acked.values()) if load.acked else set()
    twice = sum(1 for ids in load.acked.values() if len(ids) > 1)
    return {"lost": len(answered - recorded), "doubled": twice + len(recorded - answered),
            "unbalanced": unbalanced, "unacknowledged": len(load.sent) - len(load.acked)}
