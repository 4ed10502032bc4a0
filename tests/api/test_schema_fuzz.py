"""Schema fuzzing (issue 14): schemathesis draws requests from the OpenAPI document for every
operation, sends them to a real server as admin, manager, staff and member with real ids in
the path, and checks each answer: never a 5xx, and status, content type and body as the
document declares them.

The document must stay true in both directions (bug 9), so there are two tests:
* **requests the document allows**, drawn at random as every role: every answer must be
  one the document declares;
* **requests the document forbids**, as a role the operation lets through: random ones
  (an unknown field where it says `additionalProperties: false`, a value past a documented
  bound, a wrong type, a missing field), and, since a random one breaks several rules at
  once and one refused rule can hide another that is documented but not enforced,
  schemathesis' deterministic cases that break exactly one rule each (one past each bound,
  one unknown field, one missing field or header, a wrong content type, a method the path
  does not have). Each must be refused with a 4xx (`negative_data_rejection`), answered as
  documented, and a 405 must say `Allow` (`unsupported_method`).

Every one-rule case is sent (about 1,500); budgets are settings that keep `make test`
bounded: `LOYALTY_FUZZ_EXAMPLES` random cases per operation, role and kind (default 3) and
`LOYALTY_FUZZ_WRONG_TYPES` one-rule cases per operation that give a field a wrong type
(default 2: strict types have their own tests, `test_boundary_api.py`). Raise them for a
longer hunt, e.g. 100 and 1000.
"""

from __future__ import annotations

import os
import re
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.generation.meta import CoverageScenario, ParameterLocation
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    missing_required_header,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
    unsupported_method,
)
from support.campaign_helpers import campaign_body
from support.figures import Figures
from support.helpers import PROGRAM
from support.realserver import running_server

from loadtests.common import token_service

EXAMPLES = int(os.environ.get("LOYALTY_FUZZ_EXAMPLES", "3"))
WRONG_TYPES = int(os.environ.get("LOYALTY_FUZZ_WRONG_TYPES", "2"))
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance]
NEGATIVE_CHECKS = [*CHECKS, negative_data_rejection]
COVERAGE_CHECKS = [*NEGATIVE_CHECKS, unsupported_method, missing_required_header]
API = ("/v1/", "/health", "/ready", "/metrics")  # /console and /till are browser pages
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
        # consent to location offers: pings reach their checks instead of a 403
        version = c.get("/v1/privacy/notice").json()["version"]
        signed = c.post(f"/v1/programs/{pid}/members", json={
            "email": "fuzz@example.com", "password": "a long enough password",
            "first_name": "Fuzz", "consents": [
                {"purpose": "location_offers", "granted": True, "policy_version": version}],
        }).json()
    staff = {"Authorization": "Bearer " + mint.mint_access(
        sub=uuid.uuid4(), role="staff", program_id=uuid.UUID(pid),
        store_ids=[uuid.UUID(store["id"])])}
    member = {"Authorization": f"Bearer {signed['access_token']}"}
    ids = {"program_id": pid, "store_id": store["id"], "campaign_id": campaign["id"],
           "member_id": signed["member"]["id"]}
    return ids, {"admin": admin, "manager": manager, "staff": staff, "member": member}


def _fixed_path(operation: Any, ids: dict[str, str]) -> dict[str, str]:
    return {name: ids[name] for name in re.findall(r"\{(\w+)\}", operation.path)
            if name in ids}


def _oneline(failure: BaseException) -> str:
    """A failure's message on one line (what was wrong, where in the schema), bounded."""
    return " | ".join(line.strip() for line in str(failure).splitlines() if line.strip())[:600]


