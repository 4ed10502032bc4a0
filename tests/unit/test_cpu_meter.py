"""The load tests' CPU meter counts a process that joins a measured tree during the window (a
PostgreSQL backend for a connection the pool opened mid-step), not only those there at start."""

from __future__ import annotations

import os
import subprocess
import sys

from loadtests.common import CpuMeter

_BURN = """
import sys, time
t = time.process_time()
while time.process_time() - t < 0.3:
    pass
print("burnt", flush=True)
sys.stdin.read()
"""


def test_a_process_started_during_the_window_is_counted() -> None:
    meter = CpuMeter(tree=os.getpid())
    meter.start()
    child = subprocess.Popen([sys.executable, "-c", _BURN], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None
        assert child.stdout.readline() == "burnt\n"  # 0.3 s of the child's CPU used
        meter.stop()  # the child is still alive, in this process's tree
    finally:
        child.communicate("")
    assert meter.seconds["tree"] >= 0.25
