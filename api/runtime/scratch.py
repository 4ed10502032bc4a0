"""Scratch directories under the temp dir that outlive nothing: each is claimed by the process
that made it, and any start sweeps away those whose owner is gone.

A `loyalty serve` killed with `kill -9` cannot run its `finally`: its throwaway cluster
(about 40 MB) and its metrics directory stayed in /tmp for good. Now each such directory
holds an `.owner` file naming its creator by pid *and* start time (so a recycled pid does not
pass for the owner), and `sweep` removes the directories of owners no longer running. A
directory without an owner file is left alone: we cannot tell whose it is.
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

log = logging.getLogger(__name__)

OWNER_FILE = ".owner"


def _start_time(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (Linux), None if it is not running."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return None if fields[0] == "Z" else fields[19]


def claim(directory: Path) -> None:
    """Mark `directory` as this process's (call right after creating it)."""
    me = os.getpid()
    (directory / OWNER_FILE).write_text(f"{me} {_start_time(me)}\n")


def owner_alive(directory: Path) -> bool | None:
    """True/False for a claimed directory, None for one without a readable owner file."""
    try:
        pid, started = (directory / OWNER_FILE).read_text().split()
        return _start_time(int(pid)) == started
    except (OSError, ValueError):
        return None


def sweep(base: Path, prefix: str) -> list[Path]:
    """Remove `base/prefix*` directories whose owner has exited; returns what was removed."""
    if not Path("/proc/self/stat").exists():
        return []  # no way to tell a live owner from a dead one here
    removed = []
    for directory in base.glob(f"{prefix}*"):
        if directory.is_dir() and owner_alive(directory) is False:
            shutil.rmtree(directory, ignore_errors=True)
            if not directory.exists():
                removed.append(directory)
    if removed:
        log.info("removed %d directories left by killed runs: %s", len(removed),
                 ", ".join(map(str, removed)))
    return removed
