"""The memory of verified access tokens (`TokenService.principal`): it saves the signature
check of a token already seen, and never lets a token pass that a full check would refuse."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import pytest

from api.auth.keys import load_or_create
from api.auth.tokens import Claims, TokenService, TokenType
from wallet.kernel import errors


def _service(tmp_path: Path, cache: int = 8) -> TokenService:
    return TokenService(load_or_create(tmp_path / "keys.json"), issuer="test",
                        access_ttl_s=60, refresh_ttl_s=60, card_ttl_s=60,
                        verified_cache=cache)


def test_a_token_seen_again_gives_the_same_principal_without_a_second_verification(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tokens = _service(tmp_path)
    token = tokens.mint_access(sub=uuid.uuid4(), role="member", program_id=uuid.uuid4())
    first = tokens.principal(token)
    monkeypatch.setattr(tokens, "verify", lambda *_: pytest.fail("verified twice"))
    assert tokens.principal(token) is first


def test_a_remembered_token_is_verified_in_full_again_once_past_its_exp(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tokens = _service(tmp_path)
    now = time.time()
    token = tokens.mint_access(sub=uuid.uuid4(), role="member", program_id=uuid.uuid4(),
                               now=now, ttl_s=30)
    tokens.principal(token, now=now)
    calls: list[str] = []
    verify = tokens.verify

    def counting(token: str, typ: TokenType) -> Claims:
        calls.append(typ)
        return verify(token, typ)

    monkeypatch.setattr(tokens, "verify", counting)
    tokens.principal(token, now=now + 29)
    assert calls == []
    tokens.principal(token, now=now + 30)  # at exp: no longer from memory
    assert calls == ["access"]


def test_an_expired_token_is_refused_and_not_remembered(tmp_path: Path) -> None:
    tokens = _service(tmp_path)
    token = tokens.mint_access(sub=uuid.uuid4(), role="member", program_id=uuid.uuid4(),
                               now=time.time() - 100, ttl_s=30)
    with pytest.raises(errors.Unauthenticated, match="expired"):
        tokens.principal(token)
    assert token not in tokens._verified


def test_a_tampered_token_is_never_remembered(tmp_path: Path) -> None:
    tokens = _service(tmp_path)
    token = tokens.mint_access(sub=uuid.uuid4(), role="member", program_id=uuid.uuid4())
    tampered = token[:-2] + ("A" if token[-2] != "A" else "B") + token[-1]
    for _ in range(2):
        with pytest.raises(errors.Unauthenticated):
            tokens.principal(tampered)
    tokens.principal(token)


def test_the_memory_is_bounded(tmp_path: Path) -> None:
    tokens = _service(tmp_path, cache=3)
    for _ in range(10):
        tokens.principal(tokens.mint_access(sub=uuid.uuid4(), role="member",
                                            program_id=uuid.uuid4()))
    assert len(tokens._verified) == 3


def test_a_known_header_is_not_decoded_twice_and_still_checked_with_the_signature(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Tokens one key signed share their header segment: the key it names is remembered,
    and a forged token under that very header is still refused by its signature."""
    import jwt
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    tokens = _service(tmp_path, cache=0)  # no memory of whole tokens: every call verifies
    first = tokens.mint_access(sub=uuid.uuid4(), role="member", program_id=uuid.uuid4())
    tokens.principal(first)
    monkeypatch.setattr(jwt, "get_unverified_header",
                        lambda *_: pytest.fail("a known header decoded again"))
    other = tokens.mint_access(sub=uuid.uuid4(), role="member", program_id=uuid.uuid4())
    assert other.partition(".")[0] == first.partition(".")[0]
    assert tokens.principal(other).sub != tokens.principal(first).sub

    head, payload, _ = other.split(".")
    forged = jwt.encode(jwt.decode(other, options={"verify_signature": False}),
                        Ed25519PrivateKey.generate(), algorithm="EdDSA",
                        headers={"kid": tokens.keyset.signing_kid})
    assert forged.partition(".")[0] == head and forged.split(".")[1] == payload
    with pytest.raises(errors.Unauthenticated, match="invalid token"):
        tokens.principal(forged)


def test_only_headers_naming_a_known_key_are_remembered_and_only_a_few(
        tmp_path: Path) -> None:
    import jwt
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    tokens = _service(tmp_path, cache=0)
    stranger = Ed25519PrivateKey.generate()
    for i in range(40):  # valid-looking headers: a known kid, each with one more field
        token = jwt.encode({"sub": "x"}, stranger, algorithm="EdDSA",
                           headers={"kid": tokens.keyset.signing_kid, "n": i})
        with pytest.raises(errors.Unauthenticated):
            tokens.principal(token)
    unknown = jwt.encode({"sub": "x"}, stranger, algorithm="EdDSA", headers={"kid": "nope"})
    with pytest.raises(errors.Unauthenticated, match="unknown signing key"):
        tokens.principal(unknown)
    assert len(tokens._key_of_header) <= 16
    assert unknown.partition(".")[0] not in tokens._key_of_header
