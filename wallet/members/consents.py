"""What a member allows: consent per purpose (with proof) and contact preferences.

Consent is opt-in and append-only. Each grant or withdrawal is a record with its proof —
when, which policy version, from which channel (`source`) — and the current state of a
purpose is its latest record; a purpose never recorded is *not* granted. Withdrawing is the
same call as granting, with `granted: false`.

Preferences say how often (`max_offers_per_day`, None = no personal cap), when not
(`quiet_hours` in the program's time zone; `start > end` spans midnight) and through which
channels the member agrees to hear from the program. `in_quiet_hours` is the pure check the
offer engine uses.

This module is pure (no I/O): the SQL is in `consents_repo`, the transactions in
`consents_service`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, time
from typing import Literal

import msgspec

from wallet.kernel.errors import RuleViolation

Purpose = Literal["location_offers", "marketing", "personalisation", "partner_sharing"]
PURPOSES: tuple[Purpose, ...] = ("location_offers", "marketing", "personalisation",
                                 "partner_sharing")
Channel = Literal["push", "email", "sms", "in_app"]
CHANNELS: tuple[Channel, ...] = ("push", "email", "sms", "in_app")
DEFAULT_SOURCE = "app"


class ConsentChange(msgspec.Struct, frozen=True, kw_only=True):
    purpose: Purpose
    granted: bool
    policy_version: str
    source: str = DEFAULT_SOURCE


class ConsentRecord(msgspec.Struct, frozen=True, kw_only=True):
    """One affirmative act (grant or withdrawal) and its proof."""

    purpose: Purpose
    granted: bool
    policy_version: str
    source: str
    at: datetime


class ConsentState(msgspec.Struct, frozen=True, kw_only=True):
    """A purpose's current state; the proof fields are None when it was never recorded."""

    purpose: Purpose
    granted: bool
    policy_version: str | None
    source: str | None
    at: datetime | None


class Consents(msgspec.Struct, frozen=True, kw_only=True):
    current: list[ConsentState]  # every purpose, in PURPOSES order
    history: list[ConsentRecord]  # every record, oldest first


class QuietHours(msgspec.Struct, frozen=True, kw_only=True):
    start: time
    end: time


class Preferences(msgspec.Struct, frozen=True, kw_only=True):
    max_offers_per_day: int | None
    quiet_hours: QuietHours | None
    channels: tuple[Channel, ...]


DEFAULT_PREFERENCES = Preferences(max_offers_per_day=None, quiet_hours=None,
                                  channels=("push", "in_app"))


class PreferenceChanges(msgspec.Struct, frozen=True, kw_only=True):
    """UNSET = keep; None clears the cap or the quiet hours."""

    max_offers_per_day: int | msgspec.UnsetType | None = msgspec.UNSET
    quiet_hours: QuietHours | msgspec.UnsetType | None = msgspec.UNSET
    channels: Sequence[Channel] | msgspec.UnsetType = msgspec.UNSET


# --- the pure core ------------------------------------------------------------------------


def current_state(history: Sequence[ConsentRecord]) -> list[ConsentState]:
    """Each purpose's latest record (history oldest first); unrecorded → not granted."""
    latest: dict[str, ConsentRecord] = {r.purpose: r for r in history}
    out: list[ConsentState] = []
    for purpose in PURPOSES:
        r = latest.get(purpose)
        out.append(ConsentState(purpose=purpose, granted=False, policy_version=None,
                                source=None, at=None) if r is None else
                   ConsentState(purpose=purpose, granted=r.granted,
                                policy_version=r.policy_version, source=r.source, at=r.at))
    return out


def check_changes(changes: Sequence[ConsentChange], *, field: str = "consents") -> None:
    """One change per purpose in a batch (two would make the proof ambiguous)."""
    seen: set[str] = set()
    for i, c in enumerate(changes):
        if c.purpose in seen:
            raise RuleViolation(f"purpose {c.purpose!r} appears twice",
                                field=f"{field}[{i}].purpose")
        seen.add(c.purpose)


def apply_preferences(current: Preferences, changes: PreferenceChanges) -> Preferences:
    """`current` with `changes` applied; channels deduplicated in their given order."""
    quiet = current.quiet_hours if changes.quiet_hours is msgspec.UNSET else changes.quiet_hours
    if quiet is not None and quiet.start == quiet.end:
        raise RuleViolation("quiet hours must not start and end at the same time",
                            field="quiet_hours.to")
    cap = (current.max_offers_per_day if changes.max_offers_per_day is msgspec.UNSET
           else changes.max_offers_per_day)
    channels = (current.channels if isinstance(changes.channels, msgspec.UnsetType)
                else tuple(dict.fromkeys(changes.channels)))
    return Preferences(max_offers_per_day=cap, quiet_hours=quiet, channels=channels)


def in_quiet_hours(prefs: Preferences, local: time) -> bool:
    """True when the wall-clock `local` time (program time zone) is in the quiet hours.

    The window is half-open, [start, end): 22:00-07:00 holds 23:30 and 06:59, not 07:00.
    """
    q = prefs.quiet_hours
    if q is None:
        return False
    if q.start < q.end:
        return q.start <= local < q.end
    return local >= q.start or local < q.end
