"""A .pkpass as Apple specifies it: every file's SHA-1 in the manifest, a detached PKCS #7
signature of the manifest by the pass certificate, with the WWDR intermediate, verified here
against a test root CA made in the test."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from cryptography.exceptions import InvalidSignature
from support.pass_fixtures import make_pki, unzip, verify_pkcs7_detached

from wallet.passes import credentials, pkpass


def test_the_manifest_lists_every_file_and_the_signature_verifies(tmp_path: Path) -> None:
    pki = make_pki(tmp_path)
    signer = credentials.signer(pki.files["pass_cert"], pki.files["pass_key"],
                                pki.files["wwdr"])
    data = pkpass.build({"formatVersion": 1, "serialNumber": "abc"},
                        pkpass.default_images("#336699"), signer)
    files = unzip(data)
    manifest = json.loads(files["manifest.json"])
    assert set(manifest) == set(files) - {"manifest.json", "signature"}
    assert {"pass.json", "icon.png", "icon@2x.png", "logo.png"} <= set(manifest)
    for name, digest in manifest.items():
        assert hashlib.sha1(files[name], usedforsecurity=False).hexdigest() == digest, name
    signed_by = verify_pkcs7_detached(files["signature"], files["manifest.json"], root=pki.root)
    assert signed_by == pki.pass_cert
    assert json.loads(files["pass.json"])["serialNumber"] == "abc"


def test_a_tampered_manifest_fails_verification(tmp_path: Path) -> None:
    pki = make_pki(tmp_path)
    signer = credentials.signer(pki.files["pass_cert"], pki.files["pass_key"],
                                pki.files["wwdr"])
    files = unzip(pkpass.build({"formatVersion": 1}, pkpass.default_images("#000000"), signer))
    with pytest.raises(AssertionError, match="messageDigest"):
        verify_pkcs7_detached(files["signature"], files["manifest.json"] + b" ",
                              root=pki.root)


def test_a_signature_chained_to_another_root_fails(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    pki, other = make_pki(tmp_path / "a"), make_pki(tmp_path / "b")
    signer = credentials.signer(pki.files["pass_cert"], pki.files["pass_key"],
                                pki.files["wwdr"])
    files = unzip(pkpass.build({"formatVersion": 1}, pkpass.default_images("#000000"), signer))
    with pytest.raises(InvalidSignature):
        verify_pkcs7_detached(files["signature"], files["manifest.json"], root=other.root)


def test_a_key_of_another_certificate_is_refused_at_load(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    a, b = make_pki(tmp_path / "a"), make_pki(tmp_path / "b")
    with pytest.raises(credentials.CredentialError, match="does not belong"):
        credentials.signer(a.files["pass_cert"], b.files["pass_key"], a.files["wwdr"])
