"""Where a request body becomes a typed value: once, for every route, strictly.

Litestar's default decodes JSON to plain Python objects, then converts them to the handler's
Struct leniently (`"amount": "100"` became 100, `?from=6086315` a time). `BoundaryRequest`
replaces that step for every JSON body:

1. **Nesting limit.** A body nested deeper than `Settings.max_json_depth` (arrays and
   objects) is a 400 `/problems/malformed-body`: 100,000 `[` used to exhaust the decoder's
   recursion (`RecursionError`, a 500). Counting is linear and runs in numpy, before
   decoding — except for a target whose own nesting is bounded within the limit (Structs
   that forbid unknown fields, lists, dicts and scalars: every body route's but the store
   import's GeoJSON): the decoder cannot recurse deeper than that type, and a body it
   decodes nests no deeper, so such a body is counted only when decoding fails, to tell
   "too deep" from the decoder's own error. The answer is the same; a ping batch of 50
   no longer pays the count (about a tenth of its server CPU).
2. **Strict types.** The body is decoded straight into the handler's declared type by msgspec
   with `strict=True`: a string is never a number, a number never a time. Every text field
   refuses control characters through its type (`wallet.kernel.text`).
3. **One error shape.** A type or constraint failure is a `ValidationException` whose message
   names the field (`- at $.pings[0].lat`), mapped by `api.errors` to a 400 `/problems/validation`;
   an undecodable body is a 400 `/problems/malformed-body`.

The decoded Struct is what Litestar's signature model receives; converting a Struct to its own
type returns it unchanged, so nothing is decoded twice.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from typing import Annotated, Any

import msgspec
import msgspec.inspect as mi
import numpy as np
from litestar import Request
from litestar.exceptions import ClientException, HTTPException, ValidationException
from litestar.types import Empty

# A JSON string (escapes included): its brackets are text, not structure.
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"')
_OPEN = np.zeros(256, np.int8)
_OPEN[[ord("["), ord("{")]] = 1
_OPEN[[ord("]"), ord("}")]] = -1

_decoders: dict[Any, tuple[msgspec.json.Decoder[Any], int | None]] = {}
_FLAT = (mi.BoolType, mi.IntType, mi.FloatType, mi.StrType, mi.BytesType, mi.ByteArrayType,
         mi.DateTimeType, mi.TimeType, mi.DateType, mi.TimeDeltaType, mi.UUIDType,
         mi.DecimalType, mi.EnumType, mi.LiteralType, mi.NoneType)


def nesting_depth(body: bytes, limit: int) -> int:
    """How deep arrays and objects nest in `body` (valid or not), exactly when it could
    exceed `limit`; a body with at most `limit` brackets in all returns their count."""
    opens = body.count(b"[") + body.count(b"{")
    if opens <= limit:
        return opens
    bare = _STRING.sub(b'""', body)
    steps = _OPEN[np.frombuffer(bare, np.uint8)]
    return int(np.cumsum(steps, dtype=np.int64).max(initial=0))


def type_depth(t: mi.Type, within: frozenset[type] = frozenset()) -> int | None:
    """The deepest a JSON value can nest and still decode into `t`, or None when unbounded:
    `Any`, `Raw`, custom types, a recursive type, and objects whose unknown fields the
    decoder skips without looking (Structs that allow them, dataclasses, TypedDicts)."""
    if isinstance(t, mi.Metadata):
        return type_depth(t.type, within)
    if isinstance(t, _FLAT):
        return 0
    inner: tuple[mi.Type, ...]
    if isinstance(t, mi.StructType):
        if not t.forbid_unknown_fields or t.cls in within:
            return None
        within, inner = within | {t.cls}, tuple(f.type for f in t.fields)
    elif isinstance(t, mi.ListType | mi.SetType | mi.FrozenSetType | mi.VarTupleType):
        inner = (t.item_type,)
    elif isinstance(t, mi.TupleType):
        inner = t.item_types
    elif isinstance(t, mi.DictType):
        inner = (t.value_type,)
    elif isinstance(t, mi.UnionType):
        depths = [type_depth(u, within) for u in t.types]
        return None if None in depths else max(d for d in depths if d is not None)
    else:
        return None
    depths = [type_depth(u, within) for u in inner]
    return None if None in depths else 1 + max((d for d in depths if d is not None),
                                               default=0)


def _decoder(target: Any) -> tuple[msgspec.json.Decoder[Any], int | None]:
    found = _decoders.get(target)
    if found is None:
        bound = None if target is Any else type_depth(mi.type_info(target))
        found = _decoders[target] = (msgspec.json.Decoder(target, strict=True), bound)
    return found


def decode_body(body: bytes, target: Any, *, max_depth: int) -> Any:
    """Decode a JSON body into `target` strictly; raise Litestar's 400 exceptions."""
    decoder, bound = _decoder(target)
    counted = bound is None or bound > max_depth
    if counted and nesting_depth(body, max_depth) > max_depth:
        raise _too_deep(max_depth)
    try:
        return decoder.decode(body or b"null")
    except (msgspec.ValidationError, msgspec.DecodeError, RecursionError) as exc:
        if not counted and nesting_depth(body, max_depth) > max_depth:
            raise _too_deep(max_depth) from None
        if isinstance(exc, msgspec.ValidationError):
            raise ValidationException(detail="Validation failed", extra=[
                {"message": str(exc), "key": "data", "source": "body"}]) from None
        if isinstance(exc, RecursionError):  # pragma: no cover - the depth check comes first
            raise ClientException(detail="nested too deep") from None
        raise ClientException(detail=str(exc)) from None


