"""Open-loop load: requests sent at a fixed arrival rate, whatever the server does.

A closed-loop generator (each client waits for its answer before sending the next request)
slows down with the server, so the load it offers drops exactly when the server struggles
and the latencies it records understate what users see (coordinated omission). Here:

- Arrivals are a Poisson process of the offered rate (seeded): each request has an intended
  send time fixed in advance, and its latency is counted from that time to the end of the
  answer, so time spent queued behind a slow server, or waiting for a free connection, counts.
- Requests go out over up to `max_connections` keep-alive connections (opened as needed and
  kept across steps); a request that finds none free waits for one, its clock running.
- A step runs for `duration` seconds, then waits for every request in flight to be answered
  (none is abandoned: the ledger check needs every answer). A step whose backlog grows beyond
  `backlog_s` seconds of arrivals stops sending early: the server cannot sustain that rate.
- `search()` steps the rate up (×`factor`) until a step breaks the p99 target or errs, then
  bisects between the last rate that held and the first that broke until they are within
  `resolution` of each other. The figure is the highest rate that held: p99 within the
  target, no errors, no early stop.

The generator shares the machine's cores with the server and PostgreSQL; `Step.lag_p99_ms`
(how late requests left against their intended time, before any connection wait) shows when
the generator itself falls behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from loadtests.common import CpuMeter, Http, LockWaits, Statements, health_baseline

# One request, ready to send on a connection: returns None when the answer is the expected
# one, else what went wrong ("HTTP 409").
Send = Callable[[Http], Awaitable[str | None]]
# Builds the next request at its intended send time; None when there is nothing left to send.
MakeRequest = Callable[[], Send | None]


class Connections:
    """Up to `limit` keep-alive connections; `acquire()` waits (FIFO) when all are busy.

    The most recently used idle connection goes first; one idle for `max_idle_s` is closed
    instead of reused, before the server's keep-alive timeout (uvicorn: 5 s) can close it
    under a request in flight (a reset that would count as an error of the server)."""

    def __init__(self, port: int, limit: int, max_idle_s: float = 3.0) -> None:
        self.port, self.limit, self.max_idle_s = port, limit, max_idle_s
        self.idle: list[tuple[Http, float]] = []  # (connection, when it was released)
        self.opened = 0
        self.waiters: deque[asyncio.Future[Http]] = deque()

    async def acquire(self) -> Http:
        while self.idle:
            http, since = self.idle.pop()
            if time.perf_counter() - since < self.max_idle_s:
                return http
            http.close()  # and the older ones below it too: all stale
            for old, _ in self.idle:
                old.close()
            self.opened -= len(self.idle) + 1
            self.idle.clear()
        if self.opened < self.limit:
            self.opened += 1
            return Http(self.port)
        waiter: asyncio.Future[Http] = asyncio.get_running_loop().create_future()
        self.waiters.append(waiter)
        return await waiter

    def release(self, http: Http, *, broken: bool = False) -> None:
        if broken:  # a fresh connection takes its place
            http.close()
            http = Http(self.port)
        while self.waiters:
            waiter = self.waiters.popleft()
            if not waiter.done():
                waiter.set_result(http)
                return
        self.idle.append((http, time.perf_counter()))

    def close(self) -> None:
        for http, _ in self.idle:
            http.close()
        self.idle.clear()


@dataclass
class Step:
    """What one fixed-rate step measured. Latencies in milliseconds from the intended time."""

    rate: float  # offered requests/s
    seconds: float  # from the first intended send to the last answer
    sent: int = 0
    ok: int = 0
    errors: int = 0
    stopped: str = ""  # why the step stopped sending early, if it did
    failures: dict[str, int] = field(default_factory=dict)  # what went wrong, how often
    latencies: list[float] = field(default_factory=list, repr=False)
    lags: list[float] = field(default_factory=list, repr=False)
    cpu_ms: dict[str, float] = field(default_factory=dict)  # CPU ms per answered request
    statements: float | None = None  # PostgreSQL statements per request (pg_stat_statements)
    lock_wait_share: float | None = None  # of PostgreSQL's busy time, waiting for locks
    top_statements: list[dict[str, Any]] = field(default_factory=list)
    extra: dict[str, float] = field(default_factory=dict)  # per test: pings/s, purchases/s

    @property
    def achieved(self) -> float:
        """Answered requests per second."""
        return self.ok / self.seconds if self.seconds else 0.0

    def pct(self, p: float, of: str = "latencies") -> float:
        """The `p` quantile (0..1, nearest rank) in milliseconds."""
        xs = sorted(getattr(self, of))
        return xs[min(len(xs) - 1, int(p * len(xs)))] * 1000 if xs else float("nan")

    def holds(self, p99_ms: float) -> bool:
        return not self.stopped and self.errors == 0 and self.ok > 0 and self.pct(0.99) <= p99_ms

    def summary(self) -> dict[str, Any]:
        """The step as plain JSON-ready figures."""
        return {"offered_rps": round(self.rate, 1), "achieved_rps": round(self.achieved, 1),
                "seconds": round(self.seconds, 2), "sent": self.sent, "ok": self.ok,
                "errors": self.errors, "failures": self.failures, "stopped": self.stopped,
                "p50_ms": round(self.pct(0.50), 2), "p90_ms": round(self.pct(0.90), 2),
                "p99_ms": round(self.pct(0.99), 2), "max_ms": round(self.pct(1.0), 2),
                "send_lag_p99_ms": round(self.pct(0.99, "lags"), 2),
                "cpu_ms_per_request": {k: round(v, 3) for k, v in self.cpu_ms.items()},
                "statements_per_request": (None if self.statements is None
                                           else round(self.statements, 2)),
                "lock_wait_share": (None if self.lock_wait_share is None
                                    else round(self.lock_wait_share, 3)),
                "top_statements": self.top_statements,
                **{k: round(v, 1) for k, v in self.extra.items()}}


async def step(conns: Connections, make: MakeRequest, *, rate: float, duration: float,
               rng: random.Random, backlog_s: float = 2.0, drain_s: float = 60.0) -> Step:
    """Offer `rate` requests/s for `duration` seconds (Poisson arrivals) and wait for answers."""
    out = Step(rate=rate, seconds=0.0)
    in_flight: set[asyncio.Task[None]] = set()
    clock = time.perf_counter

    async def one(send: Send, intended: float) -> None:
        out.lags.append(max(0.0, clock() - intended))
        http = await conns.acquire()
        broken = False
        try:
            failure = await send(http)
        except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
            failure, broken = type(exc).__name__, True
        finally:
            conns.release(http, broken=broken)
        out.latencies.append(clock() - intended)
        if failure is None:
            out.ok += 1
        else:
            out.errors += 1
            out.failures[failure] = out.failures.get(failure, 0) + 1

    start = clock() + 0.005
    intended, end = start, start + duration
    while intended < end:
        now = clock()
        if intended > now:
            await asyncio.sleep(intended - now)
            continue
        if len(in_flight) > rate * backlog_s:
            out.stopped = f"backlog over {backlog_s:g} s of arrivals"
            break
        send = make()
        if send is None:
            out.stopped = "the workload ran out of requests"
            break
        task = asyncio.create_task(one(send, intended))
        in_flight.add(task)
        task.add_done_callback(in_flight.discard)
        out.sent += 1
        intended += rng.expovariate(rate)
    if in_flight:
        _, late = await asyncio.wait(set(in_flight), timeout=drain_s)
        for task in late:  # only when the server hangs: count them as errors
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            out.errors += 1
            out.failures["no answer within the drain time"] = (
                out.failures.get("no answer within the drain time", 0) + 1)
    out.seconds = clock() - start
    return out


Measure = Callable[[float], Awaitable[Step]]


async def search(measure: Measure, *, start: float, p99_ms: float, factor: float = 1.5,
                 resolution: float = 0.08, max_steps: int = 9,
                 report: Callable[[Step], None] = lambda s: None) -> tuple[Step | None,
                                                                         list[Step]]:
    """Step the offered rate up ×`factor` until a step breaks (p99 over `p99_ms`, an error or
    an early stop), then bisect between the best rate that held and the lowest that broke.

    Returns (the highest step that held below every rate that broke, or None; every step in
    the order run). A rate that broke below one that held (noise) lowers the figure.
    """
    steps: list[Step] = []

    def best_below(limit: float | None) -> Step | None:
        held = [s for s in steps if s.holds(p99_ms) and (limit is None or s.rate < limit)]
        return max(held, key=lambda s: s.rate, default=None)

    rate = start
    while len(steps) < max_steps:
        s = await measure(rate)
        steps.append(s)
        report(s)
        broke = min((s.rate for s in steps if not s.holds(p99_ms)), default=None)
        best = best_below(broke)
        if broke is None:
            rate *= factor
        elif best is None:  # even the lowest rate tried broke: go down
            rate = broke / factor
            if rate < start / factor**3:
                break
        elif broke / best.rate <= 1 + resolution:
            break
        else:
            rate = (best.rate + broke) / 2
    return best_below(min((s.rate for s in steps if not s.holds(p99_ms)), default=None)), steps


@dataclass(frozen=True)
class Target:
    p99_ms: float
    rate: float  # in `unit`
    unit: str  # e.g. "pings/s"
    per_request: float = 1.0  # `unit` per request (50 pings per batch)


@dataclass
class Run:
    """One worker count: its steps and the highest rate that held the target."""

    workers: int
    baseline_health_rps: float
    steps: list[Step] = field(default_factory=list)
    best: Step | None = None


@dataclass(frozen=True)
class Plan:
    """How a series of steps runs (see `series`)."""

    start: float  # first offered rate, requests/s
    duration: float  # seconds per step
    warmup: float = 2.0  # seconds at the start rate before the first measured step
    baseline: float = 2.0  # seconds of `GET /health` (closed loop) for the baseline
    max_connections: int = 256
    settle: float = 0.5  # pause between steps
    max_steps: int = 9


async def series(port: int, make: MakeRequest, *, workers: int, plan: Plan, target: Target,
                 rng: random.Random, cpu: CpuMeter, statements: Statements, locks: LockWaits,
                 on_step: Callable[[Step], None], header: bool,
                 prepare: Callable[[int], None] | None = None) -> Run:
    """Baseline, warm-up, then `search()` against one server. Each step's CPU per request
    (`cpu`'s trees), statements per request and lock wait share are filled in, then
    `on_step` adds its own figures before the step is printed. `prepare(n)`, if given, runs
    before each step (not measured) to build the step's `n` expected requests ahead."""
    from loadtests.report import print_best, print_step

    run = Run(workers, await health_baseline(port, plan.baseline, 16))
    conns = Connections(port, plan.max_connections)
    printed = not header

    async def measure(rate: float) -> Step:
        nonlocal printed
        if prepare is not None:
            prepare(int(rate * plan.duration * 1.1) + 10)
        await statements.reset()
        cpu.start()
        async with locks.running():
            s = await step(conns, make, rate=rate, duration=plan.duration, rng=rng)
        cpu.stop()
        s.lock_wait_share = locks.share
        if s.ok:
            s.cpu_ms = {name: sec * 1000 / s.ok for name, sec in cpu.seconds.items()}
        s.statements, s.top_statements = await statements.read(s.ok, top=20)  # 10 printed
        on_step(s)
        print_step(workers, s, target, header=not printed)
        printed = True
        await asyncio.sleep(plan.settle)
        return s

    try:
        if prepare is not None:
            prepare(int(plan.start * plan.warmup * 1.1) + 10)
        warm = await step(conns, make, rate=plan.start, duration=plan.warmup, rng=rng)
        on_step(warm)  # its requests count for the checks, its figures for nothing
        run.best, run.steps = await search(measure, start=plan.start, p99_ms=target.p99_ms,
                                           max_steps=plan.max_steps)
    finally:
        conns.close()
    print_best(run, target)
    return run
