"""`make run`'s demo makes its own development pass credentials, and with them the pass
routes work: the .pkpass verifies against the development root, the Google link is signed."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import msgspec
import pytest
from cryptography import x509
from litestar import Litestar
from litestar.testing import AsyncTestClient
from support.pass_fixtures import scene, unzip, verify_pkcs7_detached

from api.app import create_app
from api.auth.tokens import TokenService
from api.config import Settings
from api.runtime.demo_passes import DEMO_PASS_TYPE_ID, dev_pass_environment


@pytest.fixture
async def demo_client(settings: Settings, tmp_path: Path
                      ) -> AsyncIterator[AsyncTestClient[Litestar]]:
    env = dev_pass_environment(tmp_path, "http://127.0.0.1:8000")
    configured = Settings.from_env(env)
    fields = {f: getattr(configured, f) for f in configured.__struct_fields__
              if f"LOYALTY_{f.upper()}" in env}
    app = create_app(msgspec.structs.replace(settings, **fields))
    async with AsyncTestClient(app=app) as c:
        yield c


async def test_the_demo_serves_passes_signed_by_its_development_credentials(
        demo_client: AsyncTestClient[Litestar], tmp_path: Path) -> None:
    tokens: TokenService = demo_client.app.state.tokens
    s = await scene(demo_client, tokens)
    r = await demo_client.get("/v1/me/card/apple-pass", headers=s.headers)
    assert r.status_code == 200, r.text
    files = unzip(r.content)
    root = x509.load_pem_x509_certificate((tmp_path / "dev-passes" / "root.pem").read_bytes())
    verify_pkcs7_detached(files["signature"], files["manifest.json"], root=root)
    pass_json = json.loads(files["pass.json"])
    assert pass_json["passTypeIdentifier"] == DEMO_PASS_TYPE_ID
    assert pass_json["webServiceURL"] == "http://127.0.0.1:8000/v1/passkit"
    google = await demo_client.get("/v1/me/card/google-wallet", headers=s.headers)
    assert google.status_code == 200 and "/gp/v/save/" in google.json()["save_url"]
    before = {p.name: p.read_bytes() for p in (tmp_path / "dev-passes").iterdir()}
    dev_pass_environment(tmp_path, "http://127.0.0.1:8000")  # a second run keeps them
    assert {p.name: p.read_bytes() for p in (tmp_path / "dev-passes").iterdir()} == before
    assert oct((tmp_path / "dev-passes" / "pass-key.pem").stat().st_mode & 0o777) == "0o600"
