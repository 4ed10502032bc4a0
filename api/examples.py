"""Examples for the OpenAPI document: a realistic request and response for every operation
that does not carry its own (a coffee chain in Paris, prices in EUR), descriptions for the
operations whose handler has none, and realistic `Problem` examples. Applied once to the
generated document when it is first served (`api.docs`); a test checks that every operation
has a summary, a description and its examples.
"""

from __future__ import annotations

import re
from typing import Any

from litestar import Litestar

from api.examples_data import OPERATIONS, PROBLEM_EXAMPLES, Op

MARK = "x-examples-added"


def _promote_schema_examples(op: dict[str, Any]) -> None:
    """A handler's own body or response examples (`Body(examples=...)`, which Litestar puts
    in the schema) are shown as the media type's example, where Swagger UI looks first."""
    contents = [*op.get("requestBody", {}).get("content", {}).values(),
                *(c for r in op.get("responses", {}).values()
                  for c in r.get("content", {}).values())]
    for media in contents:
        examples = media.get("schema", {}).get("examples")
        if examples and not (media.get("example") or media.get("examples")):
            media["example"] = examples[0]


def _handler_examples(app: Litestar, doc: dict[str, Any]) -> None:
    """Put the handlers' own examples (`Body(examples=...)`, `ResponseSpec(examples=...)`)
    back as written: Litestar's serialisation drops their `null` members, which makes an
    example lack a required (nullable) field."""
    for route in app.routes:
        path = re.sub(r":[a-z]+}", "}", route.path)
        for handler in getattr(route, "route_handlers", []):
            for method in handler.http_methods:
                op = doc.get("paths", {}).get(path, {}).get(method.lower())
                if op is None:
                    continue
                body = handler.parsed_data_field
                kwarg = getattr(body, "kwarg_definition", None) if body is not None else None
                written = getattr(kwarg, "examples", None)
                for media in op.get("requestBody", {}).get("content", {}).values():
                    if written:
                        media["example"] = written[0].value
                for status, spec in (handler.responses or {}).items():
                    response = op.get("responses", {}).get(str(status), {})
                    for media in response.get("content", {}).values():
                        if spec.examples and media.get("examples"):
                            for stored, example in zip(media["examples"].values(),
                                                       spec.examples, strict=False):
                                stored["value"] = example.value


def _fill(op: dict[str, Any], entry: Op) -> None:
    """The table's description and examples, where the operation has none of its own."""
    if entry.description and not op.get("description"):
        op["description"] = entry.description
    for media in op.get("requestBody", {}).get("content", {}).values():
        if entry.request is not None and not (media.get("example") or media.get("examples")):
            media["example"] = entry.request
    for status, response in op.get("responses", {}).items():
        example = entry.responses.get(int(status))
        for media in response.get("content", {}).values():
            if example is not None and not (media.get("example") or media.get("examples")):
                media["example"] = example


def with_examples(doc: dict[str, Any], app: Litestar | None = None) -> dict[str, Any]:
    """Add the examples to Litestar's cached document, in place, once; returns it."""
    if doc.get(MARK):
        return doc
    if app is not None:
        _handler_examples(app, doc)
    for path, ops in doc.get("paths", {}).items():
        for method, op in ops.items():
            if "204" in op.get("responses", {}):  # No Content: Litestar lists a media type
                op["responses"]["204"].pop("content", None)
            _promote_schema_examples(op)
            entry = OPERATIONS.get((method.upper(), path))
            if entry is not None:
                _fill(op, entry)
    problem = doc.get("components", {}).get("schemas", {}).get("Problem")
    if problem is not None:
        problem["examples"] = PROBLEM_EXAMPLES
    doc[MARK] = True
    return doc
