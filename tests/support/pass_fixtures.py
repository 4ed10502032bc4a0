"""Wallet-pass test support: a test PKI made here (a root CA standing for Apple's, a WWDR
intermediate, a Pass Type ID certificate), an APNs `.p8` key, a Google service account, a
PKCS #7 verifier built on `cryptography`, and a local HTTP/2 server standing in for APNs and
Google's endpoints."""

from __future__ import annotations

import asyncio
import hashlib
import io
import ipaddress
import json
import ssl
import uuid
import zipfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import h2.config
import h2.connection
import h2.events
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import NameOID

PASS_TYPE_ID = "pass.com.example.loyalty.test"
TEAM_ID = "TEAM123456"
APNS_KEY_ID = "KEYID12345"
ISSUER_ID = "3388000000012345678"


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _cert(subject: str, key: Any, issuer: str, issuer_key: Any, *, ca: bool,
          san_ip: str | None = None) -> x509.Certificate:
    now = datetime.now(UTC)
    b = (x509.CertificateBuilder().subject_name(_name(subject)).issuer_name(_name(issuer))
         .public_key(key.public_key()).serial_number(x509.random_serial_number())
         .not_valid_before(now - timedelta(days=1)).not_valid_after(now + timedelta(days=30))
         .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if san_ip:
        b = b.add_extension(x509.SubjectAlternativeName(
            [x509.IPAddress(ipaddress.ip_address(san_ip))]), critical=False)
    return b.sign(issuer_key, hashes.SHA256())


def _pem_key(key: Any) -> bytes:
    return bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                   serialization.NoEncryption()))


