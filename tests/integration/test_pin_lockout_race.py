"""The PIN lockout holds under parallel requests (issue 14, bug 2): each attempt is counted
before its PIN is verified, so 40 simultaneous purchases with wrong PINs on one card against
a real server (two workers, a connection each) check at most `pin_max_attempts` PINs, and the
right PIN sent afterwards is refused while the lock runs.

Before the fix, each request read "not locked", verified, then counted: 10 to 17 PINs were
checked out of 40, and a right PIN sent after 11 "wrong PIN" answers went through."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from support import ledger_fixtures as fx
from support.figures import Figures
from support.realserver import running_server

from api.auth.keys import load_or_create
from api.auth.tokens import TokenService
from api.config import Settings
from wallet.kernel.hashing import Hasher

pytestmark = pytest.mark.slow
PIN, WRONG = "24680", "13579"
PARALLEL = 40


@pytest.fixture
def server(db_url: str, keys_file: Path, tmp_path: Path) -> Iterator[str]:
    with running_server(db_url, keys_file, tmp_path, workers=2) as base:
        yield base


async def test_parallel_wrong_pins_check_at_most_the_limit_and_the_lock_holds(
        server: str, conn: asyncpg.Connection, keys_file: Path, figures: Figures) -> None:
    settings = Settings()
    limit = settings.pin_max_attempts
    tokens = TokenService(load_or_create(keys_file), issuer=settings.jwt_issuer,
                          access_ttl_s=600, refresh_ttl_s=600, card_ttl_s=600)
    pid = await fx.program(conn)
    sid = await fx.store(conn, pid)
    # The production cost: each verification takes milliseconds, as the race had them.
    hasher = Hasher(memory_kib=settings.password_memory_kib,
                    time_cost=settings.password_time_cost)
    m = await fx.member(conn, pid, pin_hash=hasher.hash(PIN))
    await fx.credit(conn, m, stored_value=10_000)
    staff = tokens.mint_access(sub=uuid.uuid4(), role="staff", program_id=pid, store_ids=[sid])

    async def buy(client: httpx.AsyncClient, n: int, pin: str) -> httpx.Response:
        return await client.post("/v1/pos/purchases", headers={"Idempotency-Key": f"p{n}"},
                                 json={"store_id": str(sid), "card_number": m.card_number,
                                       "receipt_id": f"r{n}", "amount": 500, "currency": "EUR",
                                       "stored_value": {"amount": 500, "pin": pin}})

    limits = httpx.Limits(max_connections=PARALLEL)
    async with httpx.AsyncClient(base_url=server, limits=limits, timeout=60.0,
                                 headers={"Authorization": f"Bearer {staff}"}) as client:
        answers = await asyncio.gather(*(buy(client, n, WRONG) for n in range(PARALLEL)))
        after = await buy(client, PARALLEL, PIN)

    problems: list[dict[str, Any]] = [r.json() for r in answers]
    assert all(r.status_code == 422 for r in answers), [r.text for r in answers][:3]
    kinds = Counter(p["type"] for p in problems)
    figures("PIN race", {"parallel wrong PINs": PARALLEL, "limit": limit,
                         "answers": {k.rsplit("/", 1)[1]: n for k, n in kinds.items()},
                         "right PIN next": after.status_code})
    # Each PIN checked took its own place in the count: limit - 1 "wrong PIN" answers, one
    # per place, then the one that took the last place locked it; the rest were not checked.
    assert kinds == {"/problems/wrong-pin": limit - 1,
                     "/problems/pin-locked": PARALLEL - (limit - 1)}
    wrong = sorted(p["attempts_left"] for p in problems if p["type"] == "/problems/wrong-pin")
    assert wrong == list(range(1, limit)), kinds
    locks = {datetime.fromisoformat(p["locked_until"]) for p in problems
             if p["type"] == "/problems/pin-locked"}
    assert len(locks) == 1, locks  # one lock, set once
    assert all(p["attempts_left"] == 0 and p["field"] == "stored_value.pin"
               for p in problems if p["type"] == "/problems/pin-locked")

    assert after.status_code == 422, after.text  # the right PIN, while locked
    assert after.json()["type"] == "/problems/pin-locked"
    assert datetime.fromisoformat(after.json()["locked_until"]) in locks
    assert int(after.headers["retry-after"]) > 0
    assert (await fx.snapshot(conn, m)).stored_value == 10_000
    assert (await fx.snapshot(conn, m)).transactions == 0
