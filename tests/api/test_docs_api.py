"""The docs page works offline (issue 10, item 12): `/schema` and every asset it references
come from the app itself (a pinned Python package), nothing from a CDN; the OpenAPI document
gives every operation a summary, a description and examples, and `Problem` realistic ones."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urlsplit

import msgspec
import msgspec.inspect
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


async def test_every_operation_has_a_summary_a_description_and_examples(
        client: Client) -> None:
    doc = (await client.get("/schema/openapi.json")).json()
    missing = []
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            where = f"{method.upper()} {path}"
            if not op.get("summary"):
                missing.append(f"{where}: summary")
            if not op.get("description"):
                missing.append(f"{where}: description")
            for media, content in op.get("requestBody", {}).get("content", {}).items():
                if not (content.get("example") or content.get("examples")):
                    missing.append(f"{where}: request example ({media})")
            for status, response in op["responses"].items():
                for media, content in response.get("content", {}).items():
                    if not (content.get("example") or content.get("examples")):
                        missing.append(f"{where}: {status} example ({media})")
    assert not missing, "add them to api/openapi_examples.json:\n" + "\n".join(missing)


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


def _holds_raw(t: Any) -> bool:
    """msgspec cannot decode into `Raw | None`: such a type is checked by its own tests."""
    return "RawType" in repr(msgspec.inspect.type_info(t))


def _examples(media: dict[str, Any]) -> list[Any]:
    if "example" in media:
        return [media["example"]]
    return [e["value"] for e in media.get("examples", {}).values()]


async def test_the_examples_are_what_the_api_accepts_and_answers(
        client: Client, app: Litestar) -> None:
    """Each request example decodes into the route's body type, each JSON success example
    into its return type: an example that drifts from the API fails here."""
    doc = (await client.get("/schema/openapi.json")).json()
    checked = 0
    for route in app.routes:
        path = re.sub(r":[a-z]+}", "}", route.path)
        for handler in getattr(route, "route_handlers", []):
            for method in handler.http_methods:
                op = doc["paths"].get(path, {}).get(method.lower())
                if op is None:
                    continue
                body = handler.parsed_data_field
                media = op.get("requestBody", {}).get("content", {}).get("application/json")
                if body is not None and media is not None:
                    for example in _examples(media):
                        msgspec.json.decode(msgspec.json.encode(example), type=body.annotation)
                        checked += 1
                returned = handler.parsed_fn_signature.return_type.annotation
                ok = next((r for s, r in op["responses"].items() if s.startswith("2")), {})
                media = ok.get("content", {}).get("application/json")
                if media is not None and isinstance(returned, type) and issubclass(
                        returned, msgspec.Struct) and not _holds_raw(returned):
                    for example in _examples(media):
                        msgspec.json.decode(msgspec.json.encode(example), type=returned)
                        checked += 1
    assert checked >= 60
