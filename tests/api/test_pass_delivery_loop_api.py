"""The app's own delivery loop: a purchase through the API reaches the APNs stand-in with no
test code calling the delivery service, and the metrics count passes issued, devices
registered and pushes sent and pending."""

from __future__ import annotations

import asyncio
import re

import msgspec
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from support.pass_fixtures import (
    PASS_TYPE_ID,
    H2StandIn,
    Pki,
    Seen,
    apple_auth,
    apple_pass_of,
    buy,
    make_pki,
    scene,
)

from api.app import create_app
from api.auth.tokens import TokenService
from api.config import Settings


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


def metric(text: str, name: str) -> float:
    found = re.search(rf"^{re.escape(name)} ([0-9.e+]+)$", text, re.MULTILINE)
    assert found, f"{name} not in /metrics"
    return float(found.group(1))


async def test_the_app_pushes_updates_on_its_own_and_counts_them(
        settings: Settings, pki: Pki, monkeypatch: pytest.MonkeyPatch) -> None:
    pushes: asyncio.Queue[Seen] = asyncio.Queue()

    async def apns(seen: Seen) -> tuple[int, bytes]:
        await pushes.put(seen)
        return 200, b""

    server = H2StandIn(pki, apns)
    await server.start()
    monkeypatch.setenv("SSL_CERT_FILE", str(pki.root_file))  # trust the stand-in's test CA
    app = create_app(msgspec.structs.replace(settings, **pki.settings(
        apns_url=server.url, pass_push_poll_s=0.02)))
    client: AsyncTestClient[Litestar]
    async with AsyncTestClient(app=app) as client:
        tokens: TokenService = app.state.tokens
        s = await scene(client, tokens)
        p = await apple_pass_of(client, s)
        r = await client.post(
            f"/v1/passkit/devices/phone/registrations/{PASS_TYPE_ID}/{p.serial}",
            json={"pushToken": "dd01"}, headers=apple_auth(p.token))
        assert r.status_code == 201
        await buy(client, s, 6_00)
        first = await asyncio.wait_for(pushes.get(), timeout=30)  # a hang guard, not a timer
        assert first.path == "/3/device/dd01"
        await buy(client, s, 1_00)  # rounds run one after another: the first is recorded
        assert (await asyncio.wait_for(pushes.get(), timeout=30)).path == "/3/device/dd01"
        text = (await client.get("/metrics")).text
        assert metric(text, 'passes_issued_total{kind="apple"}') >= 1
        assert metric(text, "pass_devices_registered_total") >= 1
        assert metric(text, 'pass_pushes_total{outcome="sent"}') >= 1
        assert "pass_pushes_pending" in text
    await server.stop()