def _pem_cert(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


@dataclass
class Pki:
    """Every credential a configured server needs, written under `directory`."""

    directory: Path
    root: x509.Certificate
    wwdr: x509.Certificate
    pass_cert: x509.Certificate
    apns_public: ec.EllipticCurvePublicKey
    google_public: rsa.RSAPublicKey
    google_email: str
    server_cert: Path  # TLS certificate and key of the stand-in server (127.0.0.1)
    server_key: Path
    root_file: Path
    files: dict[str, str] = field(default_factory=dict)  # name → path
    data: dict[str, bytes] = field(default_factory=dict)  # name → contents

    def settings(self, **over: Any) -> dict[str, Any]:
        """Settings overrides configuring Apple and Google passes with these files."""
        return {"pass_type_id": PASS_TYPE_ID, "apple_team_id": TEAM_ID,
                "apple_pass_cert_file": self.files["pass_cert"],
                "apple_pass_key_file": self.files["pass_key"],
                "apple_wwdr_cert_file": self.files["wwdr"],
                "pass_web_service_url": "https://loyalty.example.com/v1/passkit",
                "apns_key_file": self.files["apns_key"], "apns_key_id": APNS_KEY_ID,
                "google_wallet_issuer_id": ISSUER_ID,
                "google_wallet_service_account_file": self.files["google"],
                "google_wallet_origins": "https://app.example.com",
                "pass_push_poll_s": 0, **over}

    def client_ssl(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=str(self.root_file))
        ctx.set_alpn_protocols(["h2", "http/1.1"])
        return ctx


ROOT_CN = "Test Root CA standing for Apple Root CA"
WWDR_CN = "Test WWDR Intermediate"


def make_pki(directory: Path) -> Pki:
    root_key = ec.generate_private_key(ec.SECP256R1())
    root = _cert(ROOT_CN, root_key, ROOT_CN, root_key, ca=True)
    wwdr_key = ec.generate_private_key(ec.SECP256R1())
    wwdr = _cert(WWDR_CN, wwdr_key, ROOT_CN, root_key, ca=True)
    pass_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pass_cert = _cert(f"Pass Type ID: {PASS_TYPE_ID}", pass_key, WWDR_CN, wwdr_key, ca=False)
    server_key = ec.generate_private_key(ec.SECP256R1())
    server = _cert("127.0.0.1", server_key, ROOT_CN, root_key, ca=False, san_ip="127.0.0.1")
    apns_key = ec.generate_private_key(ec.SECP256R1())
    google_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    email = "wallet@test-project.iam.gserviceaccount.com"
    files = {
        "pass_cert": _pem_cert(pass_cert), "pass_key": _pem_key(pass_key),
        "wwdr": _pem_cert(wwdr), "root": _pem_cert(root), "apns_key": _pem_key(apns_key),
        "server_cert": _pem_cert(server), "server_key": _pem_key(server_key),
        "google": json.dumps({"type": "service_account", "client_email": email,
                              "private_key_id": "google-key-1",
                              "private_key": _pem_key(google_key).decode(),
                              "token_uri": "https://oauth2.googleapis.com/token"}).encode()}
    paths: dict[str, str] = {}
    for name, data in files.items():
        path = directory / name
        path.write_bytes(data)
        paths[name] = str(path)
    return Pki(directory=directory, root=root, wwdr=wwdr, pass_cert=pass_cert,
                   apns_public=apns_key.public_key(), google_public=google_key.public_key(),
                   google_email=email, server_cert=directory / "server_cert",
                   server_key=directory / "server_key", root_file=directory / "root",
                   files=paths, data=files)


# --- unpacking and verifying a .pkpass ------------------------------------------------------------


def unzip(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        return {name: z.read(name) for name in z.namelist()}


def _tlv(data: bytes, i: int) -> tuple[int, int, int]:
    """(tag, start of content, end of content) of the DER element at `i`."""
    tag, n = data[i], data[i + 1]
    i += 2
    if n & 0x80:
        count = n & 0x7F
        n = int.from_bytes(data[i:i + count], "big")
        i += count
    return tag, i, i + n


def _children(data: bytes, start: int, end: int) -> list[tuple[int, int, int, int]]:
    """(tag, element start, content start, content end) of each child in [start, end)."""
    out = []
    i = start
    while i < end:
        tag, s, e = _tlv(data, i)
        out.append((tag, i, s, e))
        i = e
    return out


def verify_pkcs7_detached(signature: bytes, content: bytes, *, root: x509.Certificate
                          ) -> x509.Certificate:
    """Verify a detached PKCS #7 SignedData (DER) over `content`: the signer's signature over
    the signed attributes, the messageDigest attribute against SHA-256 of `content`, and the
    certificate chain signer → included intermediate → `root`. Returns the signer's
    certificate; raises on any failure. (`cryptography` signs PKCS #7 but exposes no
    verifier, so the structure is walked here and every check uses its primitives.)"""
    _, s, e = _tlv(signature, 0)  # ContentInfo
    _oid, explicit = _children(signature, s, e)
    _, s, e = _tlv(signature, explicit[2])  # [0] EXPLICIT SignedData
    parts = _children(signature, s, e)
    # version, digestAlgorithms, encapContentInfo, [0] certificates, signerInfos
    encap = parts[2]
    assert len(_children(signature, encap[2], encap[3])) == 1, "content must be detached"
    certs_part = next(p for p in parts if p[0] == 0xA0)
    certs = [x509.load_der_x509_certificate(signature[c[1]:c[3]])
             for c in _children(signature, certs_part[2], certs_part[3])]
    signer_infos = parts[-1]
    (signer_info,) = _children(signature, signer_infos[2], signer_infos[3])
    fields = _children(signature, signer_info[2], signer_info[3])
    attrs = next(f for f in fields if f[0] == 0xA0)
    sig_value = fields[-1]
    assert sig_value[0] == 0x04
    signed_attrs = b"\x31" + signature[attrs[1] + 1:attrs[3]]  # [0] IMPLICIT → SET OF
    digest = hashlib.sha256(content).digest()
    assert digest in signature[attrs[2]:attrs[3]], "messageDigest is not SHA-256(content)"
    by_subject = {c.subject: c for c in certs}
    leaf = next(c for c in certs if not _is_ca(c))
    key = leaf.public_key()
    sig = signature[sig_value[2]:sig_value[3]]
    if isinstance(key, rsa.RSAPublicKey):
        key.verify(sig, signed_attrs, padding.PKCS1v15(), hashes.SHA256())
    else:
        assert isinstance(key, ec.EllipticCurvePublicKey)
        key.verify(sig, signed_attrs, ec.ECDSA(hashes.SHA256()))
    intermediate = by_subject[leaf.issuer]
    leaf.verify_directly_issued_by(intermediate)
    intermediate.verify_directly_issued_by(root)
    return leaf


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return False


# --- a local HTTP/2 server standing in for APNs and Google -------------------------------------


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


Handler = Callable[[Seen], Awaitable[tuple[int, bytes]]]


async def ok(_: Seen) -> tuple[int, bytes]:
    return 200, b"{}"


class H2StandIn:
    """An HTTP/2 server over TLS (ALPN h2) on 127.0.0.1 that records every request and
    answers with `handler`. `stop()` closes it and its connections; `start()` again serves
    on the same port."""

    def __init__(self, pki: Pki, handler: Handler = ok) -> None:
        self.handler = handler
        self.requests: list[Seen] = []
        self.port = 0
        self._ssl = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self._ssl.load_cert_chain(pki.server_cert, pki.server_key)
        self._ssl.set_alpn_protocols(["h2"])
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port,
                                                  ssl=self._ssl)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        assert self._server is not None
        self._server.close()
        for w in list(self._writers):
            w.close()
        for t in list(self._tasks):
            t.cancel()
        await self._server.wait_closed()
        self._server = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        conn = h2.connection.H2Connection(h2.config.H2Configuration(
            client_side=False, header_encoding="utf-8"))
        conn.initiate_connection()
        writer.write(conn.data_to_send())
        streams: dict[int, Seen] = {}
        try:
            while data := await reader.read(65535):
                for event in conn.receive_data(data):
                    if isinstance(event, h2.events.RequestReceived):
                        h = dict(event.headers)
                        streams[event.stream_id] = Seen(
                            method=str(h.pop(":method")), path=str(h.pop(":path")),
                            headers={str(k): str(v) for k, v in h.items()}, body=b"")
                    elif isinstance(event, h2.events.DataReceived):
                        seen = streams[event.stream_id]
                        seen.body += event.data
                        conn.acknowledge_received_data(event.flow_controlled_length,
                                                       event.stream_id)
                    elif isinstance(event, h2.events.StreamEnded):
                        task = asyncio.create_task(self._answer(
                            conn, writer, event.stream_id, streams.pop(event.stream_id)))
                        self._tasks.add(task)
                        task.add_done_callback(self._tasks.discard)
                writer.write(conn.data_to_send())
                await writer.drain()
        except (ConnectionError, ssl.SSLError):
            pass
        finally:
            self._writers.discard(writer)
            writer.close()

    async def _answer(self, conn: h2.connection.H2Connection, writer: asyncio.StreamWriter,
                      stream_id: int, seen: Seen) -> None:
        self.requests.append(seen)
        status, body = await self.handler(seen)
        conn.send_headers(stream_id, [(":status", str(status)),
                                      ("content-type", "application/json"),
                                      ("content-length", str(len(body)))])
        conn.send_data(stream_id, body, end_stream=True)
        writer.write(conn.data_to_send())
        await writer.drain()


def google_handler(objects: dict[str, bytes], *, saved: set[str]) -> Handler:
    """Google's token endpoint and loyalty objects: a PUT of an object in `saved` is
    recorded in `objects` (id → body); of any other object, 404 (never saved)."""

    async def handle(seen: Seen) -> tuple[int, bytes]:
        if seen.path == "/token":
            return 200, json.dumps({"access_token": f"tok-{uuid.uuid4().hex[:8]}",
                                    "expires_in": 3600, "token_type": "Bearer"}).encode()
        prefix = "/walletobjects/v1/loyaltyObject/"
        if seen.method == "PUT" and seen.path.startswith(prefix):
            object_id = seen.path[len(prefix):]
            if object_id not in saved:
                return 404, b'{"error": {"code": 404}}'
            objects[object_id] = seen.body
            return 200, seen.body
        return 404, b"{}"

    return handle


# --- a program, a member and their purchases through the public API ---------------------------


@dataclass
class Scene:
    program_id: str
    store_ids: list[str]
    member_id: str
    headers: dict[str, str]  # the member's
    staff: dict[str, str]
    card_number: str
    email: str


async def scene(client: Any, tokens: Any, *, stores: int = 1,
                consents: list[str] = ()) -> Scene:  # type: ignore[assignment]
    """A program with `stores` stores (circles 1 km apart), a member and a staff account of
    every store."""
    from support.helpers import bearer, circle, create_program, create_store, signup

    program_id = await create_program(client, tokens)
    store_ids = [await create_store(client, tokens, program_id, code=f"S{i}",
                                    zone=circle(2.30 + i * 0.01, 48.85))
                 for i in range(stores)]
    email = f"m{uuid.uuid4().hex[:10]}@example.com"
    member_id, headers = await signup(client, program_id, email=email, consents=consents)
    card = await client.get("/v1/me/card", headers=headers)
    assert card.status_code == 200, card.text
    staff = bearer(tokens.mint_access(sub=uuid.uuid4(), role="staff",
                                      program_id=uuid.UUID(program_id),
                                      store_ids=[uuid.UUID(s) for s in store_ids]))
    return Scene(program_id=program_id, store_ids=store_ids, member_id=member_id,
                 headers=headers, staff=staff, card_number=card.json()["card_number"],
                 email=email)


async def buy(client: Any, s: Scene, amount: int, *, store: int = 0) -> dict[str, Any]:
    r = await client.post("/v1/pos/purchases", json={
        "store_id": s.store_ids[store], "card_number": s.card_number,
        "receipt_id": uuid.uuid4().hex, "amount": amount, "currency": "EUR"},
        headers={**s.staff, "Idempotency-Key": uuid.uuid4().hex})
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


async def top_up(client: Any, s: Scene, amount: int) -> dict[str, Any]:
    r = await client.post("/v1/pos/stored-value/top-ups", json={
        "store_id": s.store_ids[0], "card_number": s.card_number, "amount": amount,
        "currency": "EUR"}, headers={**s.staff, "Idempotency-Key": uuid.uuid4().hex})
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


@dataclass
class ApplePassOf:
    serial: str
    token: str
    json: dict[str, Any]
    last_modified: str


async def apple_pass_of(client: Any, s: Scene) -> ApplePassOf:
    r = await client.get("/v1/me/card/apple-pass", headers=s.headers)
    assert r.status_code == 200, r.text
    data = json.loads(unzip(r.content)["pass.json"])
    return ApplePassOf(serial=data["serialNumber"], token=data["authenticationToken"],
                       json=data, last_modified=r.headers["last-modified"])


def apple_auth(token: str) -> dict[str, str]:
    return {"Authorization": f"ApplePass {token}"}
