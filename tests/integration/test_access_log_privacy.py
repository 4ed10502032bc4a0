"""The HTTP server's access log never writes a query string down, and no credential is taken
from a URL (issue 14, bug 10). A query can carry personal data (an e-mail searched for, a
member id) and URLs end up in logs, proxies and browser histories: `loyalty serve` (two
workers, as deployed) logs each request's path and status, never what follows the `?`, and
a token put in a URL is refused like no token at all."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from support.faults import Serve, serve_env
from support.realserver import free_port

from loadtests.common import token_service

pytestmark = pytest.mark.slow
SECRET = "jane.doe-7f3a@example.com"


@pytest.fixture
def node(db_url: str, keys_file: Path, tmp_path: Path) -> Iterator[Serve]:
    serve = Serve(free_port(), serve_env(db_url, keys_file, tmp_path), tmp_path / "serve.log")
    try:
        serve.wait_ready()
        yield serve
    finally:
        serve.stop()


def test_the_access_log_has_paths_and_statuses_but_never_a_query_string(
        node: Serve, keys_file: Path) -> None:
    mint = token_service(keys_file)
    admin = {"Authorization": "Bearer " + mint.mint_access(sub=uuid.uuid4(), role="admin")}
    member_token = mint.mint_access(sub=uuid.uuid4(), role="member", program_id=uuid.uuid4())
    with httpx.Client(base_url=node.base, timeout=30) as c:
        pid = c.post("/v1/programs", headers=admin, json={
            "name": "Log", "currency": "EUR", "timezone": "Europe/Paris",
            "earn_rate": {"points": 1, "per_amount": 100}, "points_expiry_days": 365}).json()["id"]
        searches = [
            c.get(f"/v1/programs/{pid}/stores", params={"q": SECRET}, headers=admin),
            c.get("/v1/admin/access-log", params={"member_id": str(uuid.uuid4()),
                                                  "from": "2026-01-01T00:00:00Z"},
                  headers=admin),
            c.get("/v1/programs", params={"limit": "2", "email": SECRET}, headers=admin),
        ]
        # a credential in the URL is never accepted: not as a token, not beside one
        in_url = [c.get("/v1/me", params={name: member_token})
                  for name in ("access_token", "token", "jwt", "bearer", "authorization")]
        beside = c.get("/v1/me", params={"access_token": member_token},
                       headers={"Authorization": f"Bearer {member_token}"})
        login = c.post("/v1/auth/token", params={"email": SECRET, "password": "hunter2hunter2"},
                       json={"grant_type": "password", "email": SECRET,
                             "password": "hunter2hunter2"})
    assert [r.status_code for r in searches] == [200, 200, 400]
    assert [r.status_code for r in in_url] == [401] * 5
    assert beside.status_code == 400
    assert beside.json()["errors"][0]["field"] == "access_token"
    assert login.status_code == 400
    node.stop()  # every worker has written its last line

    log = node.log.read_text(errors="replace")
    access = [line for line in log.splitlines() if '" 200' in line or '" 4' in line]
    assert any(f'"GET /v1/programs/{pid}/stores HTTP/1.1" 200' in line for line in access), log
    assert any('"GET /v1/me HTTP/1.1" 401' in line for line in access), log
    assert SECRET not in log
    assert member_token not in log
    assert "?" not in "".join(access)
