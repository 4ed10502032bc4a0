"""Token verification (`TokenService.verify`) checks signatures and claims itself, without
pyjwt's `decode`: it must accept exactly the tokens pyjwt's strict decode accepted (pinned
algorithm, known kid, required claims, `iat`/`nbf`/`exp` with the leeway, `iss`, no `aud`)
and give the same claims, for tokens signed with the service's own key (whatever their
payload) and for tampered ones — except that an `nbf` must now be an integer, as `exp` and
`iat` already had to be (pyjwt converted it with `int()`)."""

from __future__ import annotations

import base64
import json
import time
import uuid
from pathlib import Path
from typing import Any

import jwt
import msgspec
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from api.auth.keys import load_or_create
from api.auth.tokens import Claims, TokenService, TokenType
from wallet.kernel import errors

ISSUER = "test"
KEYS = load_or_create(Path(__import__("tempfile").mkdtemp()) / "keys.json")


def _service() -> TokenService:
    return TokenService(KEYS, issuer=ISSUER, access_ttl_s=60, refresh_ttl_s=60, card_ttl_s=60,
                        verified_cache=0)


def _pyjwt_verify(token: str, typ: TokenType) -> Claims:
    """What `verify` did before: pyjwt's decode, then the claims converted strictly."""
    try:
        header = jwt.get_unverified_header(token)
        if header.get("alg") != "EdDSA":
            raise errors.Unauthenticated("unexpected token algorithm")
        key = KEYS.public.get(str(header.get("kid")))
        if key is None:
            raise errors.Unauthenticated("unknown signing key")
        raw = jwt.decode(token, key, algorithms=["EdDSA"], issuer=ISSUER, leeway=5,
                         options={"require": ["exp", "iat", "nbf", "iss", "sub", "jti"]})
        claims = msgspec.convert(raw, Claims, strict=True)
    except (jwt.PyJWTError, msgspec.ValidationError) as exc:
        raise errors.Unauthenticated("invalid token") from exc
    if claims.typ != typ:
        raise errors.Unauthenticated(f"not an {typ} token")
    return claims


def _outcome(verify: Any, token: str, typ: TokenType) -> tuple[bool, Any]:
    try:
        claims = verify(token, typ)
    except errors.Unauthenticated:
        return False, None
    return True, {f: getattr(claims, f) for f in Claims.__struct_fields__}


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _sign(payload: dict[str, Any], headers: dict[str, Any] | None = None,
          key: Ed25519PrivateKey | None = None) -> str:
    """A compact JWS of any payload (pyjwt's encode refuses some), EdDSA."""
    header = {"alg": "EdDSA", "typ": "JWT",
              **(headers if headers is not None else {"kid": KEYS.signing_kid})}
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(payload).encode())}"
    signature = (key or KEYS.signing_key).sign(signing_input.encode())
    return f"{signing_input}.{_b64(signature)}"


# Times are drawn as offsets from the moment a test runs (`_at`), not from when this module
# was imported: under a loaded `make test` that can be minutes earlier, and every token was
# then expired (the reasons test flaked).
_OFFSET = object()  # a time claim: its offset from now goes in a tuple with it


def _at(offset: int | float) -> tuple[object, int | float]:
    return (_OFFSET, offset)


_times = st.one_of(st.integers(-20, 20).map(_at), st.sampled_from([-3600, 3600]).map(_at),
                   st.floats(-20, 20).map(_at), st.just("now"), st.booleans(), st.none())
_text = st.one_of(st.sampled_from(["x", str(uuid.uuid4()), ""]), st.integers(0, 3), st.none())
_claims = st.fixed_dictionaries({}, optional={
    "sub": _text, "jti": _text, "typ": st.sampled_from(["access", "refresh", "card", "other"]),
    "role": st.sampled_from(["member", "staff", "admin", "nobody"]),
    "iss": st.sampled_from([ISSUER, "other", 1]), "iat": _times, "nbf": _times, "exp": _times,
    "aud": st.sampled_from(["", "x", [], ["x"], None]),
    "program_id": st.one_of(st.none(), st.just(str(uuid.uuid4()))),
    "store_ids": st.sampled_from([[], ["a"], "a"]), "fam": _text, "card": _text,
    "extra": st.integers()})


def _now(claims: dict[str, Any]) -> dict[str, Any]:
    """`claims` with its drawn times made absolute, from the current second."""
    now = int(time.time())
    return {k: (now + v[1] if isinstance(v, tuple) and v and v[0] is _OFFSET
                else str(now) if v == "now" and k in ("iat", "nbf", "exp") else v)
            for k, v in claims.items()}


