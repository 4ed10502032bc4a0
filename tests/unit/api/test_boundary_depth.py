"""The nesting limit (`api.boundary.decode_body`): a body whose target type nests no deeper
than the limit is counted only when it fails to decode, and every body gets the answer the
count-first order gives (the same value, or the same 400 with the same detail)."""

from __future__ import annotations

import json
import uuid
from typing import Annotated, Any

import msgspec
import msgspec.inspect as mi
import pytest
from hypothesis import given
from hypothesis import strategies as st
from litestar.exceptions import ClientException, ValidationException

from api import boundary
from api.boundary import decode_body, nesting_depth, type_depth
from api.controllers.pings import PingBatch


class Leaf(msgspec.Struct, forbid_unknown_fields=True):
    n: int
    tags: list[str] = []


class Open(msgspec.Struct):  # unknown fields allowed: skipped unchecked, however deep
    n: int


class Node(msgspec.Struct, forbid_unknown_fields=True):
    children: list[Node] = []


class Holder(msgspec.Struct, forbid_unknown_fields=True):
    leaf: Leaf | None = None
    by_id: dict[str, list[Leaf]] = {}
    when: Annotated[str, msgspec.Meta(max_length=5)] = ""


@pytest.mark.parametrize(("target", "depth"), [
    (int, 0), (uuid.UUID, 0), (Leaf, 2), (list[Leaf], 3), (Holder, 5), (PingBatch, 3),
    (tuple[int, list[int]], 2), (Leaf | None, 2), (Open, None), (Node, None), (Any, None),
    (dict[str, Any], None), (msgspec.Raw, None), (list[Open], None)])
def test_type_depth(target: Any, depth: int | None) -> None:
    assert type_depth(mi.type_info(target)) == depth


def _count_first(body: bytes, target: Any, *, max_depth: int) -> Any:
    """The order before: count, then decode."""
    if nesting_depth(body, max_depth) > max_depth:
        raise ClientException(detail=f"arrays and objects nest deeper than {max_depth} levels")
    try:
        return msgspec.json.Decoder(target, strict=True).decode(body or b"null")
    except msgspec.ValidationError as exc:
        raise ValidationException(detail="Validation failed", extra=[
            {"message": str(exc), "key": "data", "source": "body"}]) from None
    except msgspec.DecodeError as exc:
        raise ClientException(detail=str(exc)) from None


def _outcome(decode: Any, body: bytes, target: Any, max_depth: int) -> tuple[str, Any]:
    try:
        return "value", decode(body, target, max_depth=max_depth)
    except (ClientException, ValidationException) as exc:
        return type(exc).__name__, (exc.detail, exc.extra)


PING = {"lat": 1.0, "lon": 2.0, "accuracy_m": 5.0, "at": "2026-01-01T00:00:00Z"}
_scalars = st.one_of(st.integers(-5, 5), st.sampled_from(["x", "[", "{}", ""]), st.none(),
                     st.just(PING), st.floats(-100, 100))
_json = st.recursive(_scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=3),
    st.dictionaries(st.sampled_from(["pings", "lat", "n", "tags", "leaf", "by_id", "when",
                                     "children", "x"]), inner, max_size=3)), max_leaves=12)


@given(value=_json, target=st.sampled_from([PingBatch, Holder, Leaf, list[Leaf], Node]),
       max_depth=st.integers(1, 6), cut=st.integers(0, 3))
def test_every_body_gets_the_answer_of_counting_first(value: Any, target: Any, max_depth: int,
                                                      cut: int) -> None:
    body = json.dumps(value).encode()
    body = body[:len(body) - cut]  # malformed JSON too
    assert _outcome(decode_body, body, target, max_depth) == _outcome(
        _count_first, body, target, max_depth)


def test_a_bounded_target_is_counted_only_when_decoding_fails(
        monkeypatch: pytest.MonkeyPatch) -> None:
    counted: list[bytes] = []
    count = boundary.nesting_depth

    def counting(body: bytes, limit: int) -> int:
        counted.append(body)
        return count(body, limit)

    monkeypatch.setattr(boundary, "nesting_depth", counting)
    batch = json.dumps({"pings": [PING] * 50}).encode()
    assert len(decode_body(batch, PingBatch, max_depth=32).pings) == 50
    assert counted == []
    deep = b'{"pings": [{"lat": ' + b"[" * 40 + b"]" * 40 + b"}]}"
    with pytest.raises(ClientException, match="deeper than 32"):
        decode_body(deep, PingBatch, max_depth=32)
    assert counted == [deep]
    with pytest.raises(ClientException, match="deeper than 32"):  # unbounded: counted first
        decode_body(b"[" * 100_000, dict[str, Any], max_depth=32)
