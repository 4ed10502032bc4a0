"""The signing keyset: Ed25519 keys, each with a `kid`; one signs, the others still verify.

Keys live in a JSON file (`LOYALTY_JWT_KEYS_FILE`, default `<data_dir>/jwt-keys.json`, mode 0600)
created on first use, so `loyalty token` and a running server that see the same file agree.
`rotate()` adds a new signing key and keeps the old ones for verification, so rotation does
not log anyone out; `retire()` removes a key once every token it signed has expired.
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path

import msgspec
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

ALGORITHM = "EdDSA"  # pinned: a token with any other `alg` is refused


class StoredKey(msgspec.Struct, frozen=True, kw_only=True):
    kid: str
    private_pem: str


class KeyFile(msgspec.Struct, frozen=True, kw_only=True):
    signing_kid: str
    keys: list[StoredKey]


class Keyset:
    """Private key for the signing `kid`, public keys for every known `kid`."""

    def __init__(self, stored: KeyFile) -> None:
        self.signing_kid = stored.signing_kid
        self._private: dict[str, Ed25519PrivateKey] = {}
        self.public: dict[str, Ed25519PublicKey] = {}
        for key in stored.keys:
            private = serialization.load_pem_private_key(key.private_pem.encode(), password=None)
            if not isinstance(private, Ed25519PrivateKey):
                raise ValueError(f"key {key.kid!r} is not an Ed25519 key")
            self._private[key.kid] = private
            self.public[key.kid] = private.public_key()
        if self.signing_kid not in self._private:
            raise ValueError(f"signing kid {self.signing_kid!r} is not in the keyset")

    @property
    def signing_key(self) -> Ed25519PrivateKey:
        return self._private[self.signing_kid]


def _new_key() -> StoredKey:
    pem = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return StoredKey(kid=secrets.token_hex(8), private_pem=pem.decode())


def _write(path: Path, data: KeyFile) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.w{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(msgspec.json.format(msgspec.json.encode(data)))
    os.replace(tmp, path)


def load_or_create(path: str | Path) -> Keyset:
    """Load the keyset at `path`, creating a fresh one (one key) if the file does not exist.

    Creation is race-free: the file is written aside and hard-linked into place, so when two
    processes start at once exactly one keyset wins and both load it.
    """
    p = Path(path)
    if not p.exists():
        p.parent.mkdir(parents=True, exist_ok=True)
        key = _new_key()
        tmp = p.with_name(f".{p.name}.{os.getpid()}.{secrets.token_hex(4)}")
        _write(tmp, KeyFile(signing_kid=key.kid, keys=[key]))
        try:
            os.link(tmp, p)
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
    return Keyset(msgspec.json.decode(p.read_bytes(), type=KeyFile))


def rotate(path: str | Path) -> str:
    """Add a new key and make it the signing key; older keys keep verifying. Returns its kid."""
    p = Path(path)
    current = msgspec.json.decode(p.read_bytes(), type=KeyFile)
    key = _new_key()
    _write(p, KeyFile(signing_kid=key.kid, keys=[key, *current.keys]))
    return key.kid


def retire(path: str | Path, kid: str) -> None:
    """Forget a non-signing key: tokens it signed stop verifying."""
    p = Path(path)
    current = msgspec.json.decode(p.read_bytes(), type=KeyFile)
    if kid == current.signing_kid:
        raise ValueError("cannot retire the signing key; rotate first")
    if all(k.kid != kid for k in current.keys):
        raise ValueError(f"no key {kid!r} in {p}")
    _write(p, KeyFile(signing_kid=current.signing_kid,
                      keys=[k for k in current.keys if k.kid != kid]))


def describe(path: str | Path) -> str:
    data = json.loads(Path(path).read_text())
    kids = [k["kid"] for k in data["keys"]]
    return json.dumps({"signing_kid": data["signing_kid"], "kids": kids})