class Run:
    """Sends cases to the server and keeps what each check found, with counts to report."""

    def __init__(self, server: str) -> None:
        self.server = server
        self.failures: list[str] = []
        self.sent: Counter[str] = Counter()

    def send(self, case: Any, label: str, checks: list[Any],
             headers: dict[str, str] | None = None) -> None:
        response = case.call(base_url=self.server, headers=headers)
        self.sent[label] += 1
        try:
            case.validate_response(response, checks=checks)
        except (AssertionError, BaseExceptionGroup) as exc:
            found = exc.exceptions if isinstance(exc, BaseExceptionGroup) else [exc]
            self.failures.extend(f"{label} {case.method} {case.operation.path} -> "
                                 f"{response.status_code}: {_oneline(f)}" for f in found)

    def fuzz(self, operation: Any, headers: dict[str, str], ids: dict[str, str],
             mode: GenerationMode, label: str, checks: list[Any]) -> None:
        """`EXAMPLES` random cases of `mode`; the real ids in the path and the role's token
        are fixed, not drawn, so a negative case is wrong where schemathesis made it wrong."""
        @given(case=operation.as_strategy(generation_mode=mode,
                                          path_parameters=_fixed_path(operation, ids) or None,
                                          headers=headers))
        @settings(max_examples=EXAMPLES, database=None, derandomize=True,
                  phases=[Phase.explicit, Phase.generate],
                  suppress_health_check=list(HealthCheck))
        def draw(case: Any) -> None:
            self.send(case, label, checks)

        try:
            draw()
        except Unsatisfiable:  # nothing of it can be made invalid (no body, no parameters)
            assert mode is GenerationMode.NEGATIVE, operation.label

    def report(self, what: str, figures: Figures) -> None:
        figures(what, {"requests": sum(self.sent.values()), "by kind": dict(self.sent),
                       "failures": len(self.failures)})
        assert not self.failures, "\n".join(self.failures[:40])


def _operations(schema: Any) -> list[Any]:
    return [op for op in (result.ok() for result in schema.get_all_operations())
            if op.path.startswith(API)]


def test_every_operation_as_every_role_never_fails_and_matches_the_document(
        server: str, keys_file: Path, figures: Figures) -> None:
    ids, roles = _world(server, keys_file)
    schema = schemathesis.openapi.from_url(f"{server}/schema/openapi.json")
    run = Run(server)
    for operation in _operations(schema):
        for role, headers in roles.items():
            run.fuzz(operation, headers, ids, GenerationMode.POSITIVE, role, CHECKS)
    run.report(f"schema fuzzing of {len(_operations(schema))} operations", figures)


def _one_rule_cases(schema: Any, operation: Any, ids: dict[str, str]) -> list[Any]:
    """The operation's coverage cases that break one documented rule, except a rule of what
    the test fixes (the real ids in the path, the bearer token); `WRONG_TYPES` of those that
    give a field a wrong type."""
    config = schema.config.generation_for(operation=operation)
    fixed = _fixed_path(operation, ids)
    cases, wrong_types = [], 0
    for case in schema.iter_coverage_cases(operation, generation_modes=[GenerationMode.NEGATIVE],
                                           generation_config=config):
        data = case.meta.phase.data
        if data.parameter_location is ParameterLocation.PATH and data.parameter in fixed:
            continue
        if (data.parameter or "").lower() == "authorization":
            continue
        if data.scenario is CoverageScenario.INCORRECT_TYPE:
            wrong_types += 1
            if wrong_types > WRONG_TYPES:
                continue
        case.path_parameters = {**(case.path_parameters or {}), **fixed}
        cases.append(case)
    return cases


def _caller(operation: Any, roles: dict[str, dict[str, str]], ids: dict[str, str],
            server: str) -> dict[str, str]:
    """The first role the operation lets through (a request answers neither 401 nor 403),
    so cases that break its rules meet its validation rather than its guards."""
    path = re.sub(r"\{(\w+)\}", lambda m: ids.get(m[1], str(uuid.uuid4())), operation.path)
    with httpx.Client(base_url=server, timeout=30) as c:
        for headers in roles.values():
            answer = c.request(operation.method.upper(), path, headers=headers)
            if answer.status_code not in (401, 403):
                return headers
    return roles["admin"]


def test_every_rule_the_document_states_is_one_the_server_enforces(
        server: str, keys_file: Path, figures: Figures) -> None:
    ids, roles = _world(server, keys_file)
    schema = schemathesis.openapi.from_url(f"{server}/schema/openapi.json")
    run = Run(server)
    for operation in _operations(schema):
        headers = _caller(operation, roles, ids, server)
        run.fuzz(operation, headers, ids, GenerationMode.NEGATIVE, "random", NEGATIVE_CHECKS)
        for case in _one_rule_cases(schema, operation, ids):
            run.send(case, str(case.meta.phase.data.scenario), COVERAGE_CHECKS, headers)
    run.report("requests breaking the document's rules", figures)
