"""Building and signing a `.pkpass` as Apple specifies. Pure: bytes in, bytes out.

A `.pkpass` is a zip of `pass.json`, the images, `manifest.json` (a JSON object from every
other file's name to the lower-case hex SHA-1 of its bytes) and `signature`: a detached
PKCS #7 (CMS SignedData, DER) signature of the manifest's exact bytes by the operator's Pass
Type ID certificate, with Apple's WWDR intermediate certificate included so the phone can
build the chain to Apple's root. Signing uses `cryptography`'s PKCS #7 builder (SHA-256,
authenticated attributes with the signing time), never a shelled-out `openssl`.

The images: an operator may ship its own (`icon.png` is required by Wallet, `logo.png` is
shown on the front); without them, solid squares of the program's background colour are made
here, so a pass is always complete.
"""

from __future__ import annotations

import hashlib
import io
import struct
import zipfile
import zlib
from collections.abc import Mapping
from typing import Any

import msgspec
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs7

# Files Wallet reads from a pass package (besides pass.json, manifest.json, signature).
IMAGE_NAMES = ("icon.png", "icon@2x.png", "icon@3x.png", "logo.png", "logo@2x.png",
               "logo@3x.png", "strip.png", "strip@2x.png", "strip@3x.png")
MEDIA_TYPE = "application/vnd.apple.pkpass"

_json = msgspec.json.Encoder(decimal_format="number")


class Signer:
    """The operator's Pass Type ID certificate and key, and Apple's WWDR intermediate.

    `key` is RSA or EC (Apple issues RSA-2048). Construction checks that the key belongs to
    the certificate, so a mismatch is found at start-up, not on a member's download."""

    def __init__(self, certificate: x509.Certificate,
                 key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey,
                 wwdr: x509.Certificate) -> None:
        if certificate.public_key().public_bytes(
                serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        ) != key.public_key().public_bytes(
                serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo):
            raise ValueError("the pass signing key does not belong to the pass certificate")
        self.certificate = certificate
        self.key = key
        self.wwdr = wwdr

    def sign(self, manifest: bytes) -> bytes:
        """Detached PKCS #7 signature (DER) of `manifest`, with the WWDR certificate."""
        return (pkcs7.PKCS7SignatureBuilder()
                .set_data(manifest)
                .add_signer(self.certificate, self.key, hashes.SHA256())
                .add_certificate(self.wwdr)
                .sign(serialization.Encoding.DER,
                      [pkcs7.PKCS7Options.DetachedSignature, pkcs7.PKCS7Options.Binary]))


def manifest(files: Mapping[str, bytes]) -> bytes:
    """`manifest.json`: every file's name → hex SHA-1 of its bytes (sorted keys)."""
    digests = {name: hashlib.sha1(data, usedforsecurity=False).hexdigest()
               for name, data in sorted(files.items())}
    return _json.encode(digests)


def build(pass_json: Mapping[str, Any], images: Mapping[str, bytes], signer: Signer) -> bytes:
    """The signed `.pkpass` (zip bytes) of `pass_json` and `images` (see the module doc)."""
    unknown = set(images) - set(IMAGE_NAMES)
    if unknown:
        raise ValueError(f"not a pass image name: {sorted(unknown)}")
    files: dict[str, bytes] = {"pass.json": _json.encode(pass_json), **images}
    man = manifest(files)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as z:
        for name, data in files.items():
            z.writestr(name, data)
        z.writestr("manifest.json", man)
        z.writestr("signature", signer.sign(man))
    return out.getvalue()


def _png(width: int, height: int, rgb: tuple[int, int, int]) -> bytes:
    """A solid-colour 8-bit RGB PNG (signature, IHDR, one IDAT, IEND)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    row = b"\x00" + bytes(rgb) * width  # filter type 0, then the pixels
    return (b"\x89PNG\r\n\x1a\n"
            + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(row * height, 9)) + chunk(b"IEND", b""))


def default_images(color: str) -> dict[str, bytes]:
    """Icon and logo in `color` ("#rrggbb") at Wallet's 1x/2x/3x sizes."""
    rgb = (int(color[1:3], 16), int(color[3:5], 16), int(color[5:7], 16))
    out: dict[str, bytes] = {}
    for scale, suffix in ((1, ""), (2, "@2x"), (3, "@3x")):
        out[f"icon{suffix}.png"] = _png(29 * scale, 29 * scale, rgb)
        out[f"logo{suffix}.png"] = _png(50 * scale, 50 * scale, rgb)
    return out
