"""Prometheus metrics (prometheus_client). Multi-worker aware: when the launcher sets
PROMETHEUS_MULTIPROC_DIR, every worker writes there and /metrics aggregates them all."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from typing import Any

import asyncpg
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

REQUESTS = Counter("http_requests_total", "HTTP requests", ["method", "route", "status"])
LATENCY = Histogram(
    "http_request_duration_seconds", "HTTP request latency", ["method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)
PINGS_RECEIVED = Counter("pings_received_total", "Location pings received")
PINGS_MATCHED = Counter("pings_matched_total", "Pings inside at least one store zone")
PINGS_IGNORED = Counter("pings_ignored_total", "Pings not used, by reason", ["reason"])
VISIT_EVENTS = Counter("visit_events_total", "Visit events", ["event"])
PINGS_MEMORY = Counter(
    "pings_memory_total", "Ping batches by what the worker remembered of the member: hit, "
    "miss, stale (refused: another worker or path wrote since)", ["outcome"])
OFFERS_ISSUED = Counter("offers_issued_total", "Drive-to-store offers issued")
WEBHOOK_DELIVERIES = Counter("webhook_deliveries_total", "Offer webhook deliveries", ["outcome"])
PURCHASES = Counter("pos_purchases_total", "Till purchases recorded (a replayed retry is not "
                    "counted again)")
PIN_LOCKOUTS = Counter("pin_lockouts_total",
                       "Stored-value PINs locked by one wrong PIN too many")

# Wallet passes (wallet/passes): issued, devices registered, pushes by outcome and pending.
PASSES_ISSUED = Counter("passes_issued_total", "Wallet passes issued (first download)", ["kind"])
PASS_DEVICES = Counter("pass_devices_registered_total",
                       "Apple devices registered for pass updates (new registrations)")
PASS_PUSHES = Counter("pass_pushes_total", "Pass update pushes, by outcome", ["outcome"])
PASS_PUSHES_PENDING = Gauge("pass_pushes_pending",
                            "Pass updates waiting to be published or sent (as of the last "
                            "delivery round)", multiprocess_mode="livemostrecent")

# The database pool of each worker (summed over live workers in multi-process mode).
DB_POOL = Gauge("db_pool_connections", "Database pool connections of the workers, by state",
                ["state"], multiprocess_mode="livesum")
DB_POOL_WAITING = Gauge("db_pool_waiting", "Requests waiting for a pool connection",
                        multiprocess_mode="livesum")
DB_POOL_MAX = Gauge("db_pool_max_connections", "Most connections the pools may open",
                    multiprocess_mode="livesum")

# Read from the database when /metrics is scraped (the same for every worker).
OUTBOX_BACKLOG = Gauge("offer_outbox_backlog", "Offers waiting for webhook delivery",
                       multiprocess_mode="mostrecent")
OUTBOX_OLDEST = Gauge("offer_outbox_oldest_age_seconds",
                      "Age of the oldest offer not yet delivered (0 when none waits)",
                      multiprocess_mode="mostrecent")
PIN_LOCKED = Gauge("pin_locked_members",
                   "Members whose stored-value PIN is locked now (confirmed locks)",
                   multiprocess_mode="mostrecent")

# Background jobs and loops (api/lifespan.py): each round of each.
JOB_RUNS = Counter("background_job_runs_total", "Rounds of a background job or loop", ["job"])
JOB_FAILURES = Counter("background_job_failures_total", "Rounds that failed", ["job"])
JOB_DURATION = Histogram("background_job_duration_seconds", "How long a round took", ["job"],
                         buckets=(0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300))
JOB_LAST_SUCCESS = Gauge("background_job_last_success_timestamp_seconds",
                         "When a round last succeeded (Unix time)", ["job"],
                         multiprocess_mode="max")


@contextlib.contextmanager
def job_round(job: str) -> Iterator[None]:
    """Count and time one round of `job`; an exception counts as a failure (and goes on)."""
    start = time.perf_counter()
    JOB_RUNS.labels(job).inc()
    try:
        yield
    except BaseException:
        JOB_FAILURES.labels(job).inc()
        raise
    else:
        JOB_LAST_SUCCESS.labels(job).set(time.time())
    finally:
        JOB_DURATION.labels(job).observe(time.perf_counter() - start)


def sample_pool(pool: asyncpg.Pool) -> None:
    """This worker's pool, now: connections in use, idle, and callers waiting for one."""
    size, idle = pool.get_size(), pool.get_idle_size()
    DB_POOL.labels("in_use").set(size - idle)
    DB_POOL.labels("idle").set(idle)
    DB_POOL_MAX.set(pool.get_max_size())
    DB_POOL_WAITING.set(pool_waiting(pool))


def pool_waiting(pool: asyncpg.Pool) -> int:
    """Callers blocked in `pool.acquire()`. asyncpg has no public figure for it: this reads
    the pool's holder queue (an `asyncio.Queue`) and counts its pending getters; a test pins
    the behaviour (tests/integration/test_metrics_pool.py), so an asyncpg change that breaks
    it fails the suite instead of reporting 0."""
    queue = getattr(pool, "_queue", None)
    getters = getattr(queue, "_getters", ())
    return sum(1 for f in getters if not f.done())


def set_database_figures(*, backlog: int, oldest_age_s: float, pin_locked: int) -> None:
    OUTBOX_BACKLOG.set(backlog)
    OUTBOX_OLDEST.set(oldest_age_s)
    PIN_LOCKED.set(pin_locked)


def render() -> tuple[bytes, str]:
    """The metrics page: this process's registry, or all workers' in multi-process mode."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(), CONTENT_TYPE_LATEST


class MetricsMiddleware:
    """Counts requests and times them by route template (not raw path: bounded cardinality).

    The labelled children are looked up once per (method, route, status) and kept: `labels()`
    validates and hashes its arguments under a lock on every call."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":  # type: ignore[comparison-overlap]
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = [500]
        started = [False]

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
                started[0] = True
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        except Exception as exc:
            # Raised before any response started (the token middleware's 401, a guard's
            # 403...): the app's outer exception handler answers with this status.
            if not started[0]:
                from api.errors import status_of  # api.errors counts into this module

                status[0] = status_of(exc)
            raise
        finally:
            handler: Any = scope.get("route_handler")
            route = scope.get("path_template") or (
                next(iter(handler.paths), "?") if handler is not None else "unmatched")
            method = str(scope.get("method", "?"))
            children = self._children.get((method, route, status[0]))
            if children is None:
                children = self._children[(method, route, status[0])] = (
                    REQUESTS.labels(method, route, str(status[0])), LATENCY.labels(method, route))
            children[0].inc()
            children[1].observe(time.perf_counter() - start)


def count_pings_memory(outcome: str) -> None:
    """`geo.pings_memory.MemberMemory`'s counter."""
    PINGS_MEMORY.labels(outcome).inc()