def _too_deep(max_depth: int) -> ClientException:
    return ClientException(detail=f"arrays and objects nest deeper than {max_depth} levels")


class BoundaryRequest(Request[Any, Any, Any]):
    """The app's request class: `json()` is `decode_body` into the route's `data` type.

    A route whose `opt` names `max_body_setting` (the store import) gets that setting as its
    body limit, checked on `Content-Length` before anything is read; its handler's own
    `request_max_body_size` stays the hard ceiling for bodies sent without a length."""

    async def body(self) -> bytes:
        name = self.route_handler.opt.get("max_body_setting")
        if name is not None and self._body is Empty:
            limit = int(getattr(self.app.state.settings, name))
            length = self.headers.get("content-length")
            if length is not None and length.isdigit() and int(length) > limit:
                raise HTTPException(status_code=413,
                                    detail=f"the body exceeds {limit} bytes ({name})")
            body = await super().body()
            if len(body) > limit:
                raise HTTPException(status_code=413,
                                    detail=f"the body exceeds {limit} bytes ({name})")
            return body
        return await super().body()

    async def json(self) -> Any:
        if self._json is Empty:
            if (cached := self._connection_state.json) is not Empty:
                self._json = cached
            else:
                field = self.route_handler.parsed_data_field
                target = field.annotation if field is not None else Any
                settings = self.app.state.settings
                self._json = self._connection_state.json = decode_body(
                    await self.body(), target, max_depth=settings.max_json_depth)
        return self._json


# --- times in a query string ----------------------------------------------------------------

RFC3339 = (r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?"
           r"([Zz]|[+-][0-9]{2}:[0-9]{2})$")
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(9000, 1, 1, tzinfo=UTC)  # far from datetime.max: windows subtract and add
_INSTANT = msgspec.json.Decoder(Annotated[datetime, msgspec.Meta(tz=True)], strict=True)


def instant(value: str | None, field: str) -> datetime | None:
    """A query parameter's RFC 3339 time (with offset) between 1970 and 9000, else a 400
    naming `field`. Litestar's lenient conversion took `?from=6086315` as a Unix time and
    let `to=0001-01-01T00:00:00Z` overflow once the default window was subtracted."""
    if value is None:
        return None
    try:
        at = _INSTANT.decode(msgspec.json.encode(value)) if re.match(RFC3339, value) else None
    except msgspec.ValidationError:
        at = None
    if at is None or not EARLIEST <= at < LATEST:
        raise ValidationException(detail="Validation failed", extra=[{
            "message": "an RFC 3339 time with offset between 1970 and 9000 is expected",
            "key": field, "source": "query"}])
    return at


def day(value: date | None, field: str) -> date | None:
    """A query parameter's local date between 1970 and 9000, else a 400 naming `field`: a
    period's dates become instants in the program's time zone, and year 1 or 9999 overflowed
    there (a 500 the schema fuzzing found on the stats routes)."""
    if value is not None and not EARLIEST.date() <= value < LATEST.date():
        raise invalid(field, "a date (YYYY-MM-DD) between 1970 and 9000 is expected",
                      source="query")
    return value



def invalid(field: str, message: str, *, source: str = "body") -> ValidationException:
    """The 400 `/problems/validation` naming `field`, for a check the decoder cannot make
    (raise it)."""
    return ValidationException(detail="Validation failed", extra=[{
        "message": message, "key": field, "source": source}])
