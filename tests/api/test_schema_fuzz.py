"""Schema fuzzing (issue 14): schemathesis draws requests from the OpenAPI document for every
operation, sends them to a real server as admin, manager, staff and member with real ids in
the path, and checks each answer: never a 5xx, and status, content type and body as the
document declares them.

The budget is a setting: `LOYALTY_FUZZ_EXAMPLES` examples per operation and role (default 3,
which keeps `make test` bounded); raise it for a longer hunt, e.g. 100.
"""

from __future__ import annotations

import os
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from support.campaign_helpers import campaign_body
from support.helpers import PROGRAM
from support.realserver import running_server

from loadtests.common import token_service

EXAMPLES = int(os.environ.get("LOYALTY_FUZZ_EXAMPLES", "3"))
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance]
pytestmark = pytest.mark.slow


@pytest.fixture
def server(db_url: str, keys_file: Path, tmp_path: Path) -> Iterator[str]:
    with running_server(db_url, keys_file, tmp_path, workers=1,
                        env={"LOYALTY_CREDENTIAL_ATTEMPTS_PER_MINUTE": "100000"}) as base:
        yield base


def _world(base: str, keys_file: Path) -> tuple[dict[str, str], dict[str, dict[str, str]]]:
    """Real ids for path parameters, and a bearer header per role."""
    mint = token_service(keys_file)
    admin = {"Authorization": "Bearer " + mint.mint_access(sub=uuid.uuid4(), role="admin")}
    with httpx.Client(base_url=base, timeout=30) as c:
        program = c.post("/v1/programs", json=PROGRAM, headers=admin).json()
        pid = program["id"]
        manager = {"Authorization": "Bearer " + mint.mint_access(
            sub=uuid.uuid4(), role="manager", program_id=uuid.UUID(pid))}
        store = c.post(f"/v1/programs/{pid}/stores", headers=manager, json={
            "code": "F1", "name": "Fuzz", "zone": {"type": "Circle", "center": [2.35, 48.85],
                                                   "radius_m": 100}}).json()
        campaign = c.post(f"/v1/programs/{pid}/campaigns", headers=manager,
                          json=campaign_body(store_ids=[store["id"]])).json()
        signed = c.post(f"/v1/programs/{pid}/members", json={
            "email": "fuzz@example.com", "password": "a long enough password",
            "first_name": "Fuzz"}).json()
    staff = {"Authorization": "Bearer " + mint.mint_access(
        sub=uuid.uuid4(), role="staff", program_id=uuid.UUID(pid),
        store_ids=[uuid.UUID(store["id"])])}
    member = {"Authorization": f"Bearer {signed['access_token']}"}
    ids = {"program_id": pid, "store_id": store["id"], "campaign_id": campaign["id"],
           "member_id": signed["member"]["id"]}
    return ids, {"admin": admin, "manager": manager, "staff": staff, "member": member}


def _oneline(failure: BaseException) -> str:
    """A failure's message on one line (what was wrong, where in the schema), bounded."""
    return " | ".join(line.strip() for line in str(failure).splitlines() if line.strip())[:600]


def test_every_operation_as_every_role_never_fails_and_matches_the_document(
        server: str, keys_file: Path) -> None:
    ids, roles = _world(server, keys_file)
    schema = schemathesis.openapi.from_url(f"{server}/schema/openapi.json")
    failures: list[str] = []
    sent: Counter[str] = Counter()
    # every API operation; /console and /till are the browser pages, not part of the API
    operations = [op for op in (result.ok() for result in schema.get_all_operations())
                  if op.path.startswith(("/v1/", "/health", "/ready", "/metrics"))]

    def fuzz(operation: Any, role: str, headers: dict[str, str]) -> None:
        @given(case=operation.as_strategy())
        @settings(max_examples=EXAMPLES, database=None, derandomize=True,
                  phases=[Phase.explicit, Phase.generate],
                  suppress_health_check=list(HealthCheck))
        def send(case: Any) -> None:
            for name in list(case.path_parameters or {}):
                if name in ids:
                    case.path_parameters[name] = ids[name]
            response = case.call(base_url=server, headers={**(case.headers or {}), **headers})
            sent[role] += 1
            try:
                case.validate_response(response, checks=CHECKS)
            except (AssertionError, BaseExceptionGroup) as exc:
                found = exc.exceptions if isinstance(exc, BaseExceptionGroup) else [exc]
                failures.extend(f"{role} {operation.label} -> {response.status_code}: "
                                f"{_oneline(f)}" for f in found)

        send()

    for operation in operations:
        for role, headers in roles.items():
            fuzz(operation, role, headers)
    print(f"schema fuzzing: {sum(sent.values())} requests over {len(operations)} operations "
          f"({dict(sent)}), {len(failures)} failures")
    assert not failures, "\n".join(failures[:40])
