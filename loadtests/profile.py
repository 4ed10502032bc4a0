"""A flat profile of where a server's CPU went, by layer, from `LOYALTY_CPU_PROFILE` files.

    LOYALTY_CPU_PROFILE=/tmp/prof/pings python -m loadtests.pings --workers 1 --start 200 \\
        --duration 40 --max-steps 1 &
    # once the step has begun (after seeding, the GET /health baseline and the warm-up):
    kill -USR2 <the uvicorn worker pids>
    wait; python -m loadtests.profile /tmp/prof/pings.* --rate 200

The load tests pass their environment to the server; `SIGUSR2` starts each worker's profile
afresh. Each sample is a stack of `api/cpu_profile.py` weighted by the CPU time it stands
for; it is charged to the layer of its innermost frame that belongs to one (a socket write
under the response is the HTTP server's, a regex under the token check is the token's).
With `--requests` (the requests the workers answered while sampling) or `--rate` (the fixed
rate offered: requests = rate × the files' window) each layer is also given in µs of CPU
per request. The top functions by own CPU follow.
"""

from __future__ import annotations

import argparse
import collections
import re
import sys
from pathlib import Path

LAYERS: list[tuple[str, re.Pattern[str]]] = [(name, re.compile(rx)) for name, rx in [
    ("token verification", r"\((api/auth/|jwt/|cryptography/)"),
    ("metrics", r"\((prometheus_client/|api/metrics\.py)"),
    ("logging", r"\(logging/"),
    ("asyncpg: parameters, protocol, pool", r"\(asyncpg/"),
    ("body: read, decode, validate", r"\((api/boundary\.py|litestar/connection/request\.py)"),
    ("pure cores and services (geo, wallet)", r"\((geo|wallet)/"),
    ("handler (controller)", r"\((api/controllers/|api/idempotency\.py|api/config\.py)"),
    ("response: encode, headers", r"\(litestar/(response|serialization)/"),
    ("middleware (Litestar's and ours)",
     r"\((litestar/middleware/|api/strict_query\.py|api/app\.py)"),
    ("Litestar: parameters, DI, guards", r"\(litestar/(_kwargs|_signature|di|handlers)/"),
    ("Litestar: app, routing, connection", r"\(litestar/"),
    ("uvicorn + httptools: HTTP parsing, socket writes", r"\((uvicorn|httptools)/"),
    ("asyncio: tasks, futures, timeouts", r"\(asyncio/"),
]]
LOOP = "event loop callbacks (uvloop, C)"


def layer(frames: list[str]) -> str:
    """The layer of a stack: its innermost frame that belongs to one, below the event loop
    (the frames that start the server and run the loop are everybody's)."""
    loop = [i for i, f in enumerate(frames) if f.startswith("Runner.run ")]
    if loop:
        frames = frames[loop[0] + 1:]
        if not frames:
            return LOOP
    for frame in reversed(frames):
        for name, pattern in LAYERS:
            if pattern.search(frame):
                return name
    return "other"


def read(paths: list[Path]) -> tuple[collections.Counter[str], collections.Counter[str],
                                     float]:
    """(CPU µs by layer, CPU µs by innermost function, the longest window in seconds)."""
    layers: collections.Counter[str] = collections.Counter()
    own: collections.Counter[str] = collections.Counter()
    window = 0.0
    for path in paths:
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.startswith("# window_s "):
                window = max(window, float(line.split()[2]))
            if line.startswith("#"):
                continue
            stack, _, weight = line.rpartition(" ")
            frames = stack.split(";")
            if frames[0].startswith("Thread._bootstrap"):  # not the event loop's thread
                continue
            layers[layer(frames)] += int(weight)
            own[frames[-1]] += int(weight)
    return layers, own, window


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("files", nargs="+", type=Path)
    p.add_argument("--requests", type=int, default=0,
                   help="requests answered while sampling: adds µs per request")
    p.add_argument("--rate", type=float, default=0.0,
                   help="or the fixed rate offered while sampling, requests/s")
    p.add_argument("--top", type=int, default=15)
    args = p.parse_args()
    layers, own, window = read(args.files)
    if args.rate and not args.requests:
        args.requests = round(args.rate * window)
    total = sum(layers.values())
    if not total:
        print("no samples")
        return 1
    print(f"{total / 1e6:.2f} s of CPU sampled over {window:.1f} s"
          + (f", {total / args.requests:.0f} µs per request" if args.requests else ""))
    for name, us in layers.most_common():
        per = f"{us / args.requests:7.0f} µs" if args.requests else ""
        print(f"  {100 * us / total:5.1f}% {per}  {name}")
    print(f"top {args.top} functions by own CPU:")
    for name, us in own.most_common(args.top):
        print(f"  {100 * us / total:5.1f}%  {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
