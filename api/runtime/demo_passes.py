"""Development credentials for wallet passes, so `make run`'s demo serves working pass routes.

`dev_pass_environment(data_dir, base_url)` makes, once, under `<data_dir>/dev-passes/`: a
self-signed development root, an intermediate standing in for Apple's WWDR certificate, a
"Pass Type ID" certificate and key signed by it, and a Google service-account key file; it
returns the `LOYALTY_*` variables that configure them. The passes it signs are complete and
verifiable against that development root, but **a real iPhone accepts only a pass signed with
the operator's own Pass Type ID certificate issued by Apple** (and Google only JWTs of a real
issuer's service account): see the README, "Wallet passes". No push key is made: updates are
queued and published, but no push leaves a demo server (Apple and Google would refuse these
credentials).
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

DEMO_PASS_TYPE_ID = "pass.example.loyalty.dev"  # noqa: S105 - an identifier
DEMO_TEAM_ID = "DEVTEAM000"
DEMO_ISSUER_ID = "3388000000000000000"
_FILES = ("root.pem", "wwdr.pem", "pass-cert.pem", "pass-key.pem", "google-sa.json")


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Loyalty development"),
                      x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _cert(subject: x509.Name, key: rsa.RSAPrivateKey, issuer: x509.Name,
          issuer_key: rsa.RSAPrivateKey, *, ca: bool) -> x509.Certificate:
    now = datetime.now(UTC)
    return (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(days=1))
            .not_valid_after(now + timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
            .sign(issuer_key, hashes.SHA256()))


def _key_pem(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _write(path: Path, data: bytes, *, secret: bool) -> None:
    path.write_bytes(data)
    if secret:
        path.chmod(0o600)


def make_dev_credentials(directory: Path) -> None:
    """Create the development credentials in `directory` unless all are there already."""
    if all((directory / name).is_file() for name in _FILES):
        return
    directory.mkdir(parents=True, exist_ok=True)
    root_key, wwdr_key, pass_key, google_key = (
        rsa.generate_private_key(public_exponent=65537, key_size=2048) for _ in range(4))
    root_name = _name("Loyalty DEVELOPMENT root (not Apple)")
    wwdr_name = _name("Loyalty DEVELOPMENT WWDR stand-in (not Apple)")
    root = _cert(root_name, root_key, root_name, root_key, ca=True)
    wwdr = _cert(wwdr_name, wwdr_key, root_name, root_key, ca=True)
    cert = _cert(_name(f"Pass Type ID: {DEMO_PASS_TYPE_ID}"), pass_key, wwdr_name, wwdr_key,
                 ca=False)
    pem = serialization.Encoding.PEM
    _write(directory / "root.pem", root.public_bytes(pem), secret=False)
    _write(directory / "wwdr.pem", wwdr.public_bytes(pem), secret=False)
    _write(directory / "pass-cert.pem", cert.public_bytes(pem), secret=False)
    _write(directory / "pass-key.pem", _key_pem(pass_key), secret=True)
    _write(directory / "google-sa.json", json.dumps({
        "type": "service_account", "project_id": "loyalty-dev",
        "client_email": "wallet-dev@loyalty-dev.iam.gserviceaccount.com",
        "private_key_id": "dev-key-1", "private_key": _key_pem(google_key).decode(),
        "token_uri": "https://oauth2.googleapis.com/token"}).encode(), secret=True)


def dev_pass_environment(data_dir: Path, base_url: str) -> dict[str, str]:
    """The `LOYALTY_*` variables configuring development passes served at `base_url`."""
    directory = (data_dir / "dev-passes").absolute()
    make_dev_credentials(directory)
    return {
        "LOYALTY_PASS_TYPE_ID": DEMO_PASS_TYPE_ID, "LOYALTY_APPLE_TEAM_ID": DEMO_TEAM_ID,
        "LOYALTY_APPLE_PASS_CERT_FILE": str(directory / "pass-cert.pem"),
        "LOYALTY_APPLE_PASS_KEY_FILE": str(directory / "pass-key.pem"),
        "LOYALTY_APPLE_WWDR_CERT_FILE": str(directory / "wwdr.pem"),
        "LOYALTY_PASS_WEB_SERVICE_URL": f"{base_url}/v1/passkit",
        "LOYALTY_GOOGLE_WALLET_ISSUER_ID": DEMO_ISSUER_ID,
        "LOYALTY_GOOGLE_WALLET_SERVICE_ACCOUNT_FILE": str(directory / "google-sa.json"),
        "LOYALTY_GOOGLE_WALLET_ORIGINS": base_url,
        "LOYALTY_GOOGLE_WALLET_API_URL": "",  # no updates leave a demo server
    }


def configure_demo_passes(data_dir: Path, base_url: str) -> bool:
    """Put the development pass settings into the environment (the workers inherit it),
    unless the operator configured passes themselves. True when it did."""
    if any(os.environ.get(k) for k in ("LOYALTY_PASS_TYPE_ID",
                                       "LOYALTY_GOOGLE_WALLET_ISSUER_ID")):
        return False
    os.environ.update(dev_pass_environment(data_dir, base_url))
    return True
