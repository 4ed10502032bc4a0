"""Examples for the OpenAPI document: a realistic request and response for every operation
that does not carry its own (a coffee chain in Paris, prices in EUR), descriptions for the
operations whose handler has none, and realistic `Problem` examples. Applied once to the
generated document when it is first served (`api.docs`); a test checks that every operation
has a summary, a description and its examples.
"""

from __future__ import annotations

from typing import Any

from api.examples_data import OPERATIONS, PROBLEM_EXAMPLES

MARK = "x-examples-added"


def with_examples(doc: dict[str, Any]) -> dict[str, Any]:
    """Add the examples to Litestar's cached document, in place, once; returns it."""
    if doc.get(MARK):
        return doc
    for path, ops in doc.get("paths", {}).items():
        for method, op in ops.items():
            entry = OPERATIONS.get((method.upper(), path))
            if entry is None:
                continue
            if entry.description and not op.get("description"):
                op["description"] = entry.description
            body = op.get("requestBody", {}).get("content", {})
            for media in body.values():
                if entry.request is not None and not (media.get("example")
                                                      or media.get("examples")):
                    media["example"] = entry.request
            for status, response in op.get("responses", {}).items():
                example = entry.responses.get(int(status))
                for media in response.get("content", {}).values():
                    if example is not None and not (media.get("example")
                                                    or media.get("examples")):
                        media["example"] = example
    problem = doc.get("components", {}).get("schemas", {}).get("Problem")
    if problem is not None:
        problem["examples"] = PROBLEM_EXAMPLES
    doc[MARK] = True
    return doc
