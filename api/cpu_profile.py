"""Where a worker's CPU goes: a sampling profiler for a running server, off by default.

`LOYALTY_CPU_PROFILE=/path/prefix` makes each worker sample its own stack on `SIGPROF` from
the end of its start-up (the last lifespan hook) to its shutdown, and write the samples to
`/path/prefix.<pid>` as collapsed stacks (`frame;frame;...;leaf µs`, the flame-graph
format, weighted by CPU µs). `SIGUSR2` to a worker starts its profile afresh (to leave out
what came before a load test's measured step, such as its `GET /health` baseline); the file
says how many seconds it covers. `python -m loadtests.profile /path/prefix.*` prints them as
a flat profile by layer.

Why `SIGPROF` (`setitimer(ITIMER_PROF)`) rather than a wall-clock sampler such as py-spy:
the kernel's profiling timer runs only while the process uses CPU (user or system), so a
worker waiting for PostgreSQL, for a client or for a core on a busy machine is not sampled.
Each sample weighs the process CPU time used since the one before (timer expirations during
a long stretch of C code arrive as one signal), so the weights add up to the CPU used.
py-spy's `--gil` mode also samples a worker that holds the GIL while the kernel has switched
it out — on this shared 2-core host that charged a ping batch's socket writes and its body
decoding several times their CPU. Time spent in C (msgspec, asyncpg's protocol, a socket
write) is charged to the Python frame that called it, since the handler runs at the next
bytecode; C work between Python callbacks (uvloop's own loop) lands on the next Python frame.
One sample costs a stack walk (~10-20 µs): at the default 2 ms, about 1% of the CPU.
"""

from __future__ import annotations

import collections
import os
import re
import signal
import sys
import time
from types import CodeType, FrameType

PERIOD_S = 0.002
_STDLIB = re.compile(r"^.*/lib/python3\.\d+/")


class CpuSampler:
    """Collapsed main-thread stacks, one per `period_s` of the process's CPU time."""

    def __init__(self, prefix: str, period_s: float = PERIOD_S) -> None:
        self.path = f"{prefix}.{os.getpid()}"
        self.period_s = period_s
        self.stacks: collections.Counter[str] = collections.Counter()  # stack -> CPU ns
        self._names: dict[CodeType, str] = {}
        self._cpu_ns = 0
        self._since = 0.0

    def _name(self, code: CodeType) -> str:
        name = self._names.get(code)
        if name is None:
            path = code.co_filename
            if "site-packages/" in path:
                path = path.split("site-packages/", 1)[1]
            elif _STDLIB.match(path):
                path = _STDLIB.sub("", path)
            elif path.startswith("/"):
                path = os.path.relpath(path)
            name = self._names[code] = f"{code.co_qualname} ({path})"
        return name

    def _sample(self, _signum: int, frame: FrameType | None) -> None:
        now = time.process_time_ns()
        used, self._cpu_ns = now - self._cpu_ns, now
        names: list[str] = []
        while frame is not None:
            names.append(self._name(frame.f_code))
            frame = frame.f_back
        self.stacks[";".join(reversed(names))] += used

    def _restart(self, _signum: int, _frame: FrameType | None) -> None:
        self.stacks.clear()
        self._since = time.monotonic()

    def start(self) -> None:
        self._since = time.monotonic()
        signal.signal(signal.SIGUSR2, self._restart)
        signal.signal(signal.SIGPROF, self._sample)
        signal.siginterrupt(signal.SIGPROF, False)  # restart interrupted system calls
        self._cpu_ns = time.process_time_ns()
        signal.setitimer(signal.ITIMER_PROF, self.period_s, self.period_s)

    def stop(self) -> None:
        signal.setitimer(signal.ITIMER_PROF, 0, 0)
        signal.signal(signal.SIGPROF, signal.SIG_IGN)
        with open(self.path, "w", encoding="utf-8") as out:
            out.write(f"# window_s {time.monotonic() - self._since:.3f} weights: CPU µs; "
                      f"period_s {self.period_s}; python {sys.version.split()[0]}\n")
            for stack, ns in self.stacks.most_common():
                out.write(f"{stack} {ns // 1000}\n")
