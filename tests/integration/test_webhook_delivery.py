"""Offer delivery to the push service's webhook: a local receiver (http.server in a thread)
verifies every signature. While it is down, attempts fail and are retried with backoff; once it
is back, every offer arrives, none lost, none with a bad signature.

The first tests drive the delivery round directly with an explicit `now` (so backoff needs no
waiting); the last one runs the real per-worker background loop of a two-worker server and
polls, within a deadline, for what the receiver has seen."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import msgspec
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from prometheus_client import REGISTRY
from support import ledger_fixtures as fx
from support.campaign_helpers import campaign_body, create_campaign
from support.helpers import INSIDE, Client, ago, create_program, create_store, manager, ping, signup
from support.realserver import free_port, running_server

from api.app import create_app
from api.auth.keys import load_or_create
from api.auth.tokens import TokenService
from api.config import Settings
from api.lifespan import deliver_once
from geo.outbox import signature, verify

SECRET = "s3cret-for-tests-0123456789"
DEADLINE_S = 60.0


class Receiver:
    """A webhook receiver on a fixed port that can go down and come back."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/hooks/offers"
        self.lock = threading.Lock()
        self.received: list[tuple[str, bool, dict[str, Any]]] = []  # (delivery id, valid, body)
        self._server: ThreadingHTTPServer | None = None

    def up(self) -> None:
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                ok = verify(SECRET, self.headers.get("X-Loyalty-Timestamp", ""), body,
                            self.headers.get("X-Loyalty-Signature", ""))
                with outer.lock:
                    outer.received.append((self.headers.get("X-Loyalty-Delivery", ""), ok,
                                           msgspec.json.decode(body)))
                self.send_response(204 if ok else 401)
                self.end_headers()

            def log_message(self, *_: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def down(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def ids(self) -> set[str]:
        with self.lock:
            return {d for d, _, _ in self.received}

    def all_valid(self) -> bool:
        with self.lock:
            return all(ok for _, ok, _ in self.received)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    try:
        yield r
    finally:
        r.down()


@pytest.fixture
def hooked(settings: Settings, receiver: Receiver) -> Settings:
    """The test settings with the webhook configured but no background loop (poll 0)."""
    return msgspec.structs.replace(settings, webhook_url=receiver.url, webhook_secret=SECRET,
                                   webhook_poll_s=0, webhook_backoff_s=1.0,
                                   webhook_max_backoff_s=60.0)


@pytest.fixture
async def hclient(hooked: Settings) -> AsyncIterator[Client]:
    async with AsyncTestClient(app=create_app(hooked)) as c:
        yield c


@pytest.fixture
def htokens(hclient: Client) -> TokenService:
    app: Litestar = hclient.app
    svc: TokenService = app.state.tokens
    return svc


@pytest.fixture
async def pool(db_url: str) -> AsyncIterator[asyncpg.Pool]:
    p = await asyncpg.create_pool(db_url, min_size=1, max_size=2)
    try:
        yield p
    finally:
        await p.close()


def _count(outcome: str) -> float:
    return REGISTRY.get_sample_value("webhook_deliveries_total", {"outcome": outcome}) or 0.0


async def _issue(client: Client, tokens: TokenService, n: int, *,
                 in_app_only: int = 0) -> tuple[str, str, list[str]]:
    """A program with one active campaign; `n` members enter and get an offer each (the last
    `in_app_only` of them take no push messages). Returns (program, campaign, offer ids)."""
    program = await create_program(client, tokens)
    await create_store(client, tokens, program)
    c = await create_campaign(client, tokens, program, campaign_body())
    offers = []
    for i in range(n):
        _, me = await signup(client, program, consents=["location_offers"])
        if i >= n - in_app_only:
            r = await client.put("/v1/me/preferences", json={"channels": ["in_app"]},
                                 headers=me)
            assert r.status_code == 200, r.text
        r = await client.post("/v1/me/pings", json={"pings": [ping(*INSIDE, ago(5))]},
                              headers=me)
        assert r.status_code == 200, r.text
        offers += [o["id"] for o in r.json()["offers"]]
    assert len(offers) == n
    return program, c["id"], offers


def test_a_signature_covers_the_timestamp_and_every_byte_of_the_body() -> None:
    body = b'{"offer":1}'
    sig = signature(SECRET, 1_700_000_000, body)
    assert verify(SECRET, "1700000000", body, sig)
    assert not verify(SECRET, "1700000001", body, sig)
    assert not verify(SECRET, "1700000000", body + b" ", sig)
    assert not verify("another secret", "1700000000", body, sig)
    assert not verify(SECRET, "not a number", body, sig)


async def test_every_issued_offer_is_delivered_signed_even_after_the_receiver_was_down(
        hclient: Client, htokens: TokenService, hooked: Settings, receiver: Receiver,
        pool: asyncpg.Pool, conn: asyncpg.Connection) -> None:
    program, campaign, offers = await _issue(hclient, htokens, 5, in_app_only=1)
    pushed = offers[:4]
    failed_before, delivered_before = _count("failed"), _count("delivered")
    t0 = datetime.now(UTC)
    async with httpx.AsyncClient() as http:
        # the receiver is down: every attempt fails, and is retried only after the backoff
        report = await deliver_once(pool, http, hooked, now=t0)
        assert (report.claimed, report.failed, report.delivered) == (4, 4, 0)
        assert (await deliver_once(pool, http, hooked, now=t0)).claimed == 0
        assert (await deliver_once(pool, http, hooked,
                                   now=t0 + timedelta(seconds=0.9))).claimed == 0
        report = await deliver_once(pool, http, hooked, now=t0 + timedelta(seconds=1.1))
        assert report.failed == 4  # second attempt, next one 2 s later
        assert (await deliver_once(pool, http, hooked,
                                   now=t0 + timedelta(seconds=2.5))).claimed == 0
        receiver.up()
        report = await deliver_once(pool, http, hooked, now=t0 + timedelta(seconds=3.2))
        assert (report.delivered, report.failed) == (4, 0)
        assert (await deliver_once(pool, http, hooked,
                                   now=t0 + timedelta(hours=1))).claimed == 0
    assert receiver.ids() == set(pushed) and receiver.all_valid()
    assert all(body["offer"]["id"] == d and body["type"] == "offer.issued"
               for d, _, body in receiver.received)
    states = dict(await conn.fetch("SELECT offer_id::text, state FROM offer_outbox"))
    assert states == {**dict.fromkeys(pushed, "delivered"), offers[4]: "skipped"}
    assert _count("failed") - failed_before == 8
    assert _count("delivered") - delivered_before == 4
    s = (await hclient.get(f"/v1/programs/{program}/campaigns/{campaign}/stats",
                           headers=manager(htokens, program))).json()
    assert s["deliveries"] == {"pending": 0, "delivered": 4, "expired": 0, "skipped": 1,
                               "failed_attempts": 8}


async def test_an_offer_that_expires_before_delivery_is_dropped_not_sent(
        hclient: Client, htokens: TokenService, hooked: Settings, receiver: Receiver,
        pool: asyncpg.Pool, conn: asyncpg.Connection) -> None:
    await _issue(hclient, htokens, 2)
    receiver.up()
    async with httpx.AsyncClient() as http:
        report = await deliver_once(pool, http, hooked,
                                    now=datetime.now(UTC) + timedelta(hours=2))
    assert (report.expired, report.delivered) == (2, 0)
    assert receiver.received == []
    assert await conn.fetchval("SELECT count(*) FROM offer_outbox WHERE state = 'expired'") == 2


async def _wait_for(check: Any, what: str) -> None:
    """Poll an observable condition until it holds, within a deadline (no fixed sleep)."""
    deadline = time.monotonic() + DEADLINE_S
    while not await check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


async def test_the_workers_background_loop_delivers_everything_once_the_receiver_returns(
        db_url: str, keys_file: Path, tmp_path: Path, conn: asyncpg.Connection,
        receiver: Receiver) -> None:
    program = await fx.program(conn)
    await fx.store(conn, program)
    members = [(await fx.member(conn, program)).id for _ in range(20)]
    await conn.execute(
        "INSERT INTO member_consents (member_id, purpose, granted, policy_version, source) "
        "SELECT unnest($1::uuid[]), 'location_offers', true, 'v1', 'test'", members)
    tokens = TokenService(load_or_create(keys_file), issuer="loyalty-geo", access_ttl_s=900,
                          refresh_ttl_s=3600, card_ttl_s=60)
    env = {"LOYALTY_WEBHOOK_URL": receiver.url, "LOYALTY_WEBHOOK_SECRET": SECRET,
           "LOYALTY_WEBHOOK_POLL_S": "0.05", "LOYALTY_WEBHOOK_BACKOFF_S": "0.05",
           "LOYALTY_WEBHOOK_MAX_BACKOFF_S": "0.2"}
    at = (datetime.now(UTC) - timedelta(seconds=5)).isoformat()
    with running_server(db_url, keys_file, tmp_path, workers=2, env=env) as base:
        async with httpx.AsyncClient(base_url=base, timeout=60.0) as client:
            h = {"Authorization": "Bearer " + tokens.mint_access(
                sub=uuid.uuid4(), role="manager", program_id=program)}
            r = await client.post(f"/v1/programs/{program}/campaigns", json=campaign_body(),
                                  headers=h)
            cid = r.json()["id"]
            await client.post(f"/v1/programs/{program}/campaigns/{cid}/activate", headers=h)
            results = await asyncio.gather(*(client.post(
                "/v1/me/pings", json={"pings": [{"lat": 48.85, "lon": 2.35, "accuracy_m": 10,
                                                 "at": at}]},
                headers={"Authorization": "Bearer " + tokens.mint_access(
                    sub=m, role="member", program_id=program)}) for m in members))
            offers = {o["id"] for r in results for o in r.json()["offers"]}
            assert len(offers) == 20

            async def all_failed_twice() -> bool:  # the receiver is down: retries happen
                return bool(await conn.fetchval(
                    "SELECT count(*) = 20 AND min(attempts) >= 2 FROM offer_outbox"))

            await _wait_for(all_failed_twice, "failed attempts while the receiver is down")
            receiver.up()

            async def all_delivered() -> bool:
                return bool(await conn.fetchval(
                    "SELECT count(*) FILTER (WHERE state = 'delivered') = 20 FROM offer_outbox"))

            await _wait_for(all_delivered, "every offer delivered")
    assert receiver.ids() == offers  # nothing lost
    assert receiver.all_valid()  # nothing with a bad signature
