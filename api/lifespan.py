"""Everything a worker starts after its database pool and stops before closing it: the
privacy notice it serves (published, so consents can name it), the per-worker zone registry
and campaign cache, and the background loops (offer delivery to the
push webhook, the periodic jobs). `create_app` runs `HOOKS` in order; each returns an async
stop hook (or None), run in reverse order at shutdown.

The loops share one shape (`_every`): run a round, log a failure without dying, wait. A round
is a service call (`geo.outbox.deliver_due`, the jobs of `api.jobs`); this module only
schedules them and counts what an operator needs in the metrics.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

import asyncpg
import httpx
from litestar import Litestar
from prometheus_client import multiprocess

from api import metrics
from api.config import PassesSetup, Settings, privacy_notice, webhook_config
from api.cpu_profile import CpuSampler
from api.jobs import PERIODIC, run_periodic
from geo import outbox
from geo.issuance import CampaignCache
from geo.locator_service import LocatorCache
from geo.pings_memory import MemberMemory
from geo.registry import ZoneRegistry
from wallet.ledger.earn_fast import RulesCache
from wallet.passes import delivery
from wallet.passes.apns import ApnsSender
from wallet.passes.google_api import GoogleWalletApi
from wallet.privacy import notice_service

log = logging.getLogger(__name__)

Stop = Callable[[], Awaitable[None]]
Hook = Callable[[Litestar], Awaitable[Stop | None]]


async def start_zone_registry(app: Litestar) -> Stop:
    """One zone registry per worker, listening for zone changes."""
    settings: Settings = app.state.settings
    registry = ZoneRegistry(app.state.pool, heartbeat_s=settings.zone_listener_heartbeat_s,
                            heartbeat_timeout_s=settings.zone_listener_heartbeat_timeout_s)
    await registry.start(settings.database_url)
    app.state.zones = registry
    return registry.stop


async def start_campaign_cache(app: Litestar) -> None:
    """One cache of active campaigns per worker (see `geo.issuance`), and the worker's memory
    of what it last wrote for each member (`geo.pings_memory`), counted in the metrics."""
    app.state.campaigns = CampaignCache()
    app.state.pings_memory = MemberMemory(count=metrics.count_pings_memory)


async def start_till_rules(app: Litestar) -> None:
    """One cache of programs' earning rules per worker (`wallet.ledger.earn_fast`)."""
    app.state.till_rules = RulesCache()


async def start_store_locator(app: Litestar) -> None:
    """One store locator per program and worker, built on first use (`geo.locator_service`)."""
    app.state.locators = LocatorCache()


def _every(name: str, round_: Callable[[], Awaitable[float]]) -> Stop:
    """Run `round_` in a task until stopped; it returns how long to wait before the next
    round. A failed round is logged and retried after a second. Each round is counted and
    timed in the metrics under `name` (`background_job_*{job=name}`)."""

    async def loop() -> None:
        while True:
            try:
                with metrics.job_round(name):
                    wait = await round_()
            except Exception:  # a failed round is logged; the next one tries again
                log.exception("%s: round failed", name)
                wait = 1.0
            await asyncio.sleep(wait)

    task = asyncio.create_task(loop(), name=name)

    async def stop() -> None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    return stop


async def deliver_once(pool: asyncpg.Pool, client: httpx.AsyncClient, settings: Settings, *,
                       now: datetime | None = None) -> outbox.DeliveryReport:
    """One round of offer delivery (see `geo/outbox.py`), counted in the metrics."""
    report = await outbox.deliver_due(pool, client, webhook_config(settings),
                                      now=now or datetime.now(UTC))
    for outcome in ("delivered", "failed", "expired"):
        if n := getattr(report, outcome):
            metrics.WEBHOOK_DELIVERIES.labels(outcome).inc(n)
    return report


async def start_offer_delivery(app: Litestar) -> Stop | None:
    """Each worker delivers due offers every `webhook_poll_s` seconds (none without a webhook
    URL, or with a poll interval of 0); a full batch means more may be due: no wait."""
    settings: Settings = app.state.settings
    if not settings.webhook_url or settings.webhook_poll_s == 0:
        return None
    client = httpx.AsyncClient()

    async def round_() -> float:
        report = await deliver_once(app.state.pool, client, settings)
        return 0.0 if report.claimed >= settings.webhook_batch else settings.webhook_poll_s

    stop_loop = _every("offer-delivery", round_)

    async def stop() -> None:
        await stop_loop()
        await client.aclose()

    return stop


