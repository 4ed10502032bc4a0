"""Background jobs: run once from the CLI (`loyalty expire`), or periodically in the app
(scheduled by `api.lifespan`).

`JOBS` maps a job's name to a coroutine over a pool (`expire`: points lots past their date,
then unused reward vouchers past theirs; `purge`: data past its retention period);
`PERIODIC` names the jobs the app runs every `settings.jobs_interval_s` seconds (0 disables
them). Jobs are idempotent and safe to run from several workers at once: each holds an
advisory lock while it runs, so one worker does the work and the others skip that round (see
`wallet.kernel.db.try_job_lock`). A job uses two connections of the pool: its lock's and its
work's.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

import asyncpg

from api import metrics
from api.config import Settings, retention_policy
from wallet.kernel.db import keep_session
from wallet.ledger import expiry
from wallet.privacy import purge
from wallet.rewards import claims_service

log = logging.getLogger(__name__)

Job = Callable[[asyncpg.Pool, Settings], Awaitable[str]]


async def _expire(pool: asyncpg.Pool, _: Settings) -> str:
    report = await expiry.expire_due(pool)
    vouchers = await claims_service.expire_due(pool)
    done = ("vouchers: skipped, another process is expiring them right now" if vouchers.skipped
            else f"vouchers: {vouchers.vouchers} expired, {vouchers.points_returned} points "
                 "returned")
    if report.skipped:
        return f"expire: skipped, another process is expiring points right now; {done}"
    return (f"expire: {report.points} points expired from {report.lots} lots "
            f"in {report.accounts} wallet accounts; {done}")


async def _purge(pool: asyncpg.Pool, settings: Settings) -> str:
    report = await purge.purge(pool, retention_policy(settings), now=datetime.now(UTC))
    if report.skipped:
        return "purge: skipped, another process is purging right now"
    counts = ", ".join(f"{name} {getattr(report, name)}" for name in report.__struct_fields__
                       if name != "skipped")
    return f"purge: {counts}"


JOBS: dict[str, Job] = {"expire": _expire, "purge": _purge}
PERIODIC: tuple[str, ...] = ("expire", "purge")


class UnknownJob(ValueError):
    """A job name that is not in `JOBS`."""


def _job(name: str) -> Job:
    try:
        return JOBS[name]
    except KeyError:
        raise UnknownJob(f"unknown job {name!r}: known jobs are {', '.join(sorted(JOBS))}"
                         ) from None


async def run_job(name: str, dsn: str, settings: Settings) -> str:
    """Run one job to completion against `dsn`; returns a one-line report.

    Raises UnknownJob (a ValueError) naming the known jobs for any other name."""
    job = _job(name)
    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=2, reset=keep_session,
                                     server_settings={"timezone": "UTC"})
    try:
        return await job(pool, settings)
    finally:
        await pool.close()


async def run_periodic(name: str, pool: asyncpg.Pool, settings: Settings) -> str:
    """One round of job `name` on the app's pool (the app's periodic loop, `api.lifespan`),
    counted and timed in the metrics (`background_job_*{job=name}`). A failing job is logged
    and does not stop the others."""
    try:
        with metrics.job_round(name):
            return await _job(name)(pool, settings)
    except Exception:  # a failed job is logged; the next round tries again
        log.exception("periodic job %s failed", name)
        return f"{name}: failed"
