"""Prometheus metrics (prometheus_client). Multi-worker aware: when the launcher sets
PROMETHEUS_MULTIPROC_DIR, every worker writes there and /metrics aggregates them all."""

from __future__ import annotations

import os
import time
from typing import Any

from litestar.types import ASGIApp, Message, Receive, Scope, Send
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
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
OFFERS_ISSUED = Counter("offers_issued_total", "Drive-to-store offers issued")
WEBHOOK_DELIVERIES = Counter("webhook_deliveries_total", "Offer webhook deliveries", ["outcome"])
PURCHASES = Counter("pos_purchases_total", "Till purchases recorded")


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

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
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
