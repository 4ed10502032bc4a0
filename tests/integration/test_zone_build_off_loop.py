"""A program's zone snapshot is built off the event loop (issue 14, bug 3): while one
program's zones are validated and indexed (seconds for a large program), the worker keeps
answering every other request, `/health` included. Before, a manager's 10 polygons of 100,000
vertices blocked `/health` for up to 5 s on every worker.

The build is held at a gate, so the test shows what is answered *while* it runs without
timing anything: the app is served by uvicorn on the test's own event loop, and the gate's
thread waits until the test has its answers. A build run on the event loop would hold that
loop, so nothing would be answered until the gate gave up."""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import uvicorn
from litestar import Litestar
from support.faults import until
from support.helpers import INSIDE, PROGRAM, admin, ago, circle, manager, ping
from support.realserver import free_port

from api.app import create_app
from api.config import Settings
from geo import registry

GATE_S = 20.0  # how long a held build waits for the test at most


class Gate:
    """Wraps `geo.registry._apply` (the CPU part of a refresh): holds it until opened."""

    def __init__(self) -> None:
        self.entered, self.open = threading.Event(), threading.Event()
        self.finished = False
        self._apply = registry._apply

    def __call__(self, *args: Any) -> registry.ProgramZones:
        self.entered.set()
        self.open.wait(GATE_S)
        try:
            return self._apply(*args)
        finally:
            self.finished = True


@pytest.fixture
async def served(settings: Settings) -> AsyncIterator[tuple[str, Litestar]]:
    """The app under uvicorn on this test's event loop (lifespan included)."""
    app = create_app(settings)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=free_port(),
                                           lifespan="on", ws="none", log_config=None,
                                           access_log=False))  # the test's logging stays
    task = asyncio.ensure_future(server.serve())
    await until(lambda: server.started or task.done())
    assert server.started, task
    try:
        yield f"http://127.0.0.1:{server.config.port}", app
    finally:
        server.should_exit = True
        await task


async def test_while_a_programs_zones_are_rebuilt_every_other_request_is_answered(
        served: tuple[str, Litestar], monkeypatch: pytest.MonkeyPatch) -> None:
    base, app = served
    tokens = app.state.tokens
    async with httpx.AsyncClient(base_url=base, timeout=60) as c:
        pid = (await c.post("/v1/programs", json=PROGRAM, headers=admin(tokens))).json()["id"]
        store = await c.post(f"/v1/programs/{pid}/stores", headers=manager(tokens, pid),
                             json={"code": "A", "name": "A", "zone": circle()})
        assert store.status_code == 201, store.text
        version = (await c.get("/v1/privacy/notice")).json()["version"]
        member = await c.post(f"/v1/programs/{pid}/members", json={
            "email": f"m{uuid.uuid4().hex[:8]}@example.com", "password": "a long password",
            "first_name": "Sam", "consents": [{"purpose": "location_offers", "granted": True,
                                               "policy_version": version}]})
        me = {"Authorization": f"Bearer {member.json()['access_token']}"}

        gate = Gate()
        monkeypatch.setattr(registry, "_apply", gate)
        # The program's first ping loads its snapshot: the build is held at the gate.
        pinging = asyncio.ensure_future(c.post("/v1/me/pings", headers=me, json={
            "pings": [ping(*INSIDE, ago(5))]}))
        assert await asyncio.to_thread(gate.entered.wait, GATE_S), "no build started"
        health = await c.get("/health")
        program = await c.get(f"/v1/programs/{pid}", headers=admin(tokens))
        answered_while_building = not gate.finished
        gate.open.set()
        pinged = await pinging

    assert (health.status_code, program.status_code) == (200, 200)
    assert answered_while_building, "the build held the event loop"
    assert pinged.status_code == 200, pinged.text
    assert [(v["store_id"], v["event"]) for v in pinged.json()["visits"]] == [
        (store.json()["id"], "enter")]
