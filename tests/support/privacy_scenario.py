"""A member with data in every table that can hold a member's data, built through the public
API as the app, the till, a manager and an admin would: consents, preferences, PIN, top-up,
purchase (redeeming an offer), refund, a reward claimed and its voucher used at the till,
payout of what is left in the purse, scan, pings (visit, last position, raw pings when the
settings keep them), an offer, access-log entries, sessions, and wallet passes with a
registered device when the settings configure passes."""

from __future__ import annotations

import io
import json
import uuid
import zipfile
from datetime import timedelta
from typing import Any, NamedTuple

from support.helpers import (
    INSIDE,
    Client,
    admin,
    ago,
    bearer,
    create_program,
    create_store,
    manager,
    notice_version,
    now,
    ping,
    staff,
)

from api.auth.tokens import TokenService

FIRST_NAME = "Zephyrine"
PASSWORD = "a long enough password"


def routes_by_role(app: Any) -> dict[tuple[str, str], frozenset[str]]:
    """(method, path) → the roles its `roles(...)` guard admits (empty: no such guard)."""
    found: dict[tuple[str, str], frozenset[str]] = {}
    for route in app.routes:
        for handler in getattr(route, "route_handlers", []):
            admitted: set[str] = set()
            for guard in handler.resolve_guards():
                name = getattr(guard, "func", guard).__name__
                if name.startswith("roles_"):
                    admitted.update(name.removeprefix("roles_").split("_"))
            path = route.path.replace(":uuid", "").replace(":str", "")
            for method in handler.http_methods:
                if method not in {"OPTIONS", "HEAD"}:
                    found[method, path] = frozenset(admitted)
    return found


class Rich(NamedTuple):
    program_id: str
    store_id: str
    campaign_id: str
    member_id: str
    email: str
    card_number: str
    qr: str
    headers: dict[str, str]
    staff: dict[str, str]
    manager: dict[str, str]
    admin: dict[str, str]


async def pos(client: Client, headers: dict[str, str], path: str, body: dict[str, Any]) -> Any:
    r = await client.post(f"/v1/pos/{path}", json=body,
                          headers={**headers, "Idempotency-Key": uuid.uuid4().hex})
    assert r.status_code in (200, 201), r.text
    return r.json()


async def create_campaign(client: Client, tokens: TokenService, program_id: str) -> str:
    mgr = manager(tokens, program_id)
    r = await client.post(f"/v1/programs/{program_id}/campaigns", headers=mgr, json={
        "name": "Ice cream", "trigger": {"event": "enter"},
        "schedule": {"starts_at": ago(86400).isoformat(),
                     "ends_at": (now() + timedelta(days=1)).isoformat()},
        "offer": {"title": "A free scoop", "body": "Come in", "valid_for_s": 3600,
                  "reward": {"kind": "bonus_points", "value": 50}}})
    assert r.status_code == 201, r.text
    campaign_id = str(r.json()["id"])
    r = await client.post(f"/v1/programs/{program_id}/campaigns/{campaign_id}/activate",
                          headers=mgr)
    assert r.status_code == 200, r.text
    return campaign_id


async def rich_member(client: Client, tokens: TokenService) -> Rich:
    version = await notice_version(client)
    pid = await create_program(client, tokens)
    sid = await create_store(client, tokens, pid)
    campaign_id = await create_campaign(client, tokens, pid)
    email = f"z{uuid.uuid4().hex[:10]}@example.com"
    r = await client.post(f"/v1/programs/{pid}/members", json={
        "email": email, "password": PASSWORD, "first_name": FIRST_NAME,
        "consents": [{"purpose": p, "granted": True, "policy_version": version}
                     for p in ("location_offers", "marketing")]})
    assert r.status_code == 201, r.text
    signup = r.json()
    me = bearer(signup["access_token"])
    member_id, card_number = str(signup["member"]["id"]), signup["card"]["card_number"]
    for method, path, body in (
            ("PUT", "/v1/me/consents/marketing", {"granted": False,
                                                  "policy_version": version}),
            ("PUT", "/v1/me/preferences", {"max_offers_per_day": 3}),
            ("PUT", "/v1/me/pin", {"pin": "24680", "password": PASSWORD})):
        r = await client.request(method, path, json=body, headers=me)
        assert r.status_code in (200, 204), r.text
    r = await client.post("/v1/auth/token", json={"grant_type": "refresh_token",
                                                  "refresh_token": signup["refresh_token"]})
    assert r.status_code == 200, r.text

    r = await client.post("/v1/me/pings", headers=me,
                          json={"pings": [ping(*INSIDE, ago(30)), ping(*INSIDE, ago(20))]})
    assert r.status_code == 200, r.text
    offers = r.json()["offers"]
    assert len(offers) == 1, r.text

    till = staff(tokens, pid, sid)
    r = await client.get("/v1/me/card", headers=me)
    qr = r.json()["qr"]["payload"]
    await pos(client, till, "scan", {"store_id": sid, "qr_payload": qr})
    await pos(client, till, "stored-value/top-ups",
              {"store_id": sid, "card_number": card_number, "amount": 5000, "currency": "EUR"})
    bought = await pos(client, till, "purchases", {
        "store_id": sid, "qr_payload": qr, "receipt_id": "R-1", "amount": 2000,
        "currency": "EUR", "redeem": {"offer_ids": [offers[0]["id"]]},
        "stored_value": {"amount": 500, "pin": "24680"}})
    await pos(client, till, "refunds", {"store_id": sid, "transaction_id":
                                        bought["transaction_id"], "amount": 500})
    r = await client.post(f"/v1/programs/{pid}/rewards", headers=manager(tokens, pid), json={
        "name": "A free scoop", "points_cost": 10, "kind": "voucher",
        "voucher_valid_for_s": 3600})
    assert r.status_code == 201, r.text
    r = await client.post(f"/v1/me/rewards/{r.json()['id']}/claims", headers=me)
    assert r.status_code == 201, r.text
    await pos(client, till, "vouchers/redeem", {"store_id": sid,
                                                "code": r.json()["voucher"]["code"]})
    # The purse is emptied in cash at the till, so that the member can be erased.
    left = (await client.get("/v1/me", headers=me)).json()["stored_value_balance"]
    await pos(client, till, "stored-value/payouts", {
        "store_id": sid, "card_number": card_number, "amount": left, "currency": "EUR",
        "pin": "24680"})
    await wallet_passes(client, me)
    return Rich(program_id=pid, store_id=sid, campaign_id=campaign_id, member_id=member_id,
                email=email, card_number=card_number, qr=qr, headers=me, staff=till,
                manager=manager(tokens, pid), admin=admin(tokens))


async def wallet_passes(client: Client, me: dict[str, str]) -> None:
    """The member's Apple pass (showing their name) with a registered phone, and their
    Google Wallet object, when the app has passes configured."""
    setup = client.app.state.passes
    if setup.apple is not None:
        r = await client.get("/v1/me/card/apple-pass?show_name=true", headers=me)
        assert r.status_code == 200, r.text
        with zipfile.ZipFile(io.BytesIO(r.content)) as z:
            pass_json = json.loads(z.read("pass.json"))
        r = await client.post(
            f"/v1/passkit/devices/phone-1/registrations/{pass_json['passTypeIdentifier']}/"
            f"{pass_json['serialNumber']}", json={"pushToken": "feedface0123"},
            headers={"Authorization": f"ApplePass {pass_json['authenticationToken']}"})
        assert r.status_code == 201, r.text
    if setup.google is not None:
        r = await client.get("/v1/me/card/google-wallet", headers=me)
        assert r.status_code == 200, r.text