def _valid() -> dict[str, Any]:
    return _now({"sub": str(uuid.uuid4()), "jti": "j", "typ": "access", "role": "member",
                 "iss": ISSUER, "iat": _at(0), "nbf": _at(0), "exp": _at(60)})


@settings(max_examples=300)
@given(claims=_claims, full=st.booleans(), typ=st.sampled_from(["access", "refresh", "card"]))
def test_a_token_signed_with_the_key_gets_pyjwts_answer(claims: dict[str, Any], full: bool,
                                                        typ: TokenType) -> None:
    payload = {**_valid(), **_now(claims)} if full else _now(claims)
    token = _sign(payload)
    expected = _outcome(_pyjwt_verify, token, typ)
    if type(payload.get("nbf")) is not int:  # pyjwt took int(nbf): "123", 1.5, true
        expected = (False, None)
    assert _outcome(_service().verify, token, typ) == expected


_tamper = st.one_of(
    st.tuples(st.just("char"), st.integers(0, 500), st.sampled_from("AQgw_-=.+/!é ")),
    st.tuples(st.just("cut"), st.integers(0, 500), st.just("")))


@settings(max_examples=300)
@given(edit=_tamper)
def test_a_tampered_token_is_refused_as_pyjwt_refused_it(edit: tuple[str, int, str]) -> None:
    token = _sign(_valid())
    kind, at, char = edit
    at %= len(token)
    changed = token[:at] + char + token[at + 1:] if kind == "char" else token[:at]
    assert _outcome(_service().verify, changed, "access") == _outcome(
        _pyjwt_verify, changed, "access")


def _spellings(segment: str) -> list[str]:
    """Other spellings of a base64url segment: padded, and with its last character's unused
    bits set (which decode to the same bytes)."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    last = alphabet.index(segment[-1])
    others = [segment + "=" * (-len(segment) % 4)] + [
        segment[:-1] + alphabet[last | bit] for bit in (1, 2, 3)]
    return [o for o in others if o != segment]


@pytest.mark.parametrize("part", [0, 1, 2])
def test_another_spelling_of_a_segment_is_refused(part: int) -> None:
    token = _sign(_valid())
    segments = token.split(".")
    for other in _spellings(segments[part]):
        if base64.urlsafe_b64decode(other + "==") != base64.urlsafe_b64decode(
                segments[part] + "=="):
            continue
        changed = ".".join(other if i == part else s for i, s in enumerate(segments))
        with pytest.raises(errors.Unauthenticated):
            _service().verify(changed, "access")


@pytest.mark.parametrize(("headers", "key", "reason"), [
    ({"kid": KEYS.signing_kid}, Ed25519PrivateKey.generate(), "invalid token"),
    ({"kid": "unknown"}, None, "unknown signing key"),
    ({"kid": KEYS.signing_kid, "crit": ["exp"]}, None, "unexpected token header"),
    ({"kid": KEYS.signing_kid, "jku": "https://evil.example/keys"}, None,
     "unexpected token header"),
])
def test_a_header_or_key_not_ours_is_refused(headers: dict[str, Any],
                                             key: Ed25519PrivateKey | None,
                                             reason: str) -> None:
    with pytest.raises(errors.Unauthenticated, match=reason):
        _service().verify(_sign(_valid(), headers, key), "access")


@pytest.mark.parametrize("alg", ["HS256", "none", "ES256", "RS256"])
def test_another_algorithm_is_refused(alg: str) -> None:
    token = _sign(_valid(), {"kid": KEYS.signing_kid, "alg": alg})
    with pytest.raises(errors.Unauthenticated, match="unexpected token algorithm"):
        _service().verify(token, "access")
    unsigned = token.rpartition(".")[0] + "."
    with pytest.raises(errors.Unauthenticated, match="malformed token"):
        _service().verify(unsigned, "access")


@pytest.mark.parametrize(("change", "reason"), [
    ({"exp": _at(-6)}, "token expired"), ({"nbf": _at(30)}, "token not yet valid"),
    ({"iat": _at(30)}, "token not yet valid"), ({"iss": "other"}, "invalid token"),
    ({"typ": "refresh"}, "not an access token")])
def test_the_reasons_are_the_same(change: dict[str, Any], reason: str) -> None:
    with pytest.raises(errors.Unauthenticated, match=reason):
        _service().verify(_sign({**_valid(), **_now(change)}), "access")
