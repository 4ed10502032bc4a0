"""Loading the operator's pass credentials from files (PEM certificates and keys, Apple's
`.p8` push key, Google's service-account JSON, optional pass images). Done once when the app
starts, so a wrong file fails the start with a message naming it, never a member's download.
"""

from __future__ import annotations

from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from wallet.passes.pkpass import IMAGE_NAMES, Signer


class CredentialError(ValueError):
    """A credential file is missing or not what it should be; the message names it."""


def _read(path: str, what: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise CredentialError(f"{what} {path!r}: {exc.strerror or exc}") from exc


def certificate(path: str, what: str) -> x509.Certificate:
    data = _read(path, what)
    try:
        if b"-----BEGIN" in data:
            return x509.load_pem_x509_certificate(data)
        return x509.load_der_x509_certificate(data)
    except ValueError as exc:
        raise CredentialError(f"{what} {path!r} is not an X.509 certificate") from exc


def signer(cert_path: str, key_path: str, wwdr_path: str, password: str = "") -> Signer:
    """The pass signer from the Pass Type ID certificate, its key and the WWDR cert."""
    cert = certificate(cert_path, "pass certificate")
    wwdr = certificate(wwdr_path, "WWDR certificate")
    data = _read(key_path, "pass key")
    try:
        key = serialization.load_pem_private_key(data, password=password.encode() or None)
    except (ValueError, TypeError) as exc:
        raise CredentialError(f"pass key {key_path!r}: {exc}") from exc
    if not isinstance(key, (rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey)):
        raise CredentialError(f"pass key {key_path!r} is neither RSA nor EC")
    try:
        return Signer(cert, key, wwdr)
    except ValueError as exc:
        raise CredentialError(f"pass key {key_path!r}: {exc}") from exc


def file_bytes(path: str, what: str) -> bytes:
    return _read(path, what)


def images(directory: str) -> dict[str, bytes]:
    """The pass images found in `directory` (icon.png is required when a directory is set)."""
    found = {name: (Path(directory) / name).read_bytes() for name in IMAGE_NAMES
             if (Path(directory) / name).is_file()}
    if "icon.png" not in found:
        raise CredentialError(f"pass images {directory!r}: icon.png is required")
    return found
