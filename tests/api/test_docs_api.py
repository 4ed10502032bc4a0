"""The docs page works offline (issue 10, item 12): `/schema` and every asset it references
come from the app itself (a pinned Python package), nothing from a CDN; the OpenAPI document
gives every operation a summary, a description and examples, and `Problem` realistic ones."""

from __future__ import annotations

from html.parser import HTMLParser
from urllib.parse import urlsplit

from litestar import Litestar
from litestar.testing import AsyncTestClient

from api.docs import ASSETS_DIR

Client = AsyncTestClient[Litestar]


class _Refs(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.refs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.refs += [v for k, v in attrs if k in ("src", "href") and v]


TYPES = {".js": "javascript", ".css": "text/css", ".png": "image/png"}


async def test_the_docs_page_and_every_asset_it_references_come_from_the_app(
        client: Client) -> None:
    for page in ("/schema", "/schema/swagger"):
        r = await client.get(page)
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
        parser = _Refs()
        parser.feed(r.text)
        assert len(parser.refs) >= 4, parser.refs  # css, two scripts, the icon
        for ref in parser.refs:
            url = urlsplit(ref)
            assert not url.scheme and not url.netloc and ref.startswith("/"), ref
            asset = await client.get(ref)
            assert asset.status_code == 200, ref
            suffix = ref[ref.rfind("."):]
            assert TYPES[suffix] in asset.headers["content-type"], (ref, asset.headers)
            assert asset.content == (ASSETS_DIR / ref.rsplit("/", 1)[1]).read_bytes()
        assert "SwaggerUIBundle(" in r.text and "cdn." not in "".join(parser.refs)
    assert (await client.get("/schema/assets/nothing.js")).status_code == 404


async def test_the_problem_examples_are_realistic(client: Client) -> None:
    doc = (await client.get("/schema/openapi.json")).json()
    problem = doc["components"]["schemas"]["Problem"]
    assert problem["examples"]
    for example in problem["examples"]:
        assert example["type"].startswith("/problems/") and 400 <= example["status"] < 600
        assert example["title"] and example["detail"]
    generated = [p for p in problem["properties"].values() if "examples" in p]
    assert generated == []  # no random placeholder strings
    store = doc["paths"]["/v1/programs/{program_id}/stores"]["post"]["responses"]
    for status in ("400", "401", "403", "404", "409", "422"):
        (example,) = store[status]["content"]["application/problem+json"]["examples"].values()
        assert example["value"]["status"] == int(status)
