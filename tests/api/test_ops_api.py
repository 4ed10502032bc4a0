"""Operations endpoints and the OpenAPI document."""

from __future__ import annotations

import re

from litestar import Litestar
from litestar.testing import AsyncTestClient

Client = AsyncTestClient[Litestar]


async def test_health_and_ready_answer_without_a_token(client: Client) -> None:
    assert (await client.get("/health")).json() == {"status": "ok"}
    ready = await client.get("/ready")
    assert ready.status_code == 200
    assert ready.json()["pending_migrations"] == []


async def test_metrics_are_prometheus_text_and_count_requests(client: Client) -> None:
    await client.get("/health")
    r = await client.get("/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    assert 'http_requests_total{method="GET",route="/health",status="200"}' in r.text


async def test_openapi_lists_every_route_with_bodies_and_errors(
    client: Client, app: Litestar
) -> None:
    doc = (await client.get("/schema/openapi.json")).json()
    documented = {(path, method.upper()) for path, ops in doc["paths"].items()
                  for method in ops}
    for route in app.routes:
        for handler in getattr(route, "route_handlers", []):
            # (as the handler, its controller or its router decides: the static files'
            # routers keep them out of the document)
            if not handler.resolve_include_in_schema() or route.path.startswith("/schema"):
                continue
            for method in handler.http_methods:
                if method in {"HEAD", "OPTIONS"}:
                    continue
                path = re.sub(r":[a-z]+}", "}", route.path)
                assert (path, method) in documented, (path, method)
    for path, ops in doc["paths"].items():
        if not path.startswith("/v1/"):
            continue
        for method, op in ops.items():
            codes = set(op["responses"])
            assert any(c.startswith("2") for c in codes), (path, method)
            assert "400" in codes, (path, method)
            if not path.startswith("/v1/auth"):
                assert "401" in codes, (path, method)
    assert (await client.get("/schema")).status_code == 200
