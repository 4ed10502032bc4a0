"""The README's first links work (issue 10, item 13): the API root answers with an index of
the documentation and of every route, without a token; the demo banner tells the truth."""

from __future__ import annotations

from litestar import Litestar
from litestar.testing import AsyncTestClient
from support.helpers import bearer

from api.runtime import demo

Client = AsyncTestClient[Litestar]


async def test_the_api_root_is_an_index_of_links_that_answer(client: Client) -> None:
    for url in ("/v1/", "/v1"):
        r = await client.get(url)
        assert r.status_code == 200, (url, r.text)
    index = r.json()
    for link in ("docs", "openapi", "health", "ready", "metrics"):
        assert (await client.get(index[link])).status_code == 200, link
    listed = {(link["path"], m) for links in index["routes"].values() for link in links
              for m in link["methods"]}
    doc = (await client.get(index["openapi"])).json()
    documented = {(p, m.upper()) for p, ops in doc["paths"].items() if p.startswith("/v1/")
                  for m in ops}
    assert listed == documented  # every route of v1, and only those
    assert ("/v1/me/stores", "GET") in listed
    members = {link["path"]: link for link in index["routes"]["members"]}
    assert members["/v1/me"]["summary"] and "PATCH" in members["/v1/me"]["methods"]


async def test_the_demo_summary_counts_what_the_database_holds_now(
        client: Client, db_url: str) -> None:
    first = await demo.seed(db_url)
    assert "6 stores: BASTILLE, GARE-DE-LYON, LOUVRE, MARAIS, MONTMARTRE, OPERA" in first
    assert "1 member, 0 active campaigns" in first
    r = await client.post("/v1/auth/token", json={
        "grant_type": "password", "program_id": str(demo.PROGRAM_ID),
        "email": demo.MANAGER_EMAIL, "password": demo.MANAGER_PASSWORD})
    h = bearer(r.json()["access_token"])
    base = f"/v1/programs/{demo.PROGRAM_ID}/stores"
    louvre = next(s for s in (await client.get(base, headers=h)).json()["items"]
                  if s["code"] == "LOUVRE")
    assert (await client.delete(f"{base}/{louvre['id']}", headers=h)).status_code == 204
    r = await client.post(base, headers=h, json={"code": "NATION", "name": "Nation", "zone": {
        "type": "Circle", "center": [2.3959, 48.8484], "radius_m": 60}})
    assert r.status_code == 201, r.text
    r = await client.post(f"/v1/programs/{demo.PROGRAM_ID}/members", json={
        "email": "bob@example.com", "password": "a long enough password", "first_name": "Bob"})
    assert r.status_code == 201, r.text
    again = await demo.seed(db_url)  # what `make run` prints on the next start
    assert "6 stores: BASTILLE, GARE-DE-LYON, MARAIS, MONTMARTRE, NATION, OPERA" in again
    assert "2 members" in again and "(stores OPERA)" in again


