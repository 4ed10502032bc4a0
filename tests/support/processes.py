"""Process helpers for tests that check nothing is left running."""

from __future__ import annotations

import time
from pathlib import Path


def session_members(sid: int) -> list[int]:
    """Live (non-zombie) processes of session `sid`: the postmaster leads its own session."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # exited while we looked
        if int(fields[3]) == sid and fields[0] != "Z":
            members.append(int(stat.parent.name))
    return members


def wait_until_gone(sid: int, timeout: float = 15.0) -> list[int]:
    """Poll until no process of the session remains; returns the survivors after `timeout`."""
    deadline = time.monotonic() + timeout
    while (left := session_members(sid)) and time.monotonic() < deadline:
        time.sleep(0.02)
    return left
