"""Campaign management over HTTP: create, read, list, change (recorded), activate, pause;
400 for shapes and 422 for rules, each naming the field; roles and programs; weather."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from support.campaign_helpers import campaign_body, create_campaign, iso
from support.helpers import Client, create_program, create_store, manager, signup, staff

from api.auth.tokens import TokenService


def _url(program: str, *rest: str) -> str:
    return "/".join([f"/v1/programs/{program}/campaigns", *rest]).rstrip("/")


async def test_a_manager_creates_a_draft_campaign_and_reads_it_back(
        client: Client, tokens: TokenService) -> None:
    program = await create_program(client, tokens)
    store = await create_store(client, tokens, program)
    body = campaign_body(store_ids=[store], tiers=["gold"],
                         hours=[{"from": "12:00", "to": "18:00"}],
                         context={"min_temp_c": 25}, caps={"per_member_per_day": 1})
    r = await client.post(_url(program), json=body, headers=manager(tokens, program))
    assert r.status_code == 201, r.text
    c = r.json()
    assert c["status"] == "draft" and c["issued"] == 0 and c["revision"] == 1
    assert c["store_ids"] == [store] and c["audience"] == {"tiers": ["gold"]}
    assert c["schedule"]["hours"] == [{"from": "12:00", "to": "18:00"}]
    r = await client.get(_url(program, c["id"]), headers=manager(tokens, program))
    assert r.status_code == 200 and r.json() == c


async def test_campaigns_are_listed_oldest_first_with_a_status_filter_and_pages(
        client: Client, tokens: TokenService) -> None:
    program = await create_program(client, tokens)
    ids = [(await create_campaign(client, tokens, program, campaign_body(name=f"c{i}"),
                                  activate=i == 1))["id"] for i in range(3)]
    h = manager(tokens, program)
    first = (await client.get(_url(program), params={"limit": 2}, headers=h)).json()
    assert [c["id"] for c in first["items"]] == ids[:2] and first["next_cursor"]
    rest = (await client.get(_url(program), params={"cursor": first["next_cursor"]},
                             headers=h)).json()
    assert [c["id"] for c in rest["items"]] == ids[2:] and rest["next_cursor"] is None
    active = (await client.get(_url(program), params={"status": "active"}, headers=h)).json()
    assert [c["id"] for c in active["items"]] == [ids[1]]


async def test_activate_pause_activate_and_a_draft_cannot_be_paused(
        client: Client, tokens: TokenService) -> None:
    program = await create_program(client, tokens)
    c = await create_campaign(client, tokens, program, campaign_body(), activate=False)
    h = manager(tokens, program)
    r = await client.post(_url(program, c["id"], "pause"), headers=h)
    assert r.status_code == 409 and r.json()["field"] == "status"
    for action, status in (("activate", "active"), ("pause", "paused"), ("pause", "paused"),
                           ("activate", "active")):
        r = await client.post(_url(program, c["id"], action), headers=h)
        assert r.status_code == 200 and r.json()["status"] == status


async def test_a_change_of_an_active_campaign_is_recorded_with_who_when_before_and_after(
        client: Client, tokens: TokenService) -> None:
    program = await create_program(client, tokens)
    c = await create_campaign(client, tokens, program, campaign_body())
    h = manager(tokens, program)
    r = await client.patch(_url(program, c["id"]), json={
        "offer": {"title": "Two scoops", "body": "b", "reward": {"kind": "percent_off",
                                                                  "value": 30},
                  "valid_for_s": 600}}, headers=h)
    assert r.status_code == 200, r.text
    changed = r.json()
    assert changed["offer"]["reward"]["value"] == 30 and changed["revision"] == 3
    assert changed["status"] == "active" and changed["trigger"] == c["trigger"]
    revs = (await client.get(_url(program, c["id"], "revisions"), headers=h)).json()["items"]
    assert [v["action"] for v in revs] == ["update", "activate", "create"]
    assert revs[0]["before"]["rules"]["offer"]["reward"]["value"] == 20
    assert revs[0]["after"]["rules"]["offer"]["reward"]["value"] == 30
    assert revs[2]["before"] is None and uuid.UUID(revs[0]["changed_by"])


async def test_shape_errors_are_400_naming_the_field(client: Client, tokens: TokenService) -> None:
    program = await create_program(client, tokens)
    h = manager(tokens, program)
    cases: list[tuple[dict[str, Any], str]] = [
        ({**campaign_body(), "surprise": 1}, "surprise"),
        (campaign_body(caps={"max_issued": 0}), "caps.max_issued"),
        (campaign_body(context={"conditions": ["hail"]}), "context.conditions"),
        (campaign_body(hours=[{"from": "25:00", "to": "26:00"}]), "schedule.hours"),
        (campaign_body(weekdays=[0]), "schedule.weekdays"),
        (campaign_body(reward=("free_car", 1)), "offer.reward.kind"),
        (campaign_body(valid_for_s=0), "offer.valid_for_s"),
        (campaign_body(trigger={"event": "dwell", "dwell_s": -5}), "trigger.dwell_s"),
    ]
    for body, field in cases:
        r = await client.post(_url(program), json=body, headers=h)
        assert r.status_code == 400, (field, r.text)
        assert any(e["field"].startswith(field) for e in r.json()["errors"]), (field, r.text)


async def test_rule_errors_are_422_naming_the_field(client: Client, tokens: TokenService) -> None:
    program = await create_program(client, tokens)
    other = await create_program(client, tokens)
    foreign_store = await create_store(client, tokens, other)
    h = manager(tokens, program)
    now = datetime.now(UTC)
    backwards = campaign_body()
    backwards["schedule"] = {"starts_at": iso(now), "ends_at": iso(now - timedelta(hours=1))}
    cases: list[tuple[dict[str, Any], str]] = [
        (backwards, "schedule.ends_at"),
        (campaign_body(weekdays=[1, 1]), "schedule.weekdays[1]"),
        (campaign_body(hours=[{"from": "10:00", "to": "10:00"}]), "schedule.hours[0].to"),
        (campaign_body(trigger={"event": "dwell"}), "trigger.dwell_s"),
        (campaign_body(reward=("percent_off", 150)), "offer.reward.value"),
        (campaign_body(reward=("points_multiplier", 1)), "offer.reward.value"),
        (campaign_body(tiers=["platinum"]), "audience.tiers[0]"),
        (campaign_body(store_ids=[foreign_store]), "store_ids[0]"),
        (campaign_body(context={"min_temp_c": 30, "max_temp_c": 10}), "context.max_temp_c"),
    ]
    for body, field in cases:
        r = await client.post(_url(program), json=body, headers=h)
        assert r.status_code == 422, (field, r.text)
        assert r.json()["field"] == field, r.text


async def test_a_patch_replaces_the_parts_it_names_and_is_validated_as_a_whole(
        client: Client, tokens: TokenService) -> None:
    program = await create_program(client, tokens)
    c = await create_campaign(client, tokens, program, campaign_body(caps={"max_issued": 5}))
    r = await client.patch(_url(program, c["id"]), json={"caps": {"max_issued": 2}},
                           headers=manager(tokens, program))
    assert r.status_code == 200, r.text
    assert r.json()["caps"]["max_issued"] == 2 and r.json()["name"] == c["name"]
    r = await client.patch(_url(program, c["id"]), json={"trigger": {"event": "dwell"}},
                           headers=manager(tokens, program))
    assert r.status_code == 422 and r.json()["field"] == "trigger.dwell_s"


async def test_only_managers_of_the_program_and_admins_manage_campaigns(
        client: Client, tokens: TokenService) -> None:
    program = await create_program(client, tokens)
    other = await create_program(client, tokens)
    store = await create_store(client, tokens, program)
    c = await create_campaign(client, tokens, program, campaign_body())
    _, member = await signup(client, program)
    for headers in (staff(tokens, program, store), member):
        assert (await client.get(_url(program), headers=headers)).status_code == 403
    assert (await client.get(_url(program), headers=manager(tokens, other))).status_code == 403
    r = await client.get(_url(other, c["id"]), headers=manager(tokens, other))
    assert r.status_code == 404


async def test_weather_is_kept_per_store_latest_observation_wins(
        client: Client, tokens: TokenService) -> None:
    program = await create_program(client, tokens)
    store = await create_store(client, tokens, program)
    h = manager(tokens, program)
    now = datetime.now(UTC)
    url = f"/v1/programs/{program}/weather"
    r = await client.put(url, json={"observations": [
        {"store_id": store, "temp_c": 28.5, "condition": "clear", "observed_at": iso(now)},
        {"store_id": store, "temp_c": 10, "condition": "rain",
         "observed_at": iso(now - timedelta(hours=1))}]}, headers=h)
    assert r.status_code == 200 and r.json() == {"stored": 1}
    r = await client.put(url, json={"observations": [
        {"store_id": store, "temp_c": 5, "condition": "snow",
         "observed_at": iso(now - timedelta(hours=2))}]}, headers=h)
    assert r.json() == {"stored": 0}  # older than what is stored: ignored


async def test_weather_for_an_unknown_store_or_from_the_future_is_422(
        client: Client, tokens: TokenService) -> None:
    program = await create_program(client, tokens)
    store = await create_store(client, tokens, program)
    h = manager(tokens, program)
    now = datetime.now(UTC)
    url = f"/v1/programs/{program}/weather"
    ok = {"store_id": store, "temp_c": 20, "condition": "clear", "observed_at": iso(now)}
    r = await client.put(url, json={"observations": [ok, {**ok, "store_id": str(uuid.uuid4())}]},
                         headers=h)
    assert r.status_code == 422 and r.json()["field"] == "observations[1].store_id"
    r = await client.put(url, json={"observations": [
        {**ok, "observed_at": iso(now + timedelta(hours=1))}]}, headers=h)
    assert r.status_code == 422 and r.json()["field"] == "observations[0].observed_at"
    r = await client.put(url, json={"observations": [{**ok, "condition": "hail"}]}, headers=h)
    assert r.status_code == 400


async def test_every_campaign_route_is_in_the_openapi_document(client: Client) -> None:
    doc = (await client.get("/schema/openapi.json")).json()
    paths = doc["paths"]
    base = "/v1/programs/{program_id}/campaigns"
    for path, method in [(base, "post"), (base, "get"), (f"{base}/{{campaign_id}}", "get"),
                         (f"{base}/{{campaign_id}}", "patch"),
                         (f"{base}/{{campaign_id}}/activate", "post"),
                         (f"{base}/{{campaign_id}}/pause", "post"),
                         (f"{base}/{{campaign_id}}/stats", "get"),
                         (f"{base}/{{campaign_id}}/revisions", "get"),
                         ("/v1/programs/{program_id}/weather", "put"),
                         ("/v1/me/offers", "get")]:
        op = paths[path][method]
        assert {"400", "404", "422"} & op["responses"].keys(), (path, method)
        assert any(c.startswith("2") for c in op["responses"]), (path, method)
