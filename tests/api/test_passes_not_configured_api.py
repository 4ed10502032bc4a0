"""With no pass settings, every pass route answers a clear 404 problem, never a 500."""

from __future__ import annotations

from support.helpers import Client
from support.pass_fixtures import PASS_TYPE_ID, scene

from api.auth.tokens import TokenService


async def test_pass_routes_say_passes_are_not_configured(
        client: Client, tokens: TokenService) -> None:
    s = await scene(client, tokens)
    for path in ("/v1/me/card/apple-pass", "/v1/me/card/google-wallet"):
        r = await client.get(path, headers=s.headers)
        assert r.status_code == 404, r.text
        assert r.headers["content-type"].startswith("application/problem+json")
        assert r.json()["type"] == "/problems/passes-not-configured"
        assert "not configured" in r.json()["detail"]
    for method, path in (
            ("POST", f"/v1/passkit/devices/d1/registrations/{PASS_TYPE_ID}/{'s' * 32}"),
            ("GET", f"/v1/passkit/v1/devices/d1/registrations/{PASS_TYPE_ID}"),
            ("GET", f"/v1/passkit/passes/{PASS_TYPE_ID}/{'s' * 32}")):
        r = await client.request(method, path, json={"pushToken": "ab12"} if method == "POST"
                                 else None, headers={"Authorization": "ApplePass x"})
        assert r.status_code == 404, f"{method} {path}: {r.text}"
        assert r.json()["type"] == "/problems/passes-not-configured"