async def start_periodic_jobs(app: Litestar) -> Stop | None:
    """Run the periodic jobs (`PERIODIC`: expiry, purge) every `jobs_interval_s` (0 = never)."""
    settings: Settings = app.state.settings
    if settings.jobs_interval_s == 0:
        return None

    async def round_() -> float:
        for name in PERIODIC:
            log.info("%s", await run_periodic(name, app.state.pool, settings))
        return float(settings.jobs_interval_s)

    return _every("periodic-jobs", round_)


async def start_pool_sampler(app: Litestar) -> Stop | None:
    """With several workers (prometheus_client's multi-process mode), each worker writes its
    pool figures every few seconds, so /metrics, answered by one of them, sums them all
    (the answering worker samples its own pool at that moment). On stop, the worker's live
    gauges are removed."""
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return None

    async def sample() -> None:
        while True:
            metrics.sample_pool(app.state.pool)
            await asyncio.sleep(POOL_SAMPLE_S)

    task = asyncio.create_task(sample(), name="pool-metrics")

    async def stop() -> None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        multiprocess.mark_process_dead(os.getpid())  # type: ignore[no-untyped-call]

    return stop


async def deliver_passes_once(pool: asyncpg.Pool, setup: PassesSetup, *,
                              apns: ApnsSender | None, google: GoogleWalletApi | None,
                              now: datetime | None = None,
                              purge: bool = False) -> delivery.RoundReport:
    """One round of pass updates (see `wallet/passes/delivery.py`), counted in the metrics:
    pushes sent, failed (retried later), gone; updates pending."""
    report = await delivery.run_round(pool, apns=apns, google=google, cfg=setup.delivery,
                                      now=now or datetime.now(UTC), purge=purge)
    if report.skipped:  # another worker delivers this round
        return report
    for outcome in ("sent", "failed", "gone"):
        if n := getattr(report, outcome):
            metrics.PASS_PUSHES.labels(outcome).inc(n)
    backlog = await delivery.backlog(pool)
    metrics.PASS_PUSHES_PENDING.set(backlog.changes + backlog.pushes)
    return report


_PASS_PURGE_EVERY_S = 3600.0


async def start_pass_delivery(app: Litestar) -> Stop | None:
    """Deliver pass updates every `pass_push_poll_s` seconds (one worker at a time does; none
    when no kind of pass is configured, or with a poll interval of 0). APNs is HTTP/2 only."""
    settings: Settings = app.state.settings
    setup: PassesSetup = app.state.passes
    if (setup.apple is None and setup.google is None) or settings.pass_push_poll_s == 0:
        return None
    clients: list[httpx.AsyncClient] = []
    apns = google = None
    if setup.apns is not None:
        clients.append(httpx.AsyncClient(http1=False, http2=True))
        apns = ApnsSender(setup.apns, clients[-1])
    if setup.google_api is not None:
        clients.append(httpx.AsyncClient(http2=True))
        google = GoogleWalletApi(setup.google_api, clients[-1])
    last_purge = [0.0]

    async def round_() -> float:
        loop = asyncio.get_running_loop()
        purge = loop.time() - last_purge[0] >= _PASS_PURGE_EVERY_S
        report = await deliver_passes_once(app.state.pool, setup, apns=apns, google=google,
                                           purge=purge)
        if purge and not report.skipped:
            last_purge[0] = loop.time()
        return 0.0 if report.due >= setup.delivery.batch else settings.pass_push_poll_s

    stop_loop = _every("pass-delivery", round_)

    async def stop() -> None:
        await stop_loop()
        for client in clients:
            await client.aclose()

    return stop


POOL_SAMPLE_S = 5.0


async def publish_privacy_notice(app: Litestar) -> None:
    """Keep the version of the privacy notice this worker serves: a consent's
    `policy_version` must name a published version (`wallet.privacy.notice_service`)."""
    await notice_service.publish(app.state.pool, privacy_notice(app.state.settings))


async def start_cpu_profile(app: Litestar) -> Stop | None:
    """`LOYALTY_CPU_PROFILE`: sample this worker's CPU from here (start-up done) to its
    shutdown (api/cpu_profile.py)."""
    prefix = app.state.settings.cpu_profile
    if not prefix:
        return None
    sampler = CpuSampler(prefix)
    sampler.start()

    async def stop() -> None:
        sampler.stop()

    return stop


HOOKS: tuple[Hook, ...] = (publish_privacy_notice, start_zone_registry, start_campaign_cache,
                           start_till_rules, start_store_locator, start_periodic_jobs,
                           start_offer_delivery, start_pool_sampler, start_pass_delivery,
                           start_cpu_profile)
