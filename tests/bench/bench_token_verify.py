"""What verifying an access token costs (not a pass/fail test).

    .venv/bin/python tests/bench/bench_token_verify.py [--tokens 500] [--rounds 15]

Fresh tokens (none remembered), in alternating rounds of: `TokenService.verify` (Ed25519 by
`cryptography`, claims by msgspec), what it replaced (pyjwt's `decode` with the same
options, then the claims converted strictly), and the Ed25519 signature check alone, the
floor. Process CPU time per token: minimum and median of the rounds.
"""

from __future__ import annotations

import argparse
import base64
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import jwt
import msgspec

sys.path.insert(0, str(Path.cwd()))

from api.auth.keys import ALGORITHM, load_or_create
from api.auth.tokens import Claims, TokenService


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--tokens", type=int, default=500)
    p.add_argument("--rounds", type=int, default=15)
    args = p.parse_args()
    keys = load_or_create(Path(tempfile.mkdtemp()) / "keys.json")
    service = TokenService(keys, issuer="bench", access_ttl_s=900, refresh_ttl_s=900,
                           card_ttl_s=60, verified_cache=0)
    tokens = [service.mint_access(sub=uuid.uuid4(), role="member", program_id=uuid.uuid4())
              for _ in range(args.tokens)]
    key = keys.public[keys.signing_kid]

    def pyjwt_decode(token: str) -> None:
        raw = jwt.decode(token, key, algorithms=[ALGORITHM], issuer="bench", leeway=5,
                         options={"require": ["exp", "iat", "nbf", "iss", "sub", "jti"]})
        msgspec.convert(raw, Claims, strict=True)

    def signature_only(token: str) -> None:
        signing_input, _, signature = token.rpartition(".")
        key.verify(base64.urlsafe_b64decode(signature + "=="), signing_input.encode())

    ways: dict[str, Callable[[str], object]] = {
        "TokenService.verify": lambda t: service.verify(t, "access"),
        "pyjwt decode (before)": pyjwt_decode, "Ed25519 signature only": signature_only}
    times: dict[str, list[float]] = {name: [] for name in ways}
    for _ in range(args.rounds):
        for name, way in ways.items():
            start = time.process_time()
            for token in tokens:
                way(token)
            times[name].append((time.process_time() - start) / len(tokens) * 1e6)
    for name, values in times.items():
        print(f"{name:24} min {min(values):6.1f} µs, median {statistics.median(values):6.1f} µs"
              " per token")


if __name__ == "__main__":
    main()
