"""The CPU sampler behind `LOYALTY_CPU_PROFILE` (api/cpu_profile.py) and the flat profile
that reads it (loadtests/profile.py)."""

from __future__ import annotations

import hashlib
import os
import signal
import time
from pathlib import Path

from api.cpu_profile import CpuSampler
from loadtests.profile import LOOP, layer, read


def _burn_until_sampled(sampler: CpuSampler) -> None:
    """CPU work in a function of its own until the sampler has caught it (bounded)."""
    deadline = time.process_time() + 20
    data = b"x" * 4096
    while not any("_burn_until_sampled" in s for s in sampler.stacks):
        for _ in range(200):
            data = hashlib.sha256(data).digest() * 128
        assert time.process_time() < deadline, "no sample in 20 s of CPU"


def test_samples_are_stacks_weighted_by_cpu_and_written_at_stop(tmp_path: Path) -> None:
    sampler = CpuSampler(str(tmp_path / "prof"), period_s=0.001)
    sampler.start()
    try:
        _burn_until_sampled(sampler)
    finally:
        sampler.stop()
    path = tmp_path / f"prof.{os.getpid()}"
    header, *lines = path.read_text(encoding="utf-8").splitlines()
    assert header.startswith("# window_s ")
    mine = [line for line in lines if "_burn_until_sampled (tests/unit/api/" in line]
    assert mine and all(int(line.rpartition(" ")[2]) >= 0 for line in lines)
    assert signal.getitimer(signal.ITIMER_PROF) == (0.0, 0.0)  # the timer is off again


def test_sigusr2_starts_the_profile_afresh(tmp_path: Path) -> None:
    sampler = CpuSampler(str(tmp_path / "prof"), period_s=0.001)
    sampler.start()
    try:
        _burn_until_sampled(sampler)
        os.kill(os.getpid(), signal.SIGUSR2)
        assert not sampler.stacks  # the handler ran before kill() returned to this frame
    finally:
        sampler.stop()


def test_a_stack_is_charged_to_its_innermost_layer(tmp_path: Path) -> None:
    boot = ["_run_module_as_main (runpy.py)", "main (uvicorn/main.py)",
            "Runner.run (asyncio/runners.py)"]
    http = [*boot, "RequestResponseCycle.run_asgi (uvicorn/protocols/http/httptools_impl.py)",
            "MetricsMiddleware.__call__ (api/metrics.py)"]
    assert layer(boot) == LOOP
    assert layer([*http, "TokenService.verify (api/auth/tokens.py)"]) == "token verification"
    assert layer([*http, "HTTPRoute.handle (litestar/routes/http.py)",
                  "PingsController.pings (api/controllers/pings.py)",
                  "ingest_batch (geo/pings_service.py)",
                  "Connection.fetchrow (asyncpg/connection.py)"]
                 ) == "asyncpg: parameters, protocol, pool"
    assert layer([*http, "send_wrapper (api/metrics.py)",
                  "RequestResponseCycle.send (uvicorn/protocols/http/httptools_impl.py)"]
                 ) == "uvicorn + httptools: HTTP parsing, socket writes"
    profile = tmp_path / "p.1"
    profile.write_text("# window_s 2.000 weights: CPU µs\n"
                       + ";".join([*http, "TokenService.verify (api/auth/tokens.py)"]) + " 300\n"
                       + ";".join(boot) + " 100\n", encoding="utf-8")
    layers, own, window = read([profile])
    assert window == 2.0
    assert layers == {"token verification": 300, LOOP: 100}
    assert own["TokenService.verify (api/auth/tokens.py)"] == 300
