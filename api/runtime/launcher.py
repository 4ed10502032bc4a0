"""Start the service the way `make run` and `loyalty serve` do, and give CLI commands a database.

The order matters: the database comes first (DATABASE_URL, else our embedded PostgreSQL),
migrations run once here before any worker exists (workers racing on DDL would fail), then
uvicorn serves. The embedded server must stop on every way out — Ctrl-C, SIGTERM, a failed
start — so everything after starting it sits in one `try/finally`; uvicorn re-raises SIGTERM
after its graceful shutdown, and our handler turns that into SystemExit so `finally` runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import errno
import importlib
import logging
import os
import shutil
import signal
import socket
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import Any

from api.runtime import scratch
from api.runtime.embedded_pg import EmbeddedPostgres, EmbeddedPostgresError, running_dsn
from api.runtime.pg_host import sweep_private_dirs, tie_to_parent
from migrations.runner import MigrationError, migrate

__all__ = ["database_for_cli", "serve", "worker_app"]

APP_FACTORY = "api.app:create_app"
METRICS_PREFIX = "loyalty-metrics-"
_SUPERVISOR = "LOYALTY_SUPERVISOR_PID"  # set for the workers: whom they must not outlive
_FACTORY = "LOYALTY_APP_FACTORY"


def _exit_on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(0)


@contextlib.contextmanager
def _database(data_dir: Path, *, throwaway: bool) -> Iterator[str]:
    """DSN of DATABASE_URL, else of an embedded server that lives as long as the block."""
    if url := os.environ.get("DATABASE_URL"):
        yield url
        return
    pg = EmbeddedPostgres(fsync=False) if throwaway else EmbeddedPostgres(data_dir / "pg")
    with pg:
        kind = "throwaway" if throwaway else f"data in {pg.data_dir}"
        print(f"PostgreSQL ready on 127.0.0.1:{pg.port} ({kind}) in {pg.startup_seconds:.2f} s",
              flush=True)
        yield pg.dsn


@contextlib.contextmanager
def database_for_cli(data_dir: Path) -> Iterator[str]:
    """DSN for one CLI command (`loyalty migrate`, `demo`, `expire`...).

    DATABASE_URL if set; else the server `make run` already runs on `data_dir/pg` (found
    through its postmaster.pid and saved password); else that persistent cluster, started
    for the duration of the block and stopped after it.
    """
    if url := os.environ.get("DATABASE_URL") or running_dsn((data_dir / "pg").absolute()):
        yield url
    else:
        with EmbeddedPostgres(data_dir / "pg") as pg:
            yield pg.dsn


def _seed_demo(dsn: str) -> None:
    from api.runtime.demo import seed

    print(f"demo: {asyncio.run(seed(dsn))}", flush=True)


@contextlib.contextmanager
def _metrics_dir(workers: int) -> Iterator[None]:
    """With several workers, each writes its metrics to a shared directory and /metrics
    aggregates them all (prometheus_client's multi-process mode); one worker needs nothing."""
    if workers <= 1 or os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        yield
        return
    path = tempfile.mkdtemp(prefix=METRICS_PREFIX)
    scratch.claim(Path(path))
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = path
    try:
        yield
    finally:
        del os.environ["PROMETHEUS_MULTIPROC_DIR"]
        shutil.rmtree(path, ignore_errors=True)


def port_problem(host: str, port: int) -> str | None:
    """Why uvicorn could not listen on `host:port`, or None: a trial bind with the options
    uvicorn uses (SO_REUSEADDR, so only a listening socket makes it fail)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return (f"port {port} on {host} is already in use (another `make run`?). "
                        f"Stop that server, or choose another port: `make run PORT={port + 1}` "
                        f"or `loyalty serve --port {port + 1}`.")
            return f"cannot listen on {host}:{port}: {exc.strerror or exc}"
    return None


def worker_app() -> Any:
    """What each uvicorn worker serves: the app, in a process that dies with its supervisor.

    uvicorn's workers are children of `loyalty serve`; killed with `kill -9`, it used to leave
    them serving (and holding the port) forever. A worker now asks the kernel for SIGTERM when
    its parent goes (graceful: requests in flight complete), as the embedded PostgreSQL does.
    With one worker uvicorn serves in-process, and there is nothing to tie.
    """
    supervisor = int(os.environ.get(_SUPERVISOR, "0"))
    if supervisor and supervisor != os.getpid():
        tie_to_parent(supervisor)
    module, _, name = os.environ.get(_FACTORY, APP_FACTORY).partition(":")
    return getattr(importlib.import_module(module), name)()


class DropQueryString(logging.Filter):
    """The HTTP access log shows paths without their query strings: a query may carry
    personal data (a member id, an e-mail searched for) and must never be written down."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) >= 3 and isinstance(args[2], str):
            record.args = (*args[:2], args[2].split("?", 1)[0], *args[3:])
        return True


def _log_config() -> dict[str, Any]:
    config = copy.deepcopy(uvicorn_logging_config())
    config.setdefault("filters", {})["drop_query"] = {"()": f"{__name__}.DropQueryString"}
    config["handlers"]["access"].setdefault("filters", []).append("drop_query")
    return config


def uvicorn_logging_config() -> dict[str, Any]:
    from uvicorn.config import LOGGING_CONFIG

    return LOGGING_CONFIG


def _sweep_leftovers() -> None:
    """Remove what runs killed before they could clean up left in the temp dir."""
    removed = sweep_private_dirs() + scratch.sweep(Path(tempfile.gettempdir()), METRICS_PREFIX)
    if removed:
        print(f"removed {len(removed)} directories left by killed runs", flush=True)


def _demo_passes(data_dir: Path, host: str, port: int) -> None:
    """Development pass credentials for the demo, unless passes are configured already."""
    from api.runtime.demo_passes import configure_demo_passes

    if configure_demo_passes(data_dir, _base_url(host, port)):
        print(f"demo: wallet passes signed with development credentials in "
              f"{data_dir / 'dev-passes'} (real phones need the operator's own: README, "
              "\"Wallet passes\")", flush=True)


def _base_url(host: str, port: int) -> str:
    shown = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host  # noqa: S104 - display only
    return f"http://[{shown}]:{port}" if ":" in shown else f"http://{shown}:{port}"


def _banner(host: str, port: int, *, demo: bool = False) -> str:
    base = _base_url(host, port)
    console, till = f"{base}/console", f"{base}/till"
    if demo:  # the demo's logins beside the pages they open
        from geo.demo_repo import MANAGER_EMAIL, MANAGER_PASSWORD, STAFF_EMAIL, STAFF_PASSWORD

        console += f"   manager: {MANAGER_EMAIL} / {MANAGER_PASSWORD}"
        till += f"   cashier: {STAFF_EMAIL} / {STAFF_PASSWORD}"
    return (f"\n  API   {base}\n  Docs  {base}/schema\n  Console  {console}\n  Till     {till}\n"
            "  Token .venv/bin/loyalty token --role admin   (then: Authorization: Bearer ...)\n")


def serve(*, host: str, port: int, workers: int, throwaway_db: bool, data_dir: Path,
          seed_demo: bool, reload: bool = False, app_factory: str = APP_FACTORY) -> int:
    """Database, migrations, optional demo data, then uvicorn; returns the exit status.

    0 after Ctrl-C or SIGTERM, 1 when the port is taken (checked first, before anything
    starts), the database cannot start or a migration is refused, uvicorn's status when it
    cannot start otherwise (an app import error).

    `data_dir` holds the persistent cluster in `data_dir/pg` (ignored with `throwaway_db` or
    DATABASE_URL). Workers get the DSN through DATABASE_URL. Call from the main thread: it
    installs a SIGTERM handler, and the embedded server dies with the thread that started it.
    `app_factory` exists for tests; the service always runs the default.
    """
    import uvicorn  # here, to keep `loyalty migrate` and friends light

    if problem := port_problem(host, port):  # before the database starts, or any banner
        print(f"cannot start: {problem}", file=sys.stderr, flush=True)
        return 1
    previous = signal.signal(signal.SIGTERM, _exit_on_sigterm)
    _sweep_leftovers()
    try:
        with _database(data_dir, throwaway=throwaway_db) as dsn:
            applied = asyncio.run(migrate(dsn))
            print(f"migrations applied: {', '.join(applied)}" if applied
                  else "migrations: schema is current", flush=True)
            if seed_demo:
                _seed_demo(dsn)
                _demo_passes(data_dir, host, port)
            os.environ["DATABASE_URL"] = dsn  # uvicorn's workers inherit the environment
            os.environ[_SUPERVISOR] = str(os.getpid())
            os.environ[_FACTORY] = app_factory
            print(_banner(host, port, demo=seed_demo), flush=True)
            with _metrics_dir(workers):
                uvicorn.run(f"{__name__}:worker_app", factory=True, host=host, port=port,
                            workers=workers, reload=reload, log_level="info",
                            log_config=_log_config())
    except (EmbeddedPostgresError, MigrationError) as exc:  # explained by their message
        print(f"cannot start: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # Ctrl-C before uvicorn took over, or re-raised by it
        return 0
    except SystemExit as exc:  # our SIGTERM handler, or uvicorn's startup failure
        return exc.code if isinstance(exc.code, int) else 0 if exc.code is None else 1
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    return 0
